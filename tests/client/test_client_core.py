"""The pure client core and pool: every decision tested without a loop or a socket."""

from __future__ import annotations

import builtins
import json
import random
import subprocess
import sys
import threading

import pytest

from pynats.client.core import (
    ACCEPT,
    DROP,
    DROP_AND_REPORT,
    END,
    NO_RESPONDERS,
    YIELD,
    YIELD_LAST,
    ErrAction,
    Gather,
    LockedOutbound,
    Outbound,
    Pings,
    RequestMux,
    ServerInfo,
    SubscriptionState,
    classify_err,
    connect_options,
    encode_publish,
    encode_subject,
)
from pynats.client.msg import Msg
from pynats.client.nuid import TOTAL_LEN, Nuid
from pynats.client.options import Callbacks, ConnectOptions, ReconnectOptions
from pynats.client.pool import Backoff, ServerPool, parse_url
from pynats.errors import (
    AuthorizationError,
    ClientError,
    ConfigError,
    InvalidSubjectError,
    MaxPayloadError,
    NotSupportedError,
    PermissionsViolationError,
    PynatsError,
    ReconnectBufferFullError,
    ServerError,
    StaleConnectionError,
    TimeoutError,
)

# -- errors -------------------------------------------------------------------------------


def test_error_tree_is_rooted() -> None:
    assert issubclass(ClientError, PynatsError)
    assert issubclass(TimeoutError, ClientError)
    assert issubclass(TimeoutError, builtins.TimeoutError)
    assert issubclass(AuthorizationError, ServerError)
    assert issubclass(InvalidSubjectError, ValueError)


# -- subscriptions ------------------------------------------------------------------------


def test_pending_limits_and_one_report_per_episode() -> None:
    sub = SubscriptionState(1, "foo", pending_msgs_limit=2, pending_bytes_limit=100)
    assert [sub.admit(10), sub.admit(10)] == [ACCEPT, ACCEPT]
    assert [sub.admit(10), sub.admit(10)] == [DROP_AND_REPORT, DROP]
    assert (sub.pending_msgs, sub.pending_bytes, sub.dropped, sub.received) == (2, 20, 2, 4)
    sub.taken(10)
    assert sub.admit(10) == ACCEPT  # the episode ends when a message is accepted
    assert sub.admit(10) == DROP_AND_REPORT  # and a new one starts
    assert sub.delivered == 1


def test_bytes_limit() -> None:
    sub = SubscriptionState(1, "foo", pending_bytes_limit=15)
    assert sub.admit(10) == ACCEPT
    assert sub.admit(10) == DROP_AND_REPORT
    assert sub.admit(5) == ACCEPT


def test_unlimited_when_limits_not_positive() -> None:
    sub = SubscriptionState(1, "foo", pending_msgs_limit=0, pending_bytes_limit=-1)
    assert all(sub.admit(1 << 20) == ACCEPT for _ in range(1000))


def test_max_msgs_and_resubscribe_remaining() -> None:
    sub = SubscriptionState(7, "foo.*", "q", max_msgs=5)
    assert sub.sub_ops() == b"SUB foo.* q 7\r\nUNSUB 7 5\r\n"
    for _ in range(3):
        sub.admit(1)
    assert not sub.exhausted
    assert sub.sub_ops() == b"SUB foo.* q 7\r\nUNSUB 7 2\r\n"  # replay after a reconnect
    sub.admit(1)
    sub.admit(1)
    assert sub.exhausted
    assert SubscriptionState(3, "a").sub_ops() == b"SUB a 3\r\n"
    assert sub.unsub_op() == b"UNSUB 7\r\n"


@pytest.mark.parametrize("subject", ["", "a..b", "a.>.b", "a b", ".a", "a\tb"])
def test_invalid_subscription_subjects(subject: str) -> None:
    with pytest.raises(InvalidSubjectError):
        SubscriptionState(1, subject)


def test_invalid_queue_and_publish_subjects() -> None:
    with pytest.raises(InvalidSubjectError):
        SubscriptionState(1, "a", "bad queue")
    for bad in ("", "a b", "a\r\n"):
        with pytest.raises(InvalidSubjectError):
            encode_subject(bad)
    assert encode_subject("a.*.>") == b"a.*.>"  # literal wildcards are the server's business


# -- outbound / reconnect buffer ----------------------------------------------------------


