"""``/subsz`` statistics: the SubjectIndex counters and the router's cache hits.

nats-server's ``SublistStats`` counts inserts, removes, lookups and cache hits, and
derives fan-out from the cached results. pynats keeps the same counters at the cost of
an integer increment on the publish path (see ``sublist.py``). These tests pin what
each counter means, first on the index alone, then through a running server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from test_monitor import get_json, nats_client, publish, receive

from harness import InProcessServer
from pynats.server.sublist import SubjectIndex


class Sub:
    def __init__(self, subject: bytes, queue: bytes = b""):
        self.subject = subject
        self.queue = queue


def test_index_counts_changes_and_lookups() -> None:
    index: SubjectIndex[Sub] = SubjectIndex()
    plain, wild = Sub(b"foo"), Sub(b"foo.*")
    members = [Sub(b"foo.bar", b"q"), Sub(b"foo.*", b"q")]
    for sub in (plain, wild, *members):
        index.insert(sub)
    index.match(b"foo.bar")  # miss: foo.* plus one queue group = fan-out 2
    index.match(b"foo.bar")  # hit
    index.match(b"foo")  # miss: fan-out 1
    stats = index.stats()
    assert (stats.num_subscriptions, stats.num_inserts, stats.num_removes) == (4, 4, 0)
    assert (stats.num_matches, stats.cache_hits, stats.num_cache) == (3, 1, 2)
    assert (stats.max_fanout, stats.avg_fanout, stats.cache_hit_rate) == (2, 1.5, 1 / 3)
    assert index.remove(plain) and not index.remove(plain)
    after = index.stats(extra_hits=5)  # hits the router counted on its own
    assert (after.num_subscriptions, after.num_removes, after.num_cache) == (3, 1, 1)
    assert (after.num_matches, after.cache_hits) == (8, 6)


def test_index_without_cache_counts_every_lookup_as_a_miss() -> None:
    index: SubjectIndex[Sub] = SubjectIndex(cache=False)
    index.insert(Sub(b"a"))
    for _ in range(3):
        index.match(b"a")
    stats = index.stats()
    assert (stats.num_matches, stats.cache_hits, stats.num_cache) == (3, 0, 0)
    assert (stats.cache_hit_rate, stats.max_fanout, stats.avg_fanout) == (0.0, 0, 0.0)


@pytest.fixture
def server() -> Iterator[InProcessServer]:
    with InProcessServer(http_port=-1) as srv:
        yield srv


def subsz(server: InProcessServer, query: str = "") -> dict[str, Any]:
    body: dict[str, Any] = get_json(server.http_port, f"/subsz{query}")
    return body


def test_subsz_follows_subscriptions_and_lookups(server: InProcessServer) -> None:
    with nats_client(server) as subscriber, nats_client(server) as publisher:
        subscriber.send(b"SUB st.a 1\r\nSUB st.a grp 2\r\nSUB st.a grp 3\r\n")
        subscriber.ping_pong()
        publish(publisher, "st.a", b"x")  # a miss: the router asks the index
        publish(publisher, "st.a", b"x")  # a hit on the router's fast path
        receive(subscriber, 4, 1)  # sid 1 twice, one queue member twice
        body = subsz(server)
        assert (body["num_subscriptions"], body["num_inserts"], body["num_removes"]) == (3, 3, 0)
        assert (body["num_matches"], body["cache_hit_rate"], body["num_cache"]) == (2, 0.5, 1)
        assert (body["max_fanout"], body["avg_fanout"]) == (2, 2)  # one plain + one group
        subscriber.send(b"UNSUB 1\r\n")
        subscriber.ping_pong()
        body = subsz(server)
        assert (body["num_subscriptions"], body["num_removes"], body["num_cache"]) == (2, 1, 0)


def test_a_run_of_messages_is_one_lookup(server: InProcessServer) -> None:
    """Consecutive messages to one subject in one read are routed with one lookup."""
    with nats_client(server) as subscriber, nats_client(server) as publisher:
        subscriber.send(b"SUB run 1\r\n")
        subscriber.ping_pong()
        before = subsz(server)["num_matches"]
        publish(publisher, "run", b"y", 50)
        receive(subscriber, 50, 1)
        assert 1 <= subsz(server)["num_matches"] - before < 50


def test_subsz_without_cache() -> None:
    with InProcessServer(http_port=-1, disable_sublist_cache=True) as server, \
            nats_client(server) as subscriber, \
            nats_client(server) as publisher:
        subscriber.send(b"SUB nc 1\r\n")
        subscriber.ping_pong()
        publish(publisher, "nc", b"z")
        publish(publisher, "nc", b"z")
        receive(subscriber, 2, 1)
        body = subsz(server)
        assert (body["num_matches"], body["cache_hit_rate"], body["num_cache"]) == (2, 0, 0)
        assert (body["max_fanout"], body["avg_fanout"]) == (0, 0)


def test_subsz_account_filter_and_test_subject(server: InProcessServer) -> None:
    with nats_client(server) as client:
        client.send(b"SUB f.* 1\r\nSUB f.> 2\r\nSUB g 3\r\n")
        client.ping_pong()
        listed = subsz(server, "?subs=1&test=f.x")["subscriptions_list"]
        assert sorted(s["subject"] for s in listed) == ["f.*", "f.>"]
        assert subsz(server, "?subs=1&test=f.x.y")["total"] == 1
        assert subsz(server, "?subs=1&acc=$G")["total"] == 3
        for account in ("$SYS", "NOPE"):
            body = subsz(server, f"?subs=1&acc={account}")
            assert (body["total"], body["num_subscriptions"]) == (0, 0)
            assert "subscriptions_list" not in body
