"""The NATS text-protocol parser: feed it bytes, iterate the operations out.

Theory of operation
-------------------
``Parser.feed(data)`` is a generator over the complete operations in ``data`` plus
whatever an earlier call left unfinished. It is lazy on purpose: the consumer handles
each operation before the next is parsed, so state that an operation changes (a
``CONNECT`` turning headers on, a closed connection) is in force for the very next one,
as in nats-server's byte-at-a-time parser, while we still pay Python's per-call cost
once per operation, not once per byte.

The parser has two states, found from what it keeps between calls:

* awaiting a control line (``_need == 0``): the unfinished bytes are searched for
  ``\\n``. While the line is incomplete its first bytes are checked against the verb
  table at once, so a wrong verb is refused as soon as it arrives (``XYZ`` with no
  newline gets ``-ERR`` immediately, as from nats-server), and the line's length is
  checked against ``max_control_line``. Tails that nats-server ignores (after
  ``PING``, ``PONG``, ``+OK``) are dropped rather than buffered.
* awaiting a payload (``_need > 0``): the control line is complete and announced a size;
  arriving chunks are only collected in a list until ``_need`` bytes are there, so a
  large payload split over many reads costs one join, not a copy per read. The control
  line is then parsed again, which is cheap next to the payload.

A complete operation costs one ``find``, one ``split`` of its arguments and one slice of
its payload; the common upper-case ``PUB`` takes a fast path before the verb table.
The verb table is fixed by the :class:`Role` at construction and never consulted per
byte. Errors are :class:`~pynats.protocol.errors.ProtocolError` subclasses raised from
the generator after every operation before the bad bytes has been yielded.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterator
from typing import Any, Final

from pynats.protocol import ops
from pynats.protocol.errors import (
    MalformedArguments,
    MaxControlLineExceeded,
    MaxPayloadExceeded,
    PeerError,
    ProtocolError,
    UnknownOperation,
)

CRLF: Final = b"\r\n"
_WS: Final = (32, 9)  # space, tab: what must follow a verb that takes arguments
_HEAD: Final = 8  # enough bytes to classify any verb


class Role(enum.Enum):
    """Which side's operations the parser accepts."""

    #: The server parsing what a client sends.
    SERVER = "server"
    #: A client parsing what a server sends.
    CLIENT = "client"


class _Kind(enum.Enum):
    ARGS = 1  # verb, whitespace, arguments (PUB, SUB, MSG, ...)
    JSON = 2  # verb then a JSON object (CONNECT, INFO)
    BARE = 3  # verb, anything up to the newline is ignored (PING, PONG, +OK)
    TEXT = 4  # verb then free text (-ERR)


_VERBS: Final[dict[Role, tuple[tuple[bytes, _Kind], ...]]] = {
    Role.SERVER: (
        (b"PUB", _Kind.ARGS),
        (b"HPUB", _Kind.ARGS),
        (b"SUB", _Kind.ARGS),
        (b"UNSUB", _Kind.ARGS),
        (b"PING", _Kind.BARE),
        (b"PONG", _Kind.BARE),
        (b"CONNECT", _Kind.JSON),
        (b"INFO", _Kind.JSON),
        (b"+OK", _Kind.BARE),
        (b"-ERR", _Kind.TEXT),
    ),
    Role.CLIENT: (
        (b"MSG", _Kind.ARGS),
        (b"HMSG", _Kind.ARGS),
        (b"PING", _Kind.BARE),
        (b"PONG", _Kind.BARE),
        (b"INFO", _Kind.JSON),
        (b"+OK", _Kind.BARE),
        (b"-ERR", _Kind.TEXT),
    ),
}

_INCOMPLETE: Final = (b"", _Kind.BARE)


def _classify(
    head: bytes, verbs: tuple[tuple[bytes, _Kind], ...], complete: bool
) -> tuple[bytes, _Kind]:
    """Find the verb that ``head`` (upper-cased line start) begins with.

    Returns the verb and its kind, or ``_INCOMPLETE`` when ``head`` is a partial line
    that could still become a valid verb. Raises UnknownOperation otherwise.
    """
    could_be = False
    for verb, kind in verbs:
        if head.startswith(verb):
            if kind is not _Kind.ARGS:
                return verb, kind
            if len(head) > len(verb):
                if head[len(verb)] in _WS:
                    return verb, kind
            elif not complete:
                could_be = True
        elif not complete and verb.startswith(head):
            could_be = True
    if could_be:
        return _INCOMPLETE
    raise UnknownOperation(f"unknown protocol operation: {head[:_HEAD]!r}")


