"""Route permissions (``cluster.permissions``): what a node imports from and exports to
its peers, on the wire, against pynats and nats-server alike (CLUSTER.md section 14).

``import`` limits the interest a node announces (no RS+ for subjects it does not
import), so peers send it only what it imports; a routed message is not checked again
on arrival, as in nats-server. ``export`` limits the peer interest it takes (so it
forwards only exported subjects).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import ServerProcess
from pynats.protocol import ops
from route_support import Peer, client, start, until_pong

pytestmark = pytest.mark.interop

PERMISSIONS = 'permissions { import: { allow: ["in.>"] }, export: { deny: ["secret.>"] } }'


@pytest.fixture(params=["pynats", "nats-server"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServerProcess, int]]:
    server, port = start(request.param, tmp_path, PERMISSIONS)
    try:
        yield server, port
    finally:
        server.stop()


def test_info_carries_the_permissions(node: tuple[ServerProcess, int]) -> None:
    _, port = node
    peer = Peer(port)
    try:
        assert peer.info["import"] == {"allow": ["in.>"]}
        assert peer.info["export"] == {"deny": ["secret.>"]}
    finally:
        peer.close()


def test_only_imported_interest_is_announced(node: tuple[ServerProcess, int]) -> None:
    server, port = node
    peer = Peer(port)
    try:
        peer.register()
        with client(server) as local:
            local.send(b"SUB other 1\r\nSUB in.x 2\r\n")
            local.ping_pong()
            assert peer.next_op() == ops.RSub(b"$G", b"in.x", b"", 1)
    finally:
        peer.close()


def test_routed_messages_are_not_checked_again(node: tuple[ServerProcess, int]) -> None:
    server, port = node
    peer = Peer(port)
    try:
        peer.register()
        with client(server) as local:
            local.send(b"SUB > 1\r\n")
            local.ping_pong()
            peer.send(b"RMSG $G other 1\r\nx\r\nRMSG $G in.y 1\r\ny\r\n")
            peer.sync()
            assert until_pong(local) == b"MSG other 1 1\r\nx\r\nMSG in.y 1 1\r\ny\r\n"
    finally:
        peer.close()


def test_only_exported_interest_is_served(node: tuple[ServerProcess, int]) -> None:
    server, port = node
    peer = Peer(port)
    try:
        peer.register()
        peer.send(b"RS+ $G secret.a\r\nRS+ $G open.a\r\n")
        peer.sync()
        with client(server) as local:
            local.send(b"PUB secret.a 1\r\nx\r\nPUB open.a 1\r\ny\r\n")
            local.ping_pong()
            assert peer.next_op() == ops.RMsg(b"$G", b"open.a", b"", (), None, b"y")
    finally:
        peer.close()


def test_reload_widens_the_import(node: tuple[ServerProcess, int], tmp_path: Path) -> None:
    import signal

    server, port = node
    peer = Peer(port)
    try:
        peer.register()
        with client(server) as local:
            local.send(b"SUB other 1\r\n")
            local.ping_pong()
            conf = tmp_path / f"{server.kind}.conf"
            conf.write_text(conf.read_text().replace('["in.>"]', '["in.>", "other"]'))
            mark = len(server.lines)
            server.signal(signal.SIGHUP)
            assert server.wait_for_log("Reloaded server configuration", 10.0, mark)
            assert peer.next_op() == ops.RSub(b"$G", b"other", b"", 1)
    finally:
        peer.close()
