"""Monitoring of a mixed cluster: pynats' /routez and /varz look like nats-server's.

In each mixed topology a pynats node and a nats-server node of the same cluster are
asked the same questions; the answers must have the same keys with the same JSON types
(values differ by nature: ids, ports, times), and the cluster counts must add up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from clusterclients import connect_all, flush, interest, unique
from clusterkit import MIXED, TOPOLOGIES, Cluster, Node


@pytest.fixture(scope="module", params=MIXED)
def mixed(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(TOPOLOGIES[request.param], tmp_path_factory.mktemp("mixed")) as started:
        yield started


def pair(cluster: Cluster) -> tuple[Node, Node]:
    """(a pynats node, a nats-server node) of the cluster."""
    ours = next(n for n in cluster.nodes if n.kind == "pynats")
    ref = next(n for n in cluster.nodes if n.kind == "nats-server")
    return ours, ref


def types(obj: dict[str, Any]) -> dict[str, str]:
    """Key -> JSON type name (bool, int, float, str, list, dict, NoneType)."""
    return {key: type(value).__name__ for key, value in obj.items()}


def route_types(node: Node, peer: Node, query: str) -> dict[str, str]:
    """Key -> type over ``node``'s routes to ``peer``, the pinned ``$SYS`` route aside."""
    routes = [r for r in node.monitor(f"/routez{query}")["routes"]
              if r["remote_id"] == peer.server_id and r.get("account") != "$SYS"]
    assert routes, f"{node.label} has no route to {peer.label}"
    merged: dict[str, str] = {}
    for route in routes:
        merged.update(types(route))
    return merged


def test_routez_has_nats_server_fields(mixed: Cluster) -> None:
    ours, ref = pair(mixed)
    assert types(ours.routez()) == types(ref.routez())
    assert route_types(ours, ref, "") == route_types(ref, ours, "")


async def test_routez_subscription_lists_match(mixed: Cluster) -> None:
    ours, ref = pair(mixed)
    subject = unique("mon")
    async with connect_all([ours, ref]) as clients:
        for nc in clients:
            await nc.subscribe(subject)
            await flush(nc)
        await interest(mixed, subject, ours, on=[ref])
        await interest(mixed, subject, ref, on=[ours])
        for query in ("?subs=1", "?subs=detail"):
            assert route_types(ours, ref, query) == route_types(ref, ours, query), query
        details = [_detail(a, b, subject) for a, b in ((ours, ref), (ref, ours))]
        assert types(details[0]) == types(details[1])


def _detail(node: Node, peer: Node, subject: str) -> dict[str, Any]:
    """``node``'s ``subscriptions_list_detail`` entry for ``peer``'s sub on ``subject``."""
    for route in node.monitor("/routez?subs=detail")["routes"]:
        if route["remote_id"] == peer.server_id:
            for entry in route.get("subscriptions_list_detail") or []:
                if entry["subject"] == subject:
                    return dict(entry)
    raise AssertionError(f"{node.label} lists no {subject!r} from {peer.label}")


def test_varz_cluster_section_and_route_counts(mixed: Cluster) -> None:
    ours, ref = pair(mixed)
    keys = ("cluster", "routes", "remotes", "connect_urls")
    varz = {node.name: node.varz() for node in (ours, ref)}
    assert {k: type(varz[ours.name].get(k)).__name__ for k in keys} == \
        {k: type(varz[ref.name].get(k)).__name__ for k in keys}
    # "urls" (the configured routes) is omitted when there are none, as on the seed.
    assert types(varz[ours.name]["cluster"]) | {"urls": "list"} == \
        types(varz[ref.name]["cluster"]) | {"urls": "list"}
    for node in mixed.nodes:
        v = node.varz()
        configured = [peer.route_url.removeprefix("nats-route://") for peer in node.route_to]
        assert v["cluster"].get("urls", []) == configured
        assert v["cluster"]["name"] == node.cluster_name
        assert v["cluster"]["addr"] == "127.0.0.1"
        assert v["cluster"]["cluster_port"] == node.ports.route
        assert v["remotes"] == len(mixed) - 1, f"{node.label}: remotes are servers"
        assert v["routes"] == node.routez()["num_routes"], f"{node.label}: route connections"