def _size(field: bytes) -> int:
    """A decimal size field; nats-server accepts digits only (no sign, no ``_``)."""
    if not field.isdigit() or not field.isascii():
        raise MalformedArguments(f"invalid size: {field!r}")
    return int(field)


def _json_object(rest: bytes, verb: bytes) -> dict[str, Any]:
    try:
        value = json.loads(rest)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise MalformedArguments(f"invalid {verb.decode()} JSON: {rest[:64]!r}")
    return value


class Parser:
    """Incremental parser for one side of a NATS connection.

    Args:
        role: whose operations to accept (the server parses client operations).
        max_control_line: longest argument part of a control line; 0 for no limit.
        max_payload: largest message (headers included); 0 for no limit.
    """

    def __init__(self, role: Role, max_control_line: int = 0, max_payload: int = 0):
        self.role = role
        self.max_control_line = max_control_line
        self.max_payload = max_payload
        self._verbs = _VERBS[role]
        self._parts: list[bytes] = []
        self._have = 0
        self._need = 0
        args: dict[bytes, Callable[[list[bytes]], tuple[Any, ...]]]
        if role is Role.SERVER:
            args = {b"PUB": self._pub_args, b"HPUB": self._hpub_args,
                    b"SUB": _sub, b"UNSUB": _unsub}
        else:
            args = {b"MSG": self._msg_args, b"HMSG": self._hmsg_args}
        self._args = args

    @property
    def buffered(self) -> int:
        """Bytes held over from earlier calls (an unfinished operation)."""
        return self._have

    def feed(self, data: bytes) -> Iterator[ops.Op]:
        """Yield every operation completed by ``data``.

        Raises:
            ProtocolError: after yielding the operations before the offending bytes.
        """
        if self._parts:
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                return
            buf = b"".join(self._parts)
            self._parts.clear()
            self._have = self._need = 0
        else:
            buf = data
        yield from self._parse(buf)

    def _keep(self, buf: bytes, pos: int, need: int) -> None:
        rest = buf[pos:]
        self._parts.append(rest)
        self._have = len(rest)
        self._need = need

    def _parse(self, buf: bytes) -> Iterator[ops.Op]:  # noqa: C901 - the one hot loop
        n = len(buf)
        pos = 0
        mcl = self.max_control_line
        while pos < n:
            eol = buf.find(b"\n", pos)
            if eol < 0:
                self._partial_line(buf, pos)
                return
            if buf.startswith(b"PUB ", pos) and self.role is Role.SERVER:
                verb, kind, start = b"PUB", _Kind.ARGS, pos + 4
            else:
                verb, kind = _classify(buf[pos : pos + _HEAD].upper(), self._verbs, True)
                start = pos + len(verb)
            end = eol - 1 if buf[eol - 1] == 13 else eol  # drop an optional \r
            if kind is _Kind.BARE:
                yield _BARE[verb]
                pos = eol + 1
                continue
            arg = buf[start:end]
            if mcl and len(arg) > mcl:
                raise MaxControlLineExceeded(len(arg), mcl)
            if kind is _Kind.ARGS:
                fields = arg.split()
                if verb in _PAYLOAD_VERBS:
                    head, hsize, size = self._args[verb](fields)
                    first = eol + 1
                    last = first + size
                    if last + 2 > n:
                        self._keep(buf, pos, last + 2 - pos)
                        return
                    if buf[last : last + 2] != CRLF:
                        raise UnknownOperation("payload not followed by CRLF")
                    yield _build(verb, head, buf, first, hsize, last)
                    pos = last + 2
                    continue
                yield self._args[verb](fields)  # type: ignore[misc]
            elif kind is _Kind.JSON:
                obj = _json_object(arg.strip(), verb)
                yield ops.Connect(obj) if verb == b"CONNECT" else ops.Info(obj)
            else:
                yield self._error(arg)
            pos = eol + 1

    def _partial_line(self, buf: bytes, pos: int) -> None:
        """Check an unfinished control line now, then keep it for the next call."""
        verb, kind = _classify(buf[pos : pos + _HEAD].upper(), self._verbs, False)
        if kind is _Kind.BARE and verb:
            self._keep(buf[: pos + len(verb)], pos, 0)  # the ignored tail is dropped
            return
        length = len(buf) - pos - len(verb)
        if self.max_control_line and verb and length > self.max_control_line:
            raise MaxControlLineExceeded(length, self.max_control_line)
        self._keep(buf, pos, 0)

    def _error(self, arg: bytes) -> ops.Err:
        text = arg.strip().decode("utf-8", "replace").strip("'")
        if self.role is Role.SERVER:
            raise PeerError(text)
        return ops.Err(text)

    # -- argument parsers for verbs followed by a payload ------------------------------
    # Each returns (fields for the record, header size, total size).

    def _check_payload(self, size: int) -> None:
        if self.max_payload and size > self.max_payload:
            raise MaxPayloadExceeded(size, self.max_payload)

    def _pub_args(self, f: list[bytes]) -> tuple[tuple[bytes, ...], int, int]:
        if len(f) == 2:
            size = _size(f[1])
            head: tuple[bytes, ...] = (f[0], b"")
        elif len(f) == 3:
            size = _size(f[2])
            head = (f[0], f[1])
        else:
            raise MalformedArguments(f"PUB takes 2 or 3 arguments, got {len(f)}")
        self._check_payload(size)
        return head, -1, size

    def _hpub_args(self, f: list[bytes]) -> tuple[tuple[bytes, ...], int, int]:
        if len(f) not in (3, 4):
            raise MalformedArguments(f"HPUB takes 3 or 4 arguments, got {len(f)}")
        hsize, size = _size(f[-2]), _size(f[-1])
        if hsize > size:
            raise MalformedArguments("HPUB header size larger than total size")
        self._check_payload(size)
        return (f[0], f[1] if len(f) == 4 else b""), hsize, size

    def _msg_args(self, f: list[bytes]) -> tuple[tuple[bytes, ...], int, int]:
        if len(f) == 3:
            return (f[0], f[1], b""), -1, _size(f[2])
        if len(f) == 4:
            return (f[0], f[1], f[2]), -1, _size(f[3])
        raise MalformedArguments(f"MSG takes 3 or 4 arguments, got {len(f)}")

    def _hmsg_args(self, f: list[bytes]) -> tuple[tuple[bytes, ...], int, int]:
        if len(f) not in (4, 5):
            raise MalformedArguments(f"HMSG takes 4 or 5 arguments, got {len(f)}")
        hsize, size = _size(f[-2]), _size(f[-1])
        if hsize > size:
            raise MalformedArguments("HMSG header size larger than total size")
        return (f[0], f[1], f[2] if len(f) == 5 else b""), hsize, size


