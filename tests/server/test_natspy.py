"""The official Python client (nats-py) against the server, end to end.

Every test drives a real server process (or, for servers with limits, ``start_server``)
through ``nats.connect`` and asserts what nats-py observes. The suite is checked against
the reference: ``PYNATS_TEST_SERVER=nats-server pytest tests/server/test_natspy.py``.

Waiting is never done with sleeps on state: :func:`flush` (a PING/PONG round trip
ordered after everything the client published; see there why not plain
``nc.flush()``) orders the server's work, and events are awaited through
``asyncio.wait_for``. The only sleep is a short bounded wait for a server timer under
test (the ping interval). The lame-duck tests use ``start_server`` too, since
nats-server has no flags for the lame-duck durations.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import (
    ConnectionClosedError,
    MaxPayloadError,
    NoRespondersError,
    UnexpectedEOF,
)

from harness import InProcessServer, RawClient, ServerProcess, start_server

#: Upper bound for anything awaited in these tests.
TIMEOUT = 5.0
DEFAULT_MAX_PAYLOAD = 1024 * 1024


# -- helpers ----------------------------------------------------------------------------


class Events:
    """Records nats-py's connection callbacks as events and lists."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []
        self.error = asyncio.Event()
        self.closed = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.reconnected = asyncio.Event()
        self.lame_duck = asyncio.Event()

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(exc)
        self.error.set()

    async def on_closed(self) -> None:
        self.closed.set()

    async def on_disconnected(self) -> None:
        self.disconnected.set()

    async def on_reconnected(self) -> None:
        self.reconnected.set()

    async def on_lame_duck(self) -> None:
        self.lame_duck.set()

    def callbacks(self) -> dict[str, Callable[..., Awaitable[None]]]:
        return {
            "error_cb": self.on_error,
            "closed_cb": self.on_closed,
            "disconnected_cb": self.on_disconnected,
            "reconnected_cb": self.on_reconnected,
            "lame_duck_mode_cb": self.on_lame_duck,
        }


@asynccontextmanager
async def client(
    servers: str | list[str], events: Events | None = None, **options: Any
) -> AsyncIterator[Client]:
    """A connected nats-py client, closed on exit. No reconnects unless asked for."""
    options.setdefault("allow_reconnect", False)
    options.setdefault("connect_timeout", 5)
    options.setdefault("drain_timeout", 5)
    callbacks = (events or Events()).callbacks()
    nc = await asyncio.wait_for(nats.connect(servers, **callbacks, **options), 2 * TIMEOUT)
    try:
        yield nc
    finally:
        if not nc.is_closed:
            await asyncio.wait_for(nc.close(), TIMEOUT)


def unique(prefix: str) -> str:
    """A subject prefix no other test uses (several tests share one server)."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def wait(event: asyncio.Event, what: str, timeout: float = TIMEOUT) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout}s waiting for {what}")


async def flush(nc: Client) -> None:
    """Round trip to the server that is ordered after everything published so far.

    nats-py 2.16's ``flush()`` writes its PING straight to the socket, ahead of commands
    still sitting in the client's pending buffer (its flusher task writes those later),
    so on its own it does not prove the server has seen earlier publishes. Hand the
    pending buffer to the socket first, then do the PING/PONG.
    """
    await asyncio.wait_for(nc._flush_pending(force_flush=True), TIMEOUT)
    await nc.flush(timeout=int(TIMEOUT))


async def flush_all(*clients: Client) -> None:
    for nc in clients:
        await flush(nc)


async def collect(sub: Any, count: int) -> list[Msg]:
    """Exactly ``count`` messages from a callback-less subscription."""
    return [await sub.next_msg(timeout=TIMEOUT) for _ in range(count)]


class Counter:
    """A subscription callback that records messages and signals a target count."""

    def __init__(self, target: int = 0) -> None:
        self.msgs: list[Msg] = []
        self.target = target
        self.done = asyncio.Event()

    async def cb(self, msg: Msg) -> None:
        self.msgs.append(msg)
        if self.target and len(self.msgs) >= self.target:
            self.done.set()

    @property
    def data(self) -> list[bytes]:
        return [m.data for m in self.msgs]


def open_starved_subscriber(port: int, subject: str) -> socket.socket:
    """A raw connection that subscribes to ``subject`` and then never reads again.

    Its receive buffer is made tiny before connecting so the server's output backs up
    into the server's own pending buffer quickly.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f'CONNECT {{"verbose":false}}\r\nSUB {subject} 1\r\nPING\r\n'.encode())
    seen = b""
    deadline = time.monotonic() + TIMEOUT
    while b"PONG\r\n" not in seen:
        assert time.monotonic() < deadline, f"no PONG: {seen!r}"
        chunk = sock.recv(4096)
        assert chunk, f"closed during handshake: {seen!r}"
        seen += chunk
    assert seen.startswith(b"INFO ") and seen.endswith(b"PONG\r\n"), seen
    return sock


