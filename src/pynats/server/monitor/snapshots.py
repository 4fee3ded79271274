"""Monitoring snapshots: what ``/varz``, ``/connz`` and ``/healthz`` report.

Theory of operation
-------------------
nats-server splits monitoring into pure builders (``Varz``, ``Connz``, ``healthz`` in
``server/monitor.go``) and thin HTTP handlers that only decode query parameters and
marshal the result (STYLE.md example 12). This module is the builder half: every
function reads the :class:`~pynats.server.server.Server` and returns plain ``dict``\\ s
whose keys, key order, value types and formats are nats-server 2.x's, ready for
``json.dumps``. Nothing here does network I/O, awaits or mutates the server, so the
functions can be called from the event loop, from tests, or from a future ``$SYS``
request handler alike. The only outside reads are the process's memory and CPU time
(:func:`process_usage`).

Formats follow nats-server's JSON encoding:

* times are RFC 3339 with up to nine fractional digits, trailing zeros dropped
  (Go's ``time.RFC3339Nano``); ``now`` and ``/varz`` times are UTC, connection times
  are local time with the zone offset, as the reference shows them;
* ``uptime`` and ``idle`` use nats-server's compact ``1y2d3h4m5s`` form;
* ``rtt`` is a Go ``time.Duration`` string (``1.234ms``, ``512µs``, ``0s``);
* ``ping_interval`` and ``write_deadline`` are integer nanoseconds; ``auth_timeout`` and
  ``tls_timeout`` are seconds as numbers (``2``, not ``2.0``: Go writes whole floats
  without a fraction);
* fields nats-server tags ``omitempty`` are left out when empty.

Query decoding (:class:`ConnzQuery`, :class:`HealthzQuery`) accepts exactly what
nats-server accepts and raises :class:`QueryError` carrying nats-server's message,
which the HTTP shell returns as a ``400`` plain-text body.
"""

from __future__ import annotations

import enum
import os
import platform
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Final

from pynats import SERVER_VERSION
from pynats.server.log import go_quote

if TYPE_CHECKING:
    from pynats.server.server import Server
    from pynats.server.sessions.client import ClientSession
    from pynats.server.subscription import Subscription

#: A JSON object as built here (values are JSON-ready Python objects).
JSONObject = dict[str, Any]

#: Page size of ``/connz`` when ``limit`` is absent or not positive (``DefaultConnListSize``).
DEFAULT_CONN_LIST_SIZE: Final = 1024
#: The only account there is: every client belongs to nats-server's global account.
GLOBAL_ACCOUNT: Final = "$G"
#: nats-server's default TLS handshake timeout (``TLS_TIMEOUT``), reported even without TLS.
DEFAULT_TLS_TIMEOUT: Final = 2.0
#: Error nats-server's ``healthz`` gives when the client listener is not open.
NOT_READY: Final = "failed to be ready for connections after 1ms: server"

_NS: Final = 1_000_000_000
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_UINT_RE: Final = re.compile(r"[0-9]+")
_GO_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_GO_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


class QueryError(ValueError):
    """A monitoring query parameter nats-server rejects; ``str()`` is its exact message."""


# -- formatting --------------------------------------------------------------------------


def rfc3339(ns: int, *, utc: bool = True) -> str:
    """Format a Unix time as Go's ``time.RFC3339Nano`` does.

    Args:
        ns: Nanoseconds since the epoch.
        utc: UTC with a ``Z``; otherwise local time with its offset (``+05:30``).

    Returns:
        For example ``2026-11-26T21:35:41.5447632Z``: trailing zeros of the fraction
        are dropped, and so is the dot when the fraction is zero.
    """
    secs, frac = divmod(ns, _NS)
    parts = time.gmtime(secs) if utc else time.localtime(secs)
    offset = 0 if utc else parts.tm_gmtoff
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", parts) + fraction + _zone(offset)


def _zone(offset: int) -> str:
    if offset == 0:
        return "Z"
    minutes = abs(offset) // 60
    return f"{'+' if offset > 0 else '-'}{minutes // 60:02d}:{minutes % 60:02d}"


