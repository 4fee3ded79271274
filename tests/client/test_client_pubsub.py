"""The asyncio client against pynats-server and nats-server, same expectations for both.

Ordering is established with ``flush()`` (a PING/PONG after everything sent: the server
has processed it, and every message it routed back to us arrived before the PONG), so no
test sleeps to wait for state.
"""

from __future__ import annotations

import asyncio
import builtins
import time

import pytest
from clienttools import TIMEOUT, Events

import pynats
from harness import ServerProcess
from pynats.client import Client, Headers, Msg, State, connect
from pynats.errors import (
    ClientError,
    ConnectionClosedError,
    InvalidSubjectError,
    MaxPayloadError,
    NoRespondersError,
    SlowConsumerError,
    SubscriptionClosedError,
    TimeoutError,
)


async def take(sub: pynats.client.Subscription, n: int) -> list[Msg]:
    return [await sub.next_msg(TIMEOUT) for _ in range(n)]


# -- connect and basics --------------------------------------------------------------------


async def test_connect_exposes_server(nc: Client, server: ServerProcess) -> None:
    assert nc.is_connected and nc.state is State.CONNECTED
    assert nc.connected_url == f"nats://127.0.0.1:{server.port}"
    info = nc.server_info
    assert info.server_id and info.headers and info.max_payload == 1024 * 1024
    assert info.client_id > 0 and info.proto == 1
    assert nc.max_payload == info.max_payload
    assert 0 < await nc.rtt() < 1.0


async def test_top_level_connect_and_context_manager(server: ServerProcess) -> None:
    async with await pynats.connect(server.url) as client:
        assert client.is_connected
    assert client.is_closed
    with pytest.raises(ConnectionClosedError):
        client.publish("x")
    with pytest.raises(ConnectionClosedError):
        await client.flush()
    await client.close()  # idempotent


async def test_publish_subscribe_in_order(nc: Client) -> None:
    sub = nc.subscribe("ord.test")
    for i in range(100):
        nc.publish("ord.test", b"%d" % i)
    msgs = await take(sub, 100)
    assert [m.data for m in msgs] == [b"%d" % i for i in range(100)]
    assert all(m.subject == "ord.test" and m.reply == "" and m.headers is None for m in msgs)
    assert msgs[0].sid == sub.sid


async def test_empty_and_large_payloads(nc: Client) -> None:
    sub = nc.subscribe("sizes")
    big = bytes(range(256)) * 4096  # 1 MiB: exactly max_payload
    nc.publish("sizes", b"")
    nc.publish("sizes", big)
    first, second = await take(sub, 2)
    assert first.data == b"" and second.data == big
    with pytest.raises(MaxPayloadError):
        nc.publish("sizes", big + b"!")
    with pytest.raises(MaxPayloadError):
        nc.publish("sizes", big, headers={"A": "b"})


async def test_invalid_subjects_refused_locally(nc: Client) -> None:
    for bad in ("", "a b", "a\r\nPUB x 1"):
        with pytest.raises(InvalidSubjectError):
            nc.publish(bad, b"x")
    with pytest.raises(InvalidSubjectError):
        nc.subscribe("a..b")
    with pytest.raises(InvalidSubjectError):
        nc.subscribe("a", queue="q q")
    await nc.flush()  # the connection is unharmed
    assert nc.is_connected


async def test_wildcards(nc: Client) -> None:
    star = nc.subscribe("wc.*.end")
    tail = nc.subscribe("wc.>")
    for subject in ("wc.a.end", "wc.b.c.end", "wc.x", "wc"):
        nc.publish(subject, subject.encode())
    await nc.flush()
    assert [m.subject for m in await take(star, 1)] == ["wc.a.end"]
    assert [m.subject for m in await take(tail, 3)] == ["wc.a.end", "wc.b.c.end", "wc.x"]
    assert star.pending_msgs == tail.pending_msgs == 0


async def test_queue_groups(nc: Client, server: ServerProcess) -> None:
    async with await connect(server.url) as other:
        q1 = nc.subscribe("qg", queue="workers")
        q2 = other.subscribe("qg", queue="workers")
        plain = nc.subscribe("qg")
        await other.flush()
        for i in range(200):
            nc.publish("qg", b"%d" % i)
        await take(plain, 200)
        await other.flush()
        await nc.flush()
        assert q1.pending_msgs + q2.pending_msgs == 200
        assert q1.pending_msgs > 0 and q2.pending_msgs > 0