def read_until_eof(sock: socket.socket, timeout: float) -> bytes:
    """Everything the peer sends until it closes; fails the test if it never does."""
    out = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"server never closed the connection ({len(out)} bytes read)")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(1 << 16)
        except ConnectionResetError:
            return bytes(out)
        except TimeoutError:
            continue
        if not chunk:
            return bytes(out)
        out += chunk


# -- connect and INFO -------------------------------------------------------------------


async def test_connect_sees_server_info(shared_server: ServerProcess) -> None:
    async with client(shared_server.url) as first, client(shared_server.url) as second:
        assert first.is_connected and second.is_connected
        version = first.connected_server_version
        assert version.major == 2, version
        assert first.max_payload == DEFAULT_MAX_PAYLOAD
        assert first.connected_url is not None
        assert first.connected_url.hostname == "127.0.0.1"
        assert first.connected_url.port == shared_server.port
        assert first.client_ip == "127.0.0.1"
        # client ids are the server's connection ids: positive, distinct, increasing.
        assert isinstance(first.client_id, int) and first.client_id > 0
        assert isinstance(second.client_id, int) and second.client_id > first.client_id
        info = first._server_info
        assert info["proto"] == 1
        assert info["headers"] is True
        assert info["port"] == shared_server.port
        assert isinstance(info["server_id"], str) and info["server_id"]
        assert not info.get("auth_required", False)
        assert not info.get("tls_required", False)
        assert not info.get("jetstream", False)
        await flush(first)
        rtt = await first.rtt()
        assert 0 <= rtt < TIMEOUT


# -- publish / subscribe ----------------------------------------------------------------


async def test_publish_subscribe_in_order(shared_server: ServerProcess) -> None:
    subject = unique("basic")
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        sub = await sub_nc.subscribe(subject)
        await flush(sub_nc)
        payloads = [b"one", b"two", b"three", b""]
        for payload in payloads:
            await pub_nc.publish(subject, payload)
        await flush(pub_nc)
        msgs = await collect(sub, len(payloads))
        assert [m.data for m in msgs] == payloads
        assert {m.subject for m in msgs} == {subject}
        assert all(m.reply == "" for m in msgs)
        assert all(m.headers is None for m in msgs)
        await flush(sub_nc)
        assert sub.pending_msgs == 0
        assert sub_nc.stats["in_msgs"] == len(payloads)


async def test_empty_payload_with_and_without_headers(shared_server: ServerProcess) -> None:
    subject = unique("empty")
    async with client(shared_server.url) as nc:
        sub = await nc.subscribe(subject)
        await nc.publish(subject, b"")
        await nc.publish(subject, b"", headers={"Only-Header": "yes"})
        await flush(nc)
        plain, with_headers = await collect(sub, 2)
        assert plain.data == b"" and plain.headers is None
        assert with_headers.data == b""
        assert with_headers.headers == {"Only-Header": "yes"}


async def test_wildcard_subscriptions(shared_server: ServerProcess) -> None:
    base = unique("wild")
    async with client(shared_server.url) as nc:
        patterns = {
            "star": f"{base}.*",
            "full": f"{base}.>",
            "mid": f"{base}.*.c",
            "literal": f"{base}.a",
            "exact_base": base,
        }
        subs = {name: await nc.subscribe(p) for name, p in patterns.items()}
        published = [f"{base}.a", f"{base}.b", f"{base}.a.c", f"{base}.x.y.z", base, f"{base}x"]
        for subject in published:
            await nc.publish(subject, subject.encode())
        await flush(nc)
        expected = {
            "star": [f"{base}.a", f"{base}.b"],
            "full": [f"{base}.a", f"{base}.b", f"{base}.a.c", f"{base}.x.y.z"],
            "mid": [f"{base}.a.c"],
            "literal": [f"{base}.a"],
            "exact_base": [base],
        }
        for name, subjects in expected.items():
            sub = subs[name]
            # Everything the server sent before the PONG is already queued.
            assert sub.pending_msgs == len(subjects), name
            msgs = await collect(sub, len(subjects))
            assert [m.subject for m in msgs] == subjects, name
            assert [m.data for m in msgs] == [s.encode() for s in subjects], name
        # One copy per matching subscription: 2 + 4 + 1 + 1 + 1.
        assert nc.stats["in_msgs"] == 9


