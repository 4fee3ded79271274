"""Raw-socket wire tests for the client port: byte-exact answers, as nats-server 2.x gives.

Every expectation here was recorded from the reference nats-server; running the module
with ``PYNATS_TEST_SERVER=nats-server`` checks the tests themselves against it.

* The case table lives in ``tests/wire_cases.py``; each case is sent whole and one byte
  at a time, and afterwards a second connection must still get a pub/sub round trip.
* Dedicated tests cover what needs several connections, limits with their own server
  (max_connections, ping timer, max_pending) or randomness (queue groups).
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import wire_cases as wc
from harness import InProcessServer, RawClient, ServerProcess, start_server
from wire_cases import OK, PING, PONG, msg, pub, sub

AnyServer = ServerProcess | InProcessServer
MODES = ["whole", "bytes"]
SEMVER = re.compile(r"^2\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


# -- helpers -----------------------------------------------------------------------------
class Servers:
    """pynats servers per ``wire_cases.CONFIGS`` name, started on first use."""

    def __init__(self, shared: ServerProcess, factory: pytest.TempPathFactory):
        self.shared = shared
        self.factory = factory
        self.started: dict[str, AnyServer] = {}

    def port(self, config: str) -> int:
        if config == "default":
            return self.shared.port
        if config not in self.started:
            srv = start_server("pynats", self.factory.mktemp(config), **wc.CONFIGS[config])
            self.started[config] = srv.start()
        return self.started[config].port

    def stop(self) -> None:
        for srv in self.started.values():
            srv.stop()


@pytest.fixture(scope="module")
def servers(shared_server: ServerProcess,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    s = Servers(shared_server, tmp_path_factory)
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def case_port(servers: Servers, tmp_path: Path) -> Iterator[Callable[[str], int]]:
    """Port of the server for a case's configuration ("fresh": one for this test only)."""
    fresh: list[AnyServer] = []

    def port(config: str) -> int:
        if config != "fresh":
            return servers.port(config)
        fresh.append(start_server("pynats", tmp_path, **wc.CONFIGS[config]).start())
        return fresh[-1].port

    try:
        yield port
    finally:
        for srv in fresh:
            srv.stop()


def send(client: RawClient, data: bytes, mode: str = "whole") -> None:
    """Send ``data`` at once or one byte per send (TCP_NODELAY, so one byte per segment).

    Once the server has closed, the remaining bytes are irrelevant: a send error ends it.
    """
    if mode == "whole":
        client.send(data)
        return
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        try:
            client.send(data[i:i + 1])
        except OSError:
            return


def expect_nothing_more(client: RawClient) -> None:
    """A PING answered by exactly PONG: nothing else is pending on this connection."""
    client.ping_pong()


def read_frame(client: RawClient) -> bytes:
    """One server frame: a line, plus the payload for MSG/HMSG."""
    line = client.read_line()
    parts = line.split()
    if parts and parts[0] in (b"MSG", b"HMSG"):
        line += client.read_exact(int(parts[-1]) + 2)
    return line


def frames_before_pong(client: RawClient, pongs: int = 1) -> list[bytes]:
    """Every frame received before the ``pongs``-th PONG (which is consumed, not returned)."""
    frames = []
    while (frame := read_frame(client)) != PONG or pongs > 1:
        if frame == PONG:
            pongs -= 1
        frames.append(frame)
    return frames


def frames_until_pong(client: RawClient) -> list[bytes]:
    """Send PING and return every frame received before its PONG."""
    client.send(PING)
    return frames_before_pong(client)


def connect(port: int, setup: bytes = b"", hello: bytes = wc.QUIET) -> RawClient:
    """A connection that has sent ``hello`` (a CONNECT) and ``setup`` and got a PONG."""
    client = RawClient(port)
    client.send(hello + setup + PING)
    client.expect(PONG)
    return client


def assert_usable(port: int) -> None:
    """A fresh connection to the server still gets a pub/sub round trip."""
    with RawClient(port) as client:
        assert client.info.startswith(b"INFO {")
        client.send(wc.QUIET + sub("usable.check", 7) + pub("usable.check", b"ok") + PING)
        client.expect(msg("usable.check", 7, b"ok") + PONG)


