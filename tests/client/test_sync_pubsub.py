"""The blocking client against pynats-server and nats-server, same expectations for both.

As for the asyncio client, ordering is established with ``flush()`` (everything the
server routed back to us arrived before its PONG), never with sleeps. Thread-safety
tests publish from many threads at once and check that nothing is lost, duplicated,
reordered within a thread, or torn.
"""

from __future__ import annotations

import builtins
import gc
import subprocess
import sys
import threading
import time
from collections import defaultdict

import pytest
from clienttools import TIMEOUT, SyncEvents, pynats_threads

import pynats.sync
from harness import ServerProcess
from pynats.errors import (
    ClientError,
    ConfigError,
    ConnectionClosedError,
    InvalidSubjectError,
    MaxPayloadError,
    NoRespondersError,
    SlowConsumerError,
    SubscriptionClosedError,
    TimeoutError,
)
from pynats.sync import Client, Headers, Msg, State, Subscription, connect


def take(sub: Subscription, n: int) -> list[Msg]:
    return [sub.next_msg(TIMEOUT) for _ in range(n)]


def run_threads(n: int, target: object, *args: object) -> None:
    """Run ``target(i, *args)`` in ``n`` threads and join them all (bounded)."""
    threads = [threading.Thread(target=target, args=(i, *args)) for i in range(n)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), "a thread did not finish"


# -- connect, context manager, close -------------------------------------------------------


def test_connect_context_manager_and_closed_client(server: ServerProcess) -> None:
    before = pynats_threads()
    with connect(server.url) as client:
        assert client.is_connected and client.state is State.CONNECTED
        assert client.connected_url == f"nats://127.0.0.1:{server.port}"
        info = client.server_info
        assert info.server_id and info.headers and client.max_payload == info.max_payload
        assert 0 < client.rtt() < 1.0
        assert {"pynats-loop", "pynats-callbacks"} <= set(pynats_threads())
    assert client.is_closed and client.state is State.CLOSED
    assert pynats_threads() == before  # every thread of the client ended
    with pytest.raises(ConnectionClosedError):
        client.publish("x")
    with pytest.raises(ConnectionClosedError):
        client.flush()
    with pytest.raises(ConnectionClosedError):
        client.subscribe("x")
    with pytest.raises(ConnectionClosedError):
        client.request("x", timeout=0.1)
    client.close()  # idempotent
    assert pynats.sync.connect is connect


def test_publish_subscribe_in_order(snc: Client) -> None:
    sub = snc.subscribe("s.ord")
    for i in range(100):
        snc.publish("s.ord", b"%d" % i)
    msgs = take(sub, 100)
    assert [m.data for m in msgs] == [b"%d" % i for i in range(100)]
    assert all(m.subject == "s.ord" and m.reply == "" and m.headers is None for m in msgs)
    assert msgs[0].sid == sub.sid and sub.delivered == 100 and sub.pending_msgs == 0


def test_invalid_input_refused_locally(snc: Client) -> None:
    for bad in ("", "a b", "a\r\nPUB x 1"):
        with pytest.raises(InvalidSubjectError):
            snc.publish(bad, b"x")
    with pytest.raises(InvalidSubjectError):
        snc.subscribe("a..b")
    big = b"x" * (snc.max_payload + 1)
    with pytest.raises(MaxPayloadError):
        snc.publish("s.big", big)
    with pytest.raises(MaxPayloadError):
        snc.publish("s.big", big[:-10], headers={"A": "b"})
    snc.flush()
    assert snc.is_connected


def test_wildcards_and_headers(snc: Client) -> None:
    tail = snc.subscribe("s.hdr.>")
    sent = Headers([("X-Trace", "1"), ("x-trace", "2"), ("Other", "v")])
    snc.publish("s.hdr.a", b"body", headers=sent)
    snc.publish("s.hdr.b.c", b"", headers={"Only": "header"})
    first, second = take(tail, 2)
    assert first.subject == "s.hdr.a" and first.data == b"body" and first.headers == sent
    assert first.headers is not None and first.headers.get_all("X-TRACE") == ["1", "2"]
    assert second.subject == "s.hdr.b.c" and second.headers == {"only": "header"}


