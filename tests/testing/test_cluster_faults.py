"""Clusters: routing, lame duck failover, partitions, killing and restarting a node."""

from __future__ import annotations

import asyncio

import nats
import pytest

import pynats.client as pc
from pynats.testing import ClusterHandle, run_cluster


async def next_payload(sub: nats.aio.subscription.Subscription, timeout: float = 2) -> bytes:
    return bytes((await sub.next_msg(timeout=timeout)).data)


async def test_messages_cross_the_cluster(nats_cluster: ClusterHandle) -> None:
    assert len(nats_cluster) == 3
    assert all(node.route_count == 2 for node in nats_cluster)
    sub_nc = await nats.connect(nats_cluster[2].url)
    pub_nc = await pc.connect(nats_cluster[0].url)
    sub = await sub_nc.subscribe("across")
    await nats_cluster.aio.wait_for_interest("across")
    published = nats_cluster[0].record_published("across")
    pub_nc.publish("across", b"hop")
    assert await next_payload(sub) == b"hop"
    assert published.payloads == [b"hop"]
    published.close()
    nats_cluster[0].wait_until(
        lambda: nats_cluster[0].server.router.publish.__name__ == "_publish_clustered")
    await sub_nc.close()
    await pub_nc.close()


@pytest.mark.nats_cluster(size=2)
async def test_lame_duck_moves_the_client_to_another_node(nats_cluster: ClusterHandle) -> None:
    first, second = nats_cluster
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await nats.connect(first.url, reconnect_time_wait=0.05, reconnected_cb=on_reconnect,
                            dont_randomize=True)
    await nc.flush()
    assert second.url.removeprefix("nats://") in {
        f"{u.hostname}:{u.port}" for u in nc.discovered_servers}
    first.enter_lame_duck(duration=0.2, grace=0.05)
    await asyncio.wait_for(reconnected.wait(), 5)
    assert nc.connected_url is not None and nc.connected_url.port == second.port
    sub = await nc.subscribe("still.here")
    await second.aio.wait_for_subscription("still.here")
    pub = await nats.connect(second.url)
    await pub.publish("still.here", b"ok")
    assert await next_payload(sub) == b"ok"
    await nc.close()
    await pub.close()


async def test_a_partition_cuts_the_route_until_healed(nats_cluster: ClusterHandle) -> None:
    a, b, c = nats_cluster
    sub_nc = await nats.connect(b.url)
    sub = await sub_nc.subscribe("p")
    await nats_cluster.aio.wait_for_interest("p")
    nats_cluster.partition(0, 1)
    await nats_cluster.aio.wait_until_routed()  # every route but 0-1
    assert (a.route_count, b.route_count, c.route_count) == (1, 1, 2)
    pub_a = await nats.connect(a.url)
    pub_c = await nats.connect(c.url)
    await pub_a.publish("p", b"from a")  # one hop only: b is unreachable from a
    await pub_a.flush()
    await pub_c.publish("p", b"from c")
    assert await next_payload(sub) == b"from c"
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(timeout=0.2)
    nats_cluster.heal()
    await nats_cluster.aio.wait_until_routed()
    assert a.route_count == 2
    await a.aio.wait_for_interest("p")
    await pub_a.publish("p", b"healed")
    assert await next_payload(sub) == b"healed"
    for nc in (sub_nc, pub_a, pub_c):
        await nc.close()


def test_a_killed_node_restarts_rejoins_and_serves_its_client_again() -> None:
    with run_cluster(3) as cluster:
        node = cluster[1]

        async def main() -> None:
            reconnected = asyncio.Event()

            async def on_reconnect() -> None:
                reconnected.set()

            sub_nc = await nats.connect(node.url, reconnect_time_wait=0.05,
                                        reconnected_cb=on_reconnect, dont_randomize=True,
                                        name="on-1")
            sub = await sub_nc.subscribe("back")
            await cluster.aio.wait_for_interest("back")
            await asyncio.to_thread(node.kill)
            assert node.running is False
            cluster.wait_until_routed()  # the two others stay routed to each other
            await asyncio.to_thread(node.start)
            await cluster.aio.wait_until_routed()
            await asyncio.wait_for(reconnected.wait(), 5)
            await cluster.aio.wait_for_interest("back")
            pub = await nats.connect(cluster[0].url)
            await pub.publish("back", b"again")
            assert await next_payload(sub) == b"again"
            await sub_nc.close()
            await pub.close()

        asyncio.run(main())


async def test_async_cluster_on_the_callers_loop() -> None:
    async with run_cluster(2, max_payload=4096) as cluster:
        assert all(node.options.max_payload == 4096 for node in cluster)
        assert cluster[0].server.loop is asyncio.get_running_loop()
        nc = await pc.connect(cluster[1].url)
        sub = nc.subscribe("here")
        await cluster.wait_for_interest("here")
        other = await pc.connect(cluster[0].url)
        other.publish("here", b"1")
        assert (await sub.next_msg(2)).data == b"1"
        cluster.partition(cluster[0], cluster[1])
        await cluster.wait_until_routed()
        assert cluster[0].route_count == 0

        def refusals() -> int:
            return sum("Route Refused" in line for line in cluster[1].log_lines())

        before = refusals()
        await cluster[1].restart()  # a partition outlives a restart (new server id)
        await cluster[1].wait_until(lambda: refusals() > before)
        assert cluster[1].route_count == 0
        cluster.heal(0, 1)
        await cluster.wait_until_routed()
        assert cluster[0].route_count == 1
        await nc.close()
        await other.close()
