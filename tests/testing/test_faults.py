"""Each fault of pynats.testing, with nats-py and pynats' own client under test."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

import pynats.client as pc
from pynats.testing import ServerHandle


class Events:
    """nats-py callbacks recorded as asyncio events and a list of errors."""

    def __init__(self) -> None:
        self.disconnected = asyncio.Event()
        self.reconnected = asyncio.Event()
        self.lame_duck = asyncio.Event()
        self.errors: list[Exception] = []
        self.error = asyncio.Event()

    def callbacks(self) -> dict[str, Any]:
        async def disconnected() -> None:
            self.disconnected.set()

        async def reconnected() -> None:
            self.reconnected.set()

        async def lame_duck() -> None:
            self.lame_duck.set()

        async def error(exc: Exception) -> None:
            self.errors.append(exc)
            self.error.set()

        return {"disconnected_cb": disconnected, "reconnected_cb": reconnected,
                "lame_duck_mode_cb": lame_duck, "error_cb": error}


async def wait(event: asyncio.Event, timeout: float = 5.0) -> None:
    await asyncio.wait_for(event.wait(), timeout)


async def test_nats_py_subscriber_recovers_from_a_dropped_connection(
        nats_server: ServerHandle) -> None:
    ev = Events()
    sub_nc = await nats.connect(nats_server.url, name="sub", reconnect_time_wait=0.05,
                                **ev.callbacks())
    pub_nc = await nats.connect(nats_server.url, name="pub")
    sub = await sub_nc.subscribe("updates")
    await nats_server.aio.wait_for_subscription("updates", client="sub")
    assert nats_server.drop_client("sub") == 1
    await wait(ev.disconnected)
    await wait(ev.reconnected)
    await nats_server.aio.wait_for_subscription("updates", client="sub")
    await pub_nc.publish("updates", b"after")
    assert (await sub.next_msg(timeout=2)).data == b"after"
    assert nats_server.total_connections == 3
    await sub_nc.close()
    await pub_nc.close()


@pytest.mark.nats_server(max_pending=64 * 1024)
async def test_a_stalled_subscriber_is_cut_off_as_a_slow_consumer(
        nats_server: ServerHandle) -> None:
    ev = Events()
    slow = await nats.connect(nats_server.url, name="slow", reconnect_time_wait=0.05,
                              **ev.callbacks())
    await slow.subscribe("firehose")
    await nats_server.aio.wait_for_subscription("firehose")
    pub = await pc.connect(nats_server.url)
    assert nats_server.stall_client("slow") == 1
    for _ in range(100):
        pub.publish("firehose", b"x" * 1024)
    await pub.flush()
    await wait(ev.disconnected)
    assert nats_server.slow_consumer_count == 1
    assert any("Slow Consumer Detected" in line for line in nats_server.log_lines())
    await wait(ev.reconnected)
    await pub.close()
    await slow.close()


async def test_paused_reading_leaves_the_clients_pings_unanswered(
        nats_server: ServerHandle) -> None:
    nc = await pc.connect(nats_server.url)
    await nc.flush()
    assert nats_server.pause_reading(nc.server_info.client_id) == 1
    with pytest.raises(TimeoutError):
        await nc.flush(timeout=0.3)
    nats_server.resume_reading(nc.server_info.client_id)
    await nc.flush(timeout=2)
    await nc.close()


async def test_a_chosen_err_reaches_the_clients_error_callback(
        nats_server: ServerHandle) -> None:
    ev = Events()
    nc = await nats.connect(nats_server.url, name="e", **ev.callbacks())
    await nc.flush()
    nats_server.send_error("e", "Permissions Violation for Publish to \"secret\"")
    await wait(ev.error)
    assert "permissions violation" in str(ev.errors[0]).lower()
    assert nc.is_connected
    nats_server.send_error("e", "Stale Connection", close=True)
    await wait(ev.disconnected)
    await nc.close()


async def test_unanswered_pings_make_the_client_reconnect(nats_server: ServerHandle) -> None:
    ev = Events()
    nc = await nats.connect(nats_server.url, ping_interval=0.1, max_outstanding_pings=2,
                            reconnect_time_wait=0.05, **ev.callbacks())
    nats_server.stop_answering_pings()
    await wait(ev.disconnected)
    assert not ev.reconnected.is_set()  # new connections' PINGs go unanswered too
    nats_server.answer_pings()
    await wait(ev.reconnected)
    await nc.flush(timeout=2)
    await nc.close()


async def test_a_delayed_handshake_delays_connect(nats_server: ServerHandle) -> None:
    nats_server.delay_handshake(0.3)
    loop = asyncio.get_running_loop()
    began = loop.time()
    nc = await pc.connect(nats_server.url, connect_timeout=3)
    assert loop.time() - began >= 0.3
    await nc.close()


async def test_a_dropped_handshake_fails_connect_until_restored(
        nats_server: ServerHandle) -> None:
    nats_server.drop_handshake()
    with pytest.raises(Exception):  # noqa: B017 - nats-py raises its own kinds
        await nats.connect(nats_server.url, allow_reconnect=False, connect_timeout=1)
    nats_server.drop_handshake(close=False)  # accepted, then silent
    with pytest.raises(Exception):  # noqa: B017
        await nats.connect(nats_server.url, allow_reconnect=False, connect_timeout=0.3)
    nats_server.restore_handshake()
    nc = await nats.connect(nats_server.url)
    await nc.close()


async def test_lame_duck_mode_warns_then_closes_the_client(nats_server: ServerHandle) -> None:
    ev = Events()
    nc = await nats.connect(nats_server.url, reconnect_time_wait=0.05, **ev.callbacks())
    await nc.flush()
    nats_server.enter_lame_duck(duration=0.3, grace=0.1)
    await wait(ev.lame_duck)
    await wait(ev.disconnected)
    await nats_server.aio.wait_closed()
    assert not nats_server.running
    await asyncio.to_thread(nats_server.restart)
    await wait(ev.reconnected)
    await nc.close()


def test_faults_on_an_unknown_client_raise(nats_server: ServerHandle) -> None:
    with pytest.raises(LookupError):
        nats_server.drop_client("nobody")
    with pytest.raises(TypeError):
        nats_server.drop_client(1.5)  # type: ignore[arg-type]
    assert nats_server.drop_client() == 0
