"""Cluster membership: gossip, connect_urls, SIGKILL and restart, client fail-over.

Runs on a chain (node i routes only to node i-1, kinds in reverse order, see
conftest.chain_cluster), so the full mesh exists only if gossip works. The tests that
kill a node leave it to ``healed_chain`` to restart it (same ports) before the next test.
"""

from __future__ import annotations

import asyncio
import json

from clusterclients import TIMEOUT, Inbox, connect, flush, interest, unique
from clusterkit import Cluster, ClusterError, Node, poll, pools_routes
from nats.aio.client import Client

from harness import RawClient

#: How long a client may take to notice its server died and reconnect to another.
FAILOVER_TIMEOUT = 10.0


def victim_of(cluster: Cluster) -> Node:
    """The node to kill: the first pynats node with an explicit route, else node 1."""
    for node in cluster.nodes[1:]:
        if node.kind == "pynats":
            return node
    return cluster[1]


def test_chain_of_explicit_routes_becomes_a_full_mesh(chain_cluster: Cluster) -> None:
    chain_cluster.wait_mesh()  # node 0 and node 2 only meet through gossip
    first, middle, last = chain_cluster.nodes
    for node in chain_cluster.nodes:
        routez = node.routez()
        assert routez["num_routes"] == len(routez["routes"])
        assert node.remote_ids() == {p.server_id for p in chain_cluster.others(node)}
        if not pools_routes(node.kind):  # pynats does not pool: one route per peer
            assert routez["num_routes"] == len(chain_cluster) - 1, routez
    assert all(r["is_configured"] and r["did_solicit"] for r in last.routes_to(middle))
    gossiped = first.routes_to(last) + last.routes_to(first)
    assert gossiped and not any(r["is_configured"] for r in gossiped)
    assert all(r["remote_name"] == last.name for r in first.routes_to(last))


def _client_info(node: Node) -> dict[str, object]:
    with RawClient(node.ports.client) as raw:
        line = raw.info.decode()
    assert line.startswith("INFO "), line
    info: dict[str, object] = json.loads(line[5:])
    return info


def _wait_connect_urls(node: Node, expected: set[str]) -> dict[str, object]:
    """The node's client INFO once its connect_urls are ``expected`` (bounded wait:
    each route's client URLs are added when that route registers)."""
    def check() -> dict[str, object] | None:
        info = _client_info(node)
        urls = info.get("connect_urls")
        return info if isinstance(urls, list) and set(urls) == expected else None

    return poll(check, TIMEOUT, lambda: f"{node.label} INFO: {_client_info(node)}")


def test_client_info_lists_every_node_in_connect_urls(healed_chain: Cluster) -> None:
    everyone = {n.client_hostport for n in healed_chain.nodes}  # nats-server lists itself too
    for node in healed_chain.nodes:
        info = _wait_connect_urls(node, everyone)
        assert info["cluster"] == node.cluster_name
        varz_urls = node.varz().get("connect_urls")
        assert set(varz_urls or []) == everyone, varz_urls


async def _roundtrip(cluster: Cluster, pub_node: Node, sub_node: Node) -> None:
    subject = unique("after")
    inbox = Inbox(target=1)
    async with connect(sub_node) as sub, connect(pub_node) as pub:
        await sub.subscribe(subject, cb=inbox.cb)
        await flush(sub)
        await interest(cluster, subject, sub_node, on=[pub_node])
        await pub.publish(subject, f"{pub_node.name}->{sub_node.name}".encode())
        await flush(pub)
        await inbox.wait(f"{pub_node.label} -> {sub_node.label}")
    assert inbox.data == [f"{pub_node.name}->{sub_node.name}".encode()]


async def test_killed_node_restarts_on_same_ports_and_rejoins(healed_chain: Cluster) -> None:
    victim = victim_of(healed_chain)
    old_ports = victim.ports
    victim.kill()
    await asyncio.to_thread(healed_chain.wait_departed, victim)  # peers saw the sockets drop
    survivors = healed_chain.others(victim)
    await asyncio.to_thread(healed_chain.restart, victim)
    assert victim.ports == old_ports
    await asyncio.to_thread(healed_chain.wait_mesh)
    for other in survivors:
        await _roundtrip(healed_chain, other, victim)
        await _roundtrip(healed_chain, victim, other)


async def test_client_fails_over_to_a_discovered_node(healed_chain: Cluster) -> None:
    victim = victim_of(healed_chain)
    subject = unique("failover")
    inbox = Inbox(target=1)
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    async with connect(victim, allow_reconnect=True, reconnect_time_wait=0.1,
                       max_reconnect_attempts=50, reconnected_cb=on_reconnect) as nc:
        await nc.subscribe(subject, cb=inbox.cb)
        await flush(nc)
        assert {u.netloc for u in nc.discovered_servers} == {
            n.client_hostport for n in healed_chain.others(victim)}
        victim.kill()
        await asyncio.wait_for(reconnected.wait(), FAILOVER_TIMEOUT)
        landed = _node_of(healed_chain, nc)
        await flush(nc)  # the SUB is replayed on the new node before this PONG
        sender = next(n for n in healed_chain.others(victim) if n is not landed)
        await interest(healed_chain, subject, landed, on=[sender])
        async with connect(sender) as pub:
            await pub.publish(subject, b"after fail-over")
            await flush(pub)
        await inbox.wait("the message after fail-over")
    assert inbox.data == [b"after fail-over"]


def _node_of(cluster: Cluster, nc: Client) -> Node:
    url = nc.connected_url
    assert url is not None
    for node in cluster.nodes:
        if node.ports.client == url.port and node.running:
            return node
    raise ClusterError(f"client connected to {url.netloc}, which is not a live node")
