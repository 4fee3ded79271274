"""The pure parser: unit cases, byte-by-byte feeding, and hypothesis properties.

Properties: encoding operations and parsing the bytes gives the operations back, however
the bytes are split; and no input makes the parser raise anything but a documented
ProtocolError.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynats.protocol import encode, ops
from pynats.protocol.errors import (
    MalformedArguments,
    MaxControlLineExceeded,
    MaxPayloadExceeded,
    PeerError,
    ProtocolError,
    UnknownOperation,
)
from pynats.protocol.parser import Parser, Role


def server_parser(mcl: int = 4096, max_payload: int = 1 << 20) -> Parser:
    return Parser(Role.SERVER, mcl, max_payload)


def feed_split(parser: Parser, data: bytes, cuts: list[int]) -> list[ops.Op]:
    out: list[ops.Op] = []
    prev = 0
    for cut in [*sorted(cuts), len(data)]:
        out.extend(parser.feed(data[prev:cut]))
        prev = cut
    return out


def byte_by_byte(parser: Parser, data: bytes) -> list[ops.Op]:
    return feed_split(parser, data, list(range(1, len(data))))


def short_id(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


CASES = [
    (b"PING\r\n", [ops.PING]),
    (b"ping\n", [ops.PING]),
    (b"PINGX\r\n", [ops.PING]),
    (b"PONG\r\n+OK\r\n", [ops.PONG, ops.OK]),
    (b"SUB foo 1\r\n", [ops.Sub(b"foo", b"", b"1")]),
    (b"sub\tfoo  q\t 2\r\n", [ops.Sub(b"foo", b"q", b"2")]),
    (b"UNSUB 1\r\nunsub 2 5\r\n", [ops.Unsub(b"1", None), ops.Unsub(b"2", 5)]),
    (b"UNSUB 1 x\r\n", [ops.Unsub(b"1", None)]),
    (b"PUB a 5\r\nhello\r\n", [ops.Pub(b"a", b"", b"hello")]),
    (b"pub a r 0\r\n\r\n", [ops.Pub(b"a", b"r", b"")]),
    (b"PUB a 005\r\nhello\r\n", [ops.Pub(b"a", b"", b"hello")]),
    (b"PUB a 2\nhi\r\n", [ops.Pub(b"a", b"", b"hi")]),
    (b"HPUB a 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
     [ops.HPub(b"a", b"", b"NATS/1.0\r\n\r\n", b"hi")]),
    (b"CONNECT {}\r\n", [ops.Connect({})]),
    (b'CONNECT{"verbose":false}\r\n', [ops.Connect({"verbose": False})]),
    (b"INFO {}\r\n", [ops.Info({})]),
]


@pytest.mark.parametrize(("data", "expected"), CASES, ids=short_id)
def test_cases_whole_and_byte_by_byte(data: bytes, expected: list[ops.Op]) -> None:
    assert server_parser().feed(data) == expected
    assert byte_by_byte(server_parser(), data) == expected


ERRORS = [
    (b"XYZ", UnknownOperation),  # refused before any newline, as nats-server does
    (b"PUX", UnknownOperation),
    (b"\r\n", UnknownOperation),
    (b"  PING\r\n", UnknownOperation),
    (b"PUB\r\n", UnknownOperation),
    (b"UNSUB\r\n", UnknownOperation),
    (b"MSG foo 1 1\r\n", UnknownOperation),
    (b"PUB a 2\r\nabc\r\n", UnknownOperation),
    (b"PUB a 3\r\nabc\n", UnknownOperation),
    (b"PUB a\r\n", MalformedArguments),
    (b"PUB a b c d\r\n", MalformedArguments),
    (b"PUB a -1\r\n", MalformedArguments),
    (b"PUB a +1\r\n", MalformedArguments),
    (b"PUB a 1_0\r\n", MalformedArguments),
    (b"SUB a\r\n", MalformedArguments),
    (b"UNSUB 1 2 3\r\n", MalformedArguments),
    (b"HPUB a 13 12\r\n", MalformedArguments),
    (b"CONNECT {bad\r\n", MalformedArguments),
    (b"CONNECT []\r\n", MalformedArguments),
    (b"CONNECT\r\n", MalformedArguments),
    (b"-ERR 'x'\r\n", PeerError),
    (b"PUB a 2000000\r\n", MaxPayloadExceeded),
    (b"HPUB a 1 2000000\r\n", MaxPayloadExceeded),
    (b"SUB " + b"a" * 5000 + b" 1\r\n", MaxControlLineExceeded),
    (b"SUB " + b"a" * 5000, MaxControlLineExceeded),  # a partial line, no newline yet
]


@pytest.mark.parametrize(("data", "error"), ERRORS, ids=short_id)
def test_errors_whole_and_byte_by_byte(data: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        server_parser().feed(data)
    with pytest.raises(error):
        byte_by_byte(server_parser(), data)


def test_error_text_and_reason() -> None:
    with pytest.raises(ProtocolError) as info:
        server_parser().feed(b"PUB a 2000000\r\n")
    assert info.value.err == "Maximum Payload Violation"
    assert info.value.reason == "Maximum Message Payload Exceeded"
    with pytest.raises(ProtocolError) as info2:
        server_parser().feed(b"PUB a\r\n")
    assert info2.value.err is None  # a silent close


def test_operations_before_an_error_are_handed_over() -> None:
    from pynats.protocol.parser import RecordSink

    sink = RecordSink()
    with pytest.raises(UnknownOperation):
        server_parser().parse(b"PUB a 1\r\nx\r\nPUB a 1\r\ny\r\nXYZ\r\n", sink)
    assert sink.ops == [ops.Pub(b"a", b"", b"x"), ops.Pub(b"a", b"", b"y")]


def test_ignored_tail_is_not_buffered() -> None:
    parser = server_parser()
    assert parser.feed(b"PING" + b"x" * 100_000) == []
    assert parser.buffered == 4
    assert parser.feed(b"\r\n") == [ops.PING]


def test_stop_discards_the_rest() -> None:
    class Stopper:
        def __init__(self, parser: Parser):
            self.parser = parser
            self.seen: list[object] = []

        def on_pub(self, *args: object) -> None:
            self.seen.append(args)

        def on_op(self, op: ops.Op) -> None:
            self.seen.append(op)
            self.parser.stop()

    parser = server_parser()
    sink = Stopper(parser)
    parser.parse(b"PING\r\nPUB a 1\r\nx\r\nPING\r\n", sink)  # type: ignore[arg-type]
    assert sink.seen == [ops.PING]


def test_client_role_parses_server_operations() -> None:
    parser = Parser(Role.CLIENT)
    data = (b'INFO {"a":1} \r\nMSG foo 1 2\r\nhi\r\nMSG foo 1 r 0\r\n\r\n'
            b"HMSG foo 2 12 14\r\nNATS/1.0\r\n\r\nhi\r\n-ERR 'Stale Connection'\r\nPING\r\n")
    expected = [
        ops.Info({"a": 1}),
        ops.Msg(b"foo", b"1", b"", b"hi"),
        ops.Msg(b"foo", b"1", b"r", b""),
        ops.HMsg(b"foo", b"2", b"", b"NATS/1.0\r\n\r\n", b"hi"),
        ops.Err("Stale Connection"),
        ops.PING,
    ]
    assert parser.feed(data) == expected
    assert byte_by_byte(Parser(Role.CLIENT), data) == expected
    with pytest.raises(UnknownOperation):
        Parser(Role.CLIENT).feed(b"PUB a 1\r\nx\r\n")


# -- properties --------------------------------------------------------------------------

tokens = st.binary(min_size=1, max_size=8).filter(
    lambda t: not any(c in t for c in b" \t\r\n."))
subjects = st.lists(tokens, min_size=1, max_size=4).map(b".".join)
payloads = st.binary(max_size=64)
sids = st.from_regex(rb"\A[0-9]{1,5}\Z")
client_ops = st.one_of(
    st.builds(ops.Pub, subjects, st.one_of(st.just(b""), subjects), payloads),
    st.builds(ops.HPub, subjects, st.one_of(st.just(b""), subjects),
              st.just(b"NATS/1.0\r\nA: b\r\n\r\n"), payloads),
    st.builds(ops.Sub, subjects, st.one_of(st.just(b""), tokens), sids),
    st.builds(ops.Unsub, sids,
              st.one_of(st.none(), st.integers(0, 10**6))),
    st.just(ops.PING),
    st.just(ops.PONG),
    st.builds(ops.Connect, st.dictionaries(st.sampled_from(["verbose", "name"]), st.booleans())),
)


def encode_op(op: ops.Op) -> bytes:
    match op:
        case ops.Pub(subject, reply, payload):
            return encode.encode_pub(subject, payload, reply)
        case ops.HPub(subject, reply, headers, payload):
            return encode.encode_hpub(subject, headers, payload, reply)
        case ops.Sub(subject, queue, sid):
            return encode.encode_sub(subject, sid, queue)
        case ops.Unsub(sid, max_msgs):
            return encode.encode_unsub(sid, max_msgs)
        case ops.Connect(options):
            return encode.encode_connect(options)
        case ops.Ping():
            return encode.PING
        case ops.Pong():
            return encode.PONG
    raise AssertionError(op)


@settings(max_examples=300, deadline=None)
@given(st.lists(client_ops, max_size=12), st.lists(st.integers(0, 2000), max_size=6))
def test_encode_then_parse_is_identity(ops_in: list[ops.Op], cuts: list[int]) -> None:
    data = b"".join(encode_op(op) for op in ops_in)
    cuts = [c for c in cuts if c <= len(data)]
    assert feed_split(server_parser(), data, cuts) == ops_in


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_arbitrary_bytes_raise_only_protocol_errors(data: bytes, cuts: list[int]) -> None:
    parser = server_parser(mcl=64, max_payload=128)
    with contextlib.suppress(ProtocolError):  # anything else fails the test
        feed_split(parser, data, [c for c in cuts if c <= len(data)])


@settings(max_examples=300, deadline=None)
@given(st.lists(client_ops, max_size=6), st.binary(max_size=40))
def test_valid_prefix_then_garbage(ops_in: list[ops.Op], garbage: bytes) -> None:
    data = b"".join(encode_op(op) for op in ops_in) + garbage
    whole: list[ops.Op] | type[ProtocolError]
    try:
        whole = server_parser().feed(data)
    except ProtocolError as exc:
        whole = type(exc)
    try:
        split: list[ops.Op] | type[ProtocolError] = byte_by_byte(server_parser(), data)
    except ProtocolError as exc:
        split = type(exc)
    assert whole == split


server_ops = st.one_of(
    st.builds(ops.Msg, subjects, sids, st.one_of(st.just(b""), subjects), payloads),
    st.builds(ops.HMsg, subjects, sids, st.one_of(st.just(b""), subjects),
              st.just(b"NATS/1.0 503\r\n\r\n"), payloads),
    st.builds(ops.Err, st.sampled_from(["Stale Connection", "Invalid Subject"])),
    st.just(ops.PING),
)


def encode_server_op(op: ops.Op) -> bytes:
    match op:
        case ops.Msg(subject, sid, reply, payload):
            return encode.encode_msg(subject, sid, payload, reply)
        case ops.HMsg(subject, sid, reply, headers, payload):
            return encode.encode_hmsg(subject, sid, headers, payload, reply)
        case ops.Err(text):
            return encode.encode_err(text)
        case ops.Ping():
            return encode.PING
    raise AssertionError(op)


@settings(max_examples=200, deadline=None)
@given(st.lists(server_ops, max_size=10), st.lists(st.integers(0, 2000), max_size=6))
def test_server_encoders_parse_back_on_the_client(ops_in: list[ops.Op],
                                                   cuts: list[int]) -> None:
    data = b"".join(encode_server_op(op) for op in ops_in)
    cuts = [c for c in cuts if c <= len(data)]
    assert feed_split(Parser(Role.CLIENT), data, cuts) == ops_in


# -- the client role's MSG fast path --------------------------------------------------------

def client_parser(mcl: int = 4096) -> Parser:
    return Parser(Role.CLIENT, mcl)


CLIENT_CASES = [
    (b"MSG a 1 2\r\nhi\r\n", [ops.Msg(b"a", b"1", b"", b"hi")]),
    (b"MSG a 1 r 0\r\n\r\n", [ops.Msg(b"a", b"1", b"r", b"")]),
    (b"MSG a 1 2\nhi\r\n", [ops.Msg(b"a", b"1", b"", b"hi")]),  # bare \n ends the line
    (b"MSG  a\t1   002\r\nhi\r\n", [ops.Msg(b"a", b"1", b"", b"hi")]),
    (b"msg a 1 2\r\nhi\r\n", [ops.Msg(b"a", b"1", b"", b"hi")]),  # the generic path
    (b"MSG\ta 1 2\r\nhi\r\n", [ops.Msg(b"a", b"1", b"", b"hi")]),
    (b"MSG a\x0bb 1 2\r\nhi\r\n", [ops.Msg(b"a\x0bb", b"1", b"", b"hi")]),  # VT is no space
    (b"MSG a 1 2\r\nhi\r\nMSG a 1 2\r\nho\r\nMSG a 1 3\r\nhey\r\n",
     [ops.Msg(b"a", b"1", b"", b"hi"), ops.Msg(b"a", b"1", b"", b"ho"),
      ops.Msg(b"a", b"1", b"", b"hey")]),
    (b"MSG a 1 2\r\nhi\r\nPING\r\nMSG a 1 2\r\nho\r\n",
     [ops.Msg(b"a", b"1", b"", b"hi"), ops.PING, ops.Msg(b"a", b"1", b"", b"ho")]),
    (b"MSG a 1 4\r\nMSG \r\n", [ops.Msg(b"a", b"1", b"", b"MSG ")]),
]


@pytest.mark.parametrize(("data", "expected"), CLIENT_CASES, ids=short_id)
def test_client_cases_whole_and_byte_by_byte(data: bytes, expected: list[ops.Op]) -> None:
    assert client_parser().feed(data) == expected
    assert byte_by_byte(client_parser(), data) == expected


CLIENT_ERRORS = [
    (b"MSG a 1\r\n", MalformedArguments),
    (b"MSG a 1 r s 2\r\n", MalformedArguments),
    (b"MSG a 1 -1\r\n", MalformedArguments),
    (b"MSG a 1 1234567890\r\n", MalformedArguments),
    (b"MSG a 1 \xd9\xa1\r\n", MalformedArguments),  # not ASCII digits
    (b"MSG a 1 2\r\nabc\r\n", UnknownOperation),
    (b"MSG a 1 2\r\nhi\r\nMSG a 1 2\r\nabc\r\n", UnknownOperation),  # repeated line
    (b"MSG a 1 3\r\nabc\n", UnknownOperation),
    (b"MSG\x0ba 1 2\r\nhi\r\n", UnknownOperation),
    (b" MSG a 1 2\r\nhi\r\n", UnknownOperation),
    (b"MSG " + b"a" * 100 + b" 1 2\r\nhi\r\n", MaxControlLineExceeded),
    (b"MSG " + b"a" * 100, MaxControlLineExceeded),  # a partial line, no newline yet
    (b"PUB a 1\r\nx\r\n", UnknownOperation),
]


@pytest.mark.parametrize(("data", "error"), CLIENT_ERRORS, ids=short_id)
def test_client_errors_whole_and_byte_by_byte(data: bytes, error: type[ProtocolError]) -> None:
    with pytest.raises(error):
        client_parser(mcl=64).feed(data)
    with pytest.raises(error):
        byte_by_byte(client_parser(mcl=64), data)


def test_client_control_line_limit_counts_arguments_only() -> None:
    line = b"MSG " + b" " * 10 + b"a 1 2\r\nhi\r\n"  # 15 bytes after "MSG", 5 after spaces
    assert client_parser(mcl=5).feed(line) == [ops.Msg(b"a", b"1", b"", b"hi")]
    with pytest.raises(MaxControlLineExceeded):
        client_parser(mcl=4).feed(line)


def test_client_payload_is_a_slice_handed_to_on_msg() -> None:
    from pynats.protocol.parser import RecordSink

    sink = RecordSink()
    with pytest.raises(UnknownOperation):
        client_parser().parse(b"MSG a 1 1\r\nx\r\nMSG a 1 1\r\ny\r\nXYZ\r\n", sink)
    assert sink.ops == [ops.Msg(b"a", b"1", b"", b"x"), ops.Msg(b"a", b"1", b"", b"y")]


def test_client_stop_in_on_msg_discards_the_rest() -> None:
    class Stopper:
        def __init__(self, parser: Parser):
            self.parser = parser
            self.seen: list[object] = []

        def on_msg(self, *args: object) -> None:
            self.seen.append(args)
            self.parser.stop()

        def on_op(self, op: ops.Op) -> None:
            self.seen.append(op)

    for data in (b"MSG a 1 1\r\nx\r\nMSG a 1 1\r\ny\r\nPING\r\n",
                 b"MSG a 1 1\r\nx\r\nPING\r\n"):
        parser = client_parser()
        sink = Stopper(parser)
        parser.parse(data, sink)  # type: ignore[arg-type]
        assert sink.seen == [(b"a", b"1", b"", b"x")]


# Differential property: ``msg`` in lower case takes the generic path, ``MSG`` the fast
# one; both must find the same operations and fail with the same error, whole and split.
fragments = st.lists(st.sampled_from([
    b"MSG ", b"msg ", b"HMSG ", b"MSG a 1 2\r\nhi\r\n", b"MSG a 1 r 2\r\nhi\r\n",
    b"PING\r\n", b"+OK\r\n", b"INFO {}\r\n", b"-ERR 'x'\r\n",
    b"a", b"b.c", b"1", b"2", b"0", b"12", b"007", b"-1", b" ", b"  ", b"\t", b"\x0b",
    b"\r", b"\n", b"\r\n", b"x", b"NATS/1.0\r\n\r\n",
]), max_size=16).map(b"".join)


def _outcome(data: bytes, cuts: list[int], mcl: int) -> object:
    try:
        found = feed_split(client_parser(mcl), data, cuts)
    except ProtocolError as exc:
        return type(exc)
    return [tuple(f.lower() if isinstance(f, bytes) else f for f in op) for op in found]


@settings(max_examples=500, deadline=None)
@given(fragments, st.lists(st.integers(0, 200), max_size=4), st.sampled_from([0, 12]))
def test_client_fast_path_matches_the_generic_path(data: bytes, cuts: list[int],
                                                   mcl: int) -> None:
    cuts = [c for c in cuts if c <= len(data)]
    generic = data.replace(b"MSG ", b"msg ")
    assert _outcome(data, cuts, mcl) == _outcome(generic, cuts, mcl)
    assert _outcome(data, cuts, mcl) == _outcome(data, list(range(1, len(data))), mcl)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=5))
def test_client_arbitrary_bytes_raise_only_protocol_errors(data: bytes,
                                                           cuts: list[int]) -> None:
    with contextlib.suppress(ProtocolError):
        feed_split(client_parser(mcl=64), b"MSG " + data, [c for c in cuts if c <= len(data)])