async def test_queue_group_distributes_each_message_once(shared_server: ServerProcess) -> None:
    subject = unique("queue")
    total = 300
    url = shared_server.url
    async with (
        client(url) as pub_nc,
        client(url) as m1,
        client(url) as m2,
        client(url) as m3,
        client(url) as other_group_nc,
        client(url) as plain_nc,
    ):
        members = [Counter(), Counter(), Counter()]
        done = asyncio.Event()

        def received() -> int:
            return sum(len(c.msgs) for c in members)

        def make_cb(counter: Counter) -> Callable[[Msg], Awaitable[None]]:
            async def cb(msg: Msg) -> None:
                await counter.cb(msg)
                if received() >= total:
                    done.set()

            return cb

        for nc, counter in zip((m1, m2, m3), members, strict=True):
            await nc.subscribe(subject, queue="workers", cb=make_cb(counter))
        other_group = Counter(total)
        await other_group_nc.subscribe(subject, queue="auditors", cb=other_group.cb)
        plain = Counter(total)
        await plain_nc.subscribe(subject, cb=plain.cb)
        await flush_all(m1, m2, m3, other_group_nc, plain_nc)

        for i in range(total):
            await pub_nc.publish(subject, str(i).encode())
        await flush(pub_nc)
        await wait(done, "queue members to receive every message")
        await wait(other_group.done, "the second queue group")
        await wait(plain.done, "the plain subscriber")
        await flush_all(m1, m2, m3, other_group_nc, plain_nc)

        counts = [len(c.msgs) for c in members]
        assert sum(counts) == total, counts
        assert all(n > 0 for n in counts), counts
        got = sorted(int(m.data) for c in members for m in c.msgs)
        assert got == list(range(total))
        assert sum(nc.stats["in_msgs"] for nc in (m1, m2, m3)) == total
        # Each group gets its own copy; plain subscribers get everything.
        assert [int(d) for d in other_group.data] == list(range(total))
        assert [int(d) for d in plain.data] == list(range(total))
        assert other_group_nc.stats["in_msgs"] == total
        assert plain_nc.stats["in_msgs"] == total


# -- request / reply, headers, no responders --------------------------------------------


async def test_request_reply_headers_round_trip(shared_server: ServerProcess) -> None:
    subject = unique("svc")
    seen: list[Msg] = []
    async with client(shared_server.url) as responder, client(shared_server.url) as requester:

        async def handler(msg: Msg) -> None:
            seen.append(msg)
            reply_headers = {"Echo-" + k: v for k, v in (msg.headers or {}).items()}
            reply_headers["Reply-Case-KEY"] = "MiXeD value"
            await responder.publish(msg.reply, b"re:" + msg.data, headers=reply_headers)

        await responder.subscribe(subject, cb=handler)
        await flush(responder)

        request_headers = {"X-Trace-Id": "abc123", "MiXeD-Case": "Value With Spaces"}
        resp = await requester.request(subject, b"ping", timeout=TIMEOUT, headers=request_headers)
        assert resp.data == b"re:ping"
        assert resp.headers == {
            "Echo-X-Trace-Id": "abc123",
            "Echo-MiXeD-Case": "Value With Spaces",
            "Reply-Case-KEY": "MiXeD value",
        }
        assert len(seen) == 1
        assert seen[0].headers == request_headers
        assert seen[0].subject == subject
        assert seen[0].reply.startswith("_INBOX.")

        # Several requests in a row over the same response subscription.
        for i in range(20):
            resp = await requester.request(subject, b"%d" % i, timeout=TIMEOUT)
            assert resp.data == b"re:%d" % i
            assert resp.headers == {"Reply-Case-KEY": "MiXeD value"}
        assert len(seen) == 21