def test_queue_groups(snc: Client, server: ServerProcess) -> None:
    with connect(server.url) as other:
        q1 = snc.subscribe("s.qg", queue="workers")
        q2 = other.subscribe("s.qg", queue="workers")
        plain = snc.subscribe("s.qg")
        other.flush()
        for i in range(200):
            snc.publish("s.qg", b"%d" % i)
        take(plain, 200)
        other.flush()
        assert q1.pending_msgs + q2.pending_msgs == 200
        assert q1.pending_msgs > 0 and q2.pending_msgs > 0


# -- iteration, next_msg, callbacks --------------------------------------------------------


def test_iteration_ends_at_max_msgs(snc: Client) -> None:
    sub = snc.subscribe("s.iter", max_msgs=5)
    for i in range(7):
        snc.publish("s.iter", b"%d" % i)
    assert [m.data for m in sub] == [b"0", b"1", b"2", b"3", b"4"]
    assert sub.closed and not sub.is_active and sub.delivered == 5
    with pytest.raises(SubscriptionClosedError):
        sub.next_msg(0.1)


def test_next_msg_timeout(snc: Client) -> None:
    sub = snc.subscribe("s.silence")
    start = time.monotonic()
    with pytest.raises(TimeoutError) as err:
        sub.next_msg(timeout=0.2)
    assert 0.15 < time.monotonic() - start < 2.0
    assert isinstance(err.value, builtins.TimeoutError)
    snc.publish("s.silence", b"late")
    assert sub.next_msg(TIMEOUT).data == b"late"


