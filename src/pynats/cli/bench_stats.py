"""Benchmark statistics and reports: natscli's summary, percentiles, CSV, JSON.

Theory of operation
-------------------
Workers return raw facts (messages, bytes, first and last timestamps, latency samples,
``(time, count)`` samples); everything derived is computed here, in pure functions, so
the numbers can be unit-tested without a server. Rates follow natscli (and nats.go's
``bench`` package): a client's rate is its messages over its own active time; a group's
rate (``Pub stats``, ``Sub stats``) is the group's messages over the span from the
earliest start to the latest end; the overall figure adds publishers' and subscribers'
messages over the span of both. ``MB/sec`` is natscli's: 1024 x 1024 bytes.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pynats.cli.output import commas, format_duration, human_bytes

MB = 1024 * 1024
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


@dataclass(frozen=True)
class ClientResult:
    """One worker's result."""

    role: str
    index: int
    msgs: int
    bytes: int
    start: int  # ns, CLOCK_MONOTONIC
    end: int
    latencies: list[float] = field(default_factory=list)
    samples: list[tuple[int, int]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        """Active time."""
        return max(0.0, (self.end - self.start) / 1e9)

    @property
    def rate(self) -> float:
        """Messages per second."""
        return self.msgs / self.seconds if self.seconds > 0 else 0.0

    @property
    def throughput(self) -> float:
        """Bytes per second."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClientResult:
        """From a worker's ``result`` message."""
        return cls(role=data["role"], index=data["index"], msgs=data["msgs"],
                   bytes=data["bytes"], start=data["start"], end=data["end"],
                   latencies=list(data["latencies"]),
                   samples=[(int(t), int(n)) for t, n in data["samples"]])


@dataclass(frozen=True)
class Group:
    """Publishers (or requesters), or subscribers, taken together."""

    name: str
    clients: list[ClientResult]

    @property
    def msgs(self) -> int:
        """Messages of all clients."""
        return sum(c.msgs for c in self.clients)

    @property
    def bytes(self) -> int:
        """Bytes of all clients."""
        return sum(c.bytes for c in self.clients)

    @property
    def seconds(self) -> float:
        """Earliest start to latest end of the active clients."""
        return span(self.clients)

    @property
    def rate(self) -> float:
        """Messages per second of the group."""
        return self.msgs / self.seconds if self.seconds > 0 else 0.0

    @property
    def throughput(self) -> float:
        """Bytes per second of the group."""
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


def span(clients: Sequence[ClientResult]) -> float:
    """Seconds from the earliest start to the latest end among clients with messages."""
    active = [c for c in clients if c.msgs]
    if not active:
        return 0.0
    return max(0.0, (max(c.end for c in active) - min(c.start for c in active)) / 1e9)


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of already sorted values; 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(round(pct / 100 * len(sorted_values), 9)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies: Sequence[float]) -> dict[str, float] | None:
    """min/avg/max/stddev and the percentiles of PERCENTILES, in seconds; None if empty."""
    if not latencies:
        return None
    values = sorted(latencies)
    summary = {"count": float(len(values)), "min": values[0],
               "avg": statistics.fmean(values), "max": values[-1],
               "stddev": statistics.pstdev(values)}
    for pct in PERCENTILES:
        summary[f"p{pct:g}"] = percentile(values, pct)
    return summary


def rate_summary(clients: Sequence[ClientResult]) -> dict[str, float]:
    """min/avg/max/stddev of the clients' message rates."""
    rates = [c.rate for c in clients] or [0.0]
    return {"min": min(rates), "avg": statistics.fmean(rates), "max": max(rates),
            "stddev": statistics.pstdev(rates)}


@dataclass
class BenchReport:
    """Everything a benchmark run measured."""

    title: str
    subject: str
    msgs: int
    size: int
    pubs: Group
    subs: Group
    request: bool
    lost: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def all_clients(self) -> list[ClientResult]:
        """Publishers then subscribers."""
        return self.pubs.clients + self.subs.clients

    @property
    def latencies(self) -> list[float]:
        """Every latency sample (round trips, or publish-to-delivery)."""
        return [x for c in self.all_clients for x in c.latencies]

    def overall(self) -> tuple[float, float]:
        """natscli's aggregate: (msgs/sec, bytes/sec) of publishers plus subscribers."""
        clients = self.all_clients
        seconds = span(clients)
        if seconds <= 0:
            return 0.0, 0.0
        msgs = sum(c.msgs for c in clients)
        return msgs / seconds, sum(c.bytes for c in clients) / seconds

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-able data."""
        rate, throughput = self.overall()

        def group(g: Group) -> dict[str, Any]:
            return {"msgs": g.msgs, "bytes": g.bytes, "seconds": g.seconds,
                    "msgs_per_sec": g.rate, "bytes_per_sec": g.throughput,
                    "clients": [{"index": c.index + 1, "msgs": c.msgs, "seconds": c.seconds,
                                 "msgs_per_sec": c.rate, "bytes_per_sec": c.throughput}
                                for c in g.clients],
                    "rates": rate_summary(g.clients) if g.clients else None}

        return {"benchmark": self.title, "subject": self.subject, "msgs": self.msgs,
                "size": self.size, "request": self.request,
                "overall": {"msgs_per_sec": rate, "bytes_per_sec": throughput},
                self.pubs.name.lower(): group(self.pubs),
                self.subs.name.lower(): group(self.subs),
                "latency": latency_summary(self.latencies), "lost": self.lost,
                "errors": self.errors}


def _rate_line(label: str, rate: float, throughput: float) -> str:
    return f"{label}{commas(rate)} msgs/sec ~ {throughput / MB:,.2f} MB/sec"


def format_report(report: BenchReport) -> str:
    """natscli's summary text, with latency percentiles added."""
    lines = []
    rate, throughput = report.overall()
    if report.pubs.clients and report.subs.clients:
        lines.append(_rate_line(f"NATS {report.title} stats: ", rate, throughput))
    for group in (report.pubs, report.subs):
        if not group.clients:
            continue
        lines.append(_rate_line(f" {group.name} stats: ", group.rate, group.throughput))
        for c in group.clients:
            lines.append(_rate_line(f"  [{c.index + 1}] ", c.rate, c.throughput) +
                         f" ({commas(c.msgs)} msgs)")
        if len(group.clients) > 1:
            r = rate_summary(group.clients)
            lines.append(f"  min {commas(r['min'])} | avg {commas(r['avg'])} | max "
                         f"{commas(r['max'])} | stddev {commas(r['stddev'])} msgs")
    lat = latency_summary(report.latencies)
    if lat is not None:
        kind = "round trip" if report.request else "publish to delivery"
        lines.append("")
        lines.append(f"Latency ({kind}, {commas(lat['count'])} samples):")
        lines.append(f"  min {format_duration(lat['min'])} | avg {format_duration(lat['avg'])}"
                     f" | max {format_duration(lat['max'])} | stddev "
                     f"{format_duration(lat['stddev'])}")
        lines.append("  " + " | ".join(f"p{p:g} {format_duration(lat[f'p{p:g}'])}"
                                       for p in PERCENTILES))
    if report.lost:
        lines.append("")
        lines.append(f"Lost: {commas(report.lost)} messages never arrived")
    for error in report.errors:
        lines.append(f"error: {error}")
    return "\n".join(lines)


def banner(report_title: str, subject: str, msgs: int, size: int, pubs: int, subs: int,
           queue: str) -> str:
    """The ``Starting ...`` line natscli prints before running."""
    extra = f", queue={queue}" if queue else ""
    return (f"Starting Core NATS {report_title} benchmark [subject={subject}, "
            f"msgs={commas(msgs)}, msgsize={human_bytes(size)}, pubs={pubs}, subs={subs}"
            f"{extra}]")


def write_csv(path: str, report: BenchReport, run_id: str) -> None:
    """One row per client, natscli's columns."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["#RunID", "ClientID", "MsgCount", "MsgBytes", "MsgsPerSec",
                         "BytesPerSec", "DurationSecs"])
        for c in report.all_clients:
            writer.writerow([run_id, f"{c.role.upper()}{c.index + 1}", c.msgs, c.bytes,
                             f"{c.rate:.2f}", f"{c.throughput:.2f}", f"{c.seconds:.6f}"])


def throughput_series(clients: Sequence[ClientResult], origin: int,
                      bucket: float = 0.1) -> tuple[list[float], list[float]]:
    """Messages per second over time (bucket centres in seconds from ``origin``)."""
    totals: dict[int, int] = {}
    for c in clients:
        prev_t, prev_n = c.start, 0
        for t, n in c.samples:
            key = int((t - origin) / 1e9 / bucket)
            totals[key] = totals.get(key, 0) + (n - prev_n)
            prev_t, prev_n = t, n
        del prev_t
    if not totals:
        return [], []
    keys = range(min(totals), max(totals) + 1)
    return ([(k + 0.5) * bucket for k in keys], [totals.get(k, 0) / bucket for k in keys])