async def test_headers_round_trip(nc: Client) -> None:
    sub = nc.subscribe("hdr")
    sent = Headers([("X-Trace", "1"), ("x-trace", "2"), ("Other", "v")])
    nc.publish("hdr", b"body", headers=sent)
    nc.publish("hdr", b"", headers={"Only": "header"})
    first, second = await take(sub, 2)
    assert first.data == b"body" and first.headers == sent
    assert first.headers is not None and first.headers.get_all("X-TRACE") == ["1", "2"]
    assert first.status is None and not first.is_no_responders
    assert second.data == b"" and second.headers == {"only": "header"}


async def test_no_echo(server: ServerProcess) -> None:
    async with await connect(server.url, no_echo=True) as quiet, \
            await connect(server.url) as other:
        own = quiet.subscribe("echo.t")
        seen = other.subscribe("echo.t")
        await other.flush()
        quiet.publish("echo.t", b"x")
        await quiet.flush()
        assert (await seen.next_msg(TIMEOUT)).data == b"x"
        assert own.pending_msgs == 0


async def test_verbose_and_pedantic(server: ServerProcess) -> None:
    async with await connect(server.url, verbose=True, pedantic=True) as client:
        sub = client.subscribe("vp")
        client.publish("vp", b"ok")
        assert (await sub.next_msg(TIMEOUT)).data == b"ok"


# -- iteration, next_msg, callbacks --------------------------------------------------------


async def test_async_iteration(nc: Client) -> None:
    sub = nc.subscribe("iter", max_msgs=5)
    for i in range(7):
        nc.publish("iter", b"%d" % i)
    got = [m.data async for m in sub]  # ends at max_msgs
    assert got == [b"0", b"1", b"2", b"3", b"4"]
    assert sub.closed and sub.delivered == 5
    with pytest.raises(SubscriptionClosedError):
        await sub.next_msg(0.1)


async def test_next_msg_timeout(nc: Client) -> None:
    sub = nc.subscribe("silence")
    start = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        await sub.next_msg(timeout=0.2)
    assert 0.15 < time.monotonic() - start < 2.0
    assert isinstance(err.value, builtins.TimeoutError)
    nc.publish("silence", b"late")
    assert (await sub.next_msg(TIMEOUT)).data == b"late"


async def test_concurrent_next_msg(nc: Client) -> None:
    sub = nc.subscribe("conc")
    waiters = [asyncio.create_task(sub.next_msg(TIMEOUT)) for _ in range(3)]
    await asyncio.sleep(0)
    for i in range(3):
        nc.publish("conc", b"%d" % i)
    got = sorted(m.data for m in await asyncio.gather(*waiters))
    assert got == [b"0", b"1", b"2"]


async def test_callbacks_sync_and_async(nc: Client) -> None:
    seen: list[bytes] = []
    done = asyncio.Event()

    def sync_cb(msg: Msg) -> None:
        seen.append(msg.data)

    async def async_cb(msg: Msg) -> None:
        await asyncio.sleep(0)
        seen.append(msg.data.upper())
        if len(seen) == 6:
            done.set()

    s1 = nc.subscribe("cbs", cb=sync_cb)
    nc.subscribe("cbs", cb=async_cb)
    for word in (b"a", b"b", b"c"):
        nc.publish("cbs", word)
    await asyncio.wait_for(done.wait(), TIMEOUT)
    assert sorted(seen) == [b"A", b"B", b"C", b"a", b"b", b"c"]
    with pytest.raises(ClientError):
        await s1.next_msg()
    with pytest.raises(ClientError):
        s1.__aiter__()


async def test_callback_exception_reported_and_survived(server: ServerProcess) -> None:
    events = Events()
    seen: list[bytes] = []

    def cb(msg: Msg) -> None:
        if msg.data == b"boom":
            raise ValueError("callback failed")
        seen.append(msg.data)

    async with await connect(server.url, callbacks=events.callbacks()) as client:
        client.subscribe("raise", cb=cb)
        for data in (b"1", b"boom", b"2"):
            client.publish("raise", data)
        await client.flush()
        await asyncio.wait_for(events.error.wait(), TIMEOUT)
        sub = client.subscribe("raise.done")
        client.publish("raise.done")
        await sub.next_msg(TIMEOUT)
        assert seen == [b"1", b"2"]
        assert [type(e) for e in events.errors] == [ValueError]
        assert client.is_connected


# -- unsubscribe, auto-unsubscribe, drain --------------------------------------------------


async def test_unsubscribe_stops_and_drops_buffered(nc: Client) -> None:
    sub = nc.subscribe("unsub")
    nc.publish("unsub", b"1")
    await nc.flush()
    sub.unsubscribe()
    nc.publish("unsub", b"2")
    await nc.flush()
    assert sub.closed and sub.pending_msgs == 0
    assert [m async for m in sub] == []