def uptime(ns: int) -> str:
    """Format a duration like nats-server's ``myUptime``: whole seconds, compact.

    Args:
        ns: The duration in nanoseconds (negative counts as zero).

    Returns:
        ``4s``, ``3m20s``, ``5h0m1s``, ``2d3h4m5s`` or ``1y2d3h4m5s``.
    """
    secs = max(ns, 0) // _NS
    mins, hours, days = secs // 60, secs // 3600, secs // 86400
    years = days // 365
    if years:
        return f"{years}y{days % 365}d{hours % 24}h{mins % 60}m{secs % 60}s"
    if days:
        return f"{days}d{hours % 24}h{mins % 60}m{secs % 60}s"
    if hours:
        return f"{hours}h{mins % 60}m{secs % 60}s"
    if mins:
        return f"{mins}m{secs % 60}s"
    return f"{secs}s"


def go_duration(ns: int) -> str:
    """Format a duration like Go's ``time.Duration.String()``.

    Args:
        ns: The duration in nanoseconds.

    Returns:
        ``0s``, ``300ns``, ``512µs``, ``1.234567ms``, ``2m3.5s``, ``1h0m0s`` ...
    """
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_decimal(u, 1_000)}µs"
    if u < _NS:
        return f"{sign}{_decimal(u, 1_000_000)}ms"
    secs, frac = divmod(u, _NS)
    text = f"{secs % 60}{_fraction(frac, 9)}s"
    mins = secs // 60
    if mins:
        text = f"{mins % 60}m{text}"
        if mins >= 60:
            text = f"{mins // 60}h{text}"
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    return f"{whole}{_fraction(rest, len(str(unit)) - 1)}"


def _fraction(rest: int, digits: int) -> str:
    return f".{rest:0{digits}d}".rstrip("0") if rest else ""


def rtt_string(seconds: float) -> str:
    """A client's round-trip time as nats-server shows it (``getRTT().String()``).

    Args:
        seconds: The measured RTT; 0 when unknown.

    Returns:
        A Go duration string, truncated to whole microseconds between 1µs and 1ms.
    """
    ns = round(seconds * _NS)
    if 1_000 < ns < 1_000_000:
        ns -= ns % 1_000
    return go_duration(ns)


def _ns(timestamp: float) -> int:
    """A ``time.time()`` float as nanoseconds, kept to the microseconds it can hold."""
    return round(timestamp * 1_000_000) * 1_000


def _number(value: float) -> int | float:
    """A float as Go's JSON encoder writes it: whole values have no fraction."""
    return int(value) if value.is_integer() else value


# -- query decoding ----------------------------------------------------------------------


def parse_bool(params: Mapping[str, str], name: str) -> bool:
    """Decode a boolean parameter like nats-server's ``decodeBool``.

    Args:
        params: Query parameters (first value of each).
        name: The parameter.

    Returns:
        False when absent or empty, otherwise Go's ``strconv.ParseBool`` of the value.

    Raises:
        QueryError: The value is not one of Go's boolean spellings.
    """
    text = params.get(name, "")
    if not text or text in _GO_FALSE:
        return False
    if text in _GO_TRUE:
        return True
    raise QueryError(f"Error decoding boolean for '{name}': strconv.ParseBool: "
                     f"parsing {go_quote(text)}: invalid syntax")


def parse_int(params: Mapping[str, str], name: str) -> int:
    """Decode an integer parameter like nats-server's ``decodeInt`` (``strconv.Atoi``).

    Raises:
        QueryError: The value is not a 64-bit decimal integer.
    """
    return _parse_number(params, name, "int", "strconv.Atoi", _INT_RE, _INT64_MIN, _INT64_MAX)


def parse_uint(params: Mapping[str, str], name: str) -> int:
    """Decode an unsigned parameter like nats-server's ``decodeUint64``.

    Raises:
        QueryError: The value is not an unsigned 64-bit decimal integer.
    """
    return _parse_number(params, name, "uint64", "strconv.ParseUint", _UINT_RE, 0, _UINT64_MAX)


def _parse_number(params: Mapping[str, str], name: str, kind: str, func: str,
                  pattern: re.Pattern[str], low: int, high: int) -> int:
    text = params.get(name, "")
    if not text:
        return 0
    problem = "invalid syntax"
    if pattern.fullmatch(text):
        value = int(text)
        if low <= value <= high:
            return value
        problem = "value out of range"
    raise QueryError(f"Error decoding {kind} for '{name}': {func}: "
                     f"parsing {go_quote(text)}: {problem}")


