"""Faults: a cluster node killed (-9) or frozen under load, a server restarted, lame duck.

Core NATS delivers at most once, so messages in flight to a node that dies are gone;
what is promised, and asserted, is that traffic between the surviving nodes loses
nothing, that the lost node's clients fail over and get their subscriptions back, and
that the node rejoins the mesh when it comes back.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from support import (
    KINDS,
    Recorder,
    Sampler,
    Scale,
    mib,
    reference_in_full_only,
    server_pid,
    start,
)

from route_support import delivered_across, start_node

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))

from clusterkit import Cluster


class Watch:
    """A nats-py client's connection events, timestamped."""

    def __init__(self) -> None:
        self.disconnected: float | None = None
        self.reconnected: float | None = None

    async def on_disconnect(self) -> None:
        self.disconnected = self.disconnected or time.monotonic()

    async def on_reconnect(self) -> None:
        self.reconnected = time.monotonic()


async def connect(urls: list[str], watch: Watch | None = None) -> Any:
    options: dict[str, Any] = {"servers": urls, "reconnect_time_wait": 0.2,
                               "max_reconnect_attempts": -1, "connect_timeout": 2,
                               "dont_randomize": True}
    if watch is not None:
        options.update(disconnected_cb=watch.on_disconnect, reconnected_cb=watch.on_reconnect)
    return await nats.connect(**options)


def counter(box: list[int]) -> Callable[[Any], Any]:
    async def cb(msg: Any) -> None:
        box.append(int(msg.data))
    return cb


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    began = time.monotonic()
    while not predicate():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout}s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


async def steady(pub: Any, subjects: list[str], seconds: float, rate: int,
                 during: Callable[[float], None] | None = None) -> int:
    """Publish sequence numbers on ``subjects`` at ``rate``/s; ``during(elapsed)`` is
    called each tick (to inject a fault). Returns how many were sent on each."""
    sent = 0
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < seconds:
        while sent < int(elapsed * rate):
            for subject in subjects:
                await pub.publish(subject, str(sent).encode())
            sent += 1
        if during is not None:
            during(elapsed)
        await asyncio.sleep(0.01)
    await pub.flush()
    return sent


@pytest.mark.parametrize("kind", KINDS)
def test_kill9_node_under_load(kind: str, scale: Scale, record: Recorder,
                               tmp_path: Path) -> None:
    """n0 is killed -9 while n1 publishes to n2 and to a client of n0: n1→n2 loses
    nothing, n0's client fails over and is subscribed again, n0 rejoins the mesh."""
    reference_in_full_only(kind, scale)
    seconds, rate = scale.t(4, 30), scale.n(500, 2000)
    with Cluster([kind] * 3, tmp_path) as cluster:
        n0, n1, n2 = cluster.nodes
        urls = [n.url for n in cluster.nodes]

        async def main() -> dict[str, Any]:
            watch = Watch()
            victim = await connect(urls, watch)
            live_sub = await connect([n2.url])
            pub = await connect([n1.url])
            live: list[int] = []
            moved: list[int] = []
            await live_sub.subscribe("f.live", cb=counter(live))
            await victim.subscribe("f.victim", cb=counter(moved))
            await live_sub.flush()
            await victim.flush()
            await asyncio.sleep(0.5)
            killed: list[float] = []

            def fault(elapsed: float) -> None:
                if not killed and elapsed > seconds / 4:
                    n0.kill()
                    killed.append(time.monotonic())

            sent = await steady(pub, ["f.live", "f.victim"], seconds, rate, fault)
            await until(lambda: len(live) >= sent, 10, f"f.live got {len(live)}/{sent}")
            await until(lambda: watch.reconnected is not None, 10, "victim never reconnected")
            after = sent + 1000
            await until_delivered(pub, victim, moved, after)
            for nc in (victim, live_sub, pub):
                await nc.close()
            assert watch.reconnected is not None
            return {"sent": sent, "live_lost": sent - len(set(live)),
                    "live_duplicated": len(live) - len(set(live)),
                    "failover_s": watch.reconnected - killed[0],
                    "victim_lost_while_failing_over": sent - len(set(moved) & set(range(sent)))}

        figures = asyncio.run(main())
        began = time.monotonic()
        cluster.restart(n0)
        cluster.wait_mesh()
        rejoin = time.monotonic() - began
        assert n0.proc is not None and n1.proc is not None and n2.proc is not None
        assert delivered_across(n0.proc, n1.proc) and delivered_across(n2.proc, n0.proc)
    record.update(kind=kind, rate=rate, seconds=seconds, rejoin_s=rejoin, **figures)
    assert figures["live_lost"] == 0 and figures["live_duplicated"] == 0
    assert figures["failover_s"] < 10


