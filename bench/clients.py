"""Compare the pynats asyncio client with nats-py against the same nats-server.

Usage: ``python bench/clients.py [--repeat N] [--rows ...] [--scale F] [--size B]
[--loop asyncio|uvloop] [--json FILE]``

Theory of operation
-------------------
One nats-server is started (``-a 127.0.0.1 -p -1``, ready once its log says so; see
``servers.py``) and every row is run once per client library per repetition, the
libraries alternating and the order flipping on each repetition so that drifts of the
machine hit both alike. Every run spawns fresh worker processes (``clientload.py``), one
per publisher / subscriber / requester / responder, each using the library under test for
its role; the coordinator waits until all are connected (and subscribed, with a flush)
before it sets ``go``, so connecting is never timed.

Rows (``ROWS``):

* ``pub``: one publisher, no subscriber; messages / (first publish -> flush returned);
* ``pubsub_cb``: one publisher -> one subscriber with an ``async def`` callback;
  messages / (first publish -> last delivery counted by the subscriber);
* ``pubsub_iter``: the same, the subscriber using ``async for`` over the subscription;
* ``reqrep``: one requester making one request at a time, one responder answering
  from a callback; round trips / second;
* ``reqrep64``: the same with 64 requests in flight (``--inflight``).

Rates are medians over ``--repeat`` runs. Lost messages (deliveries that never came,
requests that failed) are counted and shown; a rate with losses is marked ``!`` and is
not comparable. Every worker stops at an absolute deadline, the coordinator reaps every
process it started and stops the server in ``finally`` blocks, also on Ctrl-C.
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
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import clientload
from clientload import LIBRARIES, ClientJob
from loadgen import now
from scenarios import BenchError, WorkerGroup, machine_cpu_seconds, run_request_pair
from servers import ServerError, ServerProcess, command_version, resolve_command


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    name: str
    description: str
    count: int  # messages or requests per run, before --scale
    subscriber: str = ""  # "cb" or "iter": a publisher -> subscriber row
    requests: bool = False
    inflight: int = 1


ROWS: dict[str, Row] = {
    r.name: r
    for r in (
        Row("pub", "publish only, no subscriber (msgs/s)", 1_000_000),
        Row("pubsub_cb", "1 publisher -> 1 subscriber, callback (msgs/s)", 300_000,
            subscriber="cb"),
        Row("pubsub_iter", "1 publisher -> 1 subscriber, async for (msgs/s)", 300_000,
            subscriber="iter"),
        Row("reqrep", "request/reply, one at a time (round trips/s)", 5_000, requests=True),
        Row("reqrep64", "request/reply, 64 in flight (round trips/s)", 40_000,
            requests=True, inflight=64),
    )
}

DISTURBED = 0.2  # cores taken by other processes or the hypervisor: above, a run is flagged
TARGET_ITER_VS_CB = 0.8  # the target: async iterator within 20% of the callback


@dataclass
class Run:
    """One row run once with one library."""

    row: str
    library: str
    rate: float | None = None
    sent: int = 0
    received: int = 0
    lost: int = 0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS),
                        help="rows, space or comma separated (default: all)")
    parser.add_argument("--size", type=int, default=16, help="payload bytes (default 16)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every row's message/request count (default 1: "
                             + ", ".join(f"{r.name} {r.count:,}" for r in ROWS.values())
                             + ")")
    parser.add_argument("--inflight", type=int, default=64,
                        help="requests in flight in reqrep64 (default 64)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per cell; the table shows the median (default 1)")
    parser.add_argument("--only", choices=LIBRARIES, help="run just this library")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="event loop for both libraries (default asyncio)")
    parser.add_argument("--idle", type=float, default=2.0,
                        help="seconds without deliveries after publishing before the "
                             "missing messages count as lost (default 2)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="hard limit per run (default 120)")
    parser.add_argument("--server-cmd", default="nats-server",
                        help="command that starts the server (default: nats-server)")
    parser.add_argument("--json", type=Path, help="also write every run to this JSON file")
    args = parser.parse_args(argv)
    args.rows = [part for value in args.rows for part in value.split(",") if part]
    unknown = [r for r in args.rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    return args


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every finally, stopping what we started


def log(message: str) -> None:
    """Progress goes to stderr so stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)