class ConnState(enum.Enum):
    """Which connections ``/connz`` lists (query ``state``)."""

    OPEN = "open"
    CLOSED = "closed"
    ALL = "all"


#: Sort keys /connz accepts. Only ``cid``/``start``, ``uptime`` and ``reason`` ascend.
SORT_OPTIONS: Final = ("cid", "start", "subs", "pending", "msgs_to", "msgs_from", "bytes_to",
                       "bytes_from", "last", "idle", "uptime", "stop", "reason", "rtt")
_CLOSED_ONLY_SORTS: Final = ("stop", "reason")


@dataclass(frozen=True, slots=True)
class ConnzQuery:
    """The options of one ``/connz`` request, already normalised as nats-server does.

    ``limit`` is 1 when ``cid`` is given and :data:`DEFAULT_CONN_LIST_SIZE` when not
    positive; ``offset`` is never negative.
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
            QueryError: A value nats-server rejects, for example
                ``invalid sorting option: foo``.
        """
        auth = parse_bool(params, "auth")
        detail = params.get("subs", "").lower() == "detail"
        subs = not detail and parse_bool(params, "subs")
        offset = parse_int(params, "offset")
        limit = parse_int(params, "limit")
        cid = parse_uint(params, "cid")
        state = _parse_state(params.get("state", ""))
        sort = params.get("sort", "") or "cid"
        if sort not in SORT_OPTIONS:
            raise QueryError(f"invalid sorting option: {sort}")
        if sort in _CLOSED_ONLY_SORTS and state is not ConnState.CLOSED:
            raise QueryError(f"sort by {sort} only valid on closed connections")
        if cid > 0:
            limit = 1
        return cls(sort=sort, auth=auth, subs=subs, subs_detail=detail, offset=max(offset, 0),
                   limit=limit if limit > 0 else DEFAULT_CONN_LIST_SIZE, cid=cid, state=state,
                   user=params.get("user", ""), account=params.get("acc", ""),
                   mqtt_client=params.get("mqtt_client", ""))


def _parse_state(text: str) -> ConnState:
    try:
        return ConnState({"": "open", "any": "all"}.get(text.lower(), text.lower()))
    except ValueError:
        raise QueryError(f"Error decoding state for {text}") from None


@dataclass(frozen=True, slots=True)
class HealthzQuery:
    """The options of one ``/healthz`` request.

    The JetStream switches are decoded (bad values are a 400, as in nats-server) but
    change nothing: JetStream is not supported, so it is never checked.
    """

    js_enabled: bool = False
    js_enabled_only: bool = False
    js_server_only: bool = False
    js_meta_only: bool = False
    details: bool = False
    account: str = ""
    stream: str = ""
    consumer: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> HealthzQuery:
        """Decode query parameters in nats-server's order, with its error messages.

        Raises:
            QueryError: A boolean parameter has a value Go cannot parse.
        """
        return cls(js_enabled=parse_bool(params, "js-enabled"),
                   js_enabled_only=parse_bool(params, "js-enabled-only"),
                   js_server_only=parse_bool(params, "js-server-only"),
                   js_meta_only=parse_bool(params, "js-meta-only"),
                   details=parse_bool(params, "details"), account=params.get("account", ""),
                   stream=params.get("stream", ""), consumer=params.get("consumer", ""))


# -- /healthz ----------------------------------------------------------------------------


def healthz(server: Server, query: HealthzQuery | None = None) -> tuple[int, JSONObject]:
    """The health of the server, as nats-server's ``/healthz`` reports it.

    The server is healthy while its client listener is open: before it opens and in
    lame duck mode (listener closed) the answer is nats-server's 500 ``error``.

    Args:
        server: The server.
        query: Decoded query parameters (defaults when None).

    Returns:
        The HTTP status and the body: ``(200, {"status": "ok"})`` when healthy.
    """
    q = query or HealthzQuery()
    if q.stream and not q.account:
        return _unhealthy(400, q.details, "BAD_REQUEST",
                          '"account" must not be empty when checking stream health')
    if q.consumer and not q.stream:
        return _unhealthy(400, q.details, "BAD_REQUEST",
                          '"stream" must not be empty when checking consumer health')
    if server.lame_duck_mode or not server.client_port:
        return _unhealthy(500, q.details, "CONNECTION", NOT_READY)
    return 200, {"status": "ok"}