async def test_unsubscribe_with_max(nc: Client, server: ServerProcess) -> None:
    sub = nc.subscribe("automax")
    nc.publish("automax", b"0")
    await nc.flush()
    sub.unsubscribe(max_msgs=3)  # counts the one already received
    for i in range(1, 6):
        nc.publish("automax", b"%d" % i)
    await nc.flush()
    assert [m.data async for m in sub] == [b"0", b"1", b"2"]
    assert sub.received == 3


async def test_subscription_drain_delivers_in_flight(nc: Client) -> None:
    seen: list[bytes] = []

    async def slow(msg: Msg) -> None:
        await asyncio.sleep(0.001)
        seen.append(msg.data)

    sub = nc.subscribe("sdrain", cb=slow)
    for i in range(50):
        nc.publish("sdrain", b"%d" % i)
    await sub.drain(TIMEOUT)
    assert len(seen) == 50 and sub.closed
    nc.publish("sdrain", b"after")
    await nc.flush()
    assert len(seen) == 50


async def test_iterator_drain(nc: Client) -> None:
    sub = nc.subscribe("idrain")
    for i in range(10):
        nc.publish("idrain", b"%d" % i)

    async def consume() -> list[bytes]:
        return [m.data async for m in sub]

    consumer = asyncio.create_task(consume())
    await sub.drain(TIMEOUT)
    assert len(await asyncio.wait_for(consumer, TIMEOUT)) == 10


async def test_client_drain_processes_then_closes(server: ServerProcess) -> None:
    events = Events()
    seen: list[bytes] = []

    async def cb(msg: Msg) -> None:
        await asyncio.sleep(0.001)
        seen.append(msg.data)

    client = await connect(server.url, callbacks=events.callbacks())
    client.subscribe("cdrain", cb=cb)
    for i in range(30):
        client.publish("cdrain", b"%d" % i)
    await client.drain()
    assert len(seen) == 30
    assert client.is_closed and events.closed.is_set()
    assert events.counts["closed"] == 1


# -- flush and stats -----------------------------------------------------------------------


async def test_flush_orders_everything_before_it(nc: Client) -> None:
    sub = nc.subscribe("flushed")
    for _ in range(1000):
        nc.publish("flushed", b"0123456789")
    await nc.flush()
    assert sub.pending_msgs == 1000 and sub.pending_bytes == 10_000


async def test_stats(server: ServerProcess) -> None:
    async with await connect(server.url) as client:
        client.subscribe("st")
        for _ in range(10):
            client.publish("st", b"12345")
        client.publish("st", b"x", headers={"K": "v"})
        await client.flush()
        stats = client.stats
        header_bytes = len(b"NATS/1.0\r\nK: v\r\n\r\n")
        assert (stats.out_msgs, stats.in_msgs) == (11, 11)
        assert stats.out_bytes == stats.in_bytes == 51 + header_bytes
        assert stats.reconnects == 0


async def test_slow_consumer_reported_once_per_episode(server: ServerProcess) -> None:
    events = Events()
    async with await connect(server.url, callbacks=events.callbacks()) as client:
        sub = client.subscribe("slow", pending_msgs_limit=10)
        for i in range(50):
            client.publish("slow", b"%d" % i)
        await client.flush()
        assert (sub.pending_msgs, sub.dropped, sub.received) == (10, 40, 50)
        await asyncio.wait_for(events.error.wait(), TIMEOUT)
        assert [m.data for m in await take(sub, 10)] == [b"%d" % i for i in range(10)]
        for i in range(15):
            client.publish("slow", b"%d" % i)
        await client.flush()
        await client.flush()  # let the error callback task run
        slow = events.of_type(SlowConsumerError)
        assert len(slow) == 2 and sub.dropped == 45
        err = slow[0]
        assert isinstance(err, SlowConsumerError) and err.sid == sub.sid


# -- request / reply -----------------------------------------------------------------------


async def test_request_reply(nc: Client, server: ServerProcess) -> None:
    async with await connect(server.url) as responder:
        def answer(msg: Msg) -> None:
            msg.respond(b"re:" + msg.data, headers={"Seen": msg.subject})

        responder.subscribe("svc.echo", cb=answer)
        await responder.flush()
        replies = await asyncio.gather(*(nc.request("svc.echo", b"%d" % i, timeout=TIMEOUT)
                                         for i in range(64)))
        assert sorted(r.data for r in replies) == sorted(b"re:%d" % i for i in range(64))
        assert replies[0].headers == {"Seen": "svc.echo"}
        with_headers = await nc.request("svc.echo", b"h", headers={"A": "1"})
        assert with_headers.data == b"re:h"