# -- running --------------------------------------------------------------------------------


def job_for(row: Row, lib: str, args: argparse.Namespace, url: str) -> ClientJob:
    """The job every worker of one run shares."""
    count = max(1, round(row.count * args.scale))
    inflight = args.inflight if row.inflight > 1 else 1
    return ClientJob(library=lib, url=url, subject=f"bench.{row.name}", size=args.size,
                     count=count, deadline=now() + args.timeout, idle=args.idle,
                     inflight=inflight, loop=args.loop)


Mark = tuple[float, tuple[float, float] | None, float | None]


class Window:
    """Marks taken when the workers are told to go and when the run is over."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.marks: list[Mark] = []

    def mark(self) -> None:
        """Wall time, machine CPU (busy, steal) and the server's CPU, now."""
        self.marks.append((now(), machine_cpu_seconds(), self.server.cpu_seconds()))


def run_one(row: Row, job: ClientJob, server: ServerProcess) -> Run:
    """Run ``row`` once; errors are recorded in the result, never raised."""
    run = Run(row.name, job.library)
    window = Window(server)
    try:
        if row.requests:
            _run_requests(job, run, window)
        else:
            _run_stream(row, job, run, window)
    except BenchError as exc:
        run.error = str(exc)
    except Exception as exc:  # e.g. OSError: report it in the table, go on
        run.error = f"{type(exc).__name__}: {exc}"
    if len(window.marks) == 2:
        _cpu_details(run, *window.marks)
    if run.error is None and not server.alive():
        run.error = "server exited during the run"
    return run


def _run_stream(row: Row, job: ClientJob, run: Run, window: Window) -> None:
    with WorkerGroup() as group:
        go = group.ctx.Event()
        pub_done = group.ctx.Value("b", 0, lock=False)
        try:
            if row.subscriber:
                group.spawn(clientload.subscriber, job, row.subscriber, 0, pub_done)
            group.spawn(clientload.publisher, job, 0, go)
            group.wait_ready(2 if row.subscriber else 1, job.deadline)
            window.mark()
            go.set()
            (pub,) = group.wait_results("pub", 1, job.deadline)
        finally:
            pub_done.value = 1
        subs = group.wait_results("sub", 1, job.deadline) if row.subscriber else []
        window.mark()
    _reduce_stream(run, pub, subs[0] if subs else None)


def _reduce_stream(run: Run, pub: dict[str, Any], sub: dict[str, Any] | None) -> None:
    run.sent = pub["sent"]
    run.details["pub_cpu_s"] = pub["cpu_s"]
    run.details["publish_rate"] = pub["sent"] / (pub["t_end"] - pub["t_start"])
    _async_errors(run, "pub", pub)
    if sub is None:
        run.received = run.sent
        run.rate = run.details["publish_rate"]
        return
    run.received = sub["received"]
    run.lost = max(0, run.sent - run.received)
    run.details["sub_cpu_s"] = sub["cpu_s"]
    _async_errors(run, "sub", sub)
    elapsed = sub["t_last"] - pub["t_start"]
    run.rate = run.sent / elapsed if run.received and elapsed > 0 else None


def _run_requests(job: ClientJob, run: Run, window: Window) -> None:
    req, resp = run_request_pair(clientload.responder, clientload.requester, job,
                                 job.deadline, window.mark)
    run.sent, run.received = req["sent"], req["received"]
    run.lost = run.sent - run.received
    run.details["req_cpu_s"] = req["cpu_s"]
    run.details["resp_cpu_s"] = resp["cpu_s"]
    run.details["answered"] = resp["answered"]
    if req["first_failure"]:
        run.details["first_failure"] = req["first_failure"]
    _async_errors(run, "req", req)
    _async_errors(run, "resp", resp)
    elapsed = req["t_end"] - req["t_start"]
    run.rate = run.received / elapsed if elapsed > 0 else None