def _unhealthy(status: int, details: bool, kind: str, error: str) -> tuple[int, JSONObject]:
    if details:
        return status, {"status": "error", "errors": [{"type": kind, "error": error}]}
    return status, {"status": "error", "error": error}


# -- /varz -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """Resident memory (bytes), CPU count and CPU use (percent of one core)."""

    mem: int
    cores: int
    cpu: float


class CpuMeter:
    """CPU use of this process between two readings, like ``ps``'s ``%CPU``.

    A reading less than ``min_interval`` seconds after the previous one returns the
    previous value, so that frequent polling does not report noise.

    Args:
        clock: Monotonic seconds.
        cpu_time: Seconds of CPU this process has used (user plus system).
        min_interval: Shortest interval a new value is computed over.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 cpu_time: Callable[[], float] = time.process_time,
                 min_interval: float = 1.0):
        self._clock = clock
        self._cpu_time = cpu_time
        self._min_interval = min_interval
        self._at = clock()
        self._used = cpu_time()
        self._value: float | None = None

    def percent(self) -> float:
        """CPU percent since the last computed value (first call: since creation)."""
        now, used = self._clock(), self._cpu_time()
        elapsed = now - self._at
        if self._value is None or elapsed >= self._min_interval:
            self._value = round(100.0 * (used - self._used) / elapsed, 1) if elapsed > 0 else 0.0
            self._at, self._used = now, used
        return self._value


_METER = CpuMeter()


def process_usage(meter: CpuMeter | None = None) -> ProcessUsage:
    """Read this process's resident memory and CPU use.

    Args:
        meter: Where CPU use is measured; the module's own meter by default.

    Returns:
        The usage; ``mem`` is 0 where ``/proc/self/statm`` does not exist.
    """
    return ProcessUsage(mem=_rss_bytes(), cores=os.cpu_count() or 1,
                        cpu=(meter or _METER).percent())


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@dataclass(frozen=True, slots=True)
class Traffic:
    """Message and byte totals over every client, open or closed."""

    in_msgs: int
    in_bytes: int
    out_msgs: int
    out_bytes: int


def traffic(server: Server) -> Traffic:
    """Server totals: the closed clients' counters plus the open clients' own.

    Args:
        server: The server.

    Returns:
        ``in_*`` count what clients published, ``out_*`` what they were delivered.
    """
    stats = server.stats
    in_msgs, in_bytes = stats.closed_in_msgs, stats.closed_in_bytes
    out_msgs, out_bytes = stats.closed_out_msgs, stats.closed_out_bytes
    for session in server.clients.values():
        in_msgs += session.in_msgs
        in_bytes += session.in_bytes
        out_msgs += session.out_msgs
        out_bytes += session.out_bytes
    return Traffic(in_msgs, in_bytes, out_msgs, out_bytes)


def varz(server: Server, *, http_req_stats: Mapping[str, int] | None = None,
         usage: ProcessUsage | None = None, now_ns: int | None = None) -> JSONObject:
    """Server identity, configuration and statistics, as nats-server's ``/varz``.

    Left out, as nats-server leaves them out when empty: ``git_commit`` (no build
    commit), ``system_account`` (there is no system account, as with nats-server's
    ``no_system_account``), ``tags``, ``max_subscriptions`` when unlimited. Not
    reported at all: nats-server's JetStream ``feature_flags``.

    Args:
        server: The server.
        http_req_stats: Requests served per monitoring path (kept by the HTTP shell).
        usage: Process usage; read now when None.
        now_ns: The current time in nanoseconds since the epoch; now when None.

    Returns:
        The ``/varz`` object, keys in nats-server's order.
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    usage = process_usage() if usage is None else usage
    result = _varz_identity(server)
    result.update(_varz_config(server))
    result.update(_varz_runtime(server, usage, now_ns))
    result.update(_varz_counters(server, http_req_stats or {}))
    return result


