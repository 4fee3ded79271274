"""Faults: servers that die, restart, go lame duck, stall, talk garbage or go silent.

Each test that involves a real server runs against both kinds; the misbehaving servers
are :class:`~clienttools.FakeServer` scripts. Every wait is bounded, and reconnect waits
are shortened through ``ReconnectOptions`` so the whole file stays fast.
"""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from clienttools import (
    TIMEOUT,
    Events,
    FakeServer,
    answer_pings,
    free_port,
    handshake,
    info_line,
    wait,
)

from harness import InProcessServer, ServerProcess, start_server
from pynats.client import Client, ReconnectOptions, connect
from pynats.errors import (
    AuthorizationError,
    ConnectionClosedError,
    NoServersError,
    PermissionsViolationError,
    ReconnectBufferFullError,
    SecureConnectionError,
    ServerError,
    ServerProtocolError,
    StaleConnectionError,
    TimeoutError,
)

FAST = ReconnectOptions(time_wait=0.05, max_time_wait=0.2, jitter=0.02, max_attempts=-1)


def fixed_port_server(kind: str, port: int) -> ServerProcess:
    return ServerProcess(kind, ["-p", str(port)])


# -- restart, failover, lame duck ----------------------------------------------------------


async def test_server_restart_resubscribes_and_sends_buffer(kind: str) -> None:
    port = free_port()
    events = Events()

    def raising_disconnected() -> None:
        events.on_disconnected()
        raise RuntimeError("a callback that fails must not wedge the client")

    first = fixed_port_server(kind, port).start()
    second: ServerProcess | None = None
    try:
        client = await connect(f"nats://127.0.0.1:{port}", reconnect=FAST,
                               callbacks=events.callbacks(disconnected=raising_disconnected))
        async with client:
            sub = client.subscribe("restart", max_msgs=6)
            for i in range(2):
                client.publish("restart", b"before%d" % i)
            await client.flush()
            assert first.proc is not None
            first.proc.kill()
            await wait(events.disconnected, "the disconnect")
            assert client.is_reconnecting
            for i in range(3):
                client.publish("restart", b"buffered%d" % i)  # into the reconnect buffer
            with pytest.raises(TimeoutError):
                await client.flush(timeout=0.1)
            second = fixed_port_server(kind, port).start()
            await wait(events.reconnected, "the reconnect")
            client.publish("restart", b"after")
            client.publish("restart", b"beyond max_msgs")
            await client.flush()
            got = [m.data async for m in sub]
            assert got == [b"before0", b"before1", b"buffered0", b"buffered1", b"buffered2",
                           b"after"]
            assert client.stats.reconnects == 1
            assert [type(e) for e in events.of_type(RuntimeError)] == [RuntimeError]
            assert client.connected_url == f"nats://127.0.0.1:{port}"
    finally:
        first.stop()
        if second is not None:
            second.stop()


async def test_reconnect_buffer_is_bounded(kind: str) -> None:
    events = Events()
    with ServerProcess(kind) as srv:
        client = await connect(srv.url, reconnect=ReconnectOptions(
            time_wait=5.0, max_attempts=-1, buffer_size=100), callbacks=events.callbacks())
        srv.stop()
        await wait(events.disconnected, "the disconnect")
        client.publish("x", b"a" * 50)
        with pytest.raises(ReconnectBufferFullError, match="reconnect buffer full"):
            client.publish("x", b"a" * 50)
        await client.close()
        assert events.closed.is_set()


async def test_gives_up_when_no_server_is_left(kind: str) -> None:
    events = Events()
    with ServerProcess(kind) as srv:
        client = await connect(srv.url, callbacks=events.callbacks(), reconnect=ReconnectOptions(
            time_wait=0.02, max_time_wait=0.05, jitter=0.0, max_attempts=3))
        sub = client.subscribe("gone")
        pending = asyncio.create_task(client.request("gone", timeout=TIMEOUT))
        await client.flush()
        srv.stop()
        await wait(events.closed, "the client giving up")
        assert client.is_closed
        assert isinstance(client.last_error, NoServersError)
        with pytest.raises(ConnectionClosedError):
            await pending
        assert [m async for m in sub] == []
        with pytest.raises(ConnectionClosedError):
            client.publish("gone")


async def test_no_reconnect_when_disabled(kind: str) -> None:
    events = Events()
    with ServerProcess(kind) as srv:
        client = await connect(srv.url, reconnect=ReconnectOptions(enabled=False),
                               callbacks=events.callbacks())
        srv.stop()
        await wait(events.closed, "the close")
        assert events.disconnected.is_set() and client.is_closed