async def test_multi_value_headers_forwarded_untouched(shared_server: ServerProcess) -> None:
    """A header block with repeated names reaches nats-py and raw readers byte for byte."""
    subject = unique("hdr")
    header_block = (
        b"NATS/1.0\r\nX-Multi: one\r\nx-multi: two\r\nX-Multi: three\r\n"
        b"Weird-Spacing:   padded  \r\n\r\n"
    )
    payload = b"body"
    total = len(header_block) + len(payload)
    async with client(shared_server.url) as nc:
        sub = await nc.subscribe(subject)
        await flush(nc)
        with RawClient(shared_server.port) as raw_sub, RawClient(shared_server.port) as raw_pub:
            for raw in (raw_sub, raw_pub):
                raw.send(b'CONNECT {"verbose":false,"headers":true}\r\n')
            raw_sub.send(f"SUB {subject} 9\r\n".encode())
            raw_sub.ping_pong()
            raw_pub.send(f"HPUB {subject} {len(header_block)} {total}\r\n".encode())
            raw_pub.send(header_block + payload + b"\r\n")
            raw_pub.ping_pong()
            raw_sub.expect(
                f"HMSG {subject} 9 {len(header_block)} {total}\r\n".encode()
                + header_block
                + payload
                + b"\r\n"
            )
        msg = await sub.next_msg(timeout=TIMEOUT)
        assert msg.data == payload
        # nats-py keeps one value per name (the last one); names keep their case.
        assert msg.headers == {"X-Multi": "three", "x-multi": "two", "Weird-Spacing": "padded"}


async def test_no_responders_fails_fast(shared_server: ServerProcess) -> None:
    subject = unique("nobody")
    async with client(shared_server.url) as nc:
        for old_style in (False, True):
            start = time.monotonic()
            with pytest.raises(NoRespondersError):
                await nc.request(subject, b"anyone?", timeout=TIMEOUT, old_style=old_style)
            elapsed = time.monotonic() - start
            assert elapsed < 1.0, f"no-responders took {elapsed:.2f}s (old_style={old_style})"
        # With headers on the request too.
        with pytest.raises(NoRespondersError):
            await nc.request(subject, b"", timeout=TIMEOUT, headers={"A": "b"})
        assert nc.is_connected
        await flush(nc)


# -- unsubscribe ------------------------------------------------------------------------


async def test_unsubscribe_stops_delivery(shared_server: ServerProcess) -> None:
    subject = unique("unsub")
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        sub = await sub_nc.subscribe(subject)
        await flush(sub_nc)
        await pub_nc.publish(subject, b"before")
        await flush(pub_nc)
        assert (await sub.next_msg(timeout=TIMEOUT)).data == b"before"
        await sub.unsubscribe()
        await flush(sub_nc)
        await pub_nc.publish(subject, b"after")
        await flush(pub_nc)
        await flush(sub_nc)
        # The server stopped delivering (nats-py counts every MSG, even for unknown sids)
        assert sub_nc.stats["in_msgs"] == 1
        # ... and has no interest left at all.
        with pytest.raises(NoRespondersError):
            await pub_nc.request(subject, b"", timeout=TIMEOUT)


async def test_auto_unsubscribe_after_limit(shared_server: ServerProcess) -> None:
    subject = unique("auto")
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        sub = await sub_nc.subscribe(subject)
        await flush(sub_nc)
        # Two delivered before the UNSUB count towards the limit of 5.
        for i in range(2):
            await pub_nc.publish(subject, b"%d" % i)
        await flush(pub_nc)
        await flush(sub_nc)
        await sub.unsubscribe(limit=5)
        await flush(sub_nc)
        for i in range(2, 10):
            await pub_nc.publish(subject, b"%d" % i)
        await flush(pub_nc)
        await flush(sub_nc)
        msgs = await collect(sub, 5)
        assert [m.data for m in msgs] == [b"0", b"1", b"2", b"3", b"4"]
        assert sub_nc.stats["in_msgs"] == 5, "server delivered past the UNSUB limit"
        with pytest.raises(NoRespondersError):
            await pub_nc.request(subject, b"", timeout=TIMEOUT)


