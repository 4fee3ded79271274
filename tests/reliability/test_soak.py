"""Soak: steady publish/subscribe, queue groups and request/reply for a bounded time.

For healthy subscribers nothing may be lost or duplicated: every fan-out subscriber gets
each sequence number exactly once, the queue group gets each exactly once in total, and
every request is answered. The server's RSS is sampled; growth after the warm-up is
reported and bounded. A separate test opens and closes thousands of connections and
checks the file descriptors come back.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

import nats
import pytest
from support import (
    KINDS,
    Recorder,
    Sampler,
    Scale,
    fd_count,
    mib,
    raw_connect,
    reference_in_full_only,
    rss_bytes,
    server_pid,
    start,
    wait_until,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))

from clusterkit import Cluster

RSS_BOUND = 32 << 20


async def soak(pub_url: str, sub_urls: list[str], seconds: float, rate: int) -> dict[str, int]:
    """Run the load for ``seconds`` at ``rate`` msgs/s; returns the loss figures."""
    conns = [await nats.connect(url, max_reconnect_attempts=0) for url in sub_urls]
    pub = await nats.connect(pub_url, max_reconnect_attempts=0)
    fan = [Counter[int](), Counter[int]()]
    queue: list[Counter[int]] = [Counter(), Counter(), Counter()]

    def counting(box: Counter[int]):  # type: ignore[no-untyped-def]
        async def cb(msg) -> None:  # type: ignore[no-untyped-def]
            box[int(msg.data)] += 1
        return cb

    async def respond(msg) -> None:  # type: ignore[no-untyped-def]
        await msg.respond(msg.data)

    for i, box in enumerate(fan):
        await conns[i % len(conns)].subscribe("soak.fan", cb=counting(box))
    for i, box in enumerate(queue):
        await conns[i % len(conns)].subscribe("soak.q", queue="workers", cb=counting(box))
    for i in range(2):
        await conns[(i + 1) % len(conns)].subscribe("soak.rpc", queue="svc", cb=respond)
    for nc in conns:
        await nc.flush()
    await asyncio.sleep(0.5)  # interest crosses the routes in a cluster
    sent = requests = answered = 0
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            data = str(sent).encode()
            await pub.publish("soak.fan", data)
            await pub.publish("soak.q", data)
            sent += 1
        if sent // 50 > requests:  # one request per 50 messages
            requests += 1
            reply = await pub.request("soak.rpc", str(requests).encode(), timeout=5)
            answered += reply.data == str(requests).encode()
        await asyncio.sleep(0.005)
    await pub.flush()
    expected = set(range(sent))

    def settled() -> bool:
        return all(sum(b.values()) >= sent for b in fan) and \
            sum(sum(b.values()) for b in queue) >= sent

    deadline = time.monotonic() + 10
    while not settled() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # late duplicates would show up now
    for nc in [*conns, pub]:
        await nc.close()
    merged: Counter[int] = sum(queue, Counter())
    return {
        "sent": sent,
        "fan_lost": sum(len(expected - set(b)) for b in fan),
        "fan_duplicated": sum(sum(n - 1 for n in b.values() if n > 1) for b in fan),
        "queue_lost": len(expected - set(merged)),
        "queue_duplicated": sum(n - 1 for n in merged.values() if n > 1),
        "queue_spread_min": min(sum(b.values()) for b in queue),
        "requests": requests,
        "requests_lost": requests - answered,
    }


def check(figures: dict[str, int]) -> None:
    for key in ("fan_lost", "fan_duplicated", "queue_lost", "queue_duplicated",
                "requests_lost"):
        assert figures[key] == 0, figures
    assert figures["sent"] > 0 and figures["requests"] > 0, figures


@pytest.mark.parametrize("kind", KINDS)
def test_soak_single_server(kind: str, scale: Scale, record: Recorder, tmp_path: Path) -> None:
    """Fan-out, a queue group and request/reply on one server."""
    reference_in_full_only(kind, scale)
    seconds, rate = scale.t(4, 60), scale.n(1500, 3000)
    with start(kind, tmp_path) as server, Sampler(server_pid(server), 0.25) as rss:
        figures = asyncio.run(soak(server.url, [server.url] * 3, seconds, rate))
    growth = rss.growth_after(0.3)
    record.update(kind=kind, seconds=seconds, rate=rate, rss_start_mib=mib(rss.first()),
                  rss_peak_mib=mib(rss.peak()), rss_growth_after_warmup_mib=mib(growth),
                  **figures)
    check(figures)
    assert growth < RSS_BOUND


@pytest.mark.parametrize("kind", KINDS)
def test_soak_cluster(kind: str, scale: Scale, record: Recorder, tmp_path: Path) -> None:
    """Publisher on node 0, subscribers and responders spread over nodes 1 and 2."""
    reference_in_full_only(kind, scale)
    seconds, rate = scale.t(4, 60), scale.n(1000, 2000)
    with Cluster([kind] * 3, tmp_path) as cluster:
        pids = [server_pid(node.proc) for node in cluster.nodes]  # type: ignore[arg-type]
        samplers = [Sampler(pid, 0.5) for pid in pids]
        for sampler in samplers:
            sampler.__enter__()
        try:
            figures = asyncio.run(soak(cluster[0].url, [cluster[1].url, cluster[2].url,
                                                        cluster[0].url], seconds, rate))
        finally:
            for sampler in samplers:
                sampler.__exit__()
    growths = [s.growth_after(0.3) for s in samplers]
    record.update(kind=kind, nodes=3, seconds=seconds, rate=rate,
                  rss_growth_after_warmup_mib=[mib(g) for g in growths], **figures)
    check(figures)
    assert max(growths) < RSS_BOUND


@pytest.mark.parametrize("kind", KINDS)
def test_connect_disconnect_no_fd_leak(kind: str, scale: Scale, record: Recorder,
                                       tmp_path: Path) -> None:
    cycles = scale.n(1000, 10_000)
    with start(kind, tmp_path) as server:
        pid = server_pid(server)
        with raw_connect(server.port):
            pass
        fds, rss_before = fd_count(pid), rss_bytes(pid)
        began = time.monotonic()
        for i in range(cycles):
            raw = raw_connect(server.port, subscribe=b"SUB x.%d 1\r\n" % i)
            raw.close()
        took = time.monotonic() - began
        settle = wait_until(lambda: fd_count(pid) <= fds, 15, f"fd count back to {fds}")
        rss_after = rss_bytes(pid)
        with raw_connect(server.port):
            pass
    record.update(kind=kind, cycles=cycles, cycles_per_s=int(cycles / took), fds_before=fds,
                  fd_settle_s=settle, rss_growth_mib=mib(rss_after - rss_before))
    assert rss_after - rss_before < RSS_BOUND