async def test_two_servers_one_goes_away(kind: str) -> None:
    events = Events()
    with ServerProcess(kind) as a, ServerProcess(kind) as b:
        client = await connect([a.url, b.url], randomize=False, reconnect=FAST,
                               callbacks=events.callbacks())
        async with client, await connect(b.url) as on_b:
            assert client.connected_url == a.url
            sub = client.subscribe("failover")
            await client.flush()
            a.stop()
            await wait(events.reconnected, "the failover to B")
            assert client.connected_url == b.url
            await client.flush()
            on_b.publish("failover", b"via B")
            assert (await sub.next_msg(TIMEOUT)).data == b"via B"


async def test_lame_duck_moves_to_other_server(kind: str, tmp_path: Path) -> None:
    events = Events()
    # nats-server refuses lame_duck_duration below 30s; the grace period has no minimum.
    lame = start_server(kind, tmp_path, lame_duck_duration=30.0, lame_duck_grace_period=0.3)
    with lame as a, ServerProcess(kind) as b:
        client = await connect([a.url, b.url], randomize=False, reconnect=FAST,
                               callbacks=events.callbacks())
        async with client, await connect(b.url) as on_b:
            sub = client.subscribe("ldm")
            await client.flush()
            a.signal(signal.SIGUSR2)
            await wait(events.lame_duck, "the lame duck INFO")
            await wait(events.reconnected, "the move to B", 10.0)
            assert client.connected_url == b.url
            assert events.counts["lame_duck"] == 1
            await client.flush()
            on_b.publish("ldm", b"after ldm")
            assert (await sub.next_msg(TIMEOUT)).data == b"after ldm"
        if isinstance(a, InProcessServer):
            a.stop()


# -- servers that stall or misbehave -------------------------------------------------------


async def _stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # accept and never say anything


async def test_stalled_server_bounded_by_connect_timeout() -> None:
    async with FakeServer(_stall) as fake:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="could not connect within"):
            await connect(fake.url, connect_timeout=0.4)
        assert 0.35 < time.monotonic() - start < 2.0


async def test_stalled_first_server_does_not_eat_the_budget(server: ServerProcess) -> None:
    async with FakeServer(_stall) as fake:
        start = time.monotonic()
        async with await connect([fake.url, server.url], randomize=False,
                                 connect_timeout=1.0) as client:
            assert client.connected_url == server.url
        assert time.monotonic() - start < 1.5


async def test_garbage_instead_of_info() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await reader.read()

    async with FakeServer(garbage) as fake:
        with pytest.raises(NoServersError, match="broke the protocol") as err:
            await connect(fake.url, connect_timeout=2.0)
        (url, cause), = err.value.errors
        assert url == fake.url and isinstance(cause, ServerProtocolError)


async def test_invalid_info_json() -> None:
    async def bad_info(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"INFO {not json\r\n")
        await reader.read()

    async with FakeServer(bad_info) as fake:
        with pytest.raises(NoServersError, match="INFO"):
            await connect(fake.url, connect_timeout=2.0)


async def test_garbage_after_connect_reported_then_failover(server: ServerProcess) -> None:
    async def garbage_later(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer)
        writer.write(b"MSG foo 1 notanumber\r\n")
        await reader.read()

    events = Events()
    async with FakeServer(garbage_later) as fake:
        client = await connect([fake.url, server.url], randomize=False, reconnect=FAST,
                               callbacks=events.callbacks())
        async with client:
            await wait(events.reconnected, "the reconnect to the real server")
            assert client.connected_url == server.url
            assert isinstance(client.last_error, ServerProtocolError) or any(
                isinstance(e, ServerProtocolError) for e in events.errors)
            sub = client.subscribe("alive")
            client.publish("alive", b"yes")
            assert (await sub.next_msg(TIMEOUT)).data == b"yes"


async def test_stale_connection_detected_by_client_pings(server: ServerProcess) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer)
        await answer_pings(reader, writer, pong=False)

    events = Events()
    async with FakeServer(silent) as fake:
        client = await connect([fake.url, server.url], randomize=False, reconnect=FAST,
                               ping_interval=0.05, max_outstanding_pings=2,
                               callbacks=events.callbacks())
        async with client:
            await wait(events.reconnected, "the reconnect after the stale connection")
            assert events.of_type(StaleConnectionError)
            assert client.connected_url == server.url