async def until_delivered(pub: Any, nc: Any, box: list[int], marker: int) -> None:
    """Publish ``marker`` on f.victim until ``nc`` receives it (interest re-established)."""
    deadline = time.monotonic() + 15
    while marker not in box:
        assert time.monotonic() < deadline, "the failed-over client never got messages again"
        await pub.publish("f.victim", str(marker).encode())
        await pub.flush()
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("kind", KINDS)
def test_route_stops_reading(kind: str, scale: Scale, record: Recorder,
                             tmp_path: Path) -> None:
    """n0 is frozen (SIGSTOP: its routes stop reading) under load, then thawed: traffic
    n1→n2 loses nothing, n1's memory stays bounded, and n0 receives again after."""
    reference_in_full_only(kind, scale)
    seconds, rate = scale.t(4, 30), scale.n(500, 2000)
    with Cluster([kind] * 3, tmp_path) as cluster:
        n0, n1, n2 = cluster.nodes
        assert n0.proc is not None and n0.proc.proc is not None and n1.proc is not None

        async def main() -> dict[str, Any]:
            live_sub = await connect([n2.url])
            frozen_sub = await connect([n0.url])
            pub = await connect([n1.url])
            live: list[int] = []
            frozen: list[int] = []
            await live_sub.subscribe("p.live", cb=counter(live))
            await frozen_sub.subscribe("p.frozen", cb=counter(frozen))
            await live_sub.flush()
            await frozen_sub.flush()
            await asyncio.sleep(0.5)
            state: list[float] = []

            def fault(elapsed: float) -> None:
                if not state and elapsed > seconds / 4:
                    n0.proc.signal(signal.SIGSTOP)  # type: ignore[union-attr]
                    state.append(time.monotonic())

            with Sampler(server_pid(n1.proc), 0.1) as rss:  # type: ignore[arg-type]
                sent = await steady(pub, ["p.live", "p.frozen"], seconds, rate, fault)
            n0.proc.signal(signal.SIGCONT)  # type: ignore[union-attr]
            await until(lambda: len(live) >= sent, 10, f"p.live got {len(live)}/{sent}")
            cluster.wait_mesh(20)
            marker = sent + 1000
            deadline = time.monotonic() + 20
            while marker not in frozen:
                assert time.monotonic() < deadline, "n0 never received again after thawing"
                await pub.publish("p.frozen", str(marker).encode())
                await pub.flush()
                await asyncio.sleep(0.1)
            for nc in (live_sub, frozen_sub, pub):
                await nc.close()
            return {"sent": sent, "frozen_s": time.monotonic() - state[0],
                    "live_lost": sent - len(set(live)),
                    "frozen_node_got": len(set(frozen) & set(range(sent))),
                    "n1_rss_growth_mib": mib(rss.peak() - rss.first())}

        try:
            figures = asyncio.run(main())
        finally:
            n0.proc.signal(signal.SIGCONT)
        cut = any("Slow Consumer" in line for line in n1.proc.lines)
    record.update(kind=kind, rate=rate, route_cut_as_slow_consumer=cut, **figures)
    assert figures["live_lost"] == 0
    assert figures["n1_rss_growth_mib"] < 64