async def test_no_responders(nc: Client) -> None:
    start = time.monotonic()
    with pytest.raises(NoRespondersError) as err:
        await nc.request("nobody.home", b"?", timeout=TIMEOUT)
    assert time.monotonic() - start < 1.0  # failed fast, not by the timeout
    assert err.value.subject == "nobody.home"


async def test_request_timeout(nc: Client) -> None:
    nc.subscribe("blackhole")  # a responder that never answers
    await nc.flush()
    with pytest.raises(TimeoutError):
        await nc.request("blackhole", b"", timeout=0.2)


async def test_respond_without_reply_subject(nc: Client) -> None:
    sub = nc.subscribe("noreply")
    nc.publish("noreply", b"x")
    msg = await sub.next_msg(TIMEOUT)
    with pytest.raises(InvalidSubjectError):
        msg.respond(b"y")


async def _responders(client: Client, n: int, extra: bytes | None = None) -> None:
    for i in range(n):
        def answer(msg: Msg, i: int = i) -> None:
            msg.respond(b"r%d" % i)
            if extra is not None:
                msg.respond(extra)
        client.subscribe("scatter", cb=answer)
    await client.flush()


async def test_request_many_by_count(nc: Client, server: ServerProcess) -> None:
    async with await connect(server.url) as responders:
        await _responders(responders, 3)
        start = time.monotonic()
        got = [m.data async for m in nc.request_many("scatter", b"q", max_msgs=3, timeout=5)]
        assert sorted(got) == [b"r0", b"r1", b"r2"]
        assert time.monotonic() - start < 2.0


async def test_request_many_by_deadline(nc: Client, server: ServerProcess) -> None:
    async with await connect(server.url) as responders:
        await _responders(responders, 3)
        start = time.monotonic()
        got = [m.data async for m in nc.request_many("scatter", timeout=0.3)]
        elapsed = time.monotonic() - start
        assert sorted(got) == [b"r0", b"r1", b"r2"]
        assert 0.25 < elapsed < 2.0


async def test_request_many_by_stall(nc: Client, server: ServerProcess) -> None:
    async with await connect(server.url) as responders:
        await _responders(responders, 3)
        start = time.monotonic()
        got = [m.data async for m in nc.request_many("scatter", timeout=5, stall=0.2)]
        assert sorted(got) == [b"r0", b"r1", b"r2"]
        assert time.monotonic() - start < 2.0


async def test_request_many_by_sentinel(nc: Client, server: ServerProcess) -> None:
    async with await connect(server.url) as responder:
        await _responders(responder, 1, extra=b"")
        got = [m.data async for m in nc.request_many("scatter", timeout=5, sentinel=b"")]
        assert got == [b"r0"]
        got = [m.data async for m in nc.request_many(
            "scatter", timeout=5, sentinel=lambda m: m.data == b"")]
        assert got == [b"r0"]


async def test_request_many_no_responders_and_early_exit(nc: Client) -> None:
    with pytest.raises(NoRespondersError):
        async for _ in nc.request_many("nobody.many", timeout=5):
            pass
    async with nc.request_many("nobody.many", timeout=5) as stream:
        assert stream.reply.startswith("_INBOX.")


async def test_pending_requests_fail_when_closed(server: ServerProcess) -> None:
    client = await connect(server.url)
    client.subscribe("hang")
    pending = asyncio.create_task(client.request("hang", timeout=TIMEOUT))
    await client.flush()
    await client.close()
    with pytest.raises(ConnectionClosedError):
        await pending


async def test_raising_error_callback_is_contained(server: ServerProcess) -> None:
    calls: list[BaseException] = []

    def bad_error_cb(exc: BaseException) -> None:
        calls.append(exc)
        raise RuntimeError("the error callback itself fails")

    from pynats.client import Callbacks

    async with await connect(server.url, callbacks=Callbacks(error=bad_error_cb)) as client:
        sub = client.subscribe("ecb", pending_msgs_limit=1)
        for _ in range(3):
            client.publish("ecb", b"x")
        await client.flush()
        await client.flush()
        assert len(calls) == 1 and isinstance(calls[0], SlowConsumerError)
        assert (await sub.next_msg(TIMEOUT)).data == b"x"
        assert client.is_connected


async def test_close_sends_what_was_published(nc: Client, server: ServerProcess) -> None:
    sub = nc.subscribe("last.words")
    await nc.flush()
    async with await connect(server.url) as brief:
        for i in range(100):
            brief.publish("last.words", b"%d" % i)
    # Leaving the block closed the client right after publishing: nothing is lost.
    assert [m.data for m in await take(sub, 100)] == [b"%d" % i for i in range(100)]
