"""Compare pynats with the reference Go nats-server under identical load.

Usage: ``python bench/compare.py [--duration S] [--scenarios ...] [--sizes 16,1024]
[--only pynats|nats-server] [--pynats-cmd CMD] [--json FILE]``

Method: both servers are started (``-a 127.0.0.1 -p -1``, ready once their log says so) and
every scenario x payload size is run against each with exactly the same load, alternating
nats-server and pynats run by run so that slow drifts of the machine hit both alike. Load comes
from separate worker processes (one per publisher / subscriber / requester / responder)
speaking the raw NATS text protocol over plain sockets; see ``loadgen.py`` for how they
generate and count, and ``scenarios.py`` for how a run is timed. The table reports
messages (or round trips) per second for both servers, their ratio (pynats / nats-server)
and the messages lost by each. Every process started here is stopped on the way out, and
every run has a hard deadline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from scenarios import SCENARIOS, RunResult, Scenario, Settings, run
from servers import ServerError, ServerProcess, command_version, resolve_command

SERVERS = ("nats-server", "pynats")
DISTURBED = 0.2  # cores taken by other processes or by the hypervisor: above, a run is flagged


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--duration",
        type=float,
        default=3.0,
        help="seconds of publishing/requesting per run (default 3)",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        default=list(SCENARIOS),
        help="scenarios, space or comma separated (default: all)",
    )
    parser.add_argument(
        "--sizes", default="16,1024", help="payload sizes in bytes (default 16,1024)"
    )
    parser.add_argument("--only", choices=SERVERS, help="benchmark only this server")
    parser.add_argument(
        "--pynats-cmd",
        default="python -m pynats.server",
        help="command that starts pynats (e.g. 'nats-server' to test the harness)",
    )
    parser.add_argument(
        "--nats-server-cmd", default="nats-server", help="command that starts the reference server"
    )
    parser.add_argument(
        "--publishers",
        type=int,
        default=1,
        help="publisher processes in streaming scenarios (default 1)",
    )
    parser.add_argument(
        "--window", type=int, default=64, help="outstanding requests in reqrep_pipe (default 64)"
    )
    parser.add_argument(
        "--max-msgs",
        type=int,
        default=0,
        help="cap on messages per publisher/requester (default: none)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per cell; the table shows the median rate (default 1)",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=2.0,
        help="seconds without deliveries after publishing before the "
        "missing messages count as lost (default 2)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="hard limit per run beyond --duration (default 60)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="subscribers/requesters parse and check every delivery (slower; for validation)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="pin the servers to the first CPU and the load generators to the others",
    )
    parser.add_argument("--json", type=Path, help="also write all results to this JSON file")
    args = parser.parse_args(argv)
    args.scenarios = _split(args.scenarios)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    try:
        args.sizes = [int(s) for s in _split([args.sizes])]
    except ValueError:
        parser.error("--sizes must be comma-separated integers")
    return args


def _split(values: Iterable[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part]


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every finally, stopping what we started


def log(message: str) -> None:
    """Progress goes to stderr so stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


