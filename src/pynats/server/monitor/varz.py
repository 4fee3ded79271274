"""``/varz``: server identity, configuration and statistics.

Theory of operation
-------------------
:func:`varz` builds nats-server's ``Varz`` object from the server and its options in
four parts, in nats-server's key order: identity (mostly the client INFO), configuration
(limits, monitoring ports, one object per listener kind), runtime (times, memory, CPU)
and counters (connections, traffic, subscriptions, request counts, accounts). Fields
nats-server tags ``omitempty`` are left out when empty.

Counters are derived, not kept: traffic totals are the closed clients' totals (kept by
the server when a client goes) plus every open client's own counters plus the routes'
(``server.routes``, filled by clustering). Process figures come from
``/proc/self/statm`` and :class:`CpuMeter`; they are the only outside reads.

Not reported: JetStream's ``feature_flags`` (no JetStream), ``git_commit`` (no build
commit).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from pynats import SERVER_VERSION
from pynats.server.certs import cert_not_after
from pynats.server.monitor.accountz import client_traffic, system_account_name
from pynats.server.monitor.formats import (
    NS_PER_SECOND,
    JSONObject,
    go_number,
    rfc3339,
    to_ns,
    uptime,
)
from pynats.server.monitor.routez import route_list, route_traffic

if TYPE_CHECKING:
    from pynats.server.config.options import ClusterOptions, WebsocketOptions
    from pynats.server.server import Server

#: nats-server's default TLS handshake timeout (``TLS_TIMEOUT``), reported even without TLS.
DEFAULT_TLS_TIMEOUT: Final = 2.0
#: nats-server's default websocket handshake timeout; not reported when unchanged.
DEFAULT_WS_HANDSHAKE_TIMEOUT: Final = 2.0


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


def varz(server: Server, *, http_req_stats: Mapping[str, int] | None = None,
         usage: ProcessUsage | None = None, now_ns: int | None = None) -> JSONObject:
    """Server identity, configuration and statistics, as nats-server's ``/varz``.

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
    result = _identity(server)
    result.update(_config(server))
    result.update(_runtime(server, usage, now_ns))
    result.update(_counters(server, http_req_stats or {}))
    result.update(_trailer(server))
    return result


def _identity(server: Server) -> JSONObject:
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


def _config(server: Server) -> JSONObject:
    opts = server.options
    result: JSONObject = {"max_connections": opts.max_connections}
    if opts.max_subscriptions > 0:
        result["max_subscriptions"] = opts.max_subscriptions
    tls_timeout = opts.tls.timeout if opts.tls is not None else DEFAULT_TLS_TIMEOUT
    result.update({
        "ping_interval": round(opts.ping_interval * NS_PER_SECOND),
        "ping_max": opts.ping_max,
        "http_host": opts.http_host or opts.host,
        # The configured values (-1 stays -1), as nats-server shows them.
        "http_port": opts.http_port,
        "http_base_path": opts.http_base_path,
        "https_port": opts.https_port,
        "auth_timeout": go_number(opts.auth_timeout),
        "max_control_line": opts.max_control_line,
        "max_payload": opts.max_payload,
        "max_pending": opts.max_pending,
        "cluster": _cluster(server, opts.cluster),
        # Gateways, leaf nodes, MQTT and JetStream do not exist here: nats-server shows
        # each unconfigured one as an empty object.
        "gateway": {},
        "leaf": {},
        "mqtt": {},
        "websocket": _websocket(server, opts.websocket),
        "jetstream": {},
        "tls_timeout": go_number(tls_timeout),
        "write_deadline": round(opts.write_deadline * NS_PER_SECOND),
    })
    return result


#: ``cluster.pool_size`` as nats-server shows a server that does not pool routes: one
#: connection per peer carries every account (CLUSTER.md section 9).
NO_POOLING: Final = -1


def _cluster(server: Server, cluster: ClusterOptions) -> JSONObject:
    """The ``cluster`` object (``ClusterOptsVarz``); empty when clustering is off."""
    if not cluster.enabled:
        return {}
    result: JSONObject = {}
    name = str(getattr(server, "cluster_name", "") or cluster.name)
    port = int(getattr(server, "cluster_port", 0) or max(cluster.port, 0))
    for key, value in (("name", name), ("addr", cluster.host), ("cluster_port", port),
                       ("auth_timeout", go_number(cluster.auth_timeout))):
        if value:
            result[key] = value
    if cluster.routes:
        result["urls"] = [_url_host(url) for url in cluster.routes]
    timeout = cluster.tls.timeout if cluster.tls is not None else DEFAULT_TLS_TIMEOUT
    result["tls_timeout"] = go_number(timeout)
    if cluster.tls is not None:
        result["tls_required"] = result["tls_verify"] = True
    result["pool_size"] = NO_POOLING
    if cluster.write_deadline:
        result["write_deadline"] = round(cluster.write_deadline * NS_PER_SECOND)
    return result


