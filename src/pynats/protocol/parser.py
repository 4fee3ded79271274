"""The NATS text-protocol parser: feed it bytes, it hands operations to a sink.

Theory of operation
-------------------
``Parser.parse(data, sink)`` finds every operation completed by ``data`` (plus whatever
an earlier call left unfinished) and calls the sink for each one, in order, before
parsing the next. So state that an operation changes (a ``CONNECT`` turning headers
on, a connection being closed) is in force for the very next one, as in nats-server's
byte-at-a-time parser, while Python's per-call cost is paid once per operation, not
once per byte. The sink may call :meth:`Parser.stop` to discard the rest of the input.

Messages take the hot path: ``PUB`` (server role) and ``MSG`` (client role) are
delivered as plain arguments, with no record built, and ``PUB`` comes with its payload
*framed*: ``<size>\r\n<payload>\r\n``, exactly the bytes that follow
``MSG <subject> <sid> `` on the wire. When the client wrote the control line
canonically (``\r\n``, no leading zeros) that is one slice of the input; otherwise it
is rebuilt. Each role has its own loop with its message verb inlined (upper-case
``PUB `` / ``MSG `` only; any other spelling takes the generic path, with the same
result), and a control line byte-identical to the previous one of the same buffer is
not parsed again: a stream to one subject, or one subscription, costs a ``startswith``
per message. Everything else arrives as a typed record from :mod:`pynats.protocol.ops`.
:meth:`Parser.feed` wraps all this for callers that just want a list of records.

The parser has two states, found from what it keeps between calls:

* awaiting a control line (``_need == 0``): the unfinished bytes are searched for
  ``\n``. While the line is incomplete its first bytes are checked against the verb
  table at once, so a wrong verb is refused as soon as it arrives (``XYZ`` with no
  newline gets ``-ERR`` immediately, as from nats-server), and the line's length is
  checked against ``max_control_line``. Tails that nats-server ignores (after
  ``PING``, ``PONG``, ``+OK``) are dropped rather than buffered.
* awaiting a payload (``_need > 0``): the control line is complete and announced a size;
  arriving chunks are only collected in a list until ``_need`` bytes are there, so a
  large payload split over many reads costs one join, not a copy per read. The control
  line is then parsed again, which is cheap next to the payload.

Routes (:attr:`Role.ROUTE`, CLUSTER.md sections 5 and 6) have their own loop with
``RMSG`` inlined: consecutive routed messages to one account, subject and reply with no
queue names come to the sink as one run, framed like ``PUB``'s, so a routed stream fans
out to local subscribers at the same cost as a local one. ``HMSG`` (and ``LMSG``, whose
origin is dropped) take the generic path. Route interest (``RS+``/``RS-``, and
``LS+``/``LS-`` with the origin dropped) arrives as records.

The verb table is fixed by the :class:`Role` at construction. Errors are
:class:`~pynats.protocol.errors.ProtocolError` subclasses, raised after every operation
before the bad bytes has been handed to the sink.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from typing import Any, Final, Protocol, cast

from pynats.protocol import ops
from pynats.protocol.errors import (
    HeadersNotSupported,
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
    #: A server parsing what a peer server sends on a route.
    ROUTE = "route"


# Verb kinds. Plain ints, not an Enum: enum member access is slow on the hot path.
_ARGS: Final = 1  # verb, whitespace, arguments (PUB, SUB, MSG, ...)
_JSON: Final = 2  # verb then a JSON object (CONNECT, INFO)
_BARE: Final = 3  # verb, anything up to the newline is ignored (PING, PONG, +OK)
_TEXT: Final = 4  # verb, whitespace, free text (-ERR)


_VERBS: Final[dict[Role, tuple[tuple[bytes, int], ...]]] = {
    Role.SERVER: (
        (b"PUB", _ARGS),
        (b"HPUB", _ARGS),
        (b"SUB", _ARGS),
        (b"UNSUB", _ARGS),
        (b"PING", _BARE),
        (b"PONG", _BARE),
        (b"CONNECT", _JSON),
        (b"INFO", _JSON),
        (b"+OK", _BARE),
        (b"-ERR", _TEXT),
    ),
    Role.CLIENT: (
        (b"MSG", _ARGS),
        (b"HMSG", _ARGS),
        (b"PING", _BARE),
        (b"PONG", _BARE),
        (b"INFO", _JSON),
        (b"+OK", _BARE),
        (b"-ERR", _TEXT),
    ),
    Role.ROUTE: (
        (b"RMSG", _ARGS),
        (b"HMSG", _ARGS),
        (b"RS+", _ARGS),
        (b"RS-", _ARGS),
        (b"LS+", _ARGS),
        (b"LS-", _ARGS),
        (b"LMSG", _ARGS),
        (b"A+", _ARGS),
        (b"A-", _ARGS),
        (b"PING", _BARE),
        (b"PONG", _BARE),
        (b"CONNECT", _JSON),
        (b"INFO", _JSON),
        (b"+OK", _BARE),
        (b"-ERR", _TEXT),
    ),
}

_INCOMPLETE: Final = (b"", _BARE)


def _classify(
    head: bytes, verbs: tuple[tuple[bytes, int], ...], complete: bool
) -> tuple[bytes, int]:
    """Find the verb that ``head`` (upper-cased line start) begins with.

    Returns the verb and its kind, or ``_INCOMPLETE`` when ``head`` is a partial line
    that could still become a valid verb. Raises UnknownOperation otherwise.
    """
    could_be = False
    for verb, kind in verbs:
        if head.startswith(verb):
            if kind not in (_ARGS, _TEXT):
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


def _fields(arg: bytes) -> list[bytes]:
    """Split arguments on runs of spaces and tabs, as nats-server does.

    ``bytes.split()`` is the fast way, but it also splits on vertical tab and form feed,
    which nats-server keeps inside a subject; those rare lines take the exact way.
    """
    if 11 in arg or 12 in arg:  # VT, FF; an int test is ten times faster than b"\x0b"
        return [f for f in arg.replace(b"\t", b" ").split(b" ") if f]
    return arg.split()


#: nats-server parses at most 9 digits of a size (``parseSize``); longer is malformed.
MAX_SIZE_DIGITS: Final = 9


def _size(field: bytes) -> int:
    """A decimal size field; nats-server accepts 1 to 9 ASCII digits, nothing else."""
    if not field.isdigit() or len(field) > MAX_SIZE_DIGITS:  # bytes.isdigit is ASCII-only
        raise MalformedArguments(f"invalid size: {field!r}")
    return int(field)


def _json_object(rest: bytes, verb: bytes) -> dict[str, Any]:
    try:
        value = json.loads(rest)
    except ValueError:
        value = False
    if value is None:  # Go decodes JSON null into the options as "no change"
        value = {}
    if not isinstance(value, dict):
        raise MalformedArguments(f"invalid {verb.decode()} JSON: {rest[:64]!r}")
    return value


class Sink(Protocol):
    """Receives what the parser finds. A role calls only the methods it needs."""

    def on_pub(self, subject: bytes, reply: bytes, framed: list[bytes], nbytes: int) -> None:
        """Consecutive ``PUB``s to one subject and reply, in order.

        Each item of ``framed`` is ``<size>\\r\\n<payload>\\r\\n``; ``nbytes`` is the sum
        of the payload sizes.
        """

    def on_hpub(self, subject: bytes, reply: bytes, headers: bytes, payload: bytes,
                hframed: bytes) -> None:
        """``HPUB``; ``hframed`` is ``<hdr size> <total>\\r\\n<headers><payload>\\r\\n``."""

    def on_msg(self, subject: bytes, sid: bytes, reply: bytes, payload: bytes) -> None:
        """``MSG``."""

    def on_hmsg(self, subject: bytes, sid: bytes, reply: bytes, headers: bytes,
                payload: bytes) -> None:
        """``HMSG``."""

    def on_op(self, op: ops.Op) -> None:
        """Any other operation."""


class RouteSink(Protocol):
    """Receives what the parser finds in the route role."""

    def on_rmsg(self, account: bytes, subject: bytes, reply: bytes, queues: tuple[bytes, ...],
                framed: list[bytes], nbytes: int) -> None:
        """Consecutive ``RMSG``s; ``framed`` and ``nbytes`` as for ``Sink.on_pub``.

        A run has more than one message only when ``queues`` is empty.
        """

    def on_rhmsg(self, account: bytes, subject: bytes, reply: bytes, queues: tuple[bytes, ...],
                 headers: bytes, payload: bytes, hframed: bytes) -> None:
        """A routed ``HMSG`` (or ``LMSG``); ``hframed`` as for ``Sink.on_hpub``."""

    def on_op(self, op: ops.Op) -> None:
        """Any other operation."""


class RecordSink:
    """A sink that turns everything into :mod:`~pynats.protocol.ops` records."""

    def __init__(self) -> None:
        self.ops: list[ops.Op] = []

    def on_pub(self, subject: bytes, reply: bytes, framed: list[bytes], nbytes: int) -> None:
        for one in framed:
            self.ops.append(ops.Pub(subject, reply, framed_payload(one)))

    def on_hpub(self, subject: bytes, reply: bytes, headers: bytes, payload: bytes,
                hframed: bytes) -> None:
        self.ops.append(ops.HPub(subject, reply, headers, payload))

    def on_msg(self, subject: bytes, sid: bytes, reply: bytes, payload: bytes) -> None:
        self.ops.append(ops.Msg(subject, sid, reply, payload))

    def on_hmsg(self, subject: bytes, sid: bytes, reply: bytes, headers: bytes,
                payload: bytes) -> None:
        self.ops.append(ops.HMsg(subject, sid, reply, headers, payload))

    def on_rmsg(self, account: bytes, subject: bytes, reply: bytes, queues: tuple[bytes, ...],
                framed: list[bytes], nbytes: int) -> None:
        for one in framed:
            self.ops.append(ops.RMsg(account, subject, reply, queues, None, framed_payload(one)))

    def on_rhmsg(self, account: bytes, subject: bytes, reply: bytes, queues: tuple[bytes, ...],
                 headers: bytes, payload: bytes, hframed: bytes) -> None:
        self.ops.append(ops.RMsg(account, subject, reply, queues, headers, payload))

    def on_op(self, op: ops.Op) -> None:
        self.ops.append(op)


class Parser:
    """Incremental parser for one side of a NATS connection.

    Args:
        role: whose operations to accept (the server parses client operations).
        max_control_line: longest argument part of a control line; 0 for no limit.
        max_payload: largest message (headers included); 0 for no limit.
        headers: accept HPUB (a server starts with False until CONNECT says so).
    """

    def __init__(self, role: Role, max_control_line: int = 0, max_payload: int = 0,
                 headers: bool = True):
        self.role = role
        self.max_control_line = max_control_line
        self.max_payload = max_payload
        self._verbs = _VERBS[role]
        self._server = role is Role.SERVER
        self._route = role is Role.ROUTE
        self._parts: list[bytes] = []
        self._have = 0
        self._need = 0
        self._stopped = False
        #: Whether HPUB is accepted; a server's session sets it from CONNECT.
        self.headers = headers
        self._run_subject = self._run_reply = b""
        self._run_bytes = 0

    @property
    def buffered(self) -> int:
        """Bytes held over from earlier calls (an unfinished operation)."""
        return self._have

    def stop(self) -> None:
        """Discard the rest of the current input and everything fed later."""
        self._stopped = True

    def feed(self, data: bytes) -> list[ops.Op]:
        """Every operation completed by ``data``, as records.

        Raises:
            ProtocolError: the input breaks the protocol (operations before the bad
                bytes are lost with the list: use :meth:`parse` to act on them).
        """
        sink = RecordSink()
        self.parse(data, sink)
        return sink.ops

    def parse(self, data: bytes, sink: Sink | RouteSink) -> None:
        """Hand every operation completed by ``data`` to ``sink``, in order.

        Raises:
            ProtocolError: after every operation before the bad bytes was handled.
        """
        if self._stopped:
            return
        if self._parts:
            before = self._have
            self._parts.append(data)
            self._have += len(data)
            if self._have < self._need:
                cr = self._need - 2 - before  # where the \r after the payload falls in data
                if self._need and 0 <= cr < len(data) and data[cr] != 13:
                    raise UnknownOperation("payload not followed by CRLF")
                return
            data = b"".join(self._parts)
            self._parts.clear()
            self._have = self._need = 0
        if self._route:
            self._parse_route(data, cast(RouteSink, sink))
        elif self._server:
            self._parse(data, cast(Sink, sink))
        else:
            self._parse_client(data, cast(Sink, sink))

    def _keep(self, buf: bytes, pos: int, need: int) -> None:
        rest = buf[pos:]
        self._parts.append(rest)
        self._have = len(rest)
        self._need = need

    def _parse(self, buf: bytes, sink: Sink) -> None:
        run: list[bytes] = []  # framed payloads of consecutive PUBs to one subject/reply
        self._run_bytes = 0
        try:
            self._parse_into(buf, sink, run)
        finally:
            if run:  # a run is always handed over before anything after it, errors included
                sink.on_pub(self._run_subject, self._run_reply, run, self._run_bytes)

    def _parse_into(self, buf: bytes, sink: Sink, run: list[bytes]) -> None:
        n = len(buf)
        pos = 0
        fast = self._server
        mcl = self.max_control_line
        max_payload = self.max_payload
        line = b""  # the last PUB control line (with its \n) and what it said
        line_size = framed_at = 0
        line_field = b""
        while pos < n:
            if line and buf.startswith(line, pos):
                # The same control line as the last PUB: same subject, reply and size.
                first = pos + len(line)
                last = first + line_size
                if last + 2 > n:
                    self._await_payload(buf, pos, last)
                    return
                if buf[last] != 13 or buf[last + 1] != 10:
                    raise UnknownOperation("payload not followed by CRLF")
                if framed_at:
                    run.append(buf[pos + framed_at : last + 2])
                else:
                    run.append(line_field + b"\r\n" + buf[first : last + 2])
                self._run_bytes += line_size
                pos = last + 2
                continue
            eol = buf.find(b"\n", pos)
            if eol < 0:
                self._partial_line(buf, pos)
                return
            end = eol - 1 if buf[eol - 1] == 13 else eol  # drop an optional \r
            if fast and buf.startswith(b"PUB ", pos):
                # The hot path, inlined: an upper-case PUB.
                if mcl and end - pos - 4 > mcl:
                    raise MaxControlLineExceeded(end - pos - 4, mcl)
                fields = _fields(buf[pos + 4 : end])
                nfields = len(fields)
                if nfields == 2:
                    subject, size_field = fields
                    reply = b""
                elif nfields == 3:
                    subject, reply, size_field = fields
                else:
                    raise MalformedArguments(f"PUB takes 2 or 3 arguments, got {nfields}")
                size = _size(size_field)
                if max_payload and size > max_payload:
                    raise MaxPayloadExceeded(size, max_payload)
                last = eol + 1 + size
                if last + 2 > n:
                    self._await_payload(buf, pos, last)
                    return
                if buf[last] != 13 or buf[last + 1] != 10:
                    raise UnknownOperation("payload not followed by CRLF")
                # nats-server echoes the size field verbatim. When it ends the line
                # right before \r\n, the framed payload is one slice of the input.
                framed_at = end - len(size_field) - pos if end != eol and buf[end - 1] > 32 else 0
                line_field = size_field
                if run and (subject != self._run_subject or reply != self._run_reply):
                    sink.on_pub(self._run_subject, self._run_reply, run[:], self._run_bytes)
                    run.clear()
                    self._run_bytes = 0
                self._run_subject = subject
                self._run_reply = reply
                line = buf[pos : eol + 1]
                line_size = size
                continue  # the repeated-line branch above takes the payload
            if run:
                sink.on_pub(self._run_subject, self._run_reply, run[:], self._run_bytes)
                run.clear()
                self._run_bytes = 0
            pos = self._control_op(buf, pos, eol, end, sink)
            if pos < 0:
                return

    def _parse_client(self, buf: bytes, sink: Sink) -> None:
        """The client role's loop: ``MSG`` inlined, everything else through ``_control_op``.

        A canonical ``MSG `` line is split and checked here and the payload handed to
        ``sink.on_msg`` as a slice of ``buf``. A line byte-identical to the previous MSG
        line of this buffer (same subject, sid, reply and size: a stream to one
        subscription) is not parsed again. Errors are the generic path's, in the same
        order: control line too long, wrong argument count, bad size, missing CRLF.
        """
        n = len(buf)
        pos = 0
        mcl = self.max_control_line
        on_msg = sink.on_msg
        line = b""  # the last MSG control line (with its \n) and what it said
        subject = sid = reply = b""
        size = 0
        while pos < n:
            if line and buf.startswith(line, pos):
                first = pos + len(line)
            else:
                eol = buf.find(b"\n", pos)
                if eol < 0:
                    self._partial_line(buf, pos)
                    return
                end = eol - 1 if buf[eol - 1] == 13 else eol  # drop an optional \r
                if not buf.startswith(b"MSG ", pos):
                    line = b""
                    pos = self._control_op(buf, pos, eol, end, sink)
                    if pos < 0:
                        return
                    continue
                if mcl and end - pos - 4 > mcl:
                    length = len(buf[pos + 4 : end].lstrip(b" \t"))
                    if length > mcl:
                        raise MaxControlLineExceeded(length, mcl)
                arg = buf[pos + 4 : end]
                # As _fields, but int needles: ``11 in arg`` is several times faster than
                # ``b"\x0b" in arg`` on CPython 3.11.
                fields = _fields(arg) if 11 in arg or 12 in arg else arg.split()
                nfields = len(fields)
                if nfields == 3:
                    subject, sid, size_field = fields
                    reply = b""
                elif nfields == 4:
                    subject, sid, reply, size_field = fields
                else:
                    raise MalformedArguments(f"MSG takes 3 or 4 arguments, got {nfields}")
                if not size_field.isdigit() or len(size_field) > MAX_SIZE_DIGITS:
                    raise MalformedArguments(f"invalid size: {size_field!r}")
                size = int(size_field)
                first = eol + 1
                line = buf[pos:first]
            last = first + size
            if last + 2 > n:
                self._await_payload(buf, pos, last)
                return
            if buf[last] != 13 or buf[last + 1] != 10:
                raise UnknownOperation("payload not followed by CRLF")
            on_msg(subject, sid, reply, buf[first:last])
            if self._stopped:
                return
            pos = last + 2

    def _parse_route(self, buf: bytes, sink: RouteSink) -> None:
        """The route role's loop: ``RMSG`` inlined and batched into runs.

        A run is handed over before any other operation, and before an error is raised,
        so order is kept as on the client loops. As on the client loop, a control line
        byte-identical to the previous plain ``RMSG`` line is not parsed again.
        """
        run: list[bytes] = []
        key: tuple[bytes, bytes, bytes] = (b"", b"", b"")
        nbytes = 0
        line = b""  # the last plain RMSG control line (with its \n), its size and framing
        line_size = framed_at = 0
        try:
            n = len(buf)
            pos = 0
            mcl = self.max_control_line
            while pos < n:
                if line and buf.startswith(line, pos):
                    first = pos + len(line)
                    last = first + line_size
                    if last + 2 > n:
                        self._await_payload(buf, pos, last)
                        return
                    if buf[last] != 13 or buf[last + 1] != 10:
                        raise UnknownOperation("payload not followed by CRLF")
                    run.append(buf[pos + framed_at : last + 2])
                    nbytes += line_size
                    pos = last + 2
                    continue
                eol = buf.find(b"\n", pos)
                if eol < 0:
                    self._partial_line(buf, pos)
                    return
                end = eol - 1 if buf[eol - 1] == 13 else eol
                if not buf.startswith(b"RMSG ", pos):
                    if run:
                        sink.on_rmsg(*key, (), run[:], nbytes)
                        run.clear()
                        nbytes = 0
                    pos = self._control_op(buf, pos, eol, end, sink)
                    if pos < 0:
                        return
                    continue
                if mcl and end - pos - 5 > mcl:
                    raise MaxControlLineExceeded(end - pos - 5, mcl)
                fields = _fields(buf[pos + 5 : end])
                (account, subject, reply, queues), _, size = _rmsg_args(fields)
                last = eol + 1 + size
                if last + 2 > n:
                    self._await_payload(buf, pos, last)
                    return
                if buf[last] != 13 or buf[last + 1] != 10:
                    raise UnknownOperation("payload not followed by CRLF")
                size_field = fields[-1]
                line = b""
                if end != eol and buf[end - 1] > 32:  # canonical: the size ends the line
                    framed = buf[end - len(size_field) : last + 2]
                    if not queues:
                        line, line_size = buf[pos : eol + 1], size
                        framed_at = end - len(size_field) - pos
                else:
                    framed = size_field + b"\r\n" + buf[eol + 1 : last + 2]
                pos = last + 2
                if run and (queues or key != (account, subject, reply)):
                    sink.on_rmsg(*key, (), run[:], nbytes)
                    run.clear()
                    nbytes = 0
                if queues:
                    sink.on_rmsg(account, subject, reply, queues, [framed], size)
                    if self._stopped:
                        return
                    continue
                key = (account, subject, reply)
                run.append(framed)
                nbytes += size
        finally:
            if run and not self._stopped:
                sink.on_rmsg(*key, (), run, nbytes)

    def _control_op(self, buf: bytes, pos: int, eol: int, end: int,
                    sink: Sink | RouteSink) -> int:
        """Handle one operation off the hot paths, both roles.

        The control line starts at ``pos`` and ends at ``eol`` (its ``\\n``); ``end`` is
        where it ends without an optional ``\\r``. Returns the next position, or -1 when
        parsing of this input stops (sink stopped the parser, or a payload is incomplete).
        """
        verb, kind = _classify(buf[pos : pos + _HEAD].upper(), self._verbs, True)
        if kind == _BARE:
            sink.on_op(_BARE_OPS[verb])
            return -1 if self._stopped else eol + 1
        arg = buf[pos + len(verb) : end].lstrip(b" \t")  # the limit counts what follows
        mcl = self.max_control_line
        if mcl and len(arg) > mcl:
            raise MaxControlLineExceeded(len(arg), mcl)
        if kind == _ARGS:
            if self._route and verb in _ROUTE_PAYLOAD_VERBS:
                pos = self._route_payload_op(verb, _fields(arg), buf, pos, eol,
                                             cast(RouteSink, sink))
                return -1 if pos < 0 or self._stopped else pos
            if verb in _PAYLOAD_VERBS:
                pos = self._payload_op(verb, _fields(arg), buf, pos, eol, cast(Sink, sink))
                return -1 if pos < 0 or self._stopped else pos
            sink.on_op(_ARG_OPS[verb](_fields(arg)))
        elif kind == _JSON:
            obj = _json_object(arg.strip(), verb)
            sink.on_op(ops.Connect(obj) if verb == b"CONNECT" else ops.Info(obj))
        else:
            sink.on_op(self._error(arg))
        return -1 if self._stopped else eol + 1

    def _payload_op(self, verb: bytes, f: list[bytes], buf: bytes, pos: int, eol: int,
                    sink: Sink) -> int:
        """HPUB, MSG, HMSG and non-canonical PUB. Returns the next position, -1 to wait."""
        if verb == b"HPUB" and not self.headers:
            raise HeadersNotSupported()
        head, hsize, size = _PAYLOAD_ARGS[verb](f)
        if self._server and self.max_payload and size > self.max_payload:
            raise MaxPayloadExceeded(size, self.max_payload)
        first = eol + 1
        last = first + size
        if last + 2 > len(buf):
            self._await_payload(buf, pos, last)
            return -1
        if buf[last] != 13 or buf[last + 1] != 10:
            raise UnknownOperation("payload not followed by CRLF")
        split = first + max(hsize, 0)
        if verb == b"PUB" or (verb == b"HPUB" and hsize == 0):  # no headers: a plain MSG
            sink.on_pub(head[0], head[1], [f[-1] + b"\r\n" + buf[first : last + 2]], size)
        elif verb == b"HPUB":
            hframed = f[-2] + b" " + f[-1] + b"\r\n" + buf[first : last + 2]  # sizes verbatim
            sink.on_hpub(head[0], head[1], buf[first:split], buf[split:last], hframed)
        elif verb == b"MSG":
            sink.on_msg(head[0], head[1], head[2], buf[first:last])
        else:
            sink.on_hmsg(head[0], head[1], head[2], buf[first:split], buf[split:last])
        return last + 2

    def _route_payload_op(self, verb: bytes, f: list[bytes], buf: bytes, pos: int, eol: int,
                          sink: RouteSink) -> int:
        """Routed RMSG (non-canonical spelling), HMSG and LMSG; as :meth:`_payload_op`."""
        if verb == b"LMSG":  # leaf origin cluster first, and always a header size
            if not f:
                raise MalformedArguments("LMSG without arguments")
            f = f[1:]
            verb = b"HMSG"
        (account, subject, reply, queues), hsize, size = (
            _rmsg_args(f) if verb == b"RMSG" else _rhmsg_args(f))
        first = eol + 1
        last = first + size
        if last + 2 > len(buf):
            self._await_payload(buf, pos, last)
            return -1
        if buf[last] != 13 or buf[last + 1] != 10:
            raise UnknownOperation("payload not followed by CRLF")
        if verb == b"RMSG":
            sink.on_rmsg(account, subject, reply, queues, [f[-1] + b"\r\n" + buf[first : last + 2]],
                         size)
        else:
            split = first + hsize
            hframed = f[-2] + b" " + f[-1] + b"\r\n" + buf[first : last + 2]
            sink.on_rhmsg(account, subject, reply, queues, buf[first:split], buf[split:last],
                          hframed)
        return last + 2

    def _await_payload(self, buf: bytes, pos: int, last: int) -> None:
        """Keep an operation whose payload (ending at ``last``) is not all here yet."""
        if last < len(buf) and buf[last] != 13:  # the byte after the payload must be \r
            raise UnknownOperation("payload not followed by CRLF")
        self._keep(buf, pos, last + 2 - pos)

    def _partial_line(self, buf: bytes, pos: int) -> None:
        """Check an unfinished control line now, then keep it for the next call."""
        verb, kind = _classify(buf[pos : pos + _HEAD].upper(), self._verbs, False)
        if kind == _BARE and verb:
            self._keep(buf[: pos + len(verb)], pos, 0)  # the ignored tail is dropped
            return
        rest = buf[pos + len(verb) :].lstrip(b" \t")
        length = len(rest) - rest.endswith(b"\r")  # a \r may be the line's end arriving
        if self.max_control_line and verb and length > self.max_control_line:
            raise MaxControlLineExceeded(length, self.max_control_line)
        self._keep(buf, pos, 0)

    def _error(self, arg: bytes) -> ops.Err:
        text = arg.strip().decode("utf-8", "replace").strip("'")
        if self._server:  # a client may not send -ERR; a route peer may (then it closes)
            raise PeerError(text)
        return ops.Err(text)


# Argument parsers for verbs followed by a payload: each returns
# (fields for the record, header size or -1, total size).


def _pub_args(f: list[bytes]) -> tuple[tuple[bytes, ...], int, int]:
    if len(f) == 2:
        return (f[0], b""), -1, _size(f[1])
    if len(f) == 3:
        return (f[0], f[1]), -1, _size(f[2])
    raise MalformedArguments(f"PUB takes 2 or 3 arguments, got {len(f)}")


def _hpub_args(f: list[bytes]) -> tuple[tuple[bytes, ...], int, int]:
    if len(f) not in (3, 4):
        raise MalformedArguments(f"HPUB takes 3 or 4 arguments, got {len(f)}")
    hsize, size = _header_sizes(f[-2], f[-1])
    return (f[0], f[1] if len(f) == 4 else b""), hsize, size


def _msg_args(f: list[bytes]) -> tuple[tuple[bytes, ...], int, int]:
    if len(f) == 3:
        return (f[0], f[1], b""), -1, _size(f[2])
    if len(f) == 4:
        return (f[0], f[1], f[2]), -1, _size(f[3])
    raise MalformedArguments(f"MSG takes 3 or 4 arguments, got {len(f)}")


def _hmsg_args(f: list[bytes]) -> tuple[tuple[bytes, ...], int, int]:
    if len(f) not in (4, 5):
        raise MalformedArguments(f"HMSG takes 4 or 5 arguments, got {len(f)}")
    hsize, size = _header_sizes(f[-2], f[-1])
    return (f[0], f[1], f[2] if len(f) == 5 else b""), hsize, size


#: A routed message's account, subject, reply and selected queue groups.
RoutedHead = tuple[bytes, bytes, bytes, tuple[bytes, ...]]


def _routed_head(f: list[bytes], verb: str) -> RoutedHead:
    """``<acc> <subj> [<reply> | + <reply> <q>... | \\| <q>...]`` (sizes removed)."""
    n = len(f)
    if n == 2:
        return f[0], f[1], b"", ()
    if n == 3:
        return f[0], f[1], f[2], ()
    if n < 2 or f[2] not in (b"+", b"|"):
        raise MalformedArguments(f"{verb} with {n + 1} arguments needs '+' or '|' third")
    if f[2] == b"+":
        return f[0], f[1], f[3], tuple(f[4:])
    return f[0], f[1], b"", tuple(f[3:])


def _rmsg_args(f: list[bytes]) -> tuple[RoutedHead, int, int]:
    if len(f) < 3:
        raise MalformedArguments(f"RMSG takes at least 3 arguments, got {len(f)}")
    return _routed_head(f[:-1], "RMSG"), -1, _size(f[-1])


def _rhmsg_args(f: list[bytes]) -> tuple[RoutedHead, int, int]:
    if len(f) < 4:
        raise MalformedArguments(f"HMSG takes at least 4 arguments, got {len(f)}")
    hsize, size = _header_sizes(f[-2], f[-1])
    return _routed_head(f[:-2], "HMSG"), hsize, size


def _header_sizes(hfield: bytes, field: bytes) -> tuple[int, int]:
    hsize, size = _size(hfield), _size(field)
    if hsize > size:
        raise MalformedArguments("header size larger than total size")
    return hsize, size


_PAYLOAD_ARGS: Final[dict[bytes, Callable[[list[bytes]], tuple[tuple[bytes, ...], int, int]]]] = {
    b"PUB": _pub_args, b"HPUB": _hpub_args, b"MSG": _msg_args, b"HMSG": _hmsg_args,
}


_BARE_OPS: Final[dict[bytes, ops.Op]] = {b"PING": ops.PING, b"PONG": ops.PONG, b"+OK": ops.OK}
_PAYLOAD_VERBS: Final = frozenset((b"PUB", b"HPUB", b"MSG", b"HMSG"))
_ROUTE_PAYLOAD_VERBS: Final = frozenset((b"RMSG", b"HMSG", b"LMSG"))


def framed_payload(framed: bytes) -> bytes:
    """The payload inside ``<size>\\r\\n<payload>\\r\\n``."""
    return framed[framed.index(b"\n") + 1 : -2]


def framed_size(framed: bytes) -> int:
    """The payload size of ``<size>\\r\\n<payload>\\r\\n``."""
    return len(framed) - framed.index(b"\n") - 3


def _sub(f: list[bytes]) -> ops.Sub:
    if len(f) == 2:
        return ops.Sub(f[0], b"", f[1])
    if len(f) == 3:
        return ops.Sub(f[0], f[1], f[2])
    raise MalformedArguments(f"SUB takes 2 or 3 arguments, got {len(f)}")


def _weight(field: bytes) -> int:
    if not field.isdigit() or len(field) > MAX_SIZE_DIGITS:
        raise MalformedArguments(f"invalid queue weight: {field!r}")
    return int(field)


def _rsub(f: list[bytes]) -> ops.RSub:
    """``RS+ <acc> <subject> [<queue> [<weight>]]`` (a queue without weight weighs 1)."""
    if len(f) == 2:
        return ops.RSub(f[0], f[1], b"", 1)
    if len(f) == 3:
        return ops.RSub(f[0], f[1], f[2], 1)
    if len(f) == 4:
        return ops.RSub(f[0], f[1], f[2], _weight(f[3]))
    raise MalformedArguments(f"RS+ takes 2 to 4 arguments, got {len(f)}")


def _runsub(f: list[bytes]) -> ops.RUnsub:
    if len(f) == 2:
        return ops.RUnsub(f[0], f[1], b"")
    if len(f) == 3:
        return ops.RUnsub(f[0], f[1], f[2])
    raise MalformedArguments(f"RS- takes 2 or 3 arguments, got {len(f)}")


def _lsub(f: list[bytes]) -> ops.RSub:
    """``LS+ <origin> ...``: remote interest as RS+, its leaf origin cluster dropped."""
    if len(f) < 3:
        raise MalformedArguments(f"LS+ takes 3 to 5 arguments, got {len(f)}")
    return _rsub(f[1:])


def _ignored(verb: bytes) -> Callable[[list[bytes]], ops.Op]:
    return lambda f: ops.Ignored(verb)


def _unsub(f: list[bytes]) -> ops.Unsub:
    if len(f) == 1:
        return ops.Unsub(f[0], None)
    if len(f) == 2:
        # nats-server ignores a max it cannot parse (the UNSUB then removes at once).
        valid = f[1].isdigit() and len(f[1]) <= MAX_SIZE_DIGITS
        return ops.Unsub(f[0], int(f[1]) if valid else None)
    raise MalformedArguments(f"UNSUB takes 1 or 2 arguments, got {len(f)}")


_ARG_OPS: Final[dict[bytes, Callable[[list[bytes]], ops.Op]]] = {
    b"SUB": _sub, b"UNSUB": _unsub, b"RS+": _rsub, b"RS-": _runsub, b"LS+": _lsub,
    b"LS-": _runsub, b"A+": _ignored(b"A+"), b"A-": _ignored(b"A-"),
}


__all__ = [
    "CRLF",
    "Parser",
    "ProtocolError",
    "RecordSink",
    "Role",
    "RouteSink",
    "Sink",
    "framed_payload",
    "framed_size",
]