def split_cpus() -> tuple[set[int], set[int]]:
    """(CPUs for the servers, CPUs for the load generators) for ``--pin``."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs at least 2 CPUs")
    return {cpus[0]}, set(cpus[1:])


def start_server(name: str, command: str, cpus: set[int] | None) -> ServerProcess | str:
    """A started server, or the reason it could not be started."""
    try:
        server = ServerProcess(name, resolve_command(command), cpus).start()
    except ServerError as exc:
        log(f"[{name}] {exc}")
        return str(exc).splitlines()[0]
    log(f"[{name}] {' '.join(server.argv)} -> port {server.port}")
    return server


def run_all(
    args: argparse.Namespace,
    settings: Settings,
    servers: dict[str, ServerProcess | str],
    results: list[RunResult],
) -> None:
    """Every scenario x size x repetition, alternating the servers run by run.

    The order of the servers flips on every repetition so neither always goes first.
    Results are appended to ``results`` as they come, so an interrupt keeps what finished.
    """
    for name in args.scenarios:
        for size in args.sizes:
            for repetition in range(args.repeat):
                order = list(servers.items())
                if repetition % 2:
                    order.reverse()
                for server_name, server in order:
                    results.append(
                        _run_cell(server_name, server, SCENARIOS[name], size, settings, servers)
                    )


def _run_cell(
    name: str,
    server: ServerProcess | str,
    scenario: Scenario,
    size: int,
    settings: Settings,
    servers: dict[str, ServerProcess | str],
) -> RunResult:
    if isinstance(server, str):  # it never started: this is the error message
        return RunResult(scenario.name, size, name, error=server)
    if not server.alive():
        log(f"[{name}] server died; restarting. Last output:\n{server.log_tail()}")
        try:
            server.start()
        except ServerError as exc:
            return RunResult(scenario.name, size, name, error=str(exc).splitlines()[0])
    others = [s for s in servers.values() if isinstance(s, ServerProcess) and s is not server]
    idle_before = [s.cpu_seconds() for s in others]
    mark = server.lines_seen
    result = run(scenario, server.port, size, name, settings, server.cpu_seconds)
    idle_after = [s.cpu_seconds() for s in others]
    if result.error or result.lost:
        result.details["server_log"] = server.log_since(mark)
    if result.error is None and not server.alive():
        result.error = "server exited during the run"
    pairs = zip(idle_before, idle_after, strict=True)
    idle = [b - a for a, b in pairs if a is not None and b is not None]
    if others and len(idle) == len(others):
        # Should stay ~0: an idle server must not steal CPU from the one being measured.
        result.details["idle_server_cpu_s"] = sum(idle)
    log(_describe(result))
    return result


def _describe(r: RunResult) -> str:
    head = f"[{r.server}] {r.scenario} {r.size}B:"
    if r.error:
        return f"{head} ERROR {r.error}"
    rate = f"{r.rate:,.0f}/s" if r.rate else "n/a"
    extra = " ".join(
        f"{key}={value:.2f}" if isinstance(value, float) else f"{key}={value}"
        for key, value in r.details.items()
        if key != "publish_rate"
    )
    return (
        f"{head} {rate}  sent {r.sent:,} received {r.received:,} lost {r.lost:,} "
        f"({r.elapsed:.1f}s) {extra}"
    )


def summarize(results: list[RunResult]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """Per (scenario, size, server): median rate, worst loss, first error."""
    groups: dict[tuple[str, int, str], list[RunResult]] = {}
    for r in results:
        groups.setdefault((r.scenario, r.size, r.server), []).append(r)
    summary = {}
    for key, runs in groups.items():
        rates = [r.rate for r in runs if r.rate is not None and r.error is None]
        errors = [r.error for r in runs if r.error]
        summary[key] = {
            "rate": statistics.median(rates) if rates else None,
            "lost": max(r.lost for r in runs),
            "error": errors[0] if errors else None,
            "disturbed": any(_disturbed(r) for r in runs),
        }
    return summary


def _disturbed(result: RunResult) -> bool:
    """Whether other processes or the hypervisor took a noticeable share of the CPUs."""
    other = result.details.get("other_cores", 0.0)
    steal = result.details.get("steal_cores", 0.0)
    return bool(other > DISTURBED or steal > DISTURBED)


def _fmt_rate(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "-"
    if cell["rate"] is None:
        return "ERROR"
    return f"{cell['rate']:,.0f}" + ("~" if cell["disturbed"] else "")


def _fmt_lost(cell: dict[str, Any] | None) -> str:
    return "-" if cell is None or cell["rate"] is None else f"{cell['lost']:,}"


def render_table(results: list[RunResult], scenarios: list[str], sizes: list[int]) -> str:
    """The comparison table (rates are msgs/s, round trips/s for reqrep*)."""
    summary = summarize(results)
    header = (
        "scenario",
        "size",
        "nats-server/s",
        "pynats/s",
        "ratio",
        "lost(nats)",
        "lost(pynats)",
    )
    rows = [header]
    errors = []
    for name in scenarios:
        for size in sizes:
            ref = summary.get((name, size, "nats-server"))
            ours = summary.get((name, size, "pynats"))
            ratio = "-"
            if ref and ours and ref["rate"] and ours["rate"]:
                ratio = f"{ours['rate'] / ref['rate']:.3f}"
            rows.append(
                (
                    name,
                    str(size),
                    _fmt_rate(ref),
                    _fmt_rate(ours),
                    ratio,
                    _fmt_lost(ref),
                    _fmt_lost(ours),
                )
            )
            errors += [
                f"{name} {size}B {srv}: {c['error']}"
                for srv, c in (("nats-server", ref), ("pynats", ours))
                if c and c["error"]
            ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        "",
        "rates: messages published/s; reqrep*: round trips/s. ratio = pynats / nats-server.",
        "lost > 0: a subscriber was cut off or fell behind; that rate is not comparable.",
        f"~: disturbed run: other processes or the hypervisor (steal) took > {DISTURBED} cores.",
    ]
    lines += [f"error: {e}" for e in errors]
    return "\n".join(lines)


def metadata(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """What the JSON file records about the environment and options."""
    commands = {"nats-server": args.nats_server_cmd, "pynats": args.pynats_cmd}
    versions = {}
    for name, command in commands.items():
        try:
            versions[name] = command_version(resolve_command(command))
        except ServerError:
            versions[name] = None
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "commands": commands,
        "versions": versions,
        "settings": asdict(settings),
        "scenarios": args.scenarios,
        "sizes": args.sizes,
        "pinned": args.pin,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (1 if any run failed)."""
    args = parse_args(argv)
    settings = Settings(
        duration=args.duration,
        max_msgs=args.max_msgs,
        publishers=args.publishers,
        window=args.window,
        idle=args.idle,
        timeout=args.timeout,
        verify=args.verify,
    )
    signal.signal(signal.SIGTERM, _on_sigterm)
    commands = {"nats-server": args.nats_server_cmd, "pynats": args.pynats_cmd}
    results: list[RunResult] = []
    servers: dict[str, ServerProcess | str] = {}
    interrupted = False
    try:
        server_cpus, load_cpus = split_cpus() if args.pin else (None, None)
        for name in SERVERS:
            if args.only in (None, name):
                servers[name] = start_server(name, commands[name], server_cpus)
        if load_cpus:
            os.sched_setaffinity(0, load_cpus)  # inherited by every worker spawned from now on
            log(f"servers pinned to CPUs {server_cpus}, load generators to {load_cpus}")
        run_all(args, settings, servers, results)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping every process started; partial results follow")
    finally:
        for server in servers.values():
            if isinstance(server, ServerProcess):
                server.stop()
    print(render_table(results, args.scenarios, args.sizes))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = [
            {"scenario": key[0], "size": key[1], "server": key[2], **cell}
            for key, cell in summarize(results).items()
        ]
        data = {
            "meta": metadata(args, settings),
            "summary": summary,
            "runs": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        log(f"results written to {args.json}")
    if interrupted:
        return 130
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