def _varz_identity(server: Server) -> JSONObject:
    info = server.client_info(None)
    result: JSONObject = {
        "server_id": server.server_id,
        "server_name": server.server_name,
        "version": SERVER_VERSION,
        "proto": info.get("proto", 1),
        "go": info.get("go", f"python{platform.python_version()}"),
        "host": server.options.host,
        "port": server.client_port,
    }
    # INFO fields nats-server copies into /varz, all omitted when empty.
    for key in ("auth_required", "tls_required", "tls_verify", "ip", "connect_urls",
                "ws_connect_urls"):
        if info.get(key):
            result[key] = info[key]
    return result


def _varz_config(server: Server) -> JSONObject:
    opts = server.options
    result: JSONObject = {"max_connections": opts.max_connections}
    if opts.max_subscriptions > 0:
        result["max_subscriptions"] = opts.max_subscriptions
    result.update({
        "ping_interval": round(opts.ping_interval * _NS),
        "ping_max": opts.ping_max,
        "http_host": opts.http_host or opts.host,
        "http_port": opts.http_port,  # the configured value (-1 stays -1), as nats-server
        "http_base_path": "",
        "https_port": 0,
        "auth_timeout": _number(opts.auth_timeout),
        "max_control_line": opts.max_control_line,
        "max_payload": opts.max_payload,
        "max_pending": opts.max_pending,
        # Not configured: nats-server shows each of these as an empty object.
        "cluster": {},
        "gateway": {},
        "leaf": {},
        "mqtt": {},
        "websocket": {},
        "jetstream": {},
        "tls_timeout": _number(float(getattr(opts, "tls_timeout", DEFAULT_TLS_TIMEOUT))),
        "write_deadline": round(opts.write_deadline * _NS),
    })
    return result


def _varz_runtime(server: Server, usage: ProcessUsage, now_ns: int) -> JSONObject:
    start_ns = _ns(server.start_time)
    return {
        "start": rfc3339(start_ns),
        "now": rfc3339(now_ns),
        "uptime": uptime(now_ns - start_ns),
        "mem": usage.mem,
        "cores": usage.cores,
        # Go's GOMAXPROCS is how many threads run Go code at once; ours is one event loop.
        "gomaxprocs": 1,
        "cpu": _number(usage.cpu),
    }


def _varz_counters(server: Server, http_req_stats: Mapping[str, int]) -> JSONObject:
    totals = traffic(server)
    stats = server.stats
    return {
        "connections": len(server.clients),
        "total_connections": stats.total_connections,
        "routes": 0,
        "remotes": 0,
        "leafnodes": 0,
        "in_msgs": totals.in_msgs,
        "in_bytes": totals.in_bytes,
        # Every connection is a client connection, so the client totals are the totals.
        "in_client_msgs": totals.in_msgs,
        "in_client_bytes": totals.in_bytes,
        "out_msgs": totals.out_msgs,
        "out_bytes": totals.out_bytes,
        "out_client_msgs": totals.out_msgs,
        "out_client_bytes": totals.out_bytes,
        "slow_consumers": stats.slow_consumers,
        "stale_connections": stats.stale_connections,
        "stalled_clients": 0,  # producers are never stalled (no flow control on publishers)
        "subscriptions": server.index.count,
        "http_req_stats": dict(sorted(http_req_stats.items())),
        "config_load_time": rfc3339(_ns(server.start_time)),
        "config_digest": "",
        "slow_consumer_stats": _by_kind(stats.slow_consumers),
        "stale_connection_stats": _by_kind(stats.stale_connections),
        "disk_io_wait_stats": {"waiters": 0, "waits": 0, "wait_time": 0, "max_wait_time": 0},
    }


def _by_kind(clients: int) -> JSONObject:
    return {"clients": clients, "routes": 0, "gateways": 0, "leafs": 0}


# -- /connz ------------------------------------------------------------------------------