# -- the case table ------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", wc.ALL_CASES, ids=[c.id for c in wc.ALL_CASES])
def test_wire_case(case: wc.Case, mode: str, case_port: Callable[[str], int]) -> None:
    port = case_port(case.config)
    with RawClient(port) as client:
        send(client, case.send, mode)
        if case.closes:
            got = client.read_until_closed()
            assert got == case.expect, f"before close: expected {case.expect!r}, got {got!r}"
        else:
            send(client, PING, mode)
            got = b"".join(frames_before_pong(client, wc.count_pings(case.send) + 1))
            expect = case.expect
            if mode == "bytes":  # see collapse_repeated_invalid_publish_subject
                got = wc.collapse_repeated_invalid_publish_subject(got)
                expect = wc.collapse_repeated_invalid_publish_subject(expect)
            assert got == expect
            expect_nothing_more(client)
    assert_usable(port)


# -- section 15: the telnet session ----------------------------------------------------
def test_telnet_session(raw: RawClient) -> None:
    raw.send(b"sub foo 1\r\n")
    raw.expect(OK)
    raw.send(b"pub foo 5\r\n")
    raw.send(b"hello\r\n")
    raw.expect(OK + b"MSG foo 1 5\r\nhello\r\n")
    raw.send(b'CONNECT {"verbose":false}\r\n')
    raw.send(b"PING\r\n")
    raw.expect(PONG)
    raw.send(b"PUB foo.* 1\r\n")
    raw.send(b"x\r\n")
    # sid 1 ("foo") does not match "foo.*": only the -ERR (twice in nats-server when the
    # payload arrives in a later read than the PUB line: see wire_cases)
    got = b"".join(frames_until_pong(raw))
    assert wc.collapse_repeated_invalid_publish_subject(got) == wc.INVALID_PUBLISH_SUBJECT
    raw.send(b"PUB foo 70000000\r\n")
    assert raw.read_until_closed() == wc.MAX_PAYLOAD


def test_invalid_publish_subject_still_routed(shared_server: ServerProcess) -> None:
    port = shared_server.port
    with connect(port, sub("foo.>", 5)) as other, RawClient(port) as telnet:
        telnet.send(b"sub foo.* 2\r\n")
        telnet.expect(OK)
        telnet.send(b'CONNECT {"verbose":false}\r\nPUB foo.* 1\r\nx\r\nPING\r\n')
        telnet.expect(wc.INVALID_PUBLISH_SUBJECT + msg("foo.*", 2, b"x") + PONG)
        other.send(PING)
        other.expect(msg("foo.*", 5, b"x") + PONG)
    assert_usable(port)


# -- INFO ---------------------------------------------------------------------------------
def parse_info(line: bytes) -> dict[str, object]:
    assert line.startswith(b"INFO {"), line
    # nats-server ends the INFO line with "} \r\n" (a space before CRLF)
    assert line.endswith(b"} \r\n"), line
    info = json.loads(line[len(b"INFO "):-3])
    assert isinstance(info, dict)
    return info


def test_info_fields(shared_server: ServerProcess) -> None:
    with RawClient(shared_server.port) as first, RawClient(shared_server.port) as second:
        info = parse_info(first.info)
        info2 = parse_info(second.info)
    for key in ("server_id", "server_name", "version", "go", "host", "client_ip"):
        assert isinstance(info[key], str) and info[key], key
    assert SEMVER.match(str(info["version"])), info["version"]
    assert type(info["proto"]) is int and info["proto"] == 1
    assert type(info["port"]) is int and info["port"] == shared_server.port
    assert info["host"] == "127.0.0.1"
    assert info["headers"] is True
    assert type(info["max_payload"]) is int and info["max_payload"] == 1048576
    assert type(info["client_id"]) is int and info["client_id"] > 0
    assert type(info2["client_id"]) is int and info2["client_id"] > info["client_id"]
    assert info["client_ip"] == "127.0.0.1"
    assert info.get("jetstream", False) is False
    assert info.get("auth_required", False) is False
    assert info.get("tls_required", False) is False
    assert "connect_info" not in info and "ldm" not in info and "nonce" not in info
    assert info2["server_id"] == info["server_id"]


def test_info_reflects_max_payload(servers: Servers) -> None:
    with RawClient(servers.port("limits")) as client:
        assert parse_info(client.info)["max_payload"] == 1024


def test_info_is_sent_before_anything_else(shared_server: ServerProcess) -> None:
    with RawClient(shared_server.port, read_info=False) as client:
        client.send(b"PING\r\n")
        assert client.read_line().startswith(b"INFO {")
        client.expect(PONG)


