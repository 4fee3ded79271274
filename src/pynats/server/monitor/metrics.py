"""``/metrics``: the monitoring snapshots as Prometheus text, named as the exporter names them.

Theory of operation
-------------------
Dashboards for NATS are built on the metrics of prometheus-nats-exporter, which polls
``/varz``, ``/connz``, ``/routez`` and ``/subsz`` and republishes them. This module
produces the same metric families straight from the snapshots, so those dashboards
work without the exporter (its ``-use_internal_server_id`` flavour: the ``server_id``
label is the server's own id). The rules are the exporter's (``collector/``):

* ``/varz`` and ``/subsz`` (generic collector): every numeric field becomes a gauge
  ``gnatsd_<endpoint>_<field>``; nested objects are flattened with ``_`` (``/`` in keys
  becomes ``_`` too, so ``http_req_stats["/varz"]`` is
  ``gnatsd_varz_http_req_stats_varz``); the string fields ``server_id``,
  ``server_name``, ``version``, ``domain``, ``leader`` and ``name`` become a gauge of
  value 1 carrying the string in a ``value`` label; booleans, lists and other strings
  are skipped, and so are ``leaf`` and a few cluster/gateway settings the exporter
  leaves out;
* ``/connz`` (summary collector): ``num_connections``, ``total``, ``offset``,
  ``limit``, and the sums over the listed connections of ``pending_bytes`` and
  ``subscriptions`` (gauges) and of ``in_msgs``, ``out_msgs``, ``in_bytes``,
  ``out_bytes`` (counters);
* ``/routez``: ``server_id``/``server_name`` info gauges, ``num_routes``, and per route
  ``route_info`` (labels ``rid``, ``remote_id``, ``remote_name``, ``account``, ``ip``,
  ``compression``), ``route_rtt_seconds``, ``route_subscriptions``,
  ``route_uptime_seconds`` and the four traffic gauges.

:func:`exposition` writes text format 0.0.4 as the Go client library does: families
sorted by name, ``# HELP`` and ``# TYPE`` lines, samples sorted by labels, values in
Go's shortest ``%g`` form (``1.048576e+06``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

from pynats.server.monitor.connz import connz
from pynats.server.monitor.formats import parse_duration
from pynats.server.monitor.routez import routez
from pynats.server.monitor.subsz import subsz
from pynats.server.monitor.varz import varz

if TYPE_CHECKING:
    from pynats.server.server import Server

#: The exporter's metric namespace (kept from the server's old name, gnatsd).
NAMESPACE: Final = "gnatsd"
#: ``Content-Type`` of the text exposition format.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Flattened names the exporter's generic collector leaves out.
_SKIPPED: Final = frozenset({
    "leaf", "trusted_operators_claim", "cluster_tls_timeout", "cluster_cluster_port",
    "cluster_auth_timeout", "gateway_port", "gateway_auth_timeout", "gateway_tls_timeout",
    "gateway_connect_retries",
})
#: String fields the generic collector turns into ``{value="..."} 1`` gauges.
_LABEL_KEYS: Final = frozenset({"server_id", "server_name", "version", "domain", "leader",
                                "name"})
_CONNZ_GAUGES: Final = ("pending_bytes", "subscriptions")
_CONNZ_COUNTERS: Final = ("in_bytes", "out_bytes", "in_msgs", "out_msgs")
_INVALID_NAME_RE: Final = re.compile(r"[^a-zA-Z0-9_:]")

Kind = Literal["gauge", "counter"]


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a family, with its labels in order."""

    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(slots=True)
class Family:
    """A metric family: its name, type, help text and samples."""

    name: str
    kind: Kind
    help: str
    samples: list[Sample] = field(default_factory=list)


def metrics_text(server: Server, *, http_req_stats: Mapping[str, int] | None = None,
                 now_ns: int | None = None) -> str:
    """The ``/metrics`` page: exporter-named families from the four snapshots.

    Args:
        server: The server.
        http_req_stats: Requests served per monitoring path (``/varz``'s).
        now_ns: The current time in nanoseconds since the epoch; now when None.

    Returns:
        Prometheus text exposition format 0.0.4.
    """
    sid = server.server_id
    families = flatten("varz", varz(server, http_req_stats=http_req_stats, now_ns=now_ns), sid)
    families += connz_families(connz(server, now_ns=now_ns), sid)
    families += routez_families(routez(server, now_ns=now_ns), sid)
    families += flatten("subsz", subsz(server, now_ns=now_ns), sid)
    return exposition(families)


# -- the exporter's mappings -----------------------------------------------------------


def flatten(endpoint: str, body: Mapping[str, Any], server_id: str) -> list[Family]:
    """Map a JSON object as the exporter's generic collector does.

    Args:
        endpoint: ``varz`` or ``subsz`` (the metric subsystem).
        body: The endpoint's JSON object.
        server_id: The ``server_id`` label of every sample.

    Returns:
        One gauge family per numeric field (recursively) and per label string.
    """
    families: list[Family] = []
    _walk(endpoint, body, (), server_id, families)
    return families


def _walk(endpoint: str, body: Mapping[str, Any], path: tuple[str, ...], server_id: str,
          out: list[Family]) -> None:
    for key, value in body.items():
        name = fq_name((*path, key))
        if name in _SKIPPED:
            continue
        full = f"{NAMESPACE}_{endpoint}_{name}"
        if isinstance(value, Mapping):
            _walk(endpoint, value, (*path, key), server_id, out)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out.append(Family(full, "gauge", name,
                              [Sample((("server_id", server_id),), float(value))]))
        elif isinstance(value, str) and key in _LABEL_KEYS:
            labels = (("server_id", server_id), ("value", value))
            out.append(Family(full, "gauge", name, [Sample(labels, 1.0)]))