def connz(server: Server, query: ConnzQuery | None = None, *,
          now_ns: int | None = None) -> JSONObject:
    """Client connections, as nats-server's ``/connz`` lists them.

    ``total`` counts the connections in the requested state before the ``cid``,
    ``user`` and ``mqtt_client`` filters and before paging; ``num_connections`` is the
    length of the page. Closed connections are the most recent ones the server keeps
    (``max_closed_clients``), reported as they were when they closed.

    Args:
        server: The server.
        query: Decoded query parameters (defaults when None).
        now_ns: The current time in nanoseconds since the epoch; now when None.

    Returns:
        The ``/connz`` object.
    """
    q = query or ConnzQuery()
    now_ns = time.time_ns() if now_ns is None else now_ns
    result: JSONObject = {"server_id": server.server_id, "now": rfc3339(now_ns),
                          "num_connections": 0, "total": 0, "offset": q.offset,
                          "limit": q.limit, "connections": []}
    if q.account and q.account != GLOBAL_ACCOUNT:
        return result  # an account that does not exist has no connections
    opened = list(server.clients.values()) if q.state is not ConnState.CLOSED else []
    closed = list(server.closed_clients) if q.state is not ConnState.OPEN else []
    result["total"] = len(opened) + len(closed)
    chosen = [s for s in (*opened, *closed) if _selected(s, q)]
    page = sort_sessions(chosen, q.sort, now_ns)[q.offset:q.offset + q.limit]
    result["num_connections"] = len(page)
    result["connections"] = [conn_info(s, q, now_ns) for s in page]
    return result


def _selected(session: ClientSession, q: ConnzQuery) -> bool:
    if q.cid and session.cid != q.cid:
        return False
    if q.user and _auth_user(session) != q.user:
        return False
    return not q.mqtt_client  # there are no MQTT clients


def _auth_user(session: ClientSession) -> str:
    """The user a client authenticated as ("" while the server has no authentication)."""
    return str(getattr(session, "user", "") or "")


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
        return sorted(by_cid, key=lambda s: _end_ns(s, now_ns) - _ns(s.started))
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
    return _ns(session.stop) if session.closed and session.stop else now_ns


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
    start_ns, last_ns = _ns(session.started), _ns(session.last_activity)
    end_ns = _end_ns(session, now_ns)
    info: JSONObject = {
        "cid": session.cid, "kind": "Client", "type": "nats",
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
    info.update(_conn_extras(session, query))
    return info


def _conn_extras(session: ClientSession, query: ConnzQuery) -> JSONObject:
    """Authorization and subscription parts of a ConnInfo, in nats-server's key order."""
    extras: JSONObject = {}
    if query.auth and _auth_user(session):
        extras["authorized_user"] = _auth_user(session)
    # "account" is only shown for accounts other than the global one: never, here.
    if session.subs and query.subs_detail:
        extras["subscriptions_list_detail"] = [sub_detail(session, sub)
                                               for sub in session.subs.values()]
    elif session.subs and query.subs:
        extras["subscriptions_list"] = [_text(sub.subject) for sub in session.subs.values()]
    if query.auth and not session.closed:
        extras["name_tag"] = GLOBAL_ACCOUNT  # nats-server tags no-auth clients with $G
    return extras


def sub_detail(session: ClientSession, sub: Subscription) -> JSONObject:
    """One subscription as ``subscriptions_list_detail`` shows it (``SubDetail``).

    Args:
        session: The subscribing client.
        sub: Its :class:`~pynats.server.subscription.Subscription`.

    Returns:
        ``{subject, qgroup?, sid, msgs, max?, cid}``.
    """
    detail: JSONObject = {"subject": _text(sub.subject)}
    if sub.queue:
        detail["qgroup"] = _text(sub.queue)
    detail["sid"] = _text(sub.sid)
    detail["msgs"] = sub.delivered
    if sub.max_msgs:
        detail["max"] = sub.max_msgs
    detail["cid"] = session.cid
    return detail


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


__all__ = [
    "DEFAULT_CONN_LIST_SIZE", "GLOBAL_ACCOUNT", "SORT_OPTIONS", "ConnState", "ConnzQuery",
    "CpuMeter", "HealthzQuery", "ProcessUsage", "QueryError", "Traffic", "conn_info", "connz",
    "go_duration", "healthz", "parse_bool", "parse_int", "parse_uint", "process_usage",
    "rfc3339", "rtt_string", "sort_sessions", "sub_detail", "traffic", "uptime", "varz",
]