# -- several connections -----------------------------------------------------------------
def test_headers_stripped_for_subscribers_without_headers(shared_server: ServerProcess) -> None:
    port = shared_server.port
    hdr = wc.headers("X: y", "X: z")
    with (connect(port, sub("h.a", 1)) as plain,
          connect(port, sub("h.a", 2), wc.QUIET_HEADERS) as capable,
          RawClient(port) as telnet):
        telnet.send(b"SUB h.a 3\r\n")
        telnet.expect(OK)
        capable.send(wc.hpub("h.a", hdr, b"hi", reply="r") + wc.hpub("h.a", wc.EMPTY_HEADERS)
                     + PING)
        capable.expect(wc.hmsg("h.a", 2, hdr, b"hi", reply="r")
                       + wc.hmsg("h.a", 2, wc.EMPTY_HEADERS) + PONG)
        for client, sid in ((plain, 1), (telnet, 3)):
            client.send(PING)
            client.expect(msg("h.a", sid, b"hi", reply="r") + msg("h.a", sid) + PONG)


def test_echo_false_still_delivers_to_others(shared_server: ServerProcess) -> None:
    port = shared_server.port
    with (connect(port, sub("e.x", 1), wc.QUIET_NO_ECHO) as me,
          connect(port, sub("e.x", 2)) as other):
        me.send(pub("e.x", b"1") + PING)
        me.expect(PONG)
        other.send(pub("e.x", b"2") + PING)
        other.expect(msg("e.x", 2, b"1") + msg("e.x", 2, b"2") + PONG)
        me.send(PING)
        me.expect(msg("e.x", 1, b"2") + PONG)


def test_no_responders_only_when_nobody_listens(tmp_path: Path) -> None:
    with start_server("pynats", tmp_path) as srv:
        requester = connect(srv.port, sub("nr.reply", 1), wc.QUIET_NO_RESPONDERS)
        with requester, connect(srv.port, sub("nr.svc", 4)) as responder:
            requester.send(pub("nr.svc", b"q", reply="nr.reply") + PING)
            requester.expect(PONG)
            responder.send(b"UNSUB 4\r\n" + PING)
            responder.expect(msg("nr.svc", 4, b"q", reply="nr.reply") + PONG)
            requester.send(pub("nr.svc", b"q", reply="nr.reply") + PING)
            requester.expect(wc.no_responders("nr.reply", 1, "nr.svc") + PONG)


def test_unsub_max_counts_per_subscription(shared_server: ServerProcess) -> None:
    port = shared_server.port
    with connect(port, sub("u.x", 1) + sub("u.x", 2) + b"UNSUB 1 2\r\n") as subscriber:
        with connect(port) as publisher:
            publisher.send(pub("u.x", b"a") + pub("u.x", b"b") + pub("u.x", b"c") + PING)
            publisher.expect(PONG)
        frames = frames_until_pong(subscriber)
    got = sorted(frames)
    assert got == sorted([msg("u.x", 1, b"a"), msg("u.x", 2, b"a"), msg("u.x", 1, b"b"),
                          msg("u.x", 2, b"b"), msg("u.x", 2, b"c")])
    # per subscription the publish order is kept
    assert [f for f in frames if f.startswith(b"MSG u.x 2 ")] == [
        msg("u.x", 2, b"a"), msg("u.x", 2, b"b"), msg("u.x", 2, b"c")]


def test_overlapping_subscriptions_one_copy_each(shared_server: ServerProcess) -> None:
    subs = (sub("o.foo", 1) + sub("o.foo", 2) + sub("o.*", 3) + sub(">", 4) + sub("o.foo.>", 5)
            + sub("o.foo", 6, queue="q") + sub("o.*", 7, queue="q") + sub("o.bar", 8))
    with connect(shared_server.port, subs) as client:
        client.send(pub("o.foo", b"m"))
        frames = frames_until_pong(client)
    plain = sorted(f for f in frames if f.split()[2] in (b"1", b"2", b"3", b"4"))
    queued = [f for f in frames if f.split()[2] in (b"6", b"7")]
    assert plain == [msg("o.foo", sid, b"m") for sid in (1, 2, 3, 4)]
    assert len(queued) == 1 and len(frames) == 5, frames