def test_outbound_keeps_publishes_and_drops_control_on_disconnect() -> None:
    out = Outbound(limit=10)
    out.connected = True
    out.publish(b"PUB a 1\r\nx\r\n")
    out.control(b"SUB b 1\r\n")
    out.publish(b"PUB a 1\r\ny\r\n")
    out.control(b"PING\r\n")
    out.disconnected()
    assert out.chunks == [b"PUB a 1\r\nx\r\n", b"PUB a 1\r\ny\r\n"]
    assert out.size == 24
    with pytest.raises(ReconnectBufferFullError, match="reconnect buffer full"):
        out.publish(b"x")  # already over the 10-byte limit: nothing more while offline
    assert out.take() == [b"PUB a 1\r\nx\r\n", b"PUB a 1\r\ny\r\n"]
    assert out.size == 0
    out.publish(b"0123456789")
    with pytest.raises(ReconnectBufferFullError):
        out.publish(b"!")


def test_outbound_counts_publishes() -> None:
    out = Outbound(limit=100)
    out.publish(b"PUB a 2\r\nhi\r\n", 2)
    out.control(b"PING\r\n")
    out.publish(b"PUB a 0\r\n\r\n", 0)
    assert (out.msgs, out.payload_bytes) == (2, 2)
    out.take()
    assert (out.msgs, out.payload_bytes) == (2, 2)  # counters outlive the batch