def fq_name(path: Iterable[str]) -> str:
    """The exporter's flattened name: joined with ``_``, ``/`` as ``_``, no ``__``."""
    name = _INVALID_NAME_RE.sub("_", "_".join(path).replace("/", "_")).strip("_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


def connz_families(body: Mapping[str, Any], server_id: str) -> list[Family]:
    """The exporter's ``connz`` collector: page figures and sums over the connections."""
    labels = (("server_id", server_id),)
    connections = body.get("connections") or []
    families = [_one(f"connz_{key}", "gauge", key, labels, float(body[key]))
                for key in ("num_connections", "total", "offset", "limit")]
    sums: tuple[tuple[tuple[str, ...], Kind], ...] = (
        (_CONNZ_GAUGES, "gauge"), (_CONNZ_COUNTERS, "counter"))
    for keys, kind in sums:
        for key in keys:
            total = float(sum(conn.get(key, 0) for conn in connections))
            families.append(_one(f"connz_{key}", kind, key, labels, total))
    return families


def routez_families(body: Mapping[str, Any], server_id: str) -> list[Family]:
    """The exporter's ``routez`` collector: identity, route count, per-route figures."""
    base = (("server_id", server_id),)
    families = [
        _one("routez_server_id", "gauge", "server_id",
             (*base, ("value", str(body["server_id"]))), 1.0),
        _one("routez_server_name", "gauge", "server_name",
             (*base, ("value", str(body["server_name"]))), 1.0),
        _one("routez_num_routes", "gauge", "num_routes", base, float(body["num_routes"])),
    ]
    per_route = {key: Family(f"{NAMESPACE}_routez_route_{key}", "gauge", help_text)
                 for key, help_text in _ROUTE_FAMILIES}
    for route in body.get("routes") or []:
        _route_samples(route, server_id, per_route)
    families += [family for family in per_route.values() if family.samples]
    return families


_ROUTE_FAMILIES: Final = (("info", "route_info"), ("rtt_seconds", "rtt_seconds"),
                          ("subscriptions", "subscriptions"),
                          ("uptime_seconds", "uptime_seconds"), ("in_msgs", "in_msgs"),
                          ("out_msgs", "out_msgs"), ("in_bytes", "in_bytes"),
                          ("out_bytes", "out_bytes"))


def _route_samples(route: Mapping[str, Any], server_id: str,
                   families: Mapping[str, Family]) -> None:
    base = (("server_id", server_id), ("rid", str(route.get("rid", 0))))
    info = (*base, *((key, str(route.get(key, ""))) for key in
                     ("remote_id", "remote_name", "account", "ip", "compression")))
    families["info"].samples.append(Sample(info, 1.0))
    rtt = parse_duration(str(route.get("rtt", "")))
    if rtt is not None:
        families["rtt_seconds"].samples.append(Sample(base, rtt))
    families["subscriptions"].samples.append(Sample(base, float(route.get("subscriptions", 0))))
    up = parse_duration(str(route.get("uptime", "")))
    if up is not None:
        families["uptime_seconds"].samples.append(Sample(base, up))
    for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes"):
        families[key].samples.append(Sample(base, float(route.get(key, 0))))


def _one(name: str, kind: Kind, help_text: str, labels: tuple[tuple[str, str], ...],
         value: float) -> Family:
    return Family(f"{NAMESPACE}_{name}", kind, help_text, [Sample(labels, value)])


# -- text format 0.0.4 -----------------------------------------------------------------


def exposition(families: Iterable[Family]) -> str:
    """Write families in the Prometheus text format, as the Go client library does.

    Args:
        families: Families with distinct names.

    Returns:
        The text, one ``# HELP``/``# TYPE`` pair per family, ending with a newline.
    """
    lines: list[str] = []
    for family in sorted(families, key=lambda f: f.name):
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for sample in sorted(family.samples, key=lambda s: s.labels):
            lines.append(f"{family.name}{_labels(sample.labels)} {go_float(sample.value)}")
    return "\n".join(lines) + "\n" if lines else ""


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels) + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def go_float(value: float) -> str:
    """Format a float like Go's ``strconv.FormatFloat(f, 'g', -1, 64)``.

    Returns:
        The shortest digits that read back as ``value``, in exponent form when the
        exponent is below -4 or at least 6: ``0``, ``42``, ``0.5``, ``1.048576e+06``,
        ``1e-05``, ``+Inf``, ``NaN``.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = exponent + len(text) - 1  # the decimal exponent of the first digit
    prefix = "-" if sign else ""
    if point < -4 or point >= 6:
        mantissa = text[0] + (f".{text[1:]}" if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if point < 0 else '+'}{abs(point):02d}"
    if point < 0:
        return f"{prefix}0.{'0' * (-point - 1)}{text}"
    whole = text[:point + 1].ljust(point + 1, "0")
    rest = text[point + 1:]
    return f"{prefix}{whole}{'.' + rest if rest else ''}"


__all__ = [
    "CONTENT_TYPE", "NAMESPACE", "Family", "Sample", "connz_families", "exposition", "flatten",
    "fq_name", "go_float", "metrics_text", "routez_families",
]