def test_next_msg_from_several_threads(snc: Client) -> None:
    sub = snc.subscribe("s.conc")
    got: list[bytes] = []
    ready = threading.Barrier(4)

    def consume(_: int) -> None:
        ready.wait(TIMEOUT)
        got.append(sub.next_msg(TIMEOUT).data)

    threads = [threading.Thread(target=consume, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    ready.wait(TIMEOUT)
    for i in range(3):
        snc.publish("s.conc", b"%d" % i)
    for t in threads:
        t.join(TIMEOUT)
    assert sorted(got) == [b"0", b"1", b"2"]


def test_callback_runs_on_its_own_thread_in_order(snc: Client) -> None:
    seen: list[bytes] = []
    threads: set[str] = set()
    done = threading.Event()

    def cb(msg: Msg) -> None:
        seen.append(msg.data)
        threads.add(threading.current_thread().name)
        if len(seen) == 100:
            done.set()

    sub = snc.subscribe("s.cb", cb=cb)
    for i in range(100):
        snc.publish("s.cb", b"%d" % i)
    assert done.wait(TIMEOUT)
    assert seen == [b"%d" % i for i in range(100)]
    assert threads == {f"pynats-sub-{sub.sid}"}
    with pytest.raises(ClientError):
        sub.next_msg()
    with pytest.raises(ClientError):
        iter(sub)


def test_concurrent_publishers_lose_nothing_and_never_interleave(snc: Client) -> None:
    """8 threads publish at once (sizes vary, so frames would tear if writes interleaved)."""
    per_thread, threads = 400, 8
    received: dict[int, list[int]] = defaultdict(list)
    done = threading.Event()
    count = 0

    def cb(msg: Msg) -> None:
        nonlocal count
        who, seq, body = msg.data.split(b":", 2)
        assert body == bytes([65 + int(seq) % 26]) * (int(seq) % 300), "torn payload"
        received[int(who)].append(int(seq))
        count += 1
        if count == per_thread * threads:
            done.set()

    snc.subscribe("s.many", cb=cb)
    snc.flush()

    def publisher(who: int) -> None:
        for seq in range(per_thread):
            body = bytes([65 + seq % 26]) * (seq % 300)
            snc.publish("s.many", b"%d:%d:%s" % (who, seq, body))

    run_threads(threads, publisher)
    snc.flush()
    assert done.wait(TIMEOUT), f"only {count} messages arrived"
    assert {w: received[w] for w in range(threads)} == {
        w: list(range(per_thread)) for w in range(threads)}
    assert snc.stats.out_msgs >= per_thread * threads


def test_callback_may_call_blocking_methods(snc: Client, server: ServerProcess) -> None:
    """Callbacks never run on the loop thread, so they may request, flush and publish."""
    with connect(server.url) as backend:
        backend.subscribe("s.inner", cb=lambda m: m.respond(b"inner:" + m.data))
        backend.flush()

        def outer(msg: Msg) -> None:
            snc.flush()
            msg.respond(b"outer+" + snc.request("s.inner", msg.data, timeout=TIMEOUT).data)

        snc.subscribe("s.outer", cb=outer)
        assert snc.request("s.outer", b"x", timeout=TIMEOUT).data == b"outer+inner:x"


def test_callback_exception_reported_on_callback_thread(server: ServerProcess) -> None:
    events = SyncEvents()
    seen: list[bytes] = []

    def cb(msg: Msg) -> None:
        if msg.data == b"boom":
            raise ValueError("callback failed")
        seen.append(msg.data)

    with connect(server.url, callbacks=events.callbacks()) as client:
        sub = client.subscribe("s.raise", cb=cb)
        for data in (b"1", b"boom", b"2"):
            client.publish("s.raise", data)
        events.wait("error")
        sub.drain(TIMEOUT)
        assert seen == [b"1", b"2"]
        assert [type(e) for e in events.errors] == [ValueError]
        assert events.threads == {"pynats-callbacks"}
        assert client.is_connected


def test_coroutine_callbacks_refused(snc: Client, server: ServerProcess) -> None:
    async def acb(msg: Msg) -> None:
        pass

    with pytest.raises(ConfigError, match="plain functions"):
        snc.subscribe("s.acb", cb=acb)
    with pytest.raises(ConfigError, match=r"callbacks\.error"):
        connect(server.url, callbacks=pynats.sync.Callbacks(error=acb))  # type: ignore[arg-type]


def test_blocking_call_on_the_loop_thread_is_refused(snc: Client) -> None:
    with pytest.raises(ClientError, match="deadlock"):
        snc._runner.call(snc.flush)


# -- unsubscribe, drain --------------------------------------------------------------------


def test_unsubscribe_stops_and_drops_buffered(snc: Client) -> None:
    sub = snc.subscribe("s.unsub")
    snc.publish("s.unsub", b"1")
    snc.flush()
    sub.unsubscribe()
    snc.publish("s.unsub", b"2")
    snc.flush()
    assert sub.closed and sub.pending_msgs == 0
    assert list(sub) == []
    sub.unsubscribe()  # idempotent


def test_unsubscribe_with_max(snc: Client) -> None:
    sub = snc.subscribe("s.automax")
    snc.publish("s.automax", b"0")
    snc.flush()
    sub.unsubscribe(max_msgs=3)  # counts the one already received
    for i in range(1, 6):
        snc.publish("s.automax", b"%d" % i)
    snc.flush()
    assert [m.data for m in sub] == [b"0", b"1", b"2"]
    assert sub.received == 3


def test_subscription_drain_waits_for_the_callback(snc: Client) -> None:
    seen: list[bytes] = []

    def slow(msg: Msg) -> None:
        time.sleep(0.001)
        seen.append(msg.data)

    sub = snc.subscribe("s.sdrain", cb=slow)
    for i in range(50):
        snc.publish("s.sdrain", b"%d" % i)
    sub.drain(TIMEOUT)
    assert len(seen) == 50 and sub.closed
    snc.publish("s.sdrain", b"after")
    snc.flush()
    assert len(seen) == 50


def test_drain_from_its_own_callback(snc: Client) -> None:
    seen: list[bytes] = []
    published, done = threading.Event(), threading.Event()
    sub: Subscription | None = None

    def cb(msg: Msg) -> None:
        seen.append(msg.data)
        if msg.data == b"0":
            assert sub is not None and published.wait(TIMEOUT)
            sub.drain(TIMEOUT)  # must not wait for itself
        if len(seen) == 5:
            done.set()

    sub = snc.subscribe("s.selfdrain", cb=cb)
    for i in range(5):
        snc.publish("s.selfdrain", b"%d" % i)
    snc.flush()  # all five are in the subscription's buffer
    published.set()
    assert done.wait(TIMEOUT), (seen, sub)
    assert seen == [b"0", b"1", b"2", b"3", b"4"] and sub.closed


def test_iterator_drain_with_a_consumer_thread(snc: Client) -> None:
    sub = snc.subscribe("s.idrain")
    for i in range(10):
        snc.publish("s.idrain", b"%d" % i)
    got: list[bytes] = []
    consumer = threading.Thread(target=lambda: got.extend(m.data for m in sub))
    consumer.start()
    sub.drain(TIMEOUT)
    consumer.join(TIMEOUT)
    assert got == [b"%d" % i for i in range(10)]


def test_drain_times_out_without_a_consumer(snc: Client) -> None:
    sub = snc.subscribe("s.nobody")
    snc.publish("s.nobody", b"unread")
    with pytest.raises(TimeoutError, match="drain"):
        sub.drain(0.2)
    assert sub.next_msg(TIMEOUT).data == b"unread"


def test_client_drain_processes_then_closes(server: ServerProcess) -> None:
    events = SyncEvents()
    seen: list[bytes] = []

    def cb(msg: Msg) -> None:
        time.sleep(0.001)
        seen.append(msg.data)

    client = connect(server.url, callbacks=events.callbacks())
    client.subscribe("s.cdrain", cb=cb)
    for i in range(30):
        client.publish("s.cdrain", b"%d" % i)
    client.drain()
    assert len(seen) == 30
    assert client.is_closed and events.counts["closed"] == 1
    client.drain()  # closed already: nothing to do


# -- request / reply -----------------------------------------------------------------------


def _echo(msg: Msg) -> None:
    msg.respond(b"re:" + msg.data, headers={"Seen": msg.subject})


def test_requests_from_many_threads(snc: Client, server: ServerProcess) -> None:
    with connect(server.url) as responder:
        responder.subscribe("s.echo", cb=_echo)
        responder.flush()
        replies: dict[int, bytes] = {}

        def ask(i: int) -> None:
            for j in range(8):
                replies[i * 8 + j] = snc.request("s.echo", b"%d" % (i * 8 + j), TIMEOUT).data

        run_threads(8, ask)
        assert replies == {i: b"re:%d" % i for i in range(64)}
        reply = snc.request("s.echo", b"h", headers={"A": "1"})
        assert reply.data == b"re:h" and reply.headers == {"Seen": "s.echo"}


def test_no_responders_and_timeout(snc: Client) -> None:
    start = time.monotonic()
    with pytest.raises(NoRespondersError) as err:
        snc.request("s.nobody.home", b"?", timeout=TIMEOUT)
    assert time.monotonic() - start < 1.0 and err.value.subject == "s.nobody.home"
    snc.subscribe("s.blackhole")
    snc.flush()
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        snc.request("s.blackhole", b"", timeout=0.2)
    assert 0.15 < time.monotonic() - start < 2.0


def _responders(client: Client, n: int, extra: bytes | None = None) -> None:
    for i in range(n):
        def answer(msg: Msg, i: int = i) -> None:
            msg.respond(b"r%d" % i)
            if extra is not None:
                msg.respond(extra)
        client.subscribe("s.scatter", cb=answer)
    client.flush()


def test_request_many(snc: Client, server: ServerProcess) -> None:
    with connect(server.url) as responders:
        _responders(responders, 3)
        start = time.monotonic()
        got = [m.data for m in snc.request_many("s.scatter", b"q", max_msgs=3, timeout=5)]
        assert sorted(got) == [b"r0", b"r1", b"r2"] and time.monotonic() - start < 2.0
        start = time.monotonic()
        got = [m.data for m in snc.request_many("s.scatter", timeout=0.3)]
        assert sorted(got) == [b"r0", b"r1", b"r2"] and 0.25 < time.monotonic() - start < 2
        start = time.monotonic()
        got = [m.data for m in snc.request_many("s.scatter", timeout=5, stall=0.2)]
        assert sorted(got) == [b"r0", b"r1", b"r2"] and time.monotonic() - start < 2.0


def test_request_many_sentinel_no_responders_and_early_exit(snc: Client,
                                                           server: ServerProcess) -> None:
    with connect(server.url) as responder:
        _responders(responder, 1, extra=b"")
        assert [m.data for m in snc.request_many("s.scatter", timeout=5, sentinel=b"")] == [
            b"r0"]
        got = [m.data for m in snc.request_many("s.scatter", timeout=5,
                                                sentinel=lambda m: m.data == b"")]
        assert got == [b"r0"]
    with pytest.raises(NoRespondersError):
        list(snc.request_many("s.nobody.many", timeout=5))
    with snc.request_many("s.nobody.many", timeout=5) as stream:
        assert stream.reply.startswith("_INBOX.")
    assert list(stream) == []


def test_pending_request_fails_when_closed(server: ServerProcess) -> None:
    client = connect(server.url)
    asked = threading.Event()
    client.subscribe("s.hang", cb=lambda _: asked.set())  # a responder that never answers
    client.flush()
    outcome: list[BaseException] = []

    def ask() -> None:
        try:
            client.request("s.hang", timeout=TIMEOUT)
        except BaseException as exc:
            outcome.append(exc)

    asker = threading.Thread(target=ask)
    asker.start()
    assert asked.wait(TIMEOUT)  # the request is out, so its reply subject is registered
    client.close()
    asker.join(TIMEOUT)
    assert [type(e) for e in outcome] == [ConnectionClosedError]


# -- flush, stats, slow consumers, close ---------------------------------------------------


def test_flush_orders_everything_before_it(snc: Client) -> None:
    sub = snc.subscribe("s.flushed")
    for _ in range(1000):
        snc.publish("s.flushed", b"0123456789")
    snc.flush()
    assert sub.pending_msgs == 1000 and sub.pending_bytes == 10_000


def test_stats(server: ServerProcess) -> None:
    with connect(server.url) as client:
        client.subscribe("s.st")
        for _ in range(10):
            client.publish("s.st", b"12345")
        client.publish("s.st", b"x", headers={"K": "v"})
        client.flush()
        stats = client.stats
        header_bytes = len(b"NATS/1.0\r\nK: v\r\n\r\n")
        assert (stats.out_msgs, stats.in_msgs) == (11, 11)
        assert stats.out_bytes == stats.in_bytes == 51 + header_bytes
        assert stats.reconnects == 0


def test_slow_consumer_reported_once_per_episode(server: ServerProcess) -> None:
    events = SyncEvents()
    with connect(server.url, callbacks=events.callbacks()) as client:
        sub = client.subscribe("s.slow", pending_msgs_limit=10)
        for i in range(50):
            client.publish("s.slow", b"%d" % i)
        client.flush()
        assert (sub.pending_msgs, sub.dropped, sub.received) == (10, 40, 50)
        events.wait("error")
        assert [m.data for m in take(sub, 10)] == [b"%d" % i for i in range(10)]
        for i in range(15):
            client.publish("s.slow", b"%d" % i)
        client.flush()
        events.wait_until(lambda: len(events.of_type(SlowConsumerError)) >= 2,
                          "the second slow consumer report")
        slow = events.of_type(SlowConsumerError)
        assert len(slow) == 2 and sub.dropped == 45
        assert isinstance(slow[0], SlowConsumerError) and slow[0].sid == sub.sid


def test_close_sends_what_was_published(snc: Client, server: ServerProcess) -> None:
    sub = snc.subscribe("s.last.words")
    snc.flush()
    with connect(server.url) as brief:
        for i in range(100):
            brief.publish("s.last.words", b"%d" % i)
    assert [m.data for m in take(sub, 100)] == [b"%d" % i for i in range(100)]


def test_close_ends_iteration_in_other_threads(server: ServerProcess) -> None:
    client = connect(server.url)
    sub = client.subscribe("s.ending")
    got: list[Msg] = []
    consumer = threading.Thread(target=lambda: got.extend(sub))
    consumer.start()
    client.flush()
    client.close()
    consumer.join(TIMEOUT)
    assert not consumer.is_alive() and got == []


def test_dropped_client_is_closed_by_the_garbage_collector(server: ServerProcess) -> None:
    before = pynats_threads()
    client = connect(server.url)
    client.subscribe("s.dropped", cb=lambda m: None)
    del client
    gc.collect()
    assert pynats_threads() == before


def test_script_without_close_still_sends(snc: Client, server: ServerProcess) -> None:
    sub = snc.subscribe("s.atexit")
    snc.flush()
    script = ("import sys, pynats.sync\n"
              "nc = pynats.sync.connect(sys.argv[1])\n"
              "for i in range(100):\n"
              "    nc.publish('s.atexit', b'%d' % i)\n")
    done = subprocess.run([sys.executable, "-c", script, server.url], timeout=30,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [m.data for m in take(sub, 100)] == [b"%d" % i for i in range(100)]