def test_locked_outbound_under_concurrent_publishers() -> None:
    out = LockedOutbound(limit=0)
    out.connected = True
    taken: list[bytes] = []

    def publish(who: int) -> None:
        for i in range(2000):
            out.publish(b"%d:%d;" % (who, i), 1)
            if i % 97 == 0:
                taken.extend(out.take())

    threads = [threading.Thread(target=publish, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken.extend(out.take())
    assert out.msgs == out.payload_bytes == 8000 and out.size == 0
    for who in range(4):
        mine = [c for c in taken if c.startswith(b"%d:" % who)]
        assert mine == [b"%d:%d;" % (who, i) for i in range(2000)]


def test_encode_publish() -> None:
    data, size = encode_publish(b"a", b"hi", b"r", max_payload=10, headers_supported=False)
    assert data == b"PUB a r 2\r\nhi\r\n" and size == 2
    data, size = encode_publish(b"a", b"", headers={"K": "v"}, max_payload=100,
                                headers_supported=True)
    assert data == b"HPUB a 18 18\r\nNATS/1.0\r\nK: v\r\n\r\n\r\n" and size == 18
    with pytest.raises(MaxPayloadError):
        encode_publish(b"a", b"x" * 11, max_payload=10, headers_supported=True)
    with pytest.raises(MaxPayloadError):
        encode_publish(b"a", b"x" * 5, headers={"K": "v"}, max_payload=20,
                       headers_supported=True)
    with pytest.raises(NotSupportedError):
        encode_publish(b"a", b"", headers={"K": "v"}, max_payload=100,
                       headers_supported=False)


# -- scatter-gather -----------------------------------------------------------------------


def _reply(data: bytes, raw_headers: bytes = b"") -> Msg:
    return Msg("_INBOX.x.1", data=data, raw_headers=raw_headers)


def test_gather_count_sentinel_and_no_responders() -> None:
    gather = Gather(max_msgs=2)
    assert [gather.verdict(_reply(b"a")), gather.verdict(_reply(b"b"))] == [YIELD, YIELD_LAST]
    no_one = _reply(b"", b"NATS/1.0 503\r\n\r\n")
    assert Gather().verdict(no_one) == NO_RESPONDERS
    gather = Gather(sentinel=b"")
    assert [gather.verdict(_reply(b"a")), gather.verdict(_reply(b""))] == [YIELD, END]
    assert gather.verdict(no_one) == END  # only the first reply can mean "no responders"
    gather = Gather(sentinel=lambda m: m.data.startswith(b"end"))
    assert [gather.verdict(_reply(b"x")), gather.verdict(_reply(b"end!"))] == [YIELD, END]
    assert gather.count == 1


# -- pings --------------------------------------------------------------------------------


def test_pings_stale_after_max_outstanding() -> None:
    pings: Pings[str] = Pings(2)
    assert pings.keepalive() and pings.keepalive()
    assert not pings.keepalive()  # a third would exceed 2 outstanding: stale
    assert pings.pong() is None  # answers the first keepalive
    assert pings.outstanding == 0
    assert pings.keepalive()


def test_pings_pair_pongs_with_waiters_in_order() -> None:
    pings: Pings[str] = Pings(2)
    pings.sent("flush-1")
    pings.keepalive()
    pings.sent("flush-2")
    assert [pings.pong(), pings.pong(), pings.pong(), pings.pong()] == [
        "flush-1", None, "flush-2", None]
    pings.sent("x")
    pings.keepalive()
    assert pings.reset() == ["x"]


# -- request mux --------------------------------------------------------------------------


def test_request_mux_routes_by_token() -> None:
    mux: RequestMux[str] = RequestMux("_INBOX", Nuid(random.Random(1)))
    assert mux.subject.startswith("_INBOX.") and mux.subject.endswith(".*")
    r1 = mux.register("one")
    r2 = mux.register("two")
    assert r1 != r2 and r1.rsplit(".", 1)[0] == mux.subject[:-2]
    assert mux.get(r2.encode()) == "two"
    assert mux.get(b"_INBOX.other.1") is None
    mux.discard(r2)
    assert mux.get(r2.encode()) is None and len(mux) == 1
    assert mux.clear() == ["one"] and len(mux) == 0


def test_nuid_unique_and_well_formed() -> None:
    nuid = Nuid(random.Random(5))
    ids = {nuid.next() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == TOTAL_LEN and i.isalnum() for i in ids)
    assert len(Nuid().next_str()) == TOTAL_LEN


# -- INFO, CONNECT, -ERR ------------------------------------------------------------------


def test_server_info_tolerates_odd_json() -> None:
    info = ServerInfo.from_wire({"server_id": "N1", "max_payload": "big", "headers": 1,
                                 "connect_urls": ["a:1", 2], "ldm": True, "proto": True})
    assert info.server_id == "N1" and info.max_payload == 1024 * 1024
    assert not info.headers and info.connect_urls == ("a:1",) and info.ldm and info.proto == 0


def test_connect_options_credentials() -> None:
    info = ServerInfo(headers=True)
    opts = ConnectOptions(name="svc", no_echo=True)
    url = parse_url("nats://bob:s%40cret@h:1")
    obj = connect_options(opts, info, url, tls=False)
    assert obj["user"] == "bob" and obj["pass"] == "s@cret"
    assert obj["name"] == "svc" and obj["echo"] is False
    assert obj["headers"] is obj["no_responders"] is True and obj["protocol"] == 1
    json.dumps(obj)
    explicit = connect_options(ConnectOptions(token="t"), info, parse_url("tok@h"), tls=True)
    assert explicit["auth_token"] == "t" and explicit["tls_required"] is True
    assert "user" not in connect_options(ConnectOptions(), ServerInfo(), parse_url("h"), False)


@pytest.mark.parametrize(("text", "action", "error"), [
    ("Stale Connection", ErrAction.RECONNECT, StaleConnectionError),
    ("maximum connections exceeded", ErrAction.RECONNECT, ServerError),
    ("Authorization Violation", ErrAction.AUTH, AuthorizationError),
    ("User Authentication Expired", ErrAction.AUTH, AuthorizationError),
    ('Permissions Violation for Publish to "x"', ErrAction.REPORT,
     PermissionsViolationError),
    ("maximum subscriptions exceeded", ErrAction.REPORT, ServerError),
    ("Unknown Protocol Operation", ErrAction.CLOSE, ServerError),
])
def test_classify_err(text: str, action: ErrAction, error: type[ClientError]) -> None:
    got_action, got_error = classify_err(text)
    assert got_action is action and type(got_error) is error


# -- options ------------------------------------------------------------------------------


def test_options_build_and_validation() -> None:
    opts = ConnectOptions.build("nats://a:1", name="x")
    assert opts.servers == ("nats://a:1",) and opts.name == "x"
    assert ConnectOptions.build(["a", "b"], opts).servers == ("a", "b")
    assert ConnectOptions(servers="h:1").servers == ("h:1",)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown connect option"):
        ConnectOptions.build(None, bogus=1)
    for bad in (dict(connect_timeout=0), dict(servers=()), dict(inbox_prefix="a b"),
                dict(inbox_prefix="a.*"), dict(max_outstanding_pings=0),
                dict(tls_handshake_first=True)):
        with pytest.raises(ConfigError):
            ConnectOptions(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ReconnectOptions(max_attempts=-2)
    assert ConnectOptions(callbacks=Callbacks(error=print)).callbacks.error is print


# -- pool ---------------------------------------------------------------------------------


def test_parse_url_forms() -> None:
    assert parse_url("h").url == "nats://h:4222"
    assert parse_url("tls://h:5").scheme == "tls"
    a = parse_url("nats://u:p@[::1]:7")
    assert (a.host, a.port, a.user, a.password, a.hostport) == ("::1", 7, "u", "p", "[::1]:7")
    assert parse_url("nats://tok@h").token == "tok"
    for bad in ("ws://h", "nats://h:notaport", "nats://:4222"):
        with pytest.raises(ConfigError):
            parse_url(bad)


def _pool(urls: list[str], randomize: bool = False, attempts: int = 60) -> ServerPool:
    return ServerPool.from_urls(urls, Backoff(1.0, 4.0, 0.0), max_attempts=attempts,
                                randomize=randomize, rng=random.Random(3))


def test_pool_order_dedup_and_shuffle() -> None:
    pool = _pool(["a:1", "b:1", "nats://a:1", "c:1"])
    assert [e.address.hostport for e in pool.plan_initial()] == ["a:1", "b:1", "c:1"]
    urls = [f"h{i}:1" for i in range(20)]
    shuffled = _pool(urls, randomize=True)
    assert [e.address.hostport for e in shuffled.entries] != urls
    assert sorted(e.address.hostport for e in shuffled.entries) == sorted(urls)


def test_connect_budget_is_an_even_share() -> None:
    assert ServerPool.attempt_budget(3.0, 3) == 1.0
    assert ServerPool.attempt_budget(1.0, 1) == 1.0
    assert ServerPool.attempt_budget(1.0, 0) == 1.0


def test_reconnect_rotation_and_backoff() -> None:
    pool = _pool(["a:1", "b:1"])
    a, b = pool.entries
    pool.connected(a, now=100.0)
    pool.disconnected()
    entry, wait = pool.next_reconnect(now=200.0)  # type: ignore[misc]
    assert entry is b and wait == 0.0  # the next server first, at once
    pool.failed(b, now=200.0)
    entry, wait = pool.next_reconnect(now=200.0)  # type: ignore[misc]
    assert entry is a and wait == 0.0  # the one we lost has not failed yet
    pool.failed(a, now=200.0)
    entry, wait = pool.next_reconnect(now=200.5)  # type: ignore[misc]
    assert entry is b and wait == pytest.approx(0.5)  # 1.0 after its first failure
    pool.failed(b, now=201.0)
    entry, wait = pool.next_reconnect(now=201.0)  # type: ignore[misc]
    assert entry is a and wait == pytest.approx(0.0)  # a's 1.0 s since 200.0 is over
    pool.failed(a, now=201.0)
    pool.failed(a, now=201.0)
    assert pool.backoff.delay(a.failures, pool.rng) == 4.0  # 1, 2, 4: capped at 4


def test_backoff_jitter_bounds() -> None:
    backoff = Backoff(0.5, 10.0, 0.2)
    rng = random.Random(9)
    waits = [backoff.delay(2, rng) for _ in range(200)]
    assert all(1.0 <= w <= 1.2 for w in waits) and len(set(waits)) > 100
    assert backoff.delay(0, rng) == 0.0
    assert backoff.delay(10_000, rng) <= 10.2


def test_servers_leave_after_max_attempts() -> None:
    pool = _pool(["a:1"], attempts=2)
    (a,) = pool.entries
    assert pool.failed(a, 1.0)
    assert not pool.failed(a, 2.0)
    assert pool.next_reconnect(3.0) is None


def test_repeated_auth_error_removes_server() -> None:
    pool = _pool(["a:1", "b:1"])
    a = pool.entries[0]
    assert pool.failed(a, 1.0, auth_error="Authorization Violation")
    assert not pool.failed(a, 2.0, auth_error="Authorization Violation")
    assert [e.address.hostport for e in pool.entries] == ["b:1"]


def test_lame_duck_server_is_tried_last() -> None:
    pool = _pool(["a:1", "b:1", "c:1"])
    a, b, c = pool.entries
    pool.connected(b, 0.0)
    pool.disconnected()
    pool.lame_duck(c)
    picks = [pool.next_reconnect(1.0)[0] for _ in range(2)]  # type: ignore[index]
    assert picks == [a, b]


def test_discovered_servers_merge_and_prune() -> None:
    pool = _pool(["a:1"])
    new = pool.discovered(["a:1", "b:1", "c:1", "::bad::"])
    assert [e.address.hostport for e in new] == ["b:1", "c:1"]
    assert all(e.implicit for e in new)
    pool.connected(pool.find("c:1"), 0.0)  # type: ignore[arg-type]
    assert pool.discovered(["d:1"]) != []
    # b was implicit and is no longer announced; a is explicit; c is current.
    assert sorted(e.address.hostport for e in pool.entries) == ["a:1", "c:1", "d:1"]


def test_draining_subscriptions_are_not_replayed() -> None:
    sub = SubscriptionState(1, "a")
    assert sub.replayable
    sub.draining = True
    assert not sub.replayable


def test_import_pynats_stays_cheap() -> None:
    code = ("import sys, pynats; assert 'asyncio' not in sys.modules; "
            "import pynats.client; assert pynats.connect is pynats.client.connect")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def test_publish_before_connect_is_refused() -> None:
    from pynats.client import Client
    from pynats.errors import ConnectionClosedError

    client = Client()
    with pytest.raises(ConnectionClosedError, match="connecting"):
        client.publish("a", b"x")
