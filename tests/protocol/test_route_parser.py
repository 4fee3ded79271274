"""The parser's route role (CLUSTER.md sections 5 and 6): records, runs, byte-by-byte.

Every case is parsed whole and byte by byte; the encoders the server uses for route
interest and routed messages are checked by parsing what they produce.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynats.protocol import encode, ops
from pynats.protocol.errors import MalformedArguments, ProtocolError, UnknownOperation
from pynats.protocol.parser import Parser, Role


def route_parser() -> Parser:
    return Parser(Role.ROUTE, 64 * 1024)


def byte_by_byte(data: bytes) -> list[ops.Op]:
    parser = route_parser()
    out: list[ops.Op] = []
    for i in range(len(data)):
        out.extend(parser.feed(data[i : i + 1]))
    return out


def rmsg(subject: bytes, payload: bytes, reply: bytes = b"", queues: tuple[bytes, ...] = (),
         headers: bytes | None = None, account: bytes = b"$G") -> ops.RMsg:
    return ops.RMsg(account, subject, reply, queues, headers, payload)


CASES = [
    (b"RS+ $G foo\r\n", [ops.RSub(b"$G", b"foo", b"", 1)]),
    (b"RS+ $G foo.* workers 3\r\n", [ops.RSub(b"$G", b"foo.*", b"workers", 3)]),
    (b"RS+ $G foo q\r\n", [ops.RSub(b"$G", b"foo", b"q", 1)]),
    (b"rs- $G foo\r\nRS- A bar q\r\n",
     [ops.RUnsub(b"$G", b"foo", b""), ops.RUnsub(b"A", b"bar", b"q")]),
    (b"LS+ leafc $G foo q 2\r\nLS- $G foo q\r\n",
     [ops.RSub(b"$G", b"foo", b"q", 2), ops.RUnsub(b"$G", b"foo", b"q")]),
    (b"RMSG $G foo 5\r\nhello\r\n", [rmsg(b"foo", b"hello")]),
    (b"RMSG $G foo bar 2\r\nhi\r\n", [rmsg(b"foo", b"hi", b"bar")]),
    (b"RMSG $G foo + bar q1 q2 3\r\nabc\r\n", [rmsg(b"foo", b"abc", b"bar", (b"q1", b"q2"))]),
    (b"RMSG $G foo | q1 0\r\n\r\n", [rmsg(b"foo", b"", b"", (b"q1",))]),
    (b"rmsg $G foo 2\nhi\r\n", [rmsg(b"foo", b"hi")]),
    (b"HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
     [rmsg(b"foo", b"hi", headers=b"NATS/1.0\r\n\r\n")]),
    (b"HMSG $G foo + r q 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
     [rmsg(b"foo", b"hi", b"r", (b"q",), b"NATS/1.0\r\n\r\n")]),
    (b"LMSG cl $G foo r 0 2\r\nhi\r\n", [rmsg(b"foo", b"hi", b"r", headers=b"")]),
    (b"PING\r\nPONG\r\n+OK\r\n", [ops.PING, ops.PONG, ops.OK]),
    (b"A+ x\r\nA- y z\r\n", [ops.Ignored(b"A+"), ops.Ignored(b"A-")]),
    (b"-ERR 'Stale Connection'\r\n", [ops.Err("Stale Connection")]),
    (b'CONNECT {"name":"N1"}\r\nINFO {"server_id":"N2"}\r\n',
     [ops.Connect({"name": "N1"}), ops.Info({"server_id": "N2"})]),
]


@pytest.mark.parametrize(("data", "expected"), CASES, ids=[repr(c[0][:24]) for c in CASES])
def test_route_operations(data: bytes, expected: list[ops.Op]) -> None:
    assert route_parser().feed(data) == expected
    assert byte_by_byte(data) == expected


ERRORS = [
    (b"RS+ $G\r\n", MalformedArguments),
    (b"RS+ $G foo q x\r\n", MalformedArguments),
    (b"RS- $G a b c\r\n", MalformedArguments),
    (b"RMSG $G 5\r\nhello\r\n", MalformedArguments),
    (b"RMSG $G foo x bar q 2\r\nhi\r\n", MalformedArguments),
    (b"RMSG $G foo abc\r\n", MalformedArguments),
    (b"HMSG $G foo 15 14\r\nNATS/1.0\r\n\r\nhi\r\n", MalformedArguments),
    (b"RMSG $G foo 2\r\nhiXX", UnknownOperation),
    (b"PUB foo 2\r\nhi\r\n", UnknownOperation),
    (b"SUB foo 1\r\n", UnknownOperation),
    (b"MSG foo 1 2\r\nhi\r\n", UnknownOperation),
]


@pytest.mark.parametrize(("data", "error"), ERRORS, ids=[repr(c[0][:24]) for c in ERRORS])
def test_route_errors(data: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        route_parser().feed(data)
    with pytest.raises(error):
        byte_by_byte(data)


class RunSink:
    """Records the runs exactly as the parser hands them over."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def on_rmsg(self, account: bytes, subject: bytes, reply: bytes, queues: tuple[bytes, ...],
                framed: list[bytes], nbytes: int) -> None:
        self.calls.append(("rmsg", subject, reply, queues, list(framed), nbytes))

    def on_rhmsg(self, account: bytes, subject: bytes, reply: bytes, queues: tuple[bytes, ...],
                 headers: bytes, payload: bytes, hframed: bytes) -> None:
        self.calls.append(("hmsg", subject, hframed))

    def on_op(self, op: ops.Op) -> None:
        self.calls.append(("op", op))