def test_queue_groups_one_member_each(shared_server: ServerProcess) -> None:
    """Per message: every plain sub gets it, and exactly one member of each group."""
    port = shared_server.port
    n = 120
    members = {  # connection -> subscriptions (sid -> (subject, queue))
        "a": {1: ("qg.job", "g1"), 2: ("qg.job", "g2"), 3: ("qg.job", None)},
        "b": {1: ("qg.*", "g1"), 2: ("qg.job", "g2")},
        "c": {1: ("qg.job", "g1"), 2: ("qg.>", "g3"), 3: ("qg.*", None)},
    }
    clients = {}
    try:
        for name, subs in members.items():
            handshake = b"".join(sub(s, sid, queue=q) for sid, (s, q) in subs.items())
            clients[name] = connect(port, handshake)
        with connect(port) as publisher:
            publisher.send(b"".join(pub("qg.job", str(i).encode()) for i in range(n)) + PING)
            publisher.expect(PONG)
        counts: dict[tuple[str, int], list[bytes]] = {}
        for name, client in clients.items():
            for frame in frames_until_pong(client):
                head, payload = frame.split(b"\r\n")[:2]
                assert head.startswith(b"MSG qg.job "), frame
                counts.setdefault((name, int(head.split()[2])), []).append(payload)
    finally:
        for client in clients.values():
            client.close()
    everything = sorted(str(i).encode() for i in range(n))
    groups: dict[str | None, list[tuple[str, int]]] = {}
    for name, subs in members.items():
        for sid, (_, queue) in subs.items():
            groups.setdefault(queue, []).append((name, sid))
    for member in groups.pop(None):
        assert sorted(counts.get(member, [])) == everything, member
    for queue, group in groups.items():
        got = sorted(p for m in group for p in counts.get(m, []))
        assert got == everything, f"group {queue}: each message exactly once"
        if len(group) > 1:
            assert all(counts.get(m) for m in group), f"group {queue}: a member got nothing"
    for member, payloads in counts.items():  # each receiver sees the publish order
        assert [int(p) for p in payloads] == sorted(int(p) for p in payloads), member


