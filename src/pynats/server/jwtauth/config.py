"""Operator mode in the configuration: reading operator JWTs and resolvers, start-up checks.

Theory of operation
-------------------
Two stages, as in nats-server:

* while the file is mapped onto options (``load.py``, located errors, also under
  ``-t``): :func:`read_operator_jwt` reads each ``operator`` entry, a file (possibly
  decorated like a ``.creds`` file) or, when no such file exists and the text starts
  like a JWT, the JWT itself, and decodes it (``error parsing operator JWT: ...``);
  :func:`resolver_kind` normalizes ``resolver`` (``MEMORY``, ``URL(...)``, a directory
  resolver); preloaded account JWTs must decode;
* before the server starts (``validate``, no position, not under ``-t``):
  :func:`check_trusted_operators` applies ``validateTrustedOperators`` (no configured
  accounts or users, no ``trusted_keys`` beside operators, the same system account as
  the operator JWT, the server version the operators ask for...), then
  :func:`check_resolution` what ``NewServer`` checks: preloads need a memory
  resolver, and the system account must resolve (``error resolving system account:
  account missing``).

pynats implements the ``MEMORY`` resolver only: a URL or directory resolver is refused
at start-up (nats-server's own message when it would fail the same way, else one that
says so).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from pynats import SERVER_VERSION, nkeys
from pynats.errors import ConfigError
from pynats.nkeys import Prefix
from pynats.server.config.options import ServerOptions
from pynats.server.gotext import go_os_error, go_quote
from pynats.server.jwtauth.claims import JwtError, OperatorClaims, decode_operator
from pynats.server.jwtauth.notes import Notes
from pynats.server.jwtauth.resolver import Directory, LookupFailed, MemoryResolver, Trust

#: The normalized ``resolver`` of the memory resolver.
MEMORY: Final = "MEMORY"
#: nats-server's message for a ``resolver`` string it does not understand.
BAD_RESOLVER: Final = ("error parsing account resolver, should be MEM or  URL(\"url\") or a "
                       "map containing dir and type state=[FULL|CACHE])")
#: Every JWT starts so (base64 of ``{"``): an ``operator`` that is not a file may be one.
JWT_PREFIX: Final = "eyJ"

_MEMORY_RE = re.compile(r"(?i)(MEM|MEMORY)\s*")
_URL_RE = re.compile(r"(?i)(?:URL)(?:\(\s*\"?([^\s\"]*)\"?\s*\))?\s*")
_DECORATED = re.compile(r"\s*(?:(?:-{3,}.*-{3,}\r?\n)([\w\-.=]+)(?:\r?\n-{3,}.*-{3,}(\r?\n|\Z)))",
                        re.ASCII)


# -- while loading ----------------------------------------------------------------------

def read_operator_jwt(entry: str) -> str:
    """The operator JWT an ``operator`` entry names (a path, or the JWT itself).

    Raises:
        ValueError: nats-server's reason (``open x.jwt: no such file or directory``,
            ``not operator claim``...).
    """
    try:
        contents = Path(entry).read_bytes()
    except OSError as exc:
        if not entry.startswith(JWT_PREFIX):
            op = "read" if isinstance(exc, IsADirectoryError) else "open"
            raise ValueError(go_os_error(op, entry, exc)) from None
        contents = entry.encode()
    token = parse_decorated_jwt(contents.decode("utf-8", "replace"))
    try:
        decode_operator(token)
    except JwtError as exc:
        raise ValueError(str(exc)) from None
    return token


def parse_decorated_jwt(contents: str) -> str:
    """The first JWT between dashed lines, else the whole text (``ParseDecoratedJWT``)."""
    match = _DECORATED.search(contents)
    return match.group(1) if match else contents


def resolver_kind(text: str) -> str | None:
    """A ``resolver`` string normalized: ``MEMORY``, ``URL(<url>)``; None if neither.

    As nats-server, ``MEM``/``MEMORY`` anywhere in the text (any case) wins.
    """
    if _MEMORY_RE.search(text):
        return MEMORY
    match = _URL_RE.search(text)
    if match is None:
        return None
    return f"URL({(match.group(1) or '').strip()})"


def resolver_url(kind: str) -> str | None:
    """The URL of a ``URL(...)`` resolver, else None."""
    return kind[4:-1] if kind.startswith("URL(") else None


def operator_claims(options: ServerOptions) -> tuple[OperatorClaims, ...]:
    """The decoded operator JWTs (already checked when the file was loaded)."""
    return tuple(decode_operator(token) for token in options.operators)


def implied_options(operators: tuple[str, ...], system_account: str,
                    resolver_given: bool) -> dict[str, str]:
    """What a single operator JWT supplies: its system account and account server.

    The file's own ``system_account`` and ``resolver`` take precedence.
    """
    if len(operators) != 1:
        return {}
    claims = decode_operator(operators[0])
    implied = {}
    if not system_account and claims.system_account:
        implied["system_account"] = claims.system_account
    if not resolver_given:
        implied["resolver"] = f"URL({claims.account_server_url}/accounts)"
    return implied


# -- before starting ------------------------------------------------------------------

def check_trusted_operators(options: ServerOptions) -> None:
    """nats-server's ``validateTrustedOperators`` (part of ``validateOptions``).

    Raises:
        ConfigError: with nats-server's message.
    """
    if options.operators:
        _check_trusted_operators(options, operator_claims(options))


def check_resolution(options: ServerOptions) -> None:
    """What ``NewServer`` checks next: the resolver, then the system account.

    Raises:
        ConfigError: with nats-server's message.
    """
    if not options.operator_mode:
        return
    _check_resolver(options)
    if options.system_account and not options.no_system_account:
        try:
            directory(options).fetch(options.system_account, Notes())
        except LookupFailed as exc:
            raise ConfigError(f"error resolving system account: {exc}") from None


def directory(options: ServerOptions) -> Directory:
    """The account directory these options describe (trust and memory resolver)."""
    trust = Trust.build(operator_claims(options), options.trusted_keys)
    return Directory(trust, MemoryResolver(options.resolver_preload))


def _check_trusted_operators(options: ServerOptions, ops: tuple[OperatorClaims, ...]) -> None:
    if options.accounts:
        raise ConfigError("operators do not allow Accounts to be configured directly")
    if options.authorization.users:
        raise ConfigError("operators do not allow users to be configured directly")
    if options.trusted_keys:
        raise ConfigError("conflicting options for 'TrustedKeys' and 'TrustedOperators'")
    _check_system_account(options, ops)
    for op in ops:
        _check_version(op)
    for key in sorted(Trust.build(ops).keys):
        if not nkeys.is_valid_public_key(key, Prefix.OPERATOR):
            raise ConfigError(f"trusted Keys {go_quote(key)} are required to be a valid "
                              "public operator nkey")
    for key in options.resolver_pinned_accounts:
        if not nkeys.is_valid_public_key(key, Prefix.ACCOUNT):
            raise ConfigError(f"pinned account key {go_quote(key)} is not a valid public "
                              "account nkey")


def _check_system_account(options: ServerOptions, ops: tuple[OperatorClaims, ...]) -> None:
    system = options.system_account
    if system:
        named = [op.system_account for op in ops if op.system_account]
        if named and system not in named:
            raise ConfigError("system_account in config and operator JWT must be identical")
    elif not ops[0].system_account and _is_directory(options.resolver):
        raise ConfigError("using nats based account resolver - the system account needs "
                          "to be specified in configuration or the operator jwt")


def _check_version(op: OperatorClaims) -> None:
    """``assert_server_version``: the operator needs at least this server version."""
    if not op.assert_server_version:
        return
    wanted = _version(op.assert_server_version)
    if wanted is None:
        raise ConfigError(f"operator {op.subject} expects version "
                          f"{op.assert_server_version} got error instead: "
                          "invalid version string")
    have = _version(SERVER_VERSION) or (0, 0, 0)
    for label, need, got in zip(("major", "minor", "update"), wanted, have, strict=True):
        if need > got:
            raise ConfigError(f"operator {op.subject} expected {label} version {need} > "
                              f"server {label} version {got}")
        if got > need:
            return


def _version(text: str) -> tuple[int, int, int] | None:
    match = re.fullmatch(r"v?([0-9]+)\.([0-9]+)\.([0-9]+)(?:-.*)?", text.strip())
    if match is None:
        return None
    major, minor, update = (int(part) for part in match.groups())
    return major, minor, update


def _check_resolver(options: ServerOptions) -> None:
    kind = options.resolver
    url = resolver_url(kind)
    if options.resolver_preload and url is not None:
        raise ConfigError("resolver preloads only available for writeable resolver types "
                          "MEM/DIR/CACHE_DIR")
    if url is not None:
        if "://" not in url:
            target = url if url.endswith("/") else url + "/"
            raise ConfigError(f"could not fetch <{go_quote(target)}>: Get {go_quote(target)}: "
                              'unsupported protocol scheme ""')
        raise ConfigError(f"the URL account resolver ({url}) is not supported by this "
                          "server, use resolver: MEMORY with resolver_preload")
    if _is_directory(kind):
        raise ConfigError("the nats based (directory) account resolver is not supported by "
                          "this server, use resolver: MEMORY with resolver_preload")


def _is_directory(kind: str) -> bool:
    return kind.startswith(("FULL(", "CACHE("))


__all__ = [
    "BAD_RESOLVER", "JWT_PREFIX", "MEMORY", "check_resolution", "check_trusted_operators",
    "directory",
    "implied_options", "operator_claims", "parse_decorated_jwt", "read_operator_jwt",
    "resolver_kind", "resolver_url",
]
