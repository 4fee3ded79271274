"""The proofs of the issue with each client under test: nats-py and pynats' own.

A small adapter gives both clients one shape (connect with callbacks, subscribe,
publish, flush), so each fault is shown once and run against both.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

import pynats.client as pc
from pynats.testing import ClusterHandle, ServerHandle


class Events:
    """What a client's callbacks reported."""

    def __init__(self) -> None:
        self.disconnected = asyncio.Event()
        self.reconnected = asyncio.Event()
        self.lame_duck = asyncio.Event()
        self.error = asyncio.Event()
        self.errors: list[BaseException] = []

    async def on_disconnected(self) -> None:
        self.disconnected.set()

    async def on_reconnected(self) -> None:
        self.reconnected.set()

    async def on_lame_duck(self) -> None:
        self.lame_duck.set()

    async def on_error(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.error.set()


class Client:
    """One client under test, whichever library it is."""

    def __init__(self, kind: str, nc: Any, events: Events):
        self.kind, self.nc, self.events = kind, nc, events

    @classmethod
    async def connect(cls, kind: str, url: str, name: str = "under-test",
                      ping_interval: float = 120.0) -> Client:
        ev = Events()
        if kind == "nats-py":
            nc: Any = await nats.connect(
                url, name=name, reconnect_time_wait=0.05, max_reconnect_attempts=-1,
                ping_interval=ping_interval, max_outstanding_pings=2,
                disconnected_cb=ev.on_disconnected, reconnected_cb=ev.on_reconnected,
                lame_duck_mode_cb=ev.on_lame_duck, error_cb=ev.on_error)
        else:
            nc = await pc.connect(
                url, name=name, ping_interval=ping_interval, max_outstanding_pings=2,
                reconnect=pc.ReconnectOptions(time_wait=0.05, jitter=0.01, max_attempts=-1),
                callbacks=pc.Callbacks(disconnected=ev.on_disconnected,
                                       reconnected=ev.on_reconnected,
                                       lame_duck=ev.on_lame_duck, error=ev.on_error))
        return cls(kind, nc, ev)

    async def subscribe(self, subject: str) -> Any:
        if self.kind == "nats-py":
            return await self.nc.subscribe(subject)
        return self.nc.subscribe(subject)

    async def publish(self, subject: str, data: bytes) -> None:
        if self.kind == "nats-py":
            await self.nc.publish(subject, data)
        else:
            self.nc.publish(subject, data)

    async def flush(self) -> None:
        await self.nc.flush(timeout=2)

    async def close(self) -> None:
        await self.nc.close()

    @property
    def port(self) -> int | None:
        url = self.nc.connected_url
        if url is None:
            return None
        return int(url.port if self.kind == "nats-py" else url.rsplit(":", 1)[1])


async def next_payload(sub: Any, timeout: float = 2.0) -> bytes:
    return bytes((await sub.next_msg(timeout=timeout)).data)


async def wait(event: asyncio.Event, timeout: float = 5.0) -> None:
    await asyncio.wait_for(event.wait(), timeout)


@pytest.fixture(params=["nats-py", "pynats"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def publisher(nats_server: ServerHandle) -> AsyncIterator[pc.Client]:
    nc = await pc.connect(nats_server.url, name="publisher")
    yield nc
    await nc.close()


async def test_subscriber_recovers_from_a_dropped_connection(
        kind: str, nats_server: ServerHandle, publisher: pc.Client) -> None:
    client = await Client.connect(kind, nats_server.url, name="sub")
    sub = await client.subscribe("updates")
    await nats_server.aio.wait_for_subscription("updates", client="sub")
    nats_server.drop_client("sub")
    await wait(client.events.disconnected)
    await wait(client.events.reconnected)
    await nats_server.aio.wait_for_subscription("updates", client="sub")
    publisher.publish("updates", b"again")
    assert await next_payload(sub) == b"again"
    await client.close()


@pytest.mark.nats_server(max_pending=64 * 1024)
async def test_a_slow_consumer_is_detected(kind: str, nats_server: ServerHandle,
                                           publisher: pc.Client) -> None:
    client = await Client.connect(kind, nats_server.url, name="slow")
    await client.subscribe("firehose")
    await nats_server.aio.wait_for_subscription("firehose")
    nats_server.stall_client("slow")
    for _ in range(100):
        publisher.publish("firehose", b"x" * 1024)
    await publisher.flush()
    await wait(client.events.disconnected)
    assert nats_server.slow_consumer_count == 1
    await wait(client.events.reconnected)
    await client.close()


async def test_unanswered_pings_are_a_stale_connection(kind: str,
                                                       nats_server: ServerHandle) -> None:
    client = await Client.connect(kind, nats_server.url, ping_interval=0.1)
    nats_server.stop_answering_pings()
    await wait(client.events.disconnected)
    nats_server.answer_pings()
    await wait(client.events.reconnected)
    await client.flush()
    await client.close()


async def test_a_permissions_err_reaches_the_error_callback(kind: str,
                                                            nats_server: ServerHandle) -> None:
    client = await Client.connect(kind, nats_server.url, name="e")
    await client.flush()
    nats_server.send_error("e", "Permissions Violation for Publish to \"secret\"")
    await wait(client.events.error)
    assert "permissions violation" in str(client.events.errors[0]).lower()
    await client.flush()  # still connected
    await client.close()


@pytest.mark.nats_cluster(size=2)
async def test_lame_duck_moves_the_client_to_the_other_node(
        kind: str, nats_cluster: ClusterHandle) -> None:
    first, second = nats_cluster
    client = await Client.connect(kind, first.url)
    await client.flush()
    first.enter_lame_duck(duration=0.2, grace=0.05)
    await wait(client.events.lame_duck)
    await wait(client.events.reconnected)
    assert client.port == second.port
    await first.aio.wait_until(lambda: not first.running)  # it shut itself down
    await nats_cluster.aio.wait_until_routed()  # the cluster is the node left
    sub = await client.subscribe("moved")
    await second.aio.wait_for_subscription("moved")
    pub = await pc.connect(second.url)
    pub.publish("moved", b"here")
    assert await next_payload(sub) == b"here"
    await pub.close()
    await client.close()


async def test_a_killed_and_restarted_node_serves_its_client_again(
        kind: str, nats_cluster: ClusterHandle) -> None:
    node = nats_cluster[1]
    client = await Client.connect(kind, node.url, name="on-1")
    sub = await client.subscribe("back")
    await nats_cluster.aio.wait_for_interest("back")
    node.kill()
    await wait(client.events.disconnected)
    node.start()
    await wait(client.events.reconnected)
    await nats_cluster.aio.wait_until_routed()
    await nats_cluster.aio.wait_for_interest("back")
    pub = await pc.connect(nats_cluster[0].url)
    pub.publish("back", b"again")
    assert await next_payload(sub) == b"again"
    await pub.close()
    await client.close()
