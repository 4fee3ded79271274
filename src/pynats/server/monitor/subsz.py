"""``/subsz`` (alias ``/subscriptionsz``): the subscription index and its statistics.

Theory of operation
-------------------
nats-server answers with the statistics of its subscription index (``SublistStats``)
and, with ``subs``, one page of the subscriptions themselves. pynats has one
:class:`~pynats.server.sublist.SubjectIndex`; its counters cost the publish path at
most an integer increment (see ``sublist.py``):

* ``num_subscriptions``, ``num_inserts``, ``num_removes`` are counted by the index;
* ``num_matches`` counts lookups: calls to ``SubjectIndex.match`` plus the router's
  fast-path cache hits. The router looks a subject up once per *run* of consecutive
  messages to it (one read from the socket), where nats-server looks up once per
  message, so for the same traffic pynats can show fewer matches;
* ``cache_hit_rate`` is hits over lookups; ``num_cache`` the cached subjects;
* ``max_fanout`` and ``avg_fanout`` are computed on request from the cached results
  (plain subscriptions plus one per queue group), as nats-server does.

The listed subscriptions are the clients', in connection-id order, each with its
account. ``test=<subject>`` keeps those a publish to that literal subject would reach;
a subject that is not a valid literal is nats-server's 400. ``acc=`` narrows both the
statistics and the list to one account (an unknown account has empty statistics).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pynats.protocol.subjects import is_valid_literal, matches
from pynats.server.monitor.accountz import (
    GLOBAL_ACCOUNT,
    account_of,
    index_stats,
    server_accounts,
    sublist_stats,
)
from pynats.server.monitor.connz import sub_detail
from pynats.server.monitor.formats import JSONObject, QueryError, parse_bool, parse_int, rfc3339

if TYPE_CHECKING:
    from pynats.server.server import Server

#: Page size of ``/subsz`` when ``limit`` is absent or not positive (``DefaultSubListSize``).
DEFAULT_SUB_LIST_SIZE: Final = 1024


@dataclass(frozen=True, slots=True)
class SubszQuery:
    """The options of one ``/subsz`` request, normalised as nats-server does."""

    subs: bool = False
    offset: int = 0
    limit: int = DEFAULT_SUB_LIST_SIZE
    test: str = ""
    account: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> SubszQuery:
        """Decode ``subs``, ``offset``, ``limit``, ``test`` and ``acc``.

        Raises:
            QueryError: A malformed boolean or integer (nats-server's messages).
        """
        subs = parse_bool(params, "subs")
        offset = parse_int(params, "offset")
        limit = parse_int(params, "limit")
        return cls(subs=subs, offset=max(offset, 0),
                   limit=limit if limit > 0 else DEFAULT_SUB_LIST_SIZE,
                   test=params.get("test", ""), account=params.get("acc", ""))


def subsz(server: Server, query: SubszQuery | None = None, *,
          now_ns: int | None = None) -> JSONObject:
    """Subscription statistics and, with ``subs``, a page of subscriptions.

    Args:
        server: The server.
        query: Decoded query parameters (defaults when None).
        now_ns: The current time in nanoseconds since the epoch; now when None.

    Returns:
        ``{server_id, now, <SublistStats>, total, offset, limit, subscriptions_list?}``.

    Raises:
        QueryError: ``test`` is not a valid publish subject.
    """
    q = query or SubszQuery()
    if q.test and not is_valid_literal(q.test.encode()):
        raise QueryError(f"invalid test subject, must be valid publish subject: {q.test}")
    now_ns = time.time_ns() if now_ns is None else now_ns
    result: JSONObject = {"server_id": server.server_id, "now": rfc3339(now_ns)}
    result.update(sublist_stats(index_stats(server, q.account or GLOBAL_ACCOUNT)))
    listed = _listed(server, q) if q.subs else []
    window = listed[q.offset:q.offset + q.limit]
    result.update({"total": len(listed), "offset": q.offset, "limit": q.limit})
    if window:
        result["subscriptions_list"] = window
    return result


def _listed(server: Server, q: SubszQuery) -> list[JSONObject]:
    if q.account and q.account not in server_accounts(server):
        return []
    test = q.test.encode()
    found = []
    for session in sorted(server.clients.values(), key=lambda s: s.cid):
        account = account_of(session)
        if q.account and account != q.account:
            continue
        for sub in session.subs.values():
            if not test or matches(sub.subject, test):
                found.append(sub_detail(session, sub, account))
    return found


__all__ = ["DEFAULT_SUB_LIST_SIZE", "SubszQuery", "subsz"]
