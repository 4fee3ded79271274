"""The route port on the wire, against pynats-server and nats-server alike.

A test plays a peer server over a raw socket (CLUSTER.md sections 2 to 7): it reads the
server's route INFO, sends CONNECT and INFO as nats-server's dialling side does, and
then checks what the server tells it (RS+/RS-, RMSG) and what it does with what the
peer sends (RMSG to local clients). What the peer receives is parsed with pynats' own
route-role parser; the reference server's own ``$SYS`` traffic and PINGs are answered
or skipped, so the same assertions hold for both servers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import RawClient, ServerProcess
from pynats.protocol import ops
from route_support import Peer, client, start, until_pong

pytestmark = pytest.mark.interop

KINDS = ["pynats", "nats-server"]
@pytest.fixture(params=KINDS)
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, int]]:
    server, port = start(request.param, tmp_path)
    try:
        yield server, port
    finally:
        server.stop()


def test_accepting_side_sends_info_first(node: tuple[ServerProcess, int]) -> None:
    server, port = node
    peer = Peer(port)
    try:
        info = peer.info
        assert info["cluster"] == "C"
        assert info["port"] == port
        assert info["headers"] is True
        assert isinstance(info["server_id"], str) and info["server_id"]
        assert info["connect_urls"] == [f"127.0.0.1:{server.port}"]
        if server.kind == "pynats":  # no pooling, compression or leaf origins advertised
            assert not {"route_pool_size", "compression", "lnoc"} & set(info)
    finally:
        peer.close()


@pytest.mark.parametrize(("first", "err"), [
    (b"PING\r\n", b"-ERR 'Authorization Violation'\r\n"),
    (b"RS+ $G foo\r\n", b"-ERR 'Authorization Violation'\r\n"),
    (b'CONNECT {"lang":"python","verbose":false}\r\n',
     b"-ERR 'attempted to connect to route port'\r\n"),
    (b'CONNECT {"cluster":"OTHER","name":"NX"}\r\n',
     b"-ERR 'Rejecting connection, cluster name \"OTHER\" does not match \"C\"'\r\n"),
    (b'CONNECT {"gateway":"G","name":"NX"}\r\n',
     b"-ERR 'Rejecting connection from gateway \"G\" on the Route port'\r\n"),
], ids=["ping-first", "rs-first", "client-lang", "cluster-name", "gateway"])
def test_refused_handshakes(node: tuple[ServerProcess, int], first: bytes, err: bytes) -> None:
    _, port = node
    with RawClient(port) as raw:
        raw.send(first)
        assert raw.read_until_closed() == err


def test_peer_info_with_another_cluster_name_is_closed_silently(
        node: tuple[ServerProcess, int]) -> None:
    _, port = node
    with RawClient(port) as raw:
        raw.send(b'CONNECT {"name":"NX","cluster":"C"}\r\n'
                 b'INFO {"server_id":"NX","cluster":"OTHER","headers":true,"port":1}\r\n')
        assert b"-ERR" not in raw.read_until_closed()


def test_local_interest_is_announced_with_queue_weights(node: tuple[ServerProcess, int]) -> None:
    server, port = node
    with client(server) as local:
        local.send(b"SUB before 1\r\n")
        local.ping_pong()
        peer = Peer(port)
        try:
            peer.register()
            assert peer.next_op() == ops.RSub(b"$G", b"before", b"", 1)  # the initial dump
            steps = [
                (b"SUB foo 2\r\n", ops.RSub(b"$G", b"foo", b"", 1)),
                (b"SUB foo 3\r\nSUB bar q 4\r\n", ops.RSub(b"$G", b"bar", b"q", 1)),
                (b"SUB bar q 5\r\n", ops.RSub(b"$G", b"bar", b"q", 2)),
                (b"UNSUB 4\r\n", ops.RSub(b"$G", b"bar", b"q", 1)),
                (b"UNSUB 5\r\n", ops.RUnsub(b"$G", b"bar", b"q")),
                (b"UNSUB 2\r\nUNSUB 3\r\n", ops.RUnsub(b"$G", b"foo", b"")),
            ]
            for sent, announced in steps:
                local.send(sent)
                local.ping_pong()
                assert peer.next_op() == announced
        finally:
            peer.close()


def test_messages_go_to_the_route_once_with_queue_names(node: tuple[ServerProcess, int]) -> None:
    server, port = node
    peer = Peer(port)
    try:
        peer.register()
        peer.send(b"RS+ $G peer.> \r\nRS+ $G peer.x\r\nRS+ $G work q 1\r\nRS+ NOPE foo\r\n")
        peer.sync()
        with client(server) as local:
            deadline = time.monotonic() + 5
            local.send(b"PUB peer.x 2\r\nhi\r\n")
            op = peer.next_op()
            assert op == ops.RMsg(b"$G", b"peer.x", b"", (), None, b"hi")  # once, not twice
            assert time.monotonic() < deadline
            local.send(b"PUB work r 3\r\nabc\r\nHPUB peer.h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
            assert peer.next_op() == ops.RMsg(b"$G", b"work", b"r", (b"q",), None, b"abc")
            assert peer.next_op() == ops.RMsg(b"$G", b"peer.h", b"", (), b"NATS/1.0\r\n\r\n",
                                              b"hi")
            local.send(b"PUB nobody 1\r\nx\r\nPUB peer.x 1\r\ny\r\n")
            assert peer.next_op() == ops.RMsg(b"$G", b"peer.x", b"", (), None, b"y")
    finally:
        peer.close()


def test_routed_messages_reach_local_subscribers_only(node: tuple[ServerProcess, int]) -> None:
    server, port = node
    peer = Peer(port)
    try:
        peer.register()
        with client(server) as plain, client(server) as member:
            plain.send(b"SUB foo 1\r\n")
            plain.ping_pong()
            member.send(b"SUB foo q 9\r\n")
            member.ping_pong()
            assert peer.next_op() == ops.RSub(b"$G", b"foo", b"", 1)
            assert peer.next_op() == ops.RSub(b"$G", b"foo", b"q", 1)
            peer.send(b"RMSG $G foo 2\r\nhi\r\nRMSG $G foo | q 3\r\nabc\r\n"
                      b"RMSG $G foo + r q 1\r\nz\r\nRMSG $G foo | other 1\r\nw\r\n")
            peer.sync()
            assert until_pong(plain) == (
                b"MSG foo 1 2\r\nhi\r\nMSG foo 1 3\r\nabc\r\nMSG foo 1 r 1\r\nz\r\n"
                b"MSG foo 1 1\r\nw\r\n")
            assert until_pong(member) == b"MSG foo 9 3\r\nabc\r\nMSG foo 9 r 1\r\nz\r\n"
            peer.sync()  # nothing came back to the route it came from
            assert not [op for op in peer.pending if isinstance(op, ops.RMsg)
                        and op.account == b"$G"]
    finally:
        peer.close()


def test_route_answers_ping_and_survives_unknown_accounts(node: tuple[ServerProcess, int]) -> None:
    _, port = node
    peer = Peer(port)
    try:
        peer.register()
        peer.send(b"RS+ NOPE foo\r\nRMSG NOPE foo 1\r\nx\r\nA+ x\r\n")
        peer.sync()
    finally:
        peer.close()


@pytest.mark.parametrize("kind", KINDS)
def test_busy_route_port_is_fatal(kind: str, tmp_path: Path) -> None:
    import socket
    import subprocess

    from harness import server_command

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        conf = tmp_path / "busy.conf"
        conf.write_text(f"cluster {{ name: C, listen: 127.0.0.1:{port} }}\n")
        result = subprocess.run([*server_command(kind), "-c", str(conf), "-p", "-1",
                                 "-a", "127.0.0.1"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 1
    assert (f"[FTL] Error listening on router port: {port} - listen tcp 127.0.0.1:{port}: "
            "bind: address already in use") in result.stderr
