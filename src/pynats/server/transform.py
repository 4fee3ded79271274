"""Subject transforms of service imports: a local subject onto the exporter's subject.

Theory of operation
-------------------
A service import says: what this account's clients publish on ``to`` (the *local*
pattern) goes to the exporting account on ``subject`` (the *remote* one). nats-server
builds the mapping the other way round and reverses it, and its checks and error texts
follow from that; :func:`compile_import` reproduces both:

* Without wildcards in the remote subject every local match goes to that literal.
* When the two patterns are equal, the published subject is used as is.
* Otherwise the local pattern may number its wildcards (``$2``, ``{{wildcard(2)}}``) or
  leave them plain (``*``, numbered in order); the remote subject's ``*`` tokens are
  numbered in order too, and each takes the local token carrying its number. A trailing
  ``>`` is needed on both sides or neither, and every remote ``*`` must be used.

:class:`ImportTransform` is compiled once at configuration time; :meth:`apply` is a
split, a few list lookups and a join.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pynats.protocol.subjects import FWC, PWC, is_valid_subscription
from pynats.server.gotext import go_quote

_FUNCTION = re.compile(r"^\{\{\s*([A-Za-z]+)\s*\((.*)\)\s*\}\}$")
#: nats-server's mapping functions; only ``wildcard`` may be used by an import.
_FUNCTIONS = frozenset({"wildcard", "partition", "splitfromleft", "splitfromright",
                        "slicefromleft", "slicefromright", "right", "left", "split"})
_DESTINATION = "invalid mapping destination"


class TransformError(ValueError):
    """A service import whose subjects cannot be mapped (nats-server's message)."""


@dataclass(frozen=True, slots=True)
class ImportTransform:
    """How a literal local subject becomes the exporter's subject.

    Attributes:
        local: The local pattern to match (placeholders turned back into ``*``).
        remote: The exporter's subject (a literal when ``parts`` is empty).
        parts: Per remote token: the literal, or the index of the local token it takes.
        rest: The index of the local ``>`` (its tokens end the result), or -1.
        identity: The published subject is used unchanged.
    """

    local: bytes
    remote: bytes
    parts: tuple[bytes | int, ...] = ()
    rest: int = -1
    identity: bool = False

    def apply(self, subject: bytes) -> bytes:
        """The exporter's subject for ``subject`` (a match of :attr:`local`)."""
        if self.identity:
            return subject
        if not self.parts:
            return self.remote
        tokens = subject.split(b".")
        out = [part if isinstance(part, bytes) else tokens[part] for part in self.parts]
        if self.rest >= 0:
            out.extend(tokens[self.rest:])
        return b".".join(out)


def compile_import(local: str, remote: str) -> ImportTransform:
    """The transform of a service import from ``local`` (``to``) to ``remote``.

    Raises:
        TransformError: the subjects cannot be mapped, with nats-server's reason.
    """
    tokens = local.split(".")
    plain = ".".join("*" if _is_placeholder(t) else t for t in tokens).encode()
    if not is_valid_subscription(plain):
        raise TransformError("sublist: invalid subject")
    remote_b = remote.encode()
    if PWC not in remote_b.split(b".") and FWC not in remote_b.split(b"."):
        return ImportTransform(plain, remote_b)
    if local == remote:
        return ImportTransform(plain, remote_b, identity=True)
    try:
        parts, rest = _wire(tokens, _placeholders(tokens), remote.split("."))
    except TransformError as exc:
        raise TransformError(f"failed to create mapping transform for service import "
                             f"subject from {go_quote(local)} to {go_quote(remote)}: "
                             f"{exc}") from None
    return ImportTransform(plain, remote_b, parts, rest)


def _is_placeholder(token: str) -> bool:
    """``*``, ``$N`` or ``{{wildcard(N)}}``: a token that stands for a wildcard."""
    if token == "*" or (len(token) > 1 and token[0] == "$" and token[1:].isdigit()):
        return True
    found = _FUNCTION.match(token)
    return found is not None and found.group(1).lower() == "wildcard" and found.group(
        2).strip().isdigit()


def _placeholders(tokens: list[str]) -> list[int]:
    """Per local token, the remote wildcard it carries (0 for a literal or ``>``)."""
    numbers: list[int] = []
    ordinal = 0
    for token in tokens:
        if token == "*":
            ordinal += 1
            numbers.append(ordinal)
        else:
            numbers.append(_placeholder(token))
    return numbers


def _placeholder(token: str) -> int:
    """The wildcard number of ``$N`` or ``{{wildcard(N)}}``; 0 for anything else.

    Raises:
        TransformError: a mapping function other than ``wildcard``, or bad arguments.
    """
    if len(token) > 1 and token[0] == "$":
        return int(token[1:]) if token[1:].isdigit() else 0
    found = _FUNCTION.match(token) if token.startswith("{{") else None
    if found is None:
        return 0
    name, args = found.group(1).lower(), found.group(2).split(",")
    if name not in _FUNCTIONS:
        raise TransformError(f"{_DESTINATION}: unknown function in {token}")
    if name != "wildcard":
        raise TransformError(f"{_DESTINATION}: the only mapping function allowed for import "
                             f"transforms is {{{{Wildcard()}}}} in {token}")
    if args == [""]:
        raise TransformError(f"{_DESTINATION}: not enough arguments passed to the function "
                             f"in {token}")
    if len(args) > 1:
        raise TransformError(f"{_DESTINATION}: too many arguments passed to the function "
                             f"in {token}")
    if not args[0].strip().isdigit():
        raise TransformError(f"{_DESTINATION}: invalid argument in {token}")
    return int(args[0].strip())


def _wire(tokens: list[str], numbers: list[int],
          remote: list[str]) -> tuple[tuple[bytes | int, ...], int]:
    """Which local token fills each remote token, checked as nats-server checks it."""
    local_fwc = tokens[-1] == ">"
    if local_fwc != (remote[-1] == ">"):
        raise TransformError("invalid subject")
    wildcards = sum(1 for token in remote if token == "*")
    shown = [f"${n}" if t == "*" else t for t, n in zip(tokens, numbers, strict=True)]
    for token, number in zip(shown, numbers, strict=True):
        if number > wildcards:
            label = f"{token}: [{number}]"
            raise TransformError(f"{_DESTINATION}: wildcard index out of range in {label}")
    if sum(1 for n in numbers if n) < wildcards or not set(range(1, wildcards + 1)) <= set(
            numbers):
        raise TransformError(f"{_DESTINATION}: not using all of the token wildcard(s) in "
                             f"{'.'.join(shown)}")
    position = {n: i for i, n in reversed(list(enumerate(numbers))) if n}
    parts: list[bytes | int] = []
    ordinal = 0
    for token in remote:
        if token == ">":
            break
        if token == "*":
            ordinal += 1
            parts.append(position[ordinal])
        else:
            parts.append(token.encode())
    return tuple(parts), len(tokens) - 1 if local_fwc else -1


__all__ = ["ImportTransform", "TransformError", "compile_import"]