async def test_auto_unsubscribe_limit_already_reached(shared_server: ServerProcess) -> None:
    subject = unique("autodone")
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        sub = await sub_nc.subscribe(subject)
        await flush(sub_nc)
        for i in range(3):
            await pub_nc.publish(subject, b"%d" % i)
        await flush(pub_nc)
        await flush(sub_nc)
        assert [m.data for m in await collect(sub, 3)] == [b"0", b"1", b"2"]
        # UNSUB with a max at or below the delivered count removes it at once.
        await sub.unsubscribe(limit=2)
        await flush(sub_nc)
        with pytest.raises(NoRespondersError):
            await pub_nc.request(subject, b"", timeout=TIMEOUT)
        assert sub_nc.stats["in_msgs"] == 3


async def test_max_msgs_is_client_side_only(shared_server: ServerProcess) -> None:
    """``subscribe(max_msgs=n)`` sends no UNSUB: the server keeps delivering."""
    subject = unique("maxmsgs")
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        sub = await sub_nc.subscribe(subject, max_msgs=2)
        await flush(sub_nc)
        for i in range(4):
            await pub_nc.publish(subject, b"%d" % i)
        await flush(pub_nc)
        await flush(sub_nc)
        assert [m.data for m in await collect(sub, 2)] == [b"0", b"1"]
        assert sub_nc.stats["in_msgs"] == 4
        assert sub.pending_msgs == 0


# -- drain ------------------------------------------------------------------------------


async def test_subscription_drain_delivers_in_flight(shared_server: ServerProcess) -> None:
    subject = unique("subdrain")
    total = 50
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        gate = asyncio.Event()
        got: list[bytes] = []

        async def slow(msg: Msg) -> None:
            await gate.wait()
            got.append(msg.data)

        sub = await sub_nc.subscribe(subject, cb=slow)
        await flush(sub_nc)
        for i in range(total):
            await pub_nc.publish(subject, b"%d" % i)
        await flush(pub_nc)
        drain = asyncio.create_task(sub.drain())
        await asyncio.sleep(0)
        assert not drain.done()
        gate.set()
        await asyncio.wait_for(drain, TIMEOUT)
        assert got == [b"%d" % i for i in range(total)]
        # Interest is gone on the server; the connection itself stays up.
        await pub_nc.publish(subject, b"late")
        await flush(pub_nc)
        await flush(sub_nc)
        assert sub_nc.stats["in_msgs"] == total
        assert sub_nc.is_connected
        with pytest.raises(NoRespondersError):
            await pub_nc.request(subject, b"", timeout=TIMEOUT)


async def test_connection_drain_delivers_then_closes(shared_server: ServerProcess) -> None:
    subject = unique("conndrain")
    total = 100
    events = Events()
    async with (
        client(shared_server.url, events) as sub_nc,
        client(shared_server.url) as pub_nc,
    ):
        gate = asyncio.Event()
        a: list[bytes] = []
        b: list[bytes] = []

        def make(into: list[bytes]) -> Callable[[Msg], Awaitable[None]]:
            async def cb(msg: Msg) -> None:
                await gate.wait()
                into.append(msg.data)

            return cb

        await sub_nc.subscribe(subject, cb=make(a))
        await sub_nc.subscribe(f"{subject}.>", cb=make(b))
        await flush(sub_nc)
        for i in range(total):
            await pub_nc.publish(subject, b"%d" % i)
            await pub_nc.publish(f"{subject}.x", b"x%d" % i)
        await flush(pub_nc)
        drain = asyncio.create_task(sub_nc.drain())
        await asyncio.sleep(0)
        gate.set()
        await asyncio.wait_for(drain, 2 * TIMEOUT)
        await wait(events.closed, "closed_cb after drain")
        assert sub_nc.is_closed
        assert a == [b"%d" % i for i in range(total)]
        assert b == [b"x%d" % i for i in range(total)]
        assert events.errors == []
        with pytest.raises(NoRespondersError):
            await pub_nc.request(subject, b"", timeout=TIMEOUT)


# -- flush, verbose, pedantic, echo -----------------------------------------------------


async def test_flush_after_many_publishes(shared_server: ServerProcess) -> None:
    subject = unique("many")
    total = 10_000
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        counter = Counter(total)
        await sub_nc.subscribe(subject, cb=counter.cb)
        await flush(sub_nc)
        for i in range(total):
            await pub_nc.publish(subject, b"%d" % i)
        await flush(pub_nc)
        # The publisher's PONG came after every PUB was processed, so the
        # subscriber's own round trip now returns after every MSG.
        await flush(sub_nc)
        assert sub_nc.stats["in_msgs"] == total
        await wait(counter.done, "all messages")
        assert counter.data == [b"%d" % i for i in range(total)]
        assert pub_nc.stats["out_msgs"] == total


