"""Faults seen through the blocking client: restarts, failover, lame duck, bad servers.

The reconnect machinery is the asyncio client's (the blocking client runs it on its loop
thread), so these tests check what the blocking front end adds: its callbacks arrive on
the callback thread, its publishers (many threads) fill the reconnect buffer without
losing or reordering anything, and its blocking calls fail with the same errors and
never hang. Scripted fake servers run on the test's event loop while the blocking client
is driven from a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from clienttools import TIMEOUT, FakeServer, SyncEvents, free_port, handshake

from harness import InProcessServer, ServerProcess, start_server
from pynats.errors import (
    ConnectionClosedError,
    NoServersError,
    ReconnectBufferFullError,
    ServerProtocolError,
    TimeoutError,
)
from pynats.sync import Msg, ReconnectOptions, connect

FAST = ReconnectOptions(time_wait=0.05, max_time_wait=0.2, jitter=0.02, max_attempts=-1)


def fixed_port_server(kind: str, port: int) -> ServerProcess:
    return ServerProcess(kind, ["-p", str(port)])


# -- restart, give up, failover, lame duck --------------------------------------------------


def test_server_restart_resubscribes_and_sends_buffer(kind: str) -> None:
    port = free_port()
    events = SyncEvents()

    def raising_disconnected() -> None:
        events._record("disconnected")
        raise RuntimeError("a callback that fails must not wedge the client")

    first = fixed_port_server(kind, port).start()
    second: ServerProcess | None = None
    try:
        client = connect(f"nats://127.0.0.1:{port}", reconnect=FAST,
                         callbacks=events.callbacks(disconnected=raising_disconnected))
        with client:
            sub = client.subscribe("sr.restart", max_msgs=6)
            for i in range(2):
                client.publish("sr.restart", b"before%d" % i)
            client.flush()
            assert first.proc is not None
            first.proc.kill()
            events.wait("disconnected")
            assert client.is_reconnecting and not client.is_connected
            for i in range(3):
                client.publish("sr.restart", b"buffered%d" % i)  # into the reconnect buffer
            with pytest.raises(TimeoutError):
                client.flush(timeout=0.1)
            second = fixed_port_server(kind, port).start()
            events.wait("reconnected")
            client.publish("sr.restart", b"after")
            client.publish("sr.restart", b"beyond max_msgs")
            client.flush()
            assert [m.data for m in sub] == [b"before0", b"before1", b"buffered0",
                                             b"buffered1", b"buffered2", b"after"]
            assert client.stats.reconnects == 1
            assert [type(e) for e in events.of_type(RuntimeError)] == [RuntimeError]
            assert events.threads == {"pynats-callbacks"}
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_many_publisher_threads_across_a_restart(kind: str) -> None:
    """Publishes before, during and after an outage: all arrive, once, in thread order."""
    port, threads, per_phase = free_port(), 4, 100
    events = SyncEvents()
    got: dict[int, list[int]] = defaultdict(list)
    all_in = threading.Event()

    def cb(msg: Msg) -> None:
        who, seq = msg.data.split(b":")
        got[int(who)].append(int(seq))
        if sum(len(v) for v in got.values()) == threads * per_phase * 3:
            all_in.set()

    first = fixed_port_server(kind, port).start()
    second: ServerProcess | None = None
    try:
        with connect(f"nats://127.0.0.1:{port}", reconnect=FAST,
                     callbacks=events.callbacks()) as client:
            client.subscribe("sr.many", cb=cb)

            def phase(n: int) -> None:
                workers = [threading.Thread(target=lambda w=w: [
                    client.publish("sr.many", b"%d:%d" % (w, n * per_phase + i))
                    for i in range(per_phase)]) for w in range(threads)]
                for t in workers:
                    t.start()
                for t in workers:
                    t.join(TIMEOUT)

            phase(0)
            client.flush()
            first.stop()
            events.wait("disconnected")
            phase(1)  # all of it goes to the reconnect buffer
            second = fixed_port_server(kind, port).start()
            events.wait("reconnected")
            phase(2)
            client.flush()
            assert all_in.wait(TIMEOUT)
            expected = list(range(3 * per_phase))
            assert {w: got[w] for w in range(threads)} == dict.fromkeys(range(threads),
                                                                        expected)
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_reconnect_buffer_is_bounded(kind: str) -> None:
    events = SyncEvents()
    with ServerProcess(kind) as srv:
        client = connect(srv.url, callbacks=events.callbacks(), reconnect=ReconnectOptions(
            time_wait=5.0, max_attempts=-1, buffer_size=100))
        srv.stop()
        events.wait("disconnected")
        client.publish("x", b"a" * 50)
        with pytest.raises(ReconnectBufferFullError, match="reconnect buffer full"):
            client.publish("x", b"a" * 50)
        client.close()
        assert events.counts["closed"] == 1


def test_gives_up_when_no_server_is_left(kind: str) -> None:
    events = SyncEvents()
    with ServerProcess(kind) as srv:
        client = connect(srv.url, callbacks=events.callbacks(), reconnect=ReconnectOptions(
            time_wait=0.02, max_time_wait=0.05, jitter=0.0, max_attempts=3))
        sub = client.subscribe("sr.gone")
        outcome: list[BaseException] = []

        def ask() -> None:
            try:
                client.request("sr.gone", timeout=TIMEOUT)
            except BaseException as exc:
                outcome.append(exc)

        asker = threading.Thread(target=ask)
        asker.start()
        client.flush()
        srv.stop()
        events.wait("closed")
        asker.join(TIMEOUT)
        assert client.is_closed and isinstance(client.last_error, NoServersError)
        assert [type(e) for e in outcome] == [ConnectionClosedError] and list(sub) == []
        with pytest.raises(ConnectionClosedError):
            client.publish("sr.gone")
        client.close()


def test_two_servers_one_goes_away(kind: str) -> None:
    events = SyncEvents()
    with ServerProcess(kind) as a, ServerProcess(kind) as b:
        client = connect([a.url, b.url], randomize=False, reconnect=FAST,
                         callbacks=events.callbacks())
        with client, connect(b.url) as on_b:
            assert client.connected_url == a.url
            sub = client.subscribe("sr.failover")
            client.flush()
            a.stop()
            events.wait("reconnected")
            assert client.connected_url == b.url
            client.flush()
            on_b.publish("sr.failover", b"via B")
            assert sub.next_msg(TIMEOUT).data == b"via B"


def test_lame_duck_moves_to_other_server(kind: str, tmp_path: Path) -> None:
    events = SyncEvents()
    lame = start_server(kind, tmp_path, lame_duck_duration=30.0, lame_duck_grace_period=0.3)
    with lame as a, ServerProcess(kind) as b:
        client = connect([a.url, b.url], randomize=False, reconnect=FAST,
                         callbacks=events.callbacks())
        with client, connect(b.url) as on_b:
            sub = client.subscribe("sr.ldm")
            client.flush()
            a.signal(signal.SIGUSR2)
            events.wait("lame_duck")
            events.wait("reconnected", 10.0)
            assert client.connected_url == b.url and events.counts["lame_duck"] == 1
            client.flush()
            on_b.publish("sr.ldm", b"after ldm")
            assert sub.next_msg(TIMEOUT).data == b"after ldm"
        if isinstance(a, InProcessServer):
            a.stop()


# -- servers that stall or misbehave (fake servers on the test loop) ------------------------


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


async def test_stalled_server_bounded_by_connect_timeout() -> None:
    async with FakeServer(_stall) as fake:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="could not connect within"):
            await asyncio.to_thread(connect, fake.url, connect_timeout=0.4)
        assert 0.35 < time.monotonic() - start < 2.0


async def test_garbage_after_connect_then_failover(server: ServerProcess) -> None:
    async def garbage_later(reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer)
        writer.write(b"MSG foo 1 notanumber\r\n")
        await reader.read()

    events = SyncEvents()
    async with FakeServer(garbage_later) as fake:
        def scenario() -> None:
            with connect([fake.url, server.url], randomize=False, reconnect=FAST,
                         callbacks=events.callbacks()) as client:
                events.wait("reconnected")
                assert client.connected_url == server.url
                assert events.of_type(ServerProtocolError)
                sub = client.subscribe("sr.alive")
                client.publish("sr.alive", b"yes")
                assert sub.next_msg(TIMEOUT).data == b"yes"

        await asyncio.to_thread(scenario)


def test_refused_connection_lists_every_server() -> None:
    urls = [f"nats://127.0.0.1:{free_port()}", f"nats://127.0.0.1:{free_port()}"]
    with pytest.raises(NoServersError) as err:
        connect(urls, randomize=False, connect_timeout=2.0)
    assert [u for u, _ in err.value.errors] == urls