_BARE: Final[dict[bytes, ops.Op]] = {b"PING": ops.PING, b"PONG": ops.PONG, b"+OK": ops.OK}
_PAYLOAD_VERBS: Final = frozenset((b"PUB", b"HPUB", b"MSG", b"HMSG"))


def _build(verb: bytes, head: tuple[bytes, ...], buf: bytes, first: int, hsize: int,
           last: int) -> ops.Op:
    """The record for a payload-carrying verb once its payload is in ``buf``."""
    if verb == b"PUB":
        return ops.Pub(head[0], head[1], buf[first:last])
    if verb == b"MSG":
        return ops.Msg(head[0], head[1], head[2], buf[first:last])
    split = first + hsize
    if verb == b"HPUB":
        return ops.HPub(head[0], head[1], buf[first:split], buf[split:last])
    return ops.HMsg(head[0], head[1], head[2], buf[first:split], buf[split:last])


def _sub(f: list[bytes]) -> ops.Sub:
    if len(f) == 2:
        return ops.Sub(f[0], b"", f[1])
    if len(f) == 3:
        return ops.Sub(f[0], f[1], f[2])
    raise MalformedArguments(f"SUB takes 2 or 3 arguments, got {len(f)}")


def _unsub(f: list[bytes]) -> ops.Unsub:
    if len(f) == 1:
        return ops.Unsub(f[0], None)
    if len(f) == 2:
        # nats-server ignores a max it cannot parse (the UNSUB then removes at once).
        return ops.Unsub(f[0], int(f[1]) if f[1].isdigit() and f[1].isascii() else None)
    raise MalformedArguments(f"UNSUB takes 1 or 2 arguments, got {len(f)}")


__all__ = ["CRLF", "Parser", "ProtocolError", "Role"]
