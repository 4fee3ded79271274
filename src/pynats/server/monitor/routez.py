"""``/routez``: the routes of a cluster, as nats-server's ``Routez`` lists them.

Theory of operation
-------------------
Routes live in ``server.routes`` (a mapping of route id to route, or absent while the
server is not clustered); this module only reads them, so an unclustered server
answers exactly as an unclustered nats-server: ``num_routes`` 0 and an empty list.

A route is read through the attributes nats-server's ``RouteInfo`` needs (see
:class:`RouteView`), each with a neutral default, so that the clustering code can grow
into it: ``rid``, ``remote_id``, ``remote_name``, ``did_solicit``, ``is_configured``,
``conn`` (``host``, ``port``, ``pending_bytes``), ``started`` and ``last_activity``
(wall-clock seconds), ``rtt`` (seconds), the four traffic counters, ``subs`` (a mapping
or iterable of subscriptions with ``subject``, ``sid``, ``delivered``, ``max_msgs``),
``account`` (pinned account) and ``compression``.

The cluster's route permissions (``cluster.permissions``) are shown as nats-server
shows them, once for the server and once per route.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pynats.server.monitor.formats import (
    JSONObject,
    Traffic,
    parse_subs,
    rfc3339,
    rtt_string,
    text,
    to_ns,
    uptime,
)

if TYPE_CHECKING:
    from pynats.server.config.options import SubjectPermission
    from pynats.server.server import Server


class RouteView(Protocol):
    """What ``/routez`` reads of a route (every attribute is optional)."""

    rid: int
    remote_id: str
    remote_name: str
    did_solicit: bool
    is_configured: bool
    started: float
    last_activity: float
    rtt: float
    in_msgs: int
    out_msgs: int
    in_bytes: int
    out_bytes: int


@dataclass(frozen=True, slots=True)
class RoutezQuery:
    """The options of one ``/routez`` request (``subs``: boolean or ``detail``)."""

    subs: bool = False
    subs_detail: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> RoutezQuery:
        """Decode query parameters like nats-server's ``HandleRoutez``.

        Raises:
            QueryError: ``subs`` is neither a Go boolean nor ``detail``.
        """
        subs, detail = parse_subs(params)
        return cls(subs=subs, subs_detail=detail)


def route_list(server: Server) -> list[Any]:
    """The server's routes, in route-id order (empty while not clustered)."""
    routes: Any = getattr(server, "routes", None) or {}
    found = list(routes.values() if isinstance(routes, Mapping) else routes)
    return sorted(found, key=_rid)


def route_traffic(server: Server) -> Traffic:
    """Traffic totals over the open routes (``/varz`` adds them to the client totals)."""
    totals = [0, 0, 0, 0]
    for route in route_list(server):
        for i, name in enumerate(("in_msgs", "in_bytes", "out_msgs", "out_bytes")):
            totals[i] += int(getattr(route, name, 0))
    return Traffic(*totals)


def routez(server: Server, query: RoutezQuery | None = None, *,
           now_ns: int | None = None) -> JSONObject:
    """The routes of the server, as nats-server's ``/routez``.

    Args:
        server: The server.
        query: Decoded query parameters (defaults when None).
        now_ns: The current time in nanoseconds since the epoch; now when None.

    Returns:
        ``{server_id, server_name, now, import?, export?, num_routes, routes}``.
    """
    q = query or RoutezQuery()
    now_ns = time.time_ns() if now_ns is None else now_ns
    result: JSONObject = {"server_id": server.server_id, "server_name": server.server_name,
                          "now": rfc3339(now_ns)}
    result.update(_permissions(server))
    routes = route_list(server)
    result["num_routes"] = len(routes)
    result["routes"] = [route_info(server, route, q, now_ns) for route in routes]
    return result


def _permissions(server: Server) -> JSONObject:
    perms = server.options.cluster.permissions
    result: JSONObject = {}
    if perms is None:
        return result
    for key, perm in (("import", perms.import_), ("export", perms.export)):
        shown = subject_permission(perm)
        if shown:
            result[key] = shown
    return result


def subject_permission(perm: SubjectPermission | None) -> JSONObject:
    """A permission as nats-server's ``SubjectPermission`` JSON (``allow``, ``deny``)."""
    if perm is None:
        return {}
    result: JSONObject = {}
    if perm.allow:
        result["allow"] = list(perm.allow)
    if perm.deny:
        result["deny"] = list(perm.deny)
    return result


def route_info(server: Server, route: Any, query: RoutezQuery, now_ns: int) -> JSONObject:
    """One entry of ``routes`` (nats-server's ``RouteInfo``), keys in its order."""
    conn = getattr(route, "conn", None)
    start_ns = to_ns(float(getattr(route, "started", 0.0)))
    last_ns = to_ns(float(getattr(route, "last_activity", 0.0) or 0.0)) or start_ns
    remote_id = str(getattr(route, "remote_id", ""))
    info: JSONObject = {
        "rid": _rid(route), "remote_id": remote_id,
        "remote_name": str(getattr(route, "remote_name", "") or remote_id),
        "did_solicit": bool(getattr(route, "did_solicit", False)),
        "is_configured": bool(getattr(route, "is_configured", False)),
        "ip": str(getattr(conn, "host", "")), "port": int(getattr(conn, "port", 0)),
        "start": rfc3339(start_ns), "last_activity": rfc3339(last_ns),
        "rtt": rtt_string(float(getattr(route, "rtt", 0.0))),
        "uptime": uptime(now_ns - start_ns), "idle": uptime(now_ns - last_ns),
    }
    info.update(_permissions(server))
    subs = _route_subs(route)
    info.update({"pending_size": int(getattr(conn, "pending_bytes", 0))})
    for name in ("in_msgs", "out_msgs", "in_bytes", "out_bytes"):
        info[name] = int(getattr(route, name, 0))
    info["subscriptions"] = len(subs)
    if subs and query.subs_detail:
        info["subscriptions_list_detail"] = [_sub_detail(route, sub) for sub in subs]
    elif subs and query.subs:
        info["subscriptions_list"] = [_subject(sub) for sub in subs]
    account = str(getattr(route, "account", "") or "")
    if account:
        info["account"] = account
    info["compression"] = str(getattr(route, "compression", "") or "off")
    return info


def _rid(route: Any) -> int:
    rid: Any = getattr(route, "rid", None) or getattr(route, "cid", 0)
    return int(rid)


def _route_subs(route: Any) -> list[Any]:
    subs: Any = getattr(route, "subs", None) or ()
    found: Iterable[Any] = subs.values() if isinstance(subs, Mapping) else subs
    return list(found)


def _subject(sub: Any) -> str:
    subject = getattr(sub, "subject", b"")
    return text(subject) if isinstance(subject, bytes) else str(subject)


def _sub_detail(route: Any, sub: Any) -> JSONObject:
    detail: JSONObject = {"subject": _subject(sub)}
    queue = getattr(sub, "queue", b"")
    if queue:
        detail["qgroup"] = text(queue) if isinstance(queue, bytes) else str(queue)
    sid = getattr(sub, "sid", b"")
    detail["sid"] = text(sid) if isinstance(sid, bytes) else str(sid)
    detail["msgs"] = int(getattr(sub, "delivered", 0))
    if getattr(sub, "max_msgs", 0):
        detail["max"] = int(sub.max_msgs)
    detail["cid"] = _rid(route)
    return detail


__all__ = ["RouteView", "RoutezQuery", "route_info", "route_list", "route_traffic", "routez",
           "subject_permission"]