async def test_verbose_and_pedantic_client_works(shared_server: ServerProcess) -> None:
    subject = unique("verbose")
    events = Events()
    async with client(shared_server.url, events, verbose=True, pedantic=True) as nc:
        sub = await nc.subscribe(subject)
        await nc.publish(subject, b"hello", headers={"K": "v"})
        await flush(nc)
        msg = await sub.next_msg(timeout=TIMEOUT)
        assert msg.data == b"hello" and msg.headers == {"K": "v"}

        async def responder(m: Msg) -> None:
            await m.respond(b"pong")

        await nc.subscribe(f"{subject}.svc", cb=responder)
        resp = await nc.request(f"{subject}.svc", b"ping", timeout=TIMEOUT)
        assert resp.data == b"pong"
        await sub.unsubscribe()
        await flush(nc)
        assert nc.is_connected
        assert events.errors == []


async def test_pedantic_wildcard_publish_is_an_error_but_delivered(
    shared_server: ServerProcess,
) -> None:
    base = unique("ped")
    events = Events()
    async with client(shared_server.url) as sub_nc:
        sub = await sub_nc.subscribe(f"{base}.>")
        await flush(sub_nc)
        async with client(shared_server.url, events, pedantic=True) as ped:
            await ped.publish(f"{base}.*", b"wild")
            # nats-py closes on any -ERR except permissions violations (no error_cb).
            await wait(events.closed, "nats-py closing after the -ERR")
            assert str(ped.last_error) == "nats: invalid publish subject"
        # The server still routed the message (literally, to matching wildcards).
        msg = await sub.next_msg(timeout=TIMEOUT)
        assert msg.subject == f"{base}.*"
        assert msg.data == b"wild"


async def test_no_echo(shared_server: ServerProcess) -> None:
    subject = unique("echo")
    async with (
        client(shared_server.url, no_echo=True) as quiet,
        client(shared_server.url) as loud,
    ):
        quiet_sub = await quiet.subscribe(subject)
        loud_sub = await loud.subscribe(subject)
        await flush_all(quiet, loud)
        await quiet.publish(subject, b"from-quiet")
        await flush(quiet)
        await loud.publish(subject, b"from-loud")
        await flush(loud)
        await flush_all(quiet, loud)
        # quiet never hears itself, but hears others.
        assert [m.data for m in await collect(quiet_sub, 1)] == [b"from-loud"]
        assert quiet.stats["in_msgs"] == 1
        # loud hears both, including its own publish (echo is on by default).
        assert [m.data for m in await collect(loud_sub, 2)] == [b"from-quiet", b"from-loud"]
        assert loud.stats["in_msgs"] == 2
        # No-echo also means a request to our own responder finds nobody.
        await quiet.subscribe(f"{subject}.svc")
        await flush(quiet)
        with pytest.raises(NoRespondersError):
            await quiet.request(f"{subject}.svc", b"", timeout=TIMEOUT)


# -- payload sizes, many subscriptions --------------------------------------------------


async def test_payload_at_default_max_payload(shared_server: ServerProcess) -> None:
    subject = unique("big")
    payload = os.urandom(DEFAULT_MAX_PAYLOAD)
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        sub = await sub_nc.subscribe(subject)
        await flush(sub_nc)
        assert pub_nc.max_payload == DEFAULT_MAX_PAYLOAD
        await pub_nc.publish(subject, payload)
        with pytest.raises(MaxPayloadError):
            await pub_nc.publish(subject, payload + b"!")
        await flush(pub_nc)
        msg = await sub.next_msg(timeout=TIMEOUT)
        assert len(msg.data) == DEFAULT_MAX_PAYLOAD
        assert msg.data == payload
        assert pub_nc.is_connected and sub_nc.is_connected


