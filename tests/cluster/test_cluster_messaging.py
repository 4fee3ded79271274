"""Messages across a 3-node cluster: pub/sub, wildcards, headers, request/reply, queues.

Runs once per topology of kinds (see clusterkit.TOPOLOGIES) on one shared star cluster;
every test uses its own subjects, subscribes, waits until the interest is visible on the
publishing nodes (``/routez?subs=1``), then publishes. Deliveries are awaited with
bounded waits; the only sleeps are short quiet windows for deliveries that must *not*
happen (duplicates, messages without interest).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable

import pytest
from clusterclients import (
    TIMEOUT,
    Inbox,
    connect,
    connect_all,
    flush,
    gone,
    interest,
    quiet,
    unique,
)
from clusterkit import Cluster
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError

from harness import RawClient

#: Route messages a node may send to a peer without a test's doing (system traffic).
BACKGROUND_MSGS = 5


async def test_pubsub_across_every_ordered_pair(cluster: Cluster) -> None:
    base = unique("pairs")
    async with connect_all(cluster.nodes) as clients:
        inboxes = [Inbox(target=len(cluster) - 1) for _ in cluster.nodes]
        for j, nc in enumerate(clients):
            await nc.subscribe(f"{base}.to.{j}", cb=inboxes[j].cb)
            await flush(nc)
        for j, node in enumerate(cluster.nodes):
            await interest(cluster, f"{base}.to.{j}", node)
        for i, nc in enumerate(clients):
            for j in range(len(cluster)):
                if i != j:
                    await nc.publish(f"{base}.to.{j}", f"{i}->{j}".encode())
            await flush(nc)
        for j, inbox in enumerate(inboxes):
            await inbox.wait(f"deliveries to node {j}")
            expected = {f"{i}->{j}".encode() for i in range(len(cluster)) if i != j}
            assert sorted(inbox.data) == sorted(expected)


async def test_wildcards_across_nodes(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    base = unique("wild")
    star, full = Inbox(marker=b"end"), Inbox(marker=b"end")
    async with connect(a) as pub, connect(b) as sub_b, connect(c) as sub_c:
        await sub_b.subscribe(f"{base}.*.x", cb=star.cb)
        await sub_c.subscribe(f"{base}.>", cb=full.cb)
        await flush(sub_b)
        await flush(sub_c)
        await interest(cluster, f"{base}.*.x", b, on=[a])
        await interest(cluster, f"{base}.>", c, on=[a])
        for subject in ("a.x", "b.y", "a.b.x", "c.x"):
            await pub.publish(f"{base}.{subject}", subject.encode())
        await pub.publish(f"{base}.end.x", b"end")
        await flush(pub)
        await star.wait("the '*' subscriber's marker")
        await full.wait("the '>' subscriber's marker")
    assert star.data == [b"a.x", b"c.x", b"end"]
    assert full.data == [b"a.x", b"b.y", b"a.b.x", b"c.x", b"end"]
    assert full.subjects[2] == f"{base}.a.b.x"


def _raw_subscriber(port: int, subject: str) -> RawClient:
    raw = RawClient(port)
    raw.send(b'CONNECT {"verbose":false,"headers":true}\r\n')
    raw.send(f"SUB {subject} 7\r\n".encode())
    raw.ping_pong()
    return raw


def test_hpub_arrives_as_hmsg_on_another_node(cluster: Cluster) -> None:
    a, b, _ = cluster.nodes
    subject = unique("hdr")
    headers = b"NATS/1.0\r\nX-Trace: abc\r\nX-Multi: 1\r\nX-Multi: 2\r\n\r\n"
    payload = b"hello"
    sizes = f"{len(headers)} {len(headers) + len(payload)}".encode()
    with _raw_subscriber(b.ports.client, subject) as sub, RawClient(a.ports.client) as pub:
        cluster.wait_interest(subject, b, on=[a])
        pub.send(b'CONNECT {"verbose":false,"headers":true}\r\n')
        pub.send(b"HPUB %s reply.to %s\r\n%s%s\r\n" % (subject.encode(), sizes, headers, payload))
        pub.ping_pong()
        sub.expect(b"HMSG %s 7 reply.to %s\r\n%s%s\r\n"
                   % (subject.encode(), sizes, headers, payload))


async def test_headers_across_nodes_with_nats_py(cluster: Cluster) -> None:
    a, _, c = cluster.nodes
    subject = unique("hdr")
    inbox = Inbox(target=1)
    async with connect(a) as pub, connect(c) as sub:
        await sub.subscribe(subject, cb=inbox.cb)
        await flush(sub)
        await interest(cluster, subject, c, on=[a])
        await pub.publish(subject, b"body", headers={"X-One": "1", "X-Two": "two words"})
        await flush(pub)
        (msg,) = await inbox.wait("the message with headers")
    assert msg.data == b"body"
    assert msg.headers == {"X-One": "1", "X-Two": "two words"}


async def _responder(msg: Msg) -> None:
    await msg.respond(b"re:" + msg.data)


async def test_request_reply_across_nodes(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    subject = unique("svc")
    async with connect(b) as resp, connect(a) as req_a, connect(c) as req_c:
        await resp.subscribe(subject, cb=_responder)
        await flush(resp)
        await interest(cluster, subject, b)
        for requester, name in ((req_a, b"a"), (req_c, b"c")):
            for i in range(3):
                reply = await requester.request(subject, name + b"%d" % i, timeout=TIMEOUT)
                assert reply.data == b"re:" + name + b"%d" % i


async def test_no_responders_anywhere_is_reported_quickly(cluster: Cluster) -> None:
    a, _, c = cluster.nodes
    subject = unique("nobody")
    async with connect(a) as req:
        started = time.monotonic()
        with pytest.raises(NoRespondersError):
            await req.request(subject, b"anyone?", timeout=TIMEOUT)
        assert time.monotonic() - started < 1.5, "no-responders must not wait for the timeout"
        async with connect(c) as resp:
            await resp.subscribe(subject, cb=_responder)
            await flush(resp)
            await interest(cluster, subject, c, on=[a])
            reply = await req.request(subject, b"anyone?", timeout=TIMEOUT)
    assert reply.data == b"re:anyone?"


class Tally:
    """Deliveries to the queue members of every node, as (node index, payload)."""

    def __init__(self, total: int) -> None:
        self.seen: list[tuple[int, bytes]] = []
        self.total = total
        self.done = asyncio.Event()

    def member(self, node: int) -> Callable[[Msg], Awaitable[None]]:
        async def cb(msg: Msg) -> None:
            self.seen.append((node, msg.data))
            if len(self.seen) >= self.total:
                self.done.set()

        return cb

    def by_node(self) -> collections.Counter[int]:
        return collections.Counter(node for node, _ in self.seen)


async def _settle_queue(cluster: Cluster, clients: list[Client], subject: str,
                        members: list[int]) -> None:
    """Wait until every node knows every other node's members *with their weights*.

    RS+ updates travel in order on a route, so once a sentinel subscribed after the
    members is visible elsewhere, the final queue weight is known there too.
    """
    sentinel = unique("sentinel")
    for nc, count in zip(clients, members, strict=True):
        if count:
            await nc.subscribe(sentinel)
        await flush(nc)
    for node, count in zip(cluster.nodes, members, strict=True):
        if count:
            await interest(cluster, subject, node)
            await interest(cluster, sentinel, node)


async def _run_queue(cluster: Cluster, members: list[int], publisher: int,
                     total: int) -> Tally:
    """``members[i]`` queue members on node i; ``total`` messages published from one."""
    subject = unique("queue")
    tally = Tally(total)
    async with connect_all(cluster.nodes) as clients:
        for node, (nc, count) in enumerate(zip(clients, members, strict=True)):
            for _ in range(count):
                await nc.subscribe(subject, queue="workers", cb=tally.member(node))
        await _settle_queue(cluster, clients, subject, members)
        for i in range(total):
            await clients[publisher].publish(subject, b"%d" % i)
        await flush(clients[publisher])
        try:
            await asyncio.wait_for(tally.done.wait(), TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"{len(tally.seen)} of {total} delivered: "
                                 f"{tally.by_node()}") from None
        await quiet()  # duplicates would arrive now
    return tally


async def test_queue_group_delivers_each_message_once_cluster_wide(cluster: Cluster) -> None:
    total = 300
    tally = await _run_queue(cluster, members=[2, 1, 2], publisher=1, total=total)
    payloads = collections.Counter(data for _, data in tally.seen)
    assert len(tally.seen) == total, f"{len(tally.seen)} deliveries for {total} messages"
    assert set(payloads) == {b"%d" % i for i in range(total)}
    by_node = tally.by_node()
    assert all(by_node[n] > 0 for n in range(3)), by_node  # ~120/60/120 expected


async def test_queue_distribution_follows_member_counts(cluster: Cluster) -> None:
    total = 400
    tally = await _run_queue(cluster, members=[1, 3, 0], publisher=2, total=total)
    by_node = tally.by_node()
    assert len(tally.seen) == total and len({data for _, data in tally.seen}) == total
    # Expected 100 on node 0 and 300 on node 1 (standard deviation ~9): bounds are ~7 sd.
    assert by_node[1] >= 240 and by_node[0] >= 40, by_node


async def test_interest_removed_when_subscriber_leaves(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    closed, unsubscribed = unique("bye"), unique("unsub")
    async with connect(b) as sub_b, connect(c) as sub_c:
        await sub_b.subscribe(closed)
        sub = await sub_c.subscribe(unsubscribed)
        await flush(sub_b)
        await flush(sub_c)
        await interest(cluster, closed, b)
        await interest(cluster, unsubscribed, c)
        await sub.unsubscribe()
        await flush(sub_c)
        await gone(cluster, unsubscribed, c)
    await gone(cluster, closed, b)
    before = a.routed_out_msgs(b)
    async with connect(a) as pub:
        for _ in range(50):
            await pub.publish(closed, b"x")
        await flush(pub)
    assert a.routed_out_msgs(b) - before <= BACKGROUND_MSGS, "forwarded without interest"


async def test_no_duplicates_and_no_loops(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    base = unique("dup")
    count = 50
    inboxes = {name: Inbox(marker=b"end") for name in ("a", "b", "c", "b>", "c*")}
    async with connect_all(cluster.nodes) as (nc_a, nc_b, nc_c), connect(b) as wild_b:
        await nc_a.subscribe(f"{base}.data", cb=inboxes["a"].cb)
        await nc_b.subscribe(f"{base}.data", cb=inboxes["b"].cb)
        await nc_c.subscribe(f"{base}.data", cb=inboxes["c"].cb)
        await wild_b.subscribe(f"{base}.>", cb=inboxes["b>"].cb)
        await nc_c.subscribe(f"{base}.*", cb=inboxes["c*"].cb)
        for nc in (nc_b, nc_c, wild_b):
            await flush(nc)
        for subject, node in ((f"{base}.data", b), (f"{base}.data", c),
                              (f"{base}.>", b), (f"{base}.*", c)):
            await interest(cluster, subject, node, on=[a])
        routed_before = {(b, c): b.routed_out_msgs(c), (c, b): c.routed_out_msgs(b)}
        for i in range(count):
            await nc_a.publish(f"{base}.data", b"%d" % i)
        await nc_a.publish(f"{base}.data", b"end")
        await flush(nc_a)
        for name, inbox in inboxes.items():
            await inbox.wait(f"the marker at subscriber {name}")
        await quiet()  # copies looping through a third node would arrive now
    expected = [b"%d" % i for i in range(count)] + [b"end"]
    for name, inbox in inboxes.items():
        assert inbox.data == expected, f"subscriber {name} got {len(inbox.data)} messages"
    for (x, y), before in routed_before.items():
        forwarded = x.routed_out_msgs(y) - before
        assert forwarded <= BACKGROUND_MSGS, f"{x.label} forwarded {forwarded} msgs to {y.label}"


async def test_nothing_delivered_without_interest(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    base = unique("none")
    other_b, other_c = Inbox(marker=b"mark"), Inbox(marker=b"mark")
    with _raw_subscriber(b.ports.client, f"{base}.unrelated") as raw:
        async with connect(a) as pub, connect(b) as sub_b, connect(c) as sub_c:
            await sub_b.subscribe(f"{base}.other", cb=other_b.cb)
            await sub_c.subscribe(f"{base}.other", cb=other_c.cb)
            await flush(sub_b)
            await flush(sub_c)
            await interest(cluster, f"{base}.other", b, on=[a])
            await interest(cluster, f"{base}.other", c, on=[a])
            before = {peer.name: a.routed_out_msgs(peer) for peer in (b, c)}
            for _ in range(50):
                await pub.publish(f"{base}.nobody", b"lost")
            await pub.publish(f"{base}.other", b"mark")
            await flush(pub)
            await other_b.wait("the marker on node 1")
            await other_c.wait("the marker on node 2")
            await quiet()
        assert raw.read_available(0.05) == b""
    assert other_b.data == other_c.data == [b"mark"]
    for peer in (b, c):
        assert a.routed_out_msgs(peer) - before[peer.name] <= 1 + BACKGROUND_MSGS