async def test_server_stale_connection_err_reconnects(server: ServerProcess) -> None:
    async def stale(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer)
        writer.write(b"-ERR 'Stale Connection'\r\n")
        await reader.read()

    events = Events()
    async with FakeServer(stale) as fake:
        client = await connect([fake.url, server.url], randomize=False, reconnect=FAST,
                               callbacks=events.callbacks())
        async with client:
            await wait(events.reconnected, "the reconnect")
            assert events.of_type(StaleConnectionError)


async def test_permissions_violation_keeps_connection() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer)
        writer.write(b"-ERR 'Permissions Violation for Publish to \"secret\"'\r\n")
        await answer_pings(reader, writer)

    events = Events()
    async with FakeServer(refuse) as fake, \
            await connect(fake.url, callbacks=events.callbacks()) as client:
        await wait(events.error, "the permissions error")
        (err,) = events.errors
        assert isinstance(err, PermissionsViolationError) and "secret" in err.text
        await client.flush()
        assert client.is_connected and not events.disconnected.is_set()


async def test_unknown_err_closes_client() -> None:
    async def weird(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer)
        writer.write(b"-ERR 'Unknown Protocol Operation'\r\n")
        await answer_pings(reader, writer)

    events = Events()
    async with FakeServer(weird) as fake:
        client = await connect(fake.url, reconnect=FAST, callbacks=events.callbacks())
        await wait(events.closed, "the close")
        assert isinstance(client.last_error, ServerError)
        assert not events.reconnected.is_set()


async def test_auth_error_at_connect_and_repeat_stops_retrying() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(info_line(auth_required=True))
        await reader.readline()
        writer.write(b"-ERR 'Authorization Violation'\r\n")
        await writer.drain()

    async with FakeServer(refuse) as fake:
        with pytest.raises(AuthorizationError, match="Authorization Violation"):
            await connect(fake.url, user="a", password="b")
        assert fake.connections == 1


async def test_discovered_servers_are_used(server: ServerProcess) -> None:
    real = f"127.0.0.1:{server.port}"

    async def gossip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await handshake(reader, writer)
        writer.write(info_line(connect_urls=[real]))  # an async INFO from a "cluster"
        await writer.drain()
        await asyncio.sleep(0.2)  # then go away

    events = Events()
    async with FakeServer(gossip) as fake:
        client = await connect(fake.url, reconnect=FAST, callbacks=events.callbacks())
        async with client:
            await wait(events.discovered, "the discovered server callback")
            assert f"nats://{real}" in client.servers
            await wait(events.reconnected, "the reconnect to the discovered server")
            assert client.connected_url == server.url


async def test_tls_wanted_but_not_offered(server: ServerProcess) -> None:
    import ssl

    with pytest.raises(NoServersError, match="TLS") as err:
        await connect(server.url, tls=ssl.create_default_context(), connect_timeout=2.0)
    assert isinstance(err.value.errors[0][1], SecureConnectionError)


async def test_refused_connection_lists_every_server() -> None:
    ports = [free_port(), free_port()]
    urls = [f"nats://127.0.0.1:{p}" for p in ports]
    with pytest.raises(NoServersError) as err:
        await connect(urls, randomize=False, connect_timeout=2.0)
    assert [u for u, _ in err.value.errors] == urls
    assert all(isinstance(e, OSError) for _, e in err.value.errors)


async def test_callbacks_are_optional(kind: str) -> None:
    with ServerProcess(kind) as srv:
        client: Client = await connect(srv.url, reconnect=ReconnectOptions(enabled=False))
        srv.stop()
        for _ in range(50):
            if client.is_closed:
                break
            await asyncio.sleep(0.02)
        assert client.is_closed


async def test_request_while_disconnected_is_answered_after_reconnect(kind: str) -> None:
    """The responder is the same client: its SUB is replayed before the buffered request."""
    port = free_port()
    events = Events()
    first = fixed_port_server(kind, port).start()
    second: ServerProcess | None = None
    try:
        client = await connect(f"nats://127.0.0.1:{port}", reconnect=FAST,
                               callbacks=events.callbacks())
        async with client:
            client.subscribe("svc.later", cb=lambda m: m.respond(b"done"))
            await client.flush()
            first.stop()
            await wait(events.disconnected, "the disconnect")
            pending = asyncio.create_task(client.request("svc.later", timeout=TIMEOUT))
            await asyncio.sleep(0.05)
            second = fixed_port_server(kind, port).start()
            assert (await pending).data == b"done"
    finally:
        first.stop()
        if second is not None:
            second.stop()
