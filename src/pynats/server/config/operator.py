"""The operator-mode keys of a configuration file: ``operator``, ``resolver`` and friends.

Theory of operation
-------------------
Handlers for ``load.py``'s table of keys that need more than one read, with
nats-server's located errors (``file:line:col: error parsing operator JWT: ...``):

* ``operator`` (``operators``, ``root``...): a string or a list of strings, each a file
  or the JWT itself; the options keep the JWTs read (so a reload compares the
  operators, not the file names);
* ``resolver``: ``MEMORY`` (or ``MEM``), ``URL(<url>)``, or a directory resolver map;
* ``resolver_preload``: a map of account public keys to account JWTs that must decode;
* ``trusted`` / ``trusted_keys``: operator public keys;
* ``resolver_pinned_accounts``: account public keys.

After the walk, :func:`apply_implied` fills in what a single operator JWT implies when
the file does not say: its ``system_account``, and a URL resolver for its account
server (nats-server does the same while parsing; the file's keys win in any order).
"""

from __future__ import annotations

from typing import Any

from pynats import nkeys
from pynats.nkeys import Prefix
from pynats.server.config.parser import Node
from pynats.server.config.values import Problems, go_type, want_str
from pynats.server.gotext import go_quote
from pynats.server.jwtauth.claims import JwtError, decode_account
from pynats.server.jwtauth.config import (
    BAD_RESOLVER,
    implied_options,
    read_operator_jwt,
    resolver_kind,
)


def operators(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    """``operator``: files or inline JWTs, read and decoded now."""
    entries = _string_list(value)
    if entries is None:
        problems.error(value, f"error parsing operators: unsupported type {go_type(value.value)}")
        return
    found = []
    for entry in entries:
        try:
            found.append(read_operator_jwt(entry))
        except ValueError as exc:
            problems.error(value, f"error parsing operator JWT: {exc}")
    fields["operators"] = tuple(found)


def resolver(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    """``resolver``: normalized to ``MEMORY``, ``URL(<url>)`` or ``FULL``/``CACHE(<dir>)``."""
    fields.pop("resolver", None)  # a later resolver replaces an earlier one, even if bad
    if isinstance(value.value, str):
        kind = resolver_kind(value.value)
    elif isinstance(value.value, dict):
        kind = _directory_resolver(value, problems)
        if kind == "":
            return
    else:
        problems.error(value, f"error parsing operator resolver, wrong type "
                              f"{go_type(value.value)}")
        return
    if kind is None:
        problems.error(value, BAD_RESOLVER)
        return
    fields["resolver"] = kind


def _directory_resolver(value: Node, problems: Problems) -> str | None:
    """A ``{dir, type}`` resolver: ``FULL(<dir>)`` or ``CACHE(<dir>)``; "" after an error.

    As nats-server 2.15: an unknown ``type`` is the generic resolver error; a known one
    without ``dir`` fails twice (no value, then the directory cannot be created).
    """
    block = {key.lower(): node for key, node in _map(value).items()}
    directory = want_str(block["dir"]) if "dir" in block else ""
    kind = want_str(block["type"]).upper() if "type" in block else ""
    if kind not in ("FULL", "CACHE"):
        return None
    if not directory:
        problems.error(value, "dir has no value and needs to point to a directory")
        problems.error(value, "mkdir : no such file or directory")
        return ""
    return f"{kind}({directory})"


def resolver_preload(name: str, value: Node, fields: dict[str, Any],
                     problems: Problems) -> None:
    """``resolver_preload``: account public key -> account JWT (that must decode)."""
    if not isinstance(value.value, dict):
        problems.error(value, "preload should be a map of account_public_key:account_jwt")
        return
    preload = []
    for key, node in value.value.items():
        if not isinstance(node.value, str):
            problems.error(node, "preload map value should be a string JWT")
            continue
        try:
            decode_account(node.value)
        except JwtError:
            problems.error(node, "invalid account JWT")
            continue
        preload.append((key, node.value))
    fields["resolver_preload"] = tuple(preload)


def trusted_keys(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    """``trusted``: operator public keys, each checked."""
    keys = _strings_or_error(value, "trusted", problems)
    if keys is None:
        return
    for key in keys:
        if not nkeys.is_valid_public_key(key, Prefix.OPERATOR):
            problems.error(value, f"trust key {go_quote(key)} required to be a valid public "
                                  "operator nkey")
    fields["trusted_keys"] = keys


def pinned_accounts(name: str, value: Node, fields: dict[str, Any],
                    problems: Problems) -> None:
    """``resolver_pinned_accounts``: account public keys (checked before start)."""
    keys = _strings_or_error(value, "resolver_pinned_accounts", problems)
    if keys is not None:
        fields["resolver_pinned_accounts"] = keys


def apply_implied(fields: dict[str, Any]) -> None:
    """Fill in ``fields`` what a single operator JWT implies (see the module docstring)."""
    fields.update(implied_options(fields.get("operators", ()), fields.get("system_account", ""),
                                  "resolver" in fields))


# -- helpers -------------------------------------------------------------------------------

def _string_list(value: Node) -> tuple[str, ...] | None:
    if isinstance(value.value, str):
        return (value.value,)
    if isinstance(value.value, list) and all(isinstance(item.value, str)
                                             for item in value.value):
        return tuple(str(item.value) for item in value.value)
    return None


def _strings_or_error(value: Node, key: str, problems: Problems) -> tuple[str, ...] | None:
    if isinstance(value.value, list):
        bad = [item for item in value.value if not isinstance(item.value, str)]
        for item in bad:
            problems.error(item, f"error parsing {key}: unsupported type in array "
                                 f"{go_type(item.value)}")
        return tuple(str(item.value) for item in value.value if item not in bad)
    if isinstance(value.value, str):
        return (value.value,)
    problems.error(value, f"error parsing {key}: unsupported type {go_type(value.value)}")
    return None


def _map(value: Node) -> dict[str, Node]:
    assert isinstance(value.value, dict)
    return value.value


__all__ = ["apply_implied", "operators", "pinned_accounts", "resolver", "resolver_preload",
           "trusted_keys"]