def _url_host(url: str) -> str:
    """``host:port`` of a route URL, without credentials (Go's ``url.URL.Host``)."""
    return urlsplit(url if "//" in url else f"nats://{url}").netloc.rpartition("@")[2]


def _websocket(server: Server, ws: WebsocketOptions) -> JSONObject:
    """The ``websocket`` object (``WebsocketOptsVarz``); empty when websocket is off."""
    if not ws.port:
        return {}
    port = int(getattr(server, "websocket_port", 0) or max(ws.port, 0))
    result: JSONObject = {"host": ws.host}
    if port:
        result["port"] = port
    for key, value in (("advertise", ws.advertise), ("no_auth_user", ws.no_auth_user),
                       ("jwt_cookie", ws.jwt_cookie)):
        if value:
            result[key] = value
    if ws.handshake_timeout != DEFAULT_WS_HANDSHAKE_TIMEOUT:
        result["handshake_timeout"] = round(ws.handshake_timeout * NS_PER_SECOND)
    if ws.authorization is not None:
        result["auth_timeout"] = go_number(ws.authorization.timeout)
    for key, flag in (("no_tls", ws.no_tls), ("same_origin", ws.same_origin)):
        if flag:
            result[key] = True
    if ws.allowed_origins:
        result["allowed_origins"] = list(ws.allowed_origins)
    if ws.compression:
        result["compression"] = True
    return result


def _runtime(server: Server, usage: ProcessUsage, now_ns: int) -> JSONObject:
    start_ns = to_ns(server.start_time)
    return {
        "start": rfc3339(start_ns),
        "now": rfc3339(now_ns),
        "uptime": uptime(now_ns - start_ns),
        "mem": usage.mem,
        "cores": usage.cores,
        # Go's GOMAXPROCS is how many threads run Go code at once; ours is one event loop.
        "gomaxprocs": 1,
        "cpu": go_number(usage.cpu),
    }


def _counters(server: Server, http_req_stats: Mapping[str, int]) -> JSONObject:
    clients = client_traffic(server)
    routes = route_traffic(server)
    stats = server.stats
    return {
        "connections": len(server.clients),
        "total_connections": stats.total_connections,
        "routes": len(route_list(server)),
        "remotes": len({getattr(r, "remote_id", id(r)) for r in route_list(server)}),
        "leafnodes": 0,
        "in_msgs": clients.in_msgs + routes.in_msgs,
        "in_bytes": clients.in_bytes + routes.in_bytes,
        "in_client_msgs": clients.in_msgs,
        "in_client_bytes": clients.in_bytes,
        "out_msgs": clients.out_msgs + routes.out_msgs,
        "out_bytes": clients.out_bytes + routes.out_bytes,
        "out_client_msgs": clients.out_msgs,
        "out_client_bytes": clients.out_bytes,
        "slow_consumers": stats.slow_consumers,
        "stale_connections": stats.stale_connections,
        "stalled_clients": 0,  # producers are never stalled (no flow control on publishers)
        "subscriptions": sum(acc.index.count + acc.remote.count
                             for acc in server.accounts.values()),
        "http_req_stats": dict(sorted(http_req_stats.items())),
        "config_load_time": rfc3339(to_ns(server.config_load_time)),
        "config_digest": server.config_digest,
    }


def _trailer(server: Server) -> JSONObject:
    """Tags, the system account and counters by connection kind, then the TLS expiry."""
    stats = server.stats
    result: JSONObject = {}
    if server.options.server_tags:
        result["tags"] = list(server.options.server_tags)
    operator = server.auth.operator
    if operator is not None and operator.operators:
        result["trusted_operators_jwt"] = [op.token for op in operator.operators]
        result["trusted_operators_claim"] = [dict(op.raw) for op in operator.operators]
    system = system_account_name(server.options)
    if system:
        result["system_account"] = system
    result["slow_consumer_stats"] = _by_kind(stats.slow_consumers)
    result["stale_connection_stats"] = _by_kind(stats.stale_connections)
    result["disk_io_wait_stats"] = {"waiters": 0, "waits": 0, "wait_time": 0,
                                    "max_wait_time": 0}
    tls = server.options.tls
    expires = cert_not_after(tls.cert_file) if tls is not None and tls.cert_file else None
    if expires is not None:
        result["tls_cert_not_after"] = rfc3339(expires * NS_PER_SECOND)
    return result


def _by_kind(clients: int) -> JSONObject:
    return {"clients": clients, "routes": 0, "gateways": 0, "leafs": 0}


__all__ = [
    "DEFAULT_TLS_TIMEOUT", "CpuMeter", "ProcessUsage", "process_usage", "varz",
]