def test_queue_run_split_among_members(shared_server: ServerProcess) -> None:
    """A run of PUBs to a group of members on separate connections (split up front)."""
    port, n = shared_server.port, 300
    members = [connect(port, sub("qs.x", 1, queue="q")) for _ in range(3)]
    watcher = connect(port, sub("qs.*", 1))
    try:
        with connect(port) as publisher:
            publisher.send(b"".join(pub("qs.x", str(i).encode()) for i in range(n)) + PING)
            publisher.expect(PONG)
        shares = [[int(f.split(b"\r\n")[1]) for f in frames_until_pong(m)] for m in members]
        seen = [int(f.split(b"\r\n")[1]) for f in frames_until_pong(watcher)]
    finally:
        for client in (*members, watcher):
            client.close()
    assert seen == list(range(n))
    assert sorted(i for share in shares for i in share) == list(range(n))  # exactly once
    assert all(share == sorted(share) and len(share) > n // 10 for share in shares), shares


def test_queue_run_with_a_member_that_auto_unsubscribes(shared_server: ServerProcess) -> None:
    """A run to a group whose member has a max: it takes at most that, the rest go on."""
    port = shared_server.port
    with connect(port, sub("qm.x", 1, queue="q") + b"UNSUB 1 2\r\n") as limited, \
            connect(port, sub("qm.x", 1, queue="q")) as other:
        with connect(port) as publisher:
            publisher.send(b"".join(pub("qm.x", str(i).encode()) for i in range(50)) + PING)
            publisher.expect(PONG)
        mine = [f.split(b"\r\n")[1] for f in frames_until_pong(limited)]
        rest = [f.split(b"\r\n")[1] for f in frames_until_pong(other)]
    assert len(mine) <= 2
    assert sorted(int(p) for p in mine + rest) == list(range(50))


def test_two_queue_members_in_one_connection(shared_server: ServerProcess) -> None:
    with connect(shared_server.port, sub("q2.x", 1, queue="q") + sub("q2.x", 2, queue="q")) as c:
        c.send(pub("q2.x", b"1") + pub("q2.x", b"2") + pub("q2.x", b"3"))
        frames = frames_until_pong(c)
    assert [f.split()[2] in (b"1", b"2") for f in frames] == [True] * 3
    assert [f.split(b"\r\n")[1] for f in frames] == [b"1", b"2", b"3"]


# -- limits that need a server of their own -----------------------------------------------
def test_max_connections(tmp_path: Path) -> None:
    with start_server("pynats", tmp_path, max_connections=2) as srv:
        first = connect(srv.port, sub("mc", 1))
        with first, connect(srv.port) as second:
            with RawClient(srv.port) as third:
                assert third.info.startswith(b"INFO {")  # INFO first, then the error
                assert third.read_until_closed() == wc.MAX_CONNECTIONS
            second.send(pub("mc", b"x") + PING)
            second.expect(PONG)
            first.send(PING)
            first.expect(msg("mc", 1, b"x") + PONG)


def test_max_connections_bytes_after_rejection(tmp_path: Path) -> None:
    """Whatever the rejected client sends, it only gets INFO, the -ERR and EOF."""
    with start_server("pynats", tmp_path, max_connections=1) as srv, connect(srv.port) as first:
        with RawClient(srv.port, read_info=False) as second:
            send(second, wc.QUIET + b"PING\r\n", "bytes")
            data = second.read_until_closed()
        assert data.startswith(b"INFO {")
        assert data.split(b"\r\n", 1)[1] == wc.MAX_CONNECTIONS
        first.ping_pong()


@pytest.mark.parametrize("handshake", [b"", wc.QUIET], ids=["no-connect", "connect"])
@pytest.mark.parametrize("ping_max", [1, 2])
def test_stale_connection(tmp_path: Path, ping_max: int, handshake: bytes) -> None:
    interval = 0.2
    with start_server("pynats", tmp_path, ping_interval=interval, ping_max=ping_max) as srv:
        with RawClient(srv.port) as client:
            start = time.monotonic()
            client.send(handshake)
            got = client.read_until_closed(timeout=5 + 2 * interval * ping_max)
            elapsed = time.monotonic() - start
        assert got == PING * ping_max + wc.STALE
        # cut at the (ping_max + 1)-th tick, not before
        assert elapsed >= interval * (ping_max + 0.5), elapsed
        assert_usable(srv.port)


def test_answered_pings_keep_the_connection(tmp_path: Path) -> None:
    with (start_server("pynats", tmp_path, ping_interval=0.2, ping_max=1) as srv,
          RawClient(srv.port) as client):
        client.send(wc.QUIET)
        for _ in range(4):  # without the PONGs it would be cut at the second tick
            assert client.read_line(timeout=3) == PING
            client.send(PONG)
        client.ping_pong()


def _drain_slow_consumer(client: RawClient, timeout: float = 20.0) -> list[bytes]:
    """Read a (large) stream until EOF; return the distinct frame heads seen.

    The stream must be whole MSG frames (possibly cut short at the very end) and server
    PINGs: in particular no ``-ERR``.
    """
    sock = client.sock
    buf = bytearray(client.buf)
    client.buf = b""
    heads: set[bytes] = set()
    deadline = time.monotonic() + timeout
    eof = False
    while True:
        # consume complete frames
        pos = 0
        while True:
            end = buf.find(b"\r\n", pos)
            if end < 0:
                break
            line = bytes(buf[pos:end + 2])
            if line == PING:
                heads.add(line)
                pos = end + 2
                continue
            assert line.startswith(b"MSG "), f"unexpected frame {line[:80]!r}"
            size = int(line.split()[-1])
            if len(buf) < end + 2 + size + 2:
                break
            heads.add(line)
            pos = end + 2 + size + 2
        del buf[:pos]
        if eof:
            break
        remaining = deadline - time.monotonic()
        assert remaining > 0, "slow consumer was not disconnected"
        sock.settimeout(remaining)
        try:
            data = sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        eof = not data
        buf += data
    assert len(buf) < 80 or buf.startswith(b"MSG "), f"trailing bytes {bytes(buf[:80])!r}"
    return sorted(heads)


def test_slow_consumer_closed_without_err(tmp_path: Path) -> None:
    payload = b"x" * 60000
    with start_server("pynats", tmp_path, max_pending=256 * 1024, max_payload=65536) as srv:
        port = srv.port
        slow = connect(port, sub("sc.flood", 1) + sub("sc.probe", 2))
        with slow, connect(port) as publisher, \
                connect(port, sub("sc.r", 1), wc.QUIET_NO_RESPONDERS) as prober:
            batch = pub("sc.flood", payload) * 16
            gone = False
            for _ in range(200):  # at most ~190 MB
                publisher.send(batch + PING)
                publisher.expect(PONG)
                prober.send(pub("sc.probe", b"", reply="sc.r"))
                frames = frames_until_pong(prober)
                if frames:
                    assert frames == [wc.no_responders("sc.r", 1, "sc.probe")]
                    gone = True
                    break
            assert gone, "the subscriber that never reads was never cut off"
            publisher.ping_pong()  # the fast producer is untouched
            heads = _drain_slow_consumer(slow)
            assert set(heads) <= {b"MSG sc.flood 1 60000\r\n", b"MSG sc.probe 2 sc.r 0\r\n", PING}
        assert_usable(port)