def _async_errors(run: Run, role: str, result: dict[str, Any]) -> None:
    if result["async_errors"]:
        run.details[f"{role}_async_errors"] = result["async_errors"]
        run.details[f"{role}_first_async_error"] = result["first_async_error"]


def _cpu_details(run: Run, before: Mark, after: Mark) -> None:
    """Machine-wide disturbance and the server's CPU over the measured window.

    ``other_cores``: busy time of the machine not spent by the server or the measured
    workers, per second (accurate to ~0.15: the workers' CPU is measured over slightly
    different spans); ``steal_cores``: time the hypervisor gave to other guests.
    """
    wall = max(after[0] - before[0], 1e-9)
    if before[2] is not None and after[2] is not None:
        run.details["server_cpu_s"] = after[2] - before[2]
    if before[1] is not None and after[1] is not None:
        busy = after[1][0] - before[1][0]
        workers = sum(v for k, v in run.details.items() if k.endswith("_cpu_s")
                      and k != "server_cpu_s")
        server = run.details.get("server_cpu_s", 0.0)
        run.details["other_cores"] = max(0.0, busy - server - workers) / wall
        run.details["steal_cores"] = (after[1][1] - before[1][1]) / wall


def describe(run: Run) -> str:
    """One progress line."""
    head = f"[{run.library}] {run.row}:"
    if run.error:
        return f"{head} ERROR {run.error}"
    rate = f"{run.rate:,.0f}/s" if run.rate else "n/a"
    extra = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in run.details.items() if k != "publish_rate")
    return f"{head} {rate}  sent {run.sent:,} received {run.received:,} lost {run.lost:,} {extra}"


def run_all(args: argparse.Namespace, server: ServerProcess, runs: list[Run]) -> None:
    """Every row x repetition x library, alternating libraries; appends to ``runs``."""
    libs = [lib for lib in LIBRARIES if args.only in (None, lib)]
    for name in args.rows:
        row = ROWS[name]
        for repetition in range(args.repeat):
            order = libs if repetition % 2 == 0 else libs[::-1]
            for lib in order:
                if not server.alive():
                    log(f"server died; restarting. Last output:\n{server.log_tail()}")
                    server.start()
                run = run_one(row, job_for(row, lib, args, f"nats://127.0.0.1:{server.port}"),
                              server)
                log(describe(run))
                runs.append(run)


# -- reporting (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """The median of one row x library."""

    rate: float | None
    lost: int
    runs: int
    error: str | None
    disturbed: bool