def test_consecutive_plain_rmsgs_come_as_one_run_framed_like_pub() -> None:
    sink = RunSink()
    data = (b"RMSG $G a 1\r\nx\r\nRMSG $G a 2\r\nyy\r\nRMSG $G a + r q 1\r\nz\r\n"
            b"RMSG $G a 1\r\nw\r\nPING\r\nRMSG $G b 0\r\n\r\n")
    route_parser().parse(data, sink)
    assert sink.calls == [
        ("rmsg", b"a", b"", (), [b"1\r\nx\r\n", b"2\r\nyy\r\n"], 3),
        ("rmsg", b"a", b"r", (b"q",), [b"1\r\nz\r\n"], 1),
        ("rmsg", b"a", b"", (), [b"1\r\nw\r\n"], 1),
        ("op", ops.PING),
        ("rmsg", b"b", b"", (), [b"0\r\n\r\n"], 0),
    ]


def test_hmsg_is_framed_like_hpub() -> None:
    sink = RunSink()
    route_parser().parse(b"HMSG $G a r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n", sink)
    assert sink.calls == [("hmsg", b"a", b"12 14\r\nNATS/1.0\r\n\r\nhi\r\n")]


def test_a_run_is_handed_over_before_the_error_after_it() -> None:
    sink = RunSink()
    with pytest.raises(UnknownOperation):
        route_parser().parse(b"RMSG $G a 1\r\nx\r\nBOGUS\r\n", sink)
    assert sink.calls == [("rmsg", b"a", b"", (), [b"1\r\nx\r\n"], 1)]


def test_route_control_line_limit() -> None:
    parser = Parser(Role.ROUTE, 16)
    with pytest.raises(ProtocolError):
        parser.feed(b"RS+ $G " + b"a" * 40 + b"\r\n")


@pytest.mark.parametrize(("queue", "weight"), [(b"", 0), (b"q", 7)])
def test_interest_encoders_round_trip(queue: bytes, weight: int) -> None:
    plus = encode.encode_rs_plus(b"$G", b"foo.>", queue, weight)
    minus = encode.encode_rs_minus(b"$G", b"foo.>", queue)
    assert route_parser().feed(plus + minus) == [
        ops.RSub(b"$G", b"foo.>", queue, weight if queue else 1),
        ops.RUnsub(b"$G", b"foo.>", queue),
    ]


@pytest.mark.parametrize(("reply", "queues"), [(b"", ()), (b"r", ()), (b"r", (b"a", b"b")),
                                               (b"", (b"a",))])
def test_routed_head_round_trip(reply: bytes, queues: tuple[bytes, ...]) -> None:
    data = encode.routed_head(b"RMSG", b"ACC", b"s.t", reply, queues) + b"3\r\nabc\r\n"
    data += encode.routed_head(b"HMSG", b"ACC", b"s.t", reply, queues)
    data += b"12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    assert route_parser().feed(data) == [
        rmsg(b"s.t", b"abc", reply, queues, account=b"ACC"),
        rmsg(b"s.t", b"hi", reply, queues, b"NATS/1.0\r\n\r\n", account=b"ACC"),
    ]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=8))
def test_only_protocol_errors_escape(data: bytes, chunk: int) -> None:
    parser = route_parser()
    with contextlib.suppress(ProtocolError):
        for i in range(0, len(data), chunk):
            parser.feed(data[i : i + chunk])


def test_repeated_rmsg_lines_stay_one_run_and_keep_their_payloads() -> None:
    sink = RunSink()
    line = b"RMSG $G a r 2\r\n"
    data = line + b"xx\r\n" + line + b"yy\r\nPING\r\n" + line + b"zz\r\n" + line + b"ww\r\n"
    route_parser().parse(data, sink)
    assert sink.calls == [
        ("rmsg", b"a", b"r", (), [b"2\r\nxx\r\n", b"2\r\nyy\r\n"], 4),
        ("op", ops.PING),
        ("rmsg", b"a", b"r", (), [b"2\r\nzz\r\n", b"2\r\nww\r\n"], 4),
    ]
    with pytest.raises(UnknownOperation):
        route_parser().parse(line + b"xx\r\n" + line + b"yyy\r\n", RunSink())