async def test_small_max_payload(tmp_path: Path) -> None:
    limit = 1024
    subject = "small.payload"
    with start_server("pynats", tmp_path, max_payload=limit) as srv:
        events = Events()
        async with client(srv.url) as sub_nc, client(srv.url, events) as pub_nc:
            assert pub_nc.max_payload == limit
            assert sub_nc.max_payload == limit
            sub = await sub_nc.subscribe(subject)
            await flush(sub_nc)
            await pub_nc.publish(subject, b"a" * limit)
            with pytest.raises(MaxPayloadError):
                await pub_nc.publish(subject, b"b" * (limit + 1))
            await flush(pub_nc)
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"a" * limit

            # nats-py only checks the payload, the server checks headers + payload:
            # this one leaves the client and the server cuts the connection.
            await pub_nc.publish(subject, b"c" * (limit - 10), headers={"Pad": "x" * 20})
            await wait(events.closed, "the connection to end after the payload violation")
            # The server sends -ERR 'Maximum Payload Violation' and closes without
            # reading the payload, so the kernel may turn the close into a reset that
            # destroys the -ERR before nats-py reads it: accept either outcome.
            error = pub_nc.last_error
            assert str(error) == "nats: maximum payload violation" or isinstance(
                error, (ConnectionResetError, UnexpectedEOF)
            ), repr(error)
            assert pub_nc.is_closed
            with pytest.raises(ConnectionClosedError):
                await pub_nc.publish(subject, b"d")
            await flush(sub_nc)
            assert sub_nc.stats["in_msgs"] == 1


async def test_many_subscriptions(shared_server: ServerProcess) -> None:
    base = unique("subs")
    count = 500
    async with client(shared_server.url) as sub_nc, client(shared_server.url) as pub_nc:
        subs = [await sub_nc.subscribe(f"{base}.{i}") for i in range(count)]
        same = [await sub_nc.subscribe(f"{base}.same") for _ in range(50)]
        await flush(sub_nc)
        for i in range(count):
            await pub_nc.publish(f"{base}.{i}", b"%d" % i)
        await pub_nc.publish(f"{base}.same", b"fan-out")
        await flush(pub_nc)
        await flush(sub_nc)
        assert sub_nc.stats["in_msgs"] == count + len(same)
        for i, sub in enumerate(subs):
            msg = await sub.next_msg(timeout=TIMEOUT)
            assert (msg.subject, msg.data) == (f"{base}.{i}", b"%d" % i)
            assert sub.pending_msgs == 0
        for sub in same:
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"fan-out"


async def test_max_subscriptions_error_reaches_client(tmp_path: Path) -> None:
    with start_server("pynats", tmp_path, max_subscriptions=2) as srv:
        events = Events()
        async with client(srv.url, events) as nc:
            await nc.subscribe("a")
            await nc.subscribe("b")
            await flush(nc)
            assert events.errors == []
            await nc.subscribe("c")
            # The server keeps the connection; nats-py closes it on this -ERR.
            await wait(events.closed, "nats-py closing after the -ERR")
            assert str(nc.last_error) == "nats: maximum subscriptions exceeded"


# -- slow consumer, stale connection, lame duck -----------------------------------------


