"""Operating a cluster: routes added and removed by reload, lame duck seen by peers.

Run against pynats and nats-server alike, each step waiting on a log line or on a
message crossing the cluster (bounded), never on a sleep.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from harness import RawClient, ServerProcess
from route_support import ROUTE_RE, delivered_across, start_node

pytestmark = pytest.mark.interop
KINDS = ["pynats", "nats-server"]


@pytest.mark.parametrize("kind", KINDS)
def test_reload_adds_and_removes_a_route(kind: str, tmp_path: Path,
                                         nodes: list[ServerProcess]) -> None:
    b, b_port = start_node(kind, tmp_path, "b", "")
    nodes.append(b)
    a, _ = start_node(kind, tmp_path, "a", "")
    nodes.append(a)
    conf = tmp_path / "a.conf"
    conf.write_text(conf.read_text().replace(
        "listen: 127.0.0.1:-1", f"listen: 127.0.0.1:-1\nroutes: [nats-route://127.0.0.1:{b_port}]"))
    mark = len(a.lines)
    a.signal(signal.SIGHUP)
    assert a.wait_for_log("Reloaded server configuration", 10.0, mark)
    assert delivered_across(b, a)
    conf.write_text(conf.read_text().replace(f"routes: [nats-route://127.0.0.1:{b_port}]", ""))
    mark = len(a.lines)
    a.signal(signal.SIGHUP)
    assert a.wait_for_log("Router connection closed: Route Removed", 10.0, mark)
    assert not delivered_across(b, a, timeout=1.5)


def connect_urls(raw: RawClient, timeout: float = 10.0) -> list[str]:
    """The ``connect_urls`` of the next INFO the server pushes.

    PINGs are answered; the INFO that answers a protocol-1 client's first PING is skipped.
    """
    deadline = time.monotonic() + timeout
    while True:
        line = raw.read_line(deadline - time.monotonic())
        if line.startswith(b"INFO ") and b'"connect_info":true' not in line:
            urls: list[str] = json.loads(line[5:]).get("connect_urls", [])
            return urls
        if line.startswith(b"PING"):
            raw.send(b"PONG\r\n")


@pytest.mark.parametrize("kind", KINDS)
def test_clients_learn_of_peers_and_of_a_lame_duck(kind: str, tmp_path: Path,
                                                   nodes: list[ServerProcess]) -> None:
    a, a_port = start_node(kind, tmp_path, "a", "")
    nodes.append(a)
    with RawClient(a.port) as raw:
        assert "connect_urls" not in json.loads(raw.info[5:])  # no peer yet
        raw.send(b'CONNECT {"verbose":false,"protocol":1}\r\n')
        raw.ping_pong()
        b, _ = start_node(kind, tmp_path, "b",
                          f"routes: [nats-route://127.0.0.1:{a_port}]",
                          top="lame_duck_grace_period: 10s")
        nodes.append(b)
        assert sorted(connect_urls(raw)) == sorted([f"127.0.0.1:{a.port}", f"127.0.0.1:{b.port}"])
        b.signal(signal.SIGUSR2)
        assert connect_urls(raw) == [f"127.0.0.1:{a.port}"]


@pytest.mark.parametrize(("seed_kind", "joiner_kind"), [
    ("pynats", "pynats"), ("pynats", "nats-server"), ("nats-server", "pynats")])
def test_nodes_without_a_cluster_name_agree_on_one(seed_kind: str, joiner_kind: str,
                                                    nodes: list[ServerProcess]) -> None:
    seed = ServerProcess(seed_kind, ["--cluster", "nats://127.0.0.1:-1"]).start()
    nodes.append(seed)
    line = seed.wait_for_log("Listening for route connections on", 10.0)
    match = ROUTE_RE.search(line or "")
    assert match is not None, seed.lines
    joiner = ServerProcess(joiner_kind, ["--cluster", "nats://127.0.0.1:-1", "--routes",
                                         f"nats://127.0.0.1:{match.group(2)}"]).start()
    nodes.append(joiner)
    assert delivered_across(joiner, seed)
    assert delivered_across(seed, joiner)
    deadline = time.monotonic() + 5.0  # the log lines are read by a thread: may lag
    updated: list[ServerProcess] = []
    while not updated and time.monotonic() < deadline:
        updated = [server for server in (seed, joiner)
                   if server.wait_for_log("Cluster name updated to", 0.05)]
    assert len(updated) == 1  # exactly one of the two gave up its generated name