def summarize(runs: list[Run]) -> dict[tuple[str, str], Cell]:
    """Per (row, library): median rate of the runs without error, worst loss, first error."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.row, run.library), []).append(run)
    cells = {}
    for key, group in groups.items():
        rates = [r.rate for r in group if r.rate is not None and r.error is None]
        errors = [r.error for r in group if r.error]
        cells[key] = Cell(
            rate=statistics.median(rates) if rates else None,
            lost=max(r.lost for r in group),
            runs=len(group),
            error=errors[0] if errors else None,
            disturbed=any(_disturbed(r) for r in group),
        )
    return cells


def _disturbed(run: Run) -> bool:
    other = run.details.get("other_cores", 0.0)
    steal = run.details.get("steal_cores", 0.0)
    return bool(other > DISTURBED or steal > DISTURBED)


def ratio(ours: Cell | None, theirs: Cell | None) -> float | None:
    """pynats / nats-py, when both have a rate."""
    if ours is None or theirs is None or not ours.rate or not theirs.rate:
        return None
    return ours.rate / theirs.rate


def _fmt_rate(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    if cell.rate is None:
        return "ERROR"
    marks = ("!" if cell.lost else "") + ("~" if cell.disturbed else "")
    return f"{cell.rate:,.0f}{marks}"


def _fmt_lost(cell: Cell | None) -> str:
    return "-" if cell is None else f"{cell.lost:,}"


def targets(cells: dict[tuple[str, str], Cell], rows: list[str]) -> list[str]:
    """The issue's targets, each with its verdict."""
    lines = []
    ratios = {row: ratio(cells.get((row, "pynats")), cells.get((row, "nats-py")))
              for row in rows}
    known = {row: r for row, r in ratios.items() if r is not None}
    if known:
        behind = [row for row, r in known.items() if r <= 1.0]
        verdict = "met" if not behind and len(known) == len(rows) else (
            f"NOT met ({', '.join(behind)})" if behind else "incomplete")
        lines.append(f"target: pynats ahead of nats-py on every row: {verdict}")
    for lib in LIBRARIES:
        cb, it = cells.get(("pubsub_cb", lib)), cells.get(("pubsub_iter", lib))
        if cb and it and cb.rate and it.rate:
            share = it.rate / cb.rate
            note = ""
            if lib == "pynats":
                note = " (target >= 0.80: " + ("met)" if share >= TARGET_ITER_VS_CB else
                                               "NOT met)")
            lines.append(f"{lib}: async iterator / callback = {share:.2f}{note}")
    return lines


def render_table(runs: list[Run], rows: list[str]) -> str:
    """The comparison table: rates per library, their ratio, the losses."""
    cells = summarize(runs)
    header = ("row", "pynats/s", "nats-py/s", "ratio", "lost(pynats)", "lost(nats-py)")
    table = [header]
    errors = []
    for row in rows:
        ours, theirs = cells.get((row, "pynats")), cells.get((row, "nats-py"))
        r = ratio(ours, theirs)
        table.append((row, _fmt_rate(ours), _fmt_rate(theirs),
                      "-" if r is None else f"{r:.2f}", _fmt_lost(ours), _fmt_lost(theirs)))
        errors += [f"{row} {lib}: {c.error}" for lib, c in (("pynats", ours), ("nats-py", theirs))
                   if c and c.error]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
             for line in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [
        "",
        "rates: messages/s (pub*), round trips/s (reqrep*); ratio = pynats / nats-py.",
        "!: messages or requests were lost in a run (that rate is not comparable);",
        f"~: disturbed run (other processes or steal took > {DISTURBED} cores).",
        *targets(cells, rows),
        *(f"error: {e}" for e in errors),
    ]
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------


def metadata(args: argparse.Namespace, load_start: tuple[float, float, float]
             ) -> dict[str, Any]:
    """What the JSON file records about the environment and options."""
    from importlib.metadata import version

    try:
        server_version = command_version(resolve_command(args.server_cmd))
    except ServerError:
        server_version = None
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "server": {"command": args.server_cmd, "version": server_version},
        "libraries": {"pynats": version("pynats"), "nats-py": version("nats-py")},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (1 if any run failed, 130 if interrupted)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    runs: list[Run] = []
    interrupted = False
    server: ServerProcess | None = None
    load_start = os.getloadavg()
    log(f"load average at start: {' '.join(f'{x:.2f}' for x in load_start)}")
    try:
        server = ServerProcess("server", resolve_command(args.server_cmd)).start()
        log(f"[server] {' '.join(server.argv)} -> port {server.port}")
        run_all(args, server, runs)
    except KeyboardInterrupt:
        interrupted = True
        log("interrupted: stopping every process started; partial results follow")
    except ServerError as exc:
        log(f"server: {exc}")
        return 1
    finally:
        if server is not None:
            server.stop()
    log(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(render_table(runs, args.rows))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = [{"row": k[0], "library": k[1], **asdict(c)}
                   for k, c in summarize(runs).items()]
        data = {"meta": metadata(args, load_start), "summary": summary,
                "runs": [asdict(r) for r in runs]}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        log(f"results written to {args.json}")
    if interrupted:
        return 130
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