@pytest.mark.parametrize("kind", KINDS)
def test_restart_clients_reconnect_and_resubscribe(kind: str, scale: Scale, record: Recorder,
                                                   tmp_path: Path) -> None:
    """The server stops and starts again on the same port: clients reconnect and their
    subscriptions work again without the application doing anything."""
    restarts = scale.n(2, 10)
    first = start(kind, tmp_path).start()
    port = first.port
    first.stop()
    times: list[float] = []

    async def main() -> None:
        server = start(kind, tmp_path, args=("-p", str(port))).start()
        try:
            watch = Watch()
            sub = await connect([server.url], watch)
            pub = await connect([server.url])
            got: list[int] = []
            await sub.subscribe("r.x", cb=counter(got))
            await sub.flush()
            for i in range(restarts):
                server.stop()
                watch.reconnected = None
                began = time.monotonic()
                server = start(kind, tmp_path, args=("-p", str(port))).start()
                await until(lambda: watch.reconnected is not None, 15, "no reconnect")
                marker = 10_000 + i
                deadline = time.monotonic() + 15
                while marker not in got:
                    assert time.monotonic() < deadline, "subscription not restored"
                    if pub.is_connected:
                        await pub.publish("r.x", str(marker).encode())
                    await asyncio.sleep(0.1)
                times.append(time.monotonic() - began)
            await sub.close()
            await pub.close()
        finally:
            server.stop()

    asyncio.run(main())
    record.update(kind=kind, restarts=restarts, max_resubscribed_s=max(times),
                  mean_resubscribed_s=sum(times) / len(times))
    assert max(times) < 15


@pytest.mark.parametrize("kind", KINDS)
def test_lame_duck_under_load(kind: str, scale: Scale, record: Recorder,
                              tmp_path: Path) -> None:
    """SIGUSR2 on a node with clients under load: they move to the other node over the
    lame duck duration (30 s, the minimum), the node exits, and traffic on the other node
    keeps flowing with nothing lost between nodes that stay up."""
    if not scale.full:
        pytest.skip("lame duck takes at least 30 s: full run only")
    clients = scale.n(5, 20)
    a, port_a = start_node(kind, tmp_path, "a", "",
                           'lame_duck_duration: "30s"\nlame_duck_grace_period: "2s"')
    b, _ = start_node(kind, tmp_path, "b", f"routes: [nats-route://127.0.0.1:{port_a}]")
    try:
        assert delivered_across(a, b) and delivered_across(b, a)

        async def main() -> dict[str, Any]:
            watches = [Watch() for _ in range(clients)]
            ncs = [await connect([a.url, b.url], w) for w in watches]
            boxes: list[list[int]] = [[] for _ in ncs]
            for nc, box in zip(ncs, boxes, strict=True):
                await nc.subscribe("l.x", cb=counter(box))
                await nc.flush()
            pub = await connect([b.url])
            live: list[int] = []
            live_sub = await connect([b.url])
            await live_sub.subscribe("l.live", cb=counter(live))
            await live_sub.flush()
            await asyncio.sleep(0.5)
            began = time.monotonic()
            a.signal(signal.SIGUSR2)
            sent = await steady(pub, ["l.x", "l.live"], 40, 500)
            exited = a.wait(10)
            moved = sum(1 for w in watches if w.reconnected is not None)
            await until(lambda: len(live) >= sent, 10, "l.live incomplete")
            for nc in [*ncs, pub, live_sub]:
                await nc.close()
            return {"clients": clients, "moved": moved, "exit_code": exited,
                    "lame_duck_s": time.monotonic() - began, "live_lost": sent - len(set(live)),
                    "client_lost_max": max(sent - len(set(box)) for box in boxes)}

        figures = asyncio.run(main())
    finally:
        a.stop()
        b.stop()
    record.update(kind=kind, **figures)
    assert figures["moved"] == clients and figures["live_lost"] == 0