async def test_slow_consumer_is_cut_publisher_unaffected(tmp_path: Path) -> None:
    max_pending = 64 * 1024
    chunk = 32 * 1024
    total_bytes = 16 * 1024 * 1024
    subject = "slow.consumer"
    with start_server(
        "pynats", tmp_path, max_pending=max_pending, max_payload=chunk
    ) as srv, closing(open_starved_subscriber(srv.port, subject)) as starved:
        events = Events()
        async with client(srv.url, events) as pub_nc, client(srv.url) as healthy_nc:
            healthy = Counter()
            await healthy_nc.subscribe(f"{subject}.ok", cb=healthy.cb)
            await flush(healthy_nc)
            payload = b"x" * chunk
            for i in range(total_bytes // chunk):
                await pub_nc.publish(subject, payload)
                if i % 32 == 31:
                    await flush(pub_nc)
            await flush(pub_nc)
            # The starved connection was closed without an -ERR.
            received = await asyncio.to_thread(read_until_eof, starved, 10.0)
            assert len(received) < total_bytes, "slow consumer was never cut off"
            assert b"-ERR" not in received
            # The publisher never noticed.
            assert pub_nc.is_connected
            assert events.errors == []
            assert not events.disconnected.is_set()
            await pub_nc.publish(f"{subject}.ok", b"still here")
            await flush(pub_nc)
            await flush(healthy_nc)
            assert healthy.data == [b"still here"]


async def test_stale_connection(tmp_path: Path) -> None:
    subject = "stale.check"
    with start_server("pynats", tmp_path, ping_interval=0.2, ping_max=2) as srv:
        events = Events()
        async with client(srv.url, events) as nc:
            sub = await nc.subscribe(subject)
            await flush(nc)
            with RawClient(srv.port) as raw:
                raw.send(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
                start = time.monotonic()
                cut = await asyncio.to_thread(raw.read_until_closed, 10.0)
                elapsed = time.monotonic() - start
            assert cut == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
            assert 0.3 < elapsed < 3.0, elapsed
            # nats-py answers the server's PINGs, so it survives many more intervals.
            await asyncio.sleep(1.0)
            assert nc.is_connected
            assert not events.disconnected.is_set()
            assert events.errors == []
            await nc.publish(subject, b"alive")
            await flush(nc)
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"alive"


def _lame_duck_server(tmp_path: Path) -> ServerProcess | InProcessServer:
    # nats-server refuses lame_duck_duration below 30s; the grace period has no minimum.
    # With one client the close happens right after the grace period. The reference
    # gets these as a config file; pynats runs in-process and takes signals through the
    # same handler as its command line.
    return start_server("pynats", tmp_path, lame_duck_duration=30.0,
                        lame_duck_grace_period=0.5)


async def test_lame_duck_client_moves_to_other_server(tmp_path: Path) -> None:
    subject = "ldm.continuity"
    with _lame_duck_server(tmp_path) as a, ServerProcess("pynats") as b:
        events = Events()
        async with (
            client(
                [a.url, b.url],
                events,
                allow_reconnect=True,
                dont_randomize=True,
                reconnect_time_wait=0.1,
                max_reconnect_attempts=20,
            ) as nc,
            client(b.url) as on_b,
        ):
            assert nc.connected_url is not None and nc.connected_url.port == a.port
            sub = await nc.subscribe(subject)
            await flush(nc)

            sent_at = time.monotonic()
            a.signal(signal.SIGUSR2)
            await wait(events.lame_duck, "the INFO with ldm:true")
            # The listener is closed before clients are told.
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", a.port), timeout=1.0).close()
            # Still connected to A during the grace period.
            assert nc.connected_url is not None and nc.connected_url.port == a.port

            await wait(events.disconnected, "A closing the client", 10.0)
            await wait(events.reconnected, "the reconnect to B", 10.0)
            assert time.monotonic() - sent_at >= 0.4, "closed before the grace period"
            assert nc.connected_url is not None and nc.connected_url.port == b.port
            assert not events.closed.is_set()

            # The subscription was replayed on B.
            await flush(nc)
            await on_b.publish(subject, b"via B")
            await flush(on_b)
            assert (await sub.next_msg(timeout=TIMEOUT)).data == b"via B"

            # A shuts itself down once its clients are gone.
            assert await asyncio.to_thread(a.wait, 15.0) == 0
            # The only error nats-py reports is A closing the socket under it.
            assert all(
                isinstance(e, (UnexpectedEOF, ConnectionResetError)) for e in events.errors
            ), events.errors


async def test_lame_duck_info_on_the_wire(tmp_path: Path) -> None:
    """What nats-py's lame_duck_mode_cb reacts to: an async INFO with ``ldm``."""
    with _lame_duck_server(tmp_path) as a:
        with RawClient(a.port) as raw:
            first = json.loads(raw.info.removeprefix(b"INFO "))
            assert "ldm" not in first
            raw.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
            raw.expect(b"PONG\r\n")
            raw.send(b"PING\r\n")
            # An optional post-connect INFO (connect_info) may come before this PONG.
            while (line := raw.read_line()) != b"PONG\r\n":
                assert json.loads(line.removeprefix(b"INFO ")).get("connect_info"), line
            a.signal(signal.SIGUSR2)
            line = await asyncio.to_thread(raw.read_line, TIMEOUT)
            assert line.startswith(b"INFO ") and line.endswith(b"\r\n"), line
            info = json.loads(line[5:])
            assert info["ldm"] is True
            assert info["server_id"] == first["server_id"]
            assert not info.get("connect_urls"), "a standalone server has no one to point to"
            rest = await asyncio.to_thread(raw.read_until_closed, 10.0)
            assert rest == b""
        assert await asyncio.to_thread(a.wait, 15.0) == 0
