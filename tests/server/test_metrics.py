"""``/metrics``: prometheus-nats-exporter's metric families, straight from the server.

The page is scraped from a running server and parsed with ``prometheus_client``'s own
text parser; names, types, labels and values are checked against ``/varz``,
``/connz`` and ``/subsz`` asked right after. The exporter's mapping rules and Go's
number formatting are tested directly on the pure functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from test_monitor import fetch, get_json, nats_client, publish, receive

from harness import InProcessServer
from pynats.server.monitor.metrics import (
    CONTENT_TYPE,
    Family,
    Sample,
    connz_families,
    exposition,
    flatten,
    fq_name,
    go_float,
    routez_families,
)

#: Families the exporter's dashboards are built on, with their Prometheus types.
EXPECTED = {
    "gnatsd_varz_connections": "gauge",
    "gnatsd_varz_total_connections": "gauge",
    "gnatsd_varz_in_msgs": "gauge",
    "gnatsd_varz_out_msgs": "gauge",
    "gnatsd_varz_in_bytes": "gauge",
    "gnatsd_varz_out_bytes": "gauge",
    "gnatsd_varz_slow_consumers": "gauge",
    "gnatsd_varz_subscriptions": "gauge",
    "gnatsd_varz_mem": "gauge",
    "gnatsd_varz_cpu": "gauge",
    "gnatsd_varz_cores": "gauge",
    "gnatsd_varz_max_payload": "gauge",
    "gnatsd_varz_server_id": "gauge",
    "gnatsd_varz_server_name": "gauge",
    "gnatsd_varz_version": "gauge",
    "gnatsd_varz_http_req_stats_varz": "gauge",
    "gnatsd_varz_slow_consumer_stats_clients": "gauge",
    "gnatsd_connz_num_connections": "gauge",
    "gnatsd_connz_total": "gauge",
    "gnatsd_connz_offset": "gauge",
    "gnatsd_connz_limit": "gauge",
    "gnatsd_connz_pending_bytes": "gauge",
    "gnatsd_connz_subscriptions": "gauge",
    "gnatsd_connz_in_msgs": "counter",
    "gnatsd_connz_out_msgs": "counter",
    "gnatsd_connz_in_bytes": "counter",
    "gnatsd_connz_out_bytes": "counter",
    "gnatsd_routez_server_id": "gauge",
    "gnatsd_routez_server_name": "gauge",
    "gnatsd_routez_num_routes": "gauge",
    "gnatsd_subsz_num_subscriptions": "gauge",
    "gnatsd_subsz_num_cache": "gauge",
    "gnatsd_subsz_num_inserts": "gauge",
    "gnatsd_subsz_num_removes": "gauge",
    "gnatsd_subsz_num_matches": "gauge",
    "gnatsd_subsz_cache_hit_rate": "gauge",
    "gnatsd_subsz_max_fanout": "gauge",
    "gnatsd_subsz_avg_fanout": "gauge",
    "gnatsd_subsz_server_id": "gauge",
}

#: /varz fields that change between two requests (time, process usage, request counts).
MOVING = {"mem", "cpu", "http_req_stats"}


@pytest.fixture(scope="module")
def busy() -> Iterator[InProcessServer]:
    """A server with two clients, subscriptions and delivered messages."""
    with InProcessServer(http_port=-1, server_tags=("env:test",)) as server, \
            nats_client(server) as subscriber, nats_client(server) as publisher:
        subscriber.send(b"SUB m.a 1\r\nSUB m.* q 2\r\n")
        subscriber.ping_pong()
        publish(publisher, "m.a", b"12345", 4)
        receive(subscriber, 8, 5)
        yield server


def scrape(server: InProcessServer) -> dict[str, Metric]:
    reply = fetch(server.http_port, "/metrics")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == CONTENT_TYPE
    return {family.name: family for family in text_string_to_metric_families(reply.body.decode())}


def value(family: Metric, **labels: str) -> float:
    for sample in family.samples:
        if all(sample.labels.get(k) == v for k, v in labels.items()):
            return float(sample.value)
    raise AssertionError(f"no sample of {family.name} with {labels}")


def test_metrics_parse_with_the_expected_names_and_types(busy: InProcessServer) -> None:
    get_json(busy.http_port, "/varz")  # so that http_req_stats has a /varz entry
    families = scrape(busy)
    for name, kind in EXPECTED.items():
        assert name in families, name
        assert families[name].type == kind, name
    server_id = get_json(busy.http_port, "/varz")["server_id"]
    for family in families.values():
        assert family.name.startswith(("gnatsd_varz_", "gnatsd_connz_", "gnatsd_routez_",
                                       "gnatsd_subsz_"))
        assert family.documentation  # the exporter's help is the field name
        for sample in family.samples:
            assert sample.labels["server_id"] == server_id


def test_varz_metrics_equal_varz(busy: InProcessServer) -> None:
    families = scrape(busy)
    v: dict[str, Any] = get_json(busy.http_port, "/varz")
    numeric = {key: val for key, val in v.items()
               if isinstance(val, int | float) and not isinstance(val, bool)}
    for key, val in numeric.items():
        family = families[f"gnatsd_varz_{key}"]
        if key not in MOVING:
            assert value(family) == val, key
    for key in ("server_id", "server_name", "version"):
        assert value(families[f"gnatsd_varz_{key}"], value=v[key]) == 1
    for key, val in v["slow_consumer_stats"].items():
        assert value(families[f"gnatsd_varz_slow_consumer_stats_{key}"]) == val
    skipped = {"gnatsd_varz_start", "gnatsd_varz_now", "gnatsd_varz_go", "gnatsd_varz_tags",
               "gnatsd_varz_system_account", "gnatsd_varz_leaf"}
    assert not skipped & set(families)  # strings, lists and left-out fields
    assert (value(families["gnatsd_varz_in_msgs"]), value(families["gnatsd_varz_out_msgs"])) == (
        4, 8)


def test_connz_and_subsz_metrics(busy: InProcessServer) -> None:
    families = scrape(busy)
    conns = get_json(busy.http_port, "/connz")["connections"]
    for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes", "subscriptions",
                "pending_bytes"):
        assert value(families[f"gnatsd_connz_{key}"]) == sum(c[key] for c in conns), key
    assert value(families["gnatsd_connz_num_connections"]) == 2
    assert value(families["gnatsd_connz_limit"]) == 1024
    subs = get_json(busy.http_port, "/subsz")
    for key in ("num_subscriptions", "num_inserts", "num_removes", "max_fanout"):
        assert value(families[f"gnatsd_subsz_{key}"]) == subs[key], key
    assert value(families["gnatsd_routez_num_routes"]) == 0
    assert "gnatsd_routez_route_info" not in families  # no routes, no per-route families


def test_metrics_requests_are_counted(busy: InProcessServer) -> None:
    before = get_json(busy.http_port, "/varz")["http_req_stats"].get("/metrics", 0)
    families = scrape(busy)
    assert value(families["gnatsd_varz_http_req_stats_metrics"]) == before + 1


# -- the exporter's rules, on the pure functions --------------------------------------------


def test_flatten_follows_the_generic_collector() -> None:
    body = {
        "server_id": "S", "version": "2.10.0", "go": "python", "port": 4222, "cpu": 0.5,
        "auth_required": True, "tags": ["a"], "cluster": {"name": "c1", "addr": "h",
                                                          "cluster_port": 6222, "pool_size": 3},
        "leaf": {"port": 7422}, "http_req_stats": {"/": 1, "/varz": 2},
    }
    families = {f.name: f for f in flatten("varz", body, "ID")}
    assert set(families) == {
        "gnatsd_varz_server_id", "gnatsd_varz_version", "gnatsd_varz_port", "gnatsd_varz_cpu",
        "gnatsd_varz_cluster_name", "gnatsd_varz_cluster_pool_size",
        "gnatsd_varz_http_req_stats", "gnatsd_varz_http_req_stats_varz",
    }
    assert families["gnatsd_varz_cluster_name"].samples == [
        Sample((("server_id", "ID"), ("value", "c1")), 1.0)]
    assert families["gnatsd_varz_http_req_stats_varz"].samples == [
        Sample((("server_id", "ID"),), 2.0)]
    assert families["gnatsd_varz_cpu"].help == "cpu"


def test_fq_name() -> None:
    assert fq_name(["http_req_stats", "/varz"]) == "http_req_stats_varz"
    assert fq_name(["http_req_stats", "/"]) == "http_req_stats"
    assert fq_name(["a", "b-c d"]) == "a_b_c_d"


def test_connz_families_sum_the_listed_connections() -> None:
    body = {"num_connections": 2, "total": 5, "offset": 0, "limit": 2, "connections": [
        {"in_msgs": 1, "out_msgs": 2, "in_bytes": 3, "out_bytes": 4, "subscriptions": 5,
         "pending_bytes": 6},
        {"in_msgs": 10, "out_msgs": 20, "in_bytes": 30, "out_bytes": 40, "subscriptions": 50,
         "pending_bytes": 60}]}
    families = {f.name: f for f in connz_families(body, "ID")}
    assert {name: (f.kind, f.samples[0].value) for name, f in families.items()} == {
        "gnatsd_connz_num_connections": ("gauge", 2), "gnatsd_connz_total": ("gauge", 5),
        "gnatsd_connz_offset": ("gauge", 0), "gnatsd_connz_limit": ("gauge", 2),
        "gnatsd_connz_pending_bytes": ("gauge", 66), "gnatsd_connz_subscriptions": ("gauge", 55),
        "gnatsd_connz_in_msgs": ("counter", 11), "gnatsd_connz_out_msgs": ("counter", 22),
        "gnatsd_connz_in_bytes": ("counter", 33), "gnatsd_connz_out_bytes": ("counter", 44),
    }


def test_routez_families_describe_each_route() -> None:
    route = {"rid": 7, "remote_id": "R", "remote_name": "r1", "ip": "10.0.0.2", "port": 6222,
             "rtt": "1.5ms", "uptime": "1h2m3s", "in_msgs": 1, "out_msgs": 2, "in_bytes": 3,
             "out_bytes": 4, "subscriptions": 9, "compression": "off"}
    body = {"server_id": "S", "server_name": "n", "num_routes": 1, "routes": [route]}
    families = {f.name: f for f in routez_families(body, "ID")}
    base = (("server_id", "ID"), ("rid", "7"))
    assert families["gnatsd_routez_route_info"].samples == [Sample(
        (*base, ("remote_id", "R"), ("remote_name", "r1"), ("account", ""), ("ip", "10.0.0.2"),
         ("compression", "off")), 1.0)]
    assert families["gnatsd_routez_route_rtt_seconds"].samples == [Sample(base, 0.0015)]
    assert families["gnatsd_routez_route_uptime_seconds"].samples == [Sample(base, 3723.0)]
    assert families["gnatsd_routez_route_subscriptions"].samples == [Sample(base, 9.0)]
    assert families["gnatsd_routez_route_out_bytes"].samples == [Sample(base, 4.0)]
    assert families["gnatsd_routez_num_routes"].samples[0].value == 1


def test_exposition_format() -> None:
    families = [
        Family("b_metric", "counter", "two\nlines \\ here",
               [Sample((("l", 'quote " back \\ nl \n'),), 1048576.0)]),
        Family("a_metric", "gauge", "a", [Sample((("x", "2"),), 0.5), Sample((("x", "1"),), 3)]),
    ]
    assert exposition(families) == (
        "# HELP a_metric a\n# TYPE a_metric gauge\n"
        'a_metric{x="1"} 3\na_metric{x="2"} 0.5\n'
        "# HELP b_metric two\\nlines \\\\ here\n# TYPE b_metric counter\n"
        'b_metric{l="quote \\" back \\\\ nl \\n"} 1.048576e+06\n')
    parsed = list(text_string_to_metric_families(exposition(families)))
    assert [(f.name, f.type) for f in parsed] == [("a_metric", "gauge"), ("b_metric", "counter")]
    assert parsed[1].samples[0].labels["l"] == 'quote " back \\ nl \n'


@pytest.mark.parametrize(("number", "text"), [
    (0.0, "0"), (1.0, "1"), (-1.0, "-1"), (42.0, "42"), (0.5, "0.5"), (123456.0, "123456"),
    (1048576.0, "1.048576e+06"), (1e6, "1e+06"), (1.2e11, "1.2e+11"), (1e-05, "1e-05"),
    (0.0001, "0.0001"), (0.16666666666666666, "0.16666666666666666"), (-2.5e-7, "-2.5e-07"),
    (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN"),
])
def test_go_float(number: float, text: str) -> None:
    assert go_float(number) == text
