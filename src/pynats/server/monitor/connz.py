"""``/connz``: client connections, open and recently closed.

Theory of operation
-------------------
:func:`connz` is nats-server's ``Connz``: it picks the connections in the requested
state (open ones from ``server.clients``, closed ones from the ``server.closed_clients``
ring of at most ``max_closed_clients``, kept as they were when they closed, with their
close reason), filters them (``cid``, ``acc``, ``user``, ``mqtt_client``,
``filter_subject``), sorts them and returns one page (``offset``, ``limit``).

Query decoding (:meth:`ConnzQuery.from_params`) and query validation are split as in
nats-server: a malformed value is rejected while decoding, before the request is
counted in ``/varz``'s ``http_req_stats``; a well-formed but unusable combination
(``sort=stop`` on open connections, an unknown sort key) is rejected by :func:`connz`,
after it. nats-server's HTTP handler does not read ``filter_subject`` (only its
``$SYS`` request does), so neither does :meth:`ConnzQuery.from_params`; the builder
supports it.

``total`` counts the connections in the requested state (of the requested account)
before the other filters and before paging; ``num_connections`` is the page's length.
An account that does not exist gives nats-server's odd answer: no server id and
``connections`` null.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Final

from pynats.server.monitor.accountz import GLOBAL_ACCOUNT, account_of, server_accounts
from pynats.server.monitor.formats import (
    JSONObject,
    QueryError,
    parse_bool,
    parse_int,
    parse_subs,
    parse_uint,
    rfc3339,
    rtt_string,
    text,
    to_ns,
    uptime,
)

if TYPE_CHECKING:
    from pynats.server.server import Server
    from pynats.server.sessions.client import ClientSession
    from pynats.server.subscription import Subscription

#: Page size of ``/connz`` when ``limit`` is absent or not positive (``DefaultConnListSize``).
DEFAULT_CONN_LIST_SIZE: Final = 1024

#: Sort keys /connz accepts. Only ``cid``/``start``, ``uptime`` and ``reason`` ascend.
SORT_OPTIONS: Final = ("cid", "start", "subs", "pending", "msgs_to", "msgs_from", "bytes_to",
                       "bytes_from", "last", "idle", "uptime", "stop", "reason", "rtt")
_CLOSED_ONLY_SORTS: Final = ("stop", "reason")


class ConnState(enum.Enum):
    """Which connections ``/connz`` lists (query ``state``)."""

    OPEN = "open"
    CLOSED = "closed"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class ConnzQuery:
    """The options of one ``/connz`` request, normalised as nats-server does.

    ``limit`` is 1 when ``cid`` is given and :data:`DEFAULT_CONN_LIST_SIZE` when not
    positive; ``offset`` is never negative. ``sort`` is checked by :func:`connz`.
    """

    sort: str = "cid"
    auth: bool = False
    subs: bool = False
    subs_detail: bool = False
    offset: int = 0
    limit: int = DEFAULT_CONN_LIST_SIZE
    cid: int = 0
    state: ConnState = ConnState.OPEN
    user: str = ""
    account: str = ""
    mqtt_client: str = ""
    filter_subject: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ConnzQuery:
        """Decode query parameters in nats-server's order, with its error messages.

        Args:
            params: Query parameters (first value of each): ``sort``, ``auth``,
                ``subs`` (boolean or ``detail``), ``offset``, ``limit``, ``cid``,
                ``state`` (``open``, ``closed``, ``any``/``all``), ``user``, ``acc``,
                ``mqtt_client``.

        Returns:
            The normalised query.

        Raises:
            QueryError: A malformed value, for example ``Error decoding state for x``.
        """
        auth = parse_bool(params, "auth")
        subs, detail = parse_subs(params)
        offset = parse_int(params, "offset")
        limit = parse_int(params, "limit")
        cid = parse_uint(params, "cid")
        state = _parse_state(params.get("state", ""))
        if cid > 0:
            limit = 1
        return cls(sort=params.get("sort", "") or "cid", auth=auth, subs=subs,
                   subs_detail=detail, offset=max(offset, 0),
                   limit=limit if limit > 0 else DEFAULT_CONN_LIST_SIZE, cid=cid, state=state,
                   user=params.get("user", ""), account=params.get("acc", ""),
                   mqtt_client=params.get("mqtt_client", ""))

    def check(self) -> None:
        """Reject what nats-server's ``Connz`` rejects, with its messages.

        Raises:
            QueryError: ``invalid sorting option: X``, ``sort by stop only valid on
                closed connections`` (also ``reason``), or ``filter by subject only
                valid with account filtering``.
        """
        if self.sort not in SORT_OPTIONS:
            raise QueryError(f"invalid sorting option: {self.sort}")
        if self.sort in _CLOSED_ONLY_SORTS and self.state is not ConnState.CLOSED:
            raise QueryError(f"sort by {self.sort} only valid on closed connections")
        if self.filter_subject not in ("", ">") and not self.account:
            raise QueryError("filter by subject only valid with account filtering")


def _parse_state(value: str) -> ConnState:
    try:
        return ConnState({"": "open", "any": "all"}.get(value.lower(), value.lower()))
    except ValueError:
        raise QueryError(f"Error decoding state for {value}") from None


def connz(server: Server, query: ConnzQuery | None = None, *,
          now_ns: int | None = None) -> JSONObject:
    """Client connections, as nats-server's ``/connz`` lists them.

    Args:
        server: The server.
        query: Decoded query parameters (defaults when None).
        now_ns: The current time in nanoseconds since the epoch; now when None.

    Returns:
        The ``/connz`` object.

    Raises:
        QueryError: The query is well formed but unusable (see :meth:`ConnzQuery.check`).
    """
    q = query or ConnzQuery()
    q.check()
    now_ns = time.time_ns() if now_ns is None else now_ns
    result: JSONObject = {"server_id": server.server_id, "now": rfc3339(now_ns),
                          "num_connections": 0, "total": 0, "offset": q.offset,
                          "limit": q.limit, "connections": []}
    if q.account and q.account not in server_accounts(server):
        return dict(result, server_id="", connections=None)
    opened = list(server.clients.values()) if q.state is not ConnState.CLOSED else []
    closed = list(server.closed_clients) if q.state is not ConnState.OPEN else []
    if q.account:
        opened = [s for s in opened if account_of(s) == q.account]
        closed = [s for s in closed if account_of(s) == q.account]
    result["total"] = len(opened) + len(closed)
    chosen = [s for s in (*opened, *closed) if _selected(s, q)]
    page = sort_sessions(chosen, q.sort, now_ns)[q.offset:q.offset + q.limit]
    result["num_connections"] = len(page)
    result["connections"] = [conn_info(s, q, now_ns) for s in page]
    return result


def _selected(session: ClientSession, q: ConnzQuery) -> bool:
    if q.cid and session.cid != q.cid:
        return False
    if q.user and auth_user(session) != q.user:
        return False
    if q.mqtt_client:
        return False  # there are no MQTT clients
    if q.filter_subject not in ("", ">") and not session.closed:
        return any(subjects_collide(q.filter_subject, text(sub.subject))
                   for sub in session.subs.values())
    return True


def subjects_collide(first: str, second: str) -> bool:
    """Whether some subject could match both patterns (nats-server's ``SubjectsCollide``).

    Args:
        first: A subject, possibly with ``*`` and ``>`` wildcards.
        second: Another one.

    Returns:
        True when a literal subject exists that both match.
    """
    left, right = first.split("."), second.split(".")
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else None
        b = right[i] if i < len(right) else None
        if (a == ">" and b is not None) or (b == ">" and a is not None):
            return True
        if a is None or b is None or (a != b and "*" not in (a, b)):
            return False
    return True


def auth_user(session: ClientSession) -> str:
    """The user a client presented: user or nkey, a redacted token ("" if none)."""
    return session.user


def sort_sessions(sessions: Iterable[ClientSession], sort: str,
                  now_ns: int) -> list[ClientSession]:
    """Order connections as nats-server's ``Connz`` does for ``sort``.

    ``cid``/``start`` ascend, ``uptime`` ascends (newest first), ``reason`` ascends
    alphabetically; all others descend (largest, latest or longest first). Ties keep
    connection-id order.

    Args:
        sessions: The connections.
        sort: One of :data:`SORT_OPTIONS`.
        now_ns: The current time, for ``uptime`` of open connections.

    Returns:
        A new sorted list.
    """
    by_cid = sorted(sessions, key=lambda s: s.cid)
    if sort in ("cid", "start"):
        return by_cid
    if sort == "uptime":
        return sorted(by_cid, key=lambda s: _end_ns(s, now_ns) - to_ns(s.started))
    if sort == "reason":
        return sorted(by_cid, key=lambda s: s.close_reason)
    if sort == "idle":  # idle for longest first = least recent activity first
        return sorted(by_cid, key=lambda s: s.last_activity)
    return sorted(by_cid, key=_descending_key(sort), reverse=True)


def _descending_key(sort: str) -> Callable[[ClientSession], float]:
    if sort == "subs":
        return lambda s: len(s.subs)
    if sort == "pending":
        return _pending
    return attrgetter(_SESSION_FIELDS[sort])


#: Sort options that order by a ClientSession attribute, largest first.
_SESSION_FIELDS: Final = {"msgs_to": "out_msgs", "msgs_from": "in_msgs", "bytes_to": "out_bytes",
                          "bytes_from": "in_bytes", "last": "last_activity", "stop": "stop",
                          "rtt": "rtt"}


def _end_ns(session: ClientSession, now_ns: int) -> int:
    """When a connection's uptime and idle time stop counting: its close, or now."""
    return to_ns(session.stop) if session.closed and session.stop else now_ns


def _pending(session: ClientSession) -> int:
    return 0 if session.closed else session.conn.pending_bytes


def conn_info(session: ClientSession, query: ConnzQuery, now_ns: int) -> JSONObject:
    """One entry of ``/connz``'s ``connections`` (nats-server's ``ConnInfo``).

    Args:
        session: The client, open or closed.
        query: Which optional parts to include (subscriptions, auth details).
        now_ns: The current time in nanoseconds since the epoch.

    Returns:
        The connection object, keys in nats-server's order, empty optional ones left out.
    """
    start_ns, last_ns = to_ns(session.started), to_ns(session.last_activity)
    end_ns = _end_ns(session, now_ns)
    info: JSONObject = {
        "cid": session.cid, "kind": "Client",
        "type": "websocket" if session.conn.websocket else "nats",
        "ip": session.conn.host, "port": session.conn.port,
        "start": rfc3339(start_ns, utc=False), "last_activity": rfc3339(last_ns, utc=False),
    }
    if session.closed:
        info["stop"] = rfc3339(end_ns, utc=False)
        if session.close_reason:
            info["reason"] = session.close_reason
    info.update({
        "rtt": rtt_string(session.rtt),
        "uptime": uptime(end_ns - start_ns),
        "idle": uptime(end_ns - last_ns),
        "pending_bytes": _pending(session),
        "in_msgs": session.in_msgs, "out_msgs": session.out_msgs,
        "in_bytes": session.in_bytes, "out_bytes": session.out_bytes,
        "subscriptions": len(session.subs),
    })
    for key, value in (("name", session.name), ("lang", session.lang),
                       ("version", session.version)):
        if value:
            info[key] = value
    info.update(_tls_fields(session, query))
    info.update(_conn_extras(session, query))
    return info


def _tls_fields(session: ClientSession, query: ConnzQuery) -> JSONObject:
    """``tls_version``, ``tls_cipher_suite``, ``tls_peer_certs`` (``auth``), ``tls_first``."""
    peer = session.conn.tls
    if peer is None:
        return {}
    fields: JSONObject = {"tls_version": peer.version, "tls_cipher_suite": peer.cipher}
    if peer.chain and query.auth:
        fields["tls_peer_certs"] = peer.peer_certs()
    if session.tls_first:
        fields["tls_first"] = True
    return fields


def _conn_extras(session: ClientSession, query: ConnzQuery) -> JSONObject:
    """Authorization and subscription parts of a ConnInfo, in nats-server's key order."""
    extras: JSONObject = {}
    account = account_of(session)
    if query.auth and auth_user(session):
        extras["authorized_user"] = auth_user(session)
    if query.auth and account != GLOBAL_ACCOUNT:
        extras["account"] = account
    if session.subs and query.subs_detail:
        # nats-server keeps a closed client's subscriptions with their account.
        owner = account if session.closed else None
        extras["subscriptions_list_detail"] = [sub_detail(session, sub, owner)
                                               for sub in session.subs.values()]
    elif session.subs and query.subs:
        extras["subscriptions_list"] = [text(sub.subject) for sub in session.subs.values()]
    jwt = session.login.jwt if session.login is not None else None
    if query.auth and jwt is not None:
        extras["jwt"] = jwt.claims.token
        extras["issuer_key"] = jwt.signing_key or jwt.account_name
    if query.auth and not session.closed:
        # nats-server tags a client with its account's name (the JWT's name, if any).
        extras["name_tag"] = jwt.account.name if jwt is not None else account
    return extras


def sub_detail(session: ClientSession, sub: Subscription,
               account: str | None = None) -> JSONObject:
    """One subscription as ``subscriptions_list_detail`` and ``/subsz`` show it.

    Args:
        session: The subscribing client.
        sub: Its :class:`~pynats.server.subscription.Subscription`.
        account: The client's account, shown first when given (``/subsz``, closed
            connections); open connections in ``/connz`` leave it out.

    Returns:
        ``{account?, account_tag?, subject, qgroup?, sid, msgs, max?, cid}``.
    """
    detail: JSONObject = {}
    if account is not None:
        detail.update(account=account, account_tag=account)
    detail["subject"] = text(sub.subject)
    if sub.queue:
        detail["qgroup"] = text(sub.queue)
    detail["sid"] = text(sub.sid)
    detail["msgs"] = sub.delivered
    if sub.max_msgs:
        detail["max"] = sub.max_msgs
    detail["cid"] = session.cid
    return detail


__all__ = [
    "DEFAULT_CONN_LIST_SIZE", "SORT_OPTIONS", "ConnState", "ConnzQuery", "auth_user",
    "conn_info", "connz", "sort_sessions", "sub_detail", "subjects_collide",
]
