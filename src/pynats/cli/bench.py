"""``pynats bench``: publish/subscribe and request/reply benchmarks, and ``--compare``.

Theory of operation
-------------------
The coordinator (this module, in the ``pynats`` process) never sends a message itself.
It checks once that it can connect (so a server that is down or refuses the
credentials is one clean error), then starts one process per publisher and subscriber
(:mod:`~pynats.cli.bench_workers`), all at once, and waits until every one has reported
``ready`` (connected, subscribed, flushed) before it sets the shared ``go`` event. While
they run it redraws progress bars from the workers' shared counters (only on a
terminal). The run ends when every publisher has finished and every subscriber has its
messages; if deliveries stop arriving for ``IDLE`` seconds after the publishers are done
(a slow consumer cut off, a queue group's total reached) it sets ``stop`` and counts
the shortfall as lost. Every process it started is joined, then terminated, in a
``finally`` block, also on Ctrl-C.

``--request`` turns publishers into requesters (one request in flight each, every round
trip timed) and subscribers into responders in one queue group. Results become a
:class:`~pynats.cli.bench_stats.BenchReport`, printed in natscli's words (or as JSON),
optionally written as CSV and plotted (:mod:`~pynats.cli.bench_plot`).
``--compare`` is :mod:`~pynats.cli.bench_compare`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import queue
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from pynats.cli.bench_stats import (
    BenchReport,
    ClientResult,
    Group,
    banner,
    format_report,
    write_csv,
)
from pynats.cli.bench_workers import Job, run_worker
from pynats.cli.connect import ConnSpec, open_client, spec_from_args
from pynats.cli.output import CliError, Progress, parse_size, print_json

IDLE = 3.0
READY_TIMEOUT = 60.0
REPLY_QUEUE = "pynats-bench-responders"


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run.

    Attributes:
        spec: how the workers connect.
        subject: the subject.
        pubs: publishers (requesters with ``request``).
        subs: subscribers (responders with ``request``).
        msgs: messages (requests) in total, shared among publishers.
        size: payload bytes.
        queue: queue group of the subscribers ('' for none).
        request: request/reply mode.
        deadline: seconds after which a run is abandoned.
        progress: draw progress bars (None: when stderr is a terminal).
    """

    spec: ConnSpec
    subject: str = "bench"
    pubs: int = 1
    subs: int = 0
    msgs: int = 100_000
    size: int = 128
    queue: str = ""
    request: bool = False
    deadline: float = 300.0
    progress: bool | None = None
    title: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.request:
            name = "request/reply"
        elif self.pubs and self.subs:
            name = "pub/sub"
        else:
            name = "publish" if self.pubs else "subscribe"
        object.__setattr__(self, "title", name)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``bench``."""
    parser = commands.add_parser(
        "bench", parents=[common], help="benchmark publish/subscribe or request/reply",
        description="Benchmark a NATS server with --pub publishers and --sub subscribers "
                    "(one process each), or compare pynats-server with nats-server "
                    "(--compare).")
    parser.add_argument("subject", metavar="SUBJECT", nargs="?", default="bench",
                        help="subject to use (default 'bench')")
    parser.add_argument("--pub", type=int, default=1, help="publishers (default 1)")
    parser.add_argument("--sub", type=int, default=0, help="subscribers (default 0)")
    parser.add_argument("--msgs", type=int, default=100_000,
                        help="messages to publish in total (default 100,000)")
    parser.add_argument("--size", type=parse_size, default=128,
                        help="message size, units accepted: 128, 1K, 1MB (default 128)")
    parser.add_argument("--queue", nargs="?", const="pynats-bench", default="",
                        metavar="GROUP", help="subscribers join a queue group")
    parser.add_argument("--request", action="store_true",
                        help="request/reply: publishers request, subscribers reply")
    parser.add_argument("--csv", metavar="FILE", help="write per-client results as CSV")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="plot throughput over time and the latency histogram")
    parser.add_argument("--plot-size", default="1200x800", metavar="WxH",
                        help="size of the plot in pixels (default 1200x800)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        default=None, help="no progress bars")
    parser.add_argument("--deadline", type=float, default=300.0, metavar="SECONDS",
                        help="abandon a run after this long (default 300)")
    parser.add_argument("--compare", action="store_true",
                        help="start pynats-server and nats-server and compare them")
    parser.add_argument("--scenarios", default="",
                        help="with --compare: comma-separated subset of the scenarios")
    parser.set_defaults(func=cmd_bench)


def plot_size(text: str) -> tuple[int, int]:
    """``WxH`` in pixels."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit() or \
            not (100 <= int(width) <= 10000 and 100 <= int(height) <= 10000):
        raise CliError(f"invalid --plot-size {text!r}: use WxH in pixels, e.g. 1200x800")
    return int(width), int(height)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run ``bench``."""
    if args.compare:
        from pynats.cli.bench_compare import run_compare
        return run_compare(args)
    size = plot_size(args.plot_size) if args.plot else None
    if args.plot:
        from pynats.cli.bench_plot import require_matplotlib
        require_matplotlib()
    config = BenchConfig(spec=spec_from_args(args), subject=args.subject, pubs=args.pub,
                         subs=args.sub, msgs=args.msgs, size=args.size, queue=args.queue,
                         request=args.request, deadline=args.deadline,
                         progress=args.progress)
    check_config(config)
    preflight(config.spec)
    print(banner(config.title, config.subject, config.msgs, config.size, config.pubs,
                 config.subs, config.queue), file=sys.stderr, flush=True)
    report = run_bench(config)
    if args.json:
        print_json(report.to_json())
    else:
        print(format_report(report), flush=True)
    if args.csv:
        write_csv(args.csv, report, run_id=f"pynats-{os.getpid()}")
        print(f"Wrote CSV to {args.csv}", file=sys.stderr)
    if args.plot and size is not None:
        from pynats.cli.bench_plot import plot_report
        plot_report(report, args.plot, *size)
        print(f"Wrote plot to {args.plot}", file=sys.stderr)
    return 1 if report.errors else 0


def check_config(config: BenchConfig) -> None:
    """Reject impossible runs before starting anything.

    Raises:
        CliError: a count or size out of range.
    """
    if config.pubs < 1 and not (config.subs and not config.request):
        raise CliError("--pub must be at least 1")
    if config.pubs < 0 or config.subs < 0:
        raise CliError("--pub and --sub must not be negative")
    if config.msgs < 1:
        raise CliError("--msgs must be at least 1")
    if config.request and config.subs < 1:
        raise CliError("--request needs --sub 1 or more (the responders)")
    if config.pubs > 256 or config.subs > 256:
        raise CliError("at most 256 publishers and 256 subscribers (one process each)")


def preflight(spec: ConnSpec) -> None:
    """Connect once, so a server that is down or refuses us is one clean error."""
    async def check() -> None:
        nc = await open_client(spec, reconnect=False)
        await nc.close()

    asyncio.run(check())


def _jobs(config: BenchConfig) -> list[Job]:
    jobs: list[Job] = []
    share, extra = divmod(config.msgs, max(1, config.pubs))
    sub_role, pub_role = ("rep", "req") if config.request else ("sub", "pub")
    queue_group = REPLY_QUEUE if config.request else config.queue
    expect = 0 if config.request or config.queue else config.msgs
    for i in range(config.subs):
        jobs.append(Job(sub_role, i, len(jobs), config.subject, expect, config.size,
                        queue_group, config.deadline, config.spec))
    for i in range(config.pubs):
        jobs.append(Job(pub_role, i, len(jobs), config.subject, share + (i < extra),
                        config.size, "", config.deadline, config.spec))
    return jobs


def run_bench(config: BenchConfig) -> BenchReport:
    """Run one benchmark and return what it measured.

    Raises:
        CliError: a worker failed to start or connect.
    """
    ctx = multiprocessing.get_context("spawn")
    jobs = _jobs(config)
    status = ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    counts = ctx.Array("q", len(jobs), lock=False)
    procs = [ctx.Process(target=run_worker, args=(job, status, go, stop, counts),
                         daemon=True) for job in jobs]
    try:
        for proc in procs:
            proc.start()
        return _coordinate(config, jobs, procs, status, go, stop, counts)
    finally:
        stop.set()
        _reap(procs)
        status.close()


def _reap(procs: list[Any]) -> None:
    deadline = time.monotonic() + 5
    for proc in procs:
        proc.join(max(0.1, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(2)
        if proc.is_alive():
            proc.kill()
            proc.join(1)


def _coordinate(config: BenchConfig, jobs: list[Job], procs: list[Any], status: Any,
                go: Any, stop: Any, counts: Any) -> BenchReport:
    pubs = [j for j in jobs if j.role in ("pub", "req")]
    subs = [j for j in jobs if j.role in ("sub", "rep")]
    results: dict[tuple[str, int], dict[str, Any]] = {}
    errors: list[str] = []
    ready = 0
    limit = time.monotonic() + READY_TIMEOUT
    while ready < len(jobs):
        kind, role, index, data = _next(status, limit, procs)
        if kind == "ready":
            ready += 1
        elif kind == "error":
            raise CliError(f"{_name(role, index)}: {data}")
    go.set()
    labels, totals, slots = _bars(config, pubs, subs)
    progress = Progress(labels, totals, enabled=config.progress)
    deadline = time.monotonic() + config.deadline
    last_total, last_change = -1, time.monotonic()
    while True:
        with contextlib.suppress(queue.Empty):
            kind, role, index, data = status.get(timeout=0.05)
            if kind == "result":
                results[(role, index)] = data
            elif kind == "error":
                errors.append(f"{_name(role, index)}: {data}")
                stop.set()
        progress.update([sum(counts[s] for s in group) for group in slots])
        pubs_done = all((j.role, j.index) in results for j in pubs)
        subs_done = all((j.role, j.index) in results for j in subs)
        total = sum(counts[:])
        now = time.monotonic()
        if total != last_total:
            last_total, last_change = total, now
        if errors or (pubs_done and subs_done):
            break
        if pubs_done and (config.request or (config.queue and
                          sum(counts[j.slot] for j in subs) >= config.msgs)):
            stop.set()
        elif pubs_done and now - last_change > IDLE:
            stop.set()  # deliveries stopped: whatever is missing is lost
        if now > deadline:
            errors.append(f"the run did not finish within {config.deadline:g}s")
            break
        if not any(p.is_alive() for p in procs) and status.empty():
            missing = [(j.role, j.index) for j in jobs if (j.role, j.index) not in results]
            if missing:
                errors.append(f"{_name(*missing[0])} exited without a result")
            break
    progress.close([sum(counts[s] for s in group) for group in slots])
    stop.set()
    _drain(status, results, errors, jobs)
    return _report(config, results, errors)


def _drain(status: Any, results: dict[tuple[str, int], dict[str, Any]], errors: list[str],
           jobs: list[Job]) -> None:
    limit = time.monotonic() + 5
    while any((j.role, j.index) not in results for j in jobs) and time.monotonic() < limit:
        try:
            kind, role, index, data = status.get(timeout=0.1)
        except queue.Empty:
            continue
        if kind == "result":
            results[(role, index)] = data
        elif kind == "error":
            errors.append(f"{_name(role, index)}: {data}")


def _next(status: Any, limit: float, procs: list[Any]) -> tuple[str, str, int, Any]:
    while True:
        try:
            item: tuple[str, str, int, Any] = status.get(timeout=0.1)
            return item
        except queue.Empty:
            pass
        if time.monotonic() > limit:
            raise CliError(f"benchmark workers not ready within {READY_TIMEOUT:g}s")
        if not all(p.is_alive() for p in procs) and status.empty():
            raise CliError("a benchmark worker exited before it was ready")


def _bars(config: BenchConfig, pubs: list[Job],
          subs: list[Job]) -> tuple[list[str], list[int], list[list[int]]]:
    verb = "Requesting" if config.request else "Publishing"
    labels, totals, slots = [verb], [config.msgs], [[j.slot for j in pubs]]
    if subs and not config.request:
        each = config.msgs if not config.queue else None
        if each is None:
            labels.append("Receiving")
            totals.append(config.msgs)
            slots.append([j.slot for j in subs])
        else:
            for j in subs:
                labels.append(f"Subscriber {j.index + 1}")
                totals.append(each)
                slots.append([j.slot])
    return labels, totals, slots


def _name(role: str, index: int) -> str:
    names = {"pub": "publisher", "sub": "subscriber", "req": "requester", "rep": "responder"}
    return f"{names.get(role, role)} {index + 1}"


def _report(config: BenchConfig, results: dict[tuple[str, int], dict[str, Any]],
            errors: list[str]) -> BenchReport:
    clients = [ClientResult.from_dict(r) for r in results.values()]
    clients.sort(key=lambda c: (c.role, c.index))
    pubs = [c for c in clients if c.role in ("pub", "req")]
    subs = [c for c in clients if c.role in ("sub", "rep")]
    lost = 0
    if not config.request and subs and not errors:
        expected = config.msgs * (1 if config.queue else config.subs)
        lost = max(0, expected - sum(c.msgs for c in subs))
    pub_name, sub_name = ("Req", "Rep") if config.request else ("Pub", "Sub")
    return BenchReport(config.title, config.subject, config.msgs, config.size,
                       Group(pub_name, pubs), Group(sub_name, subs), config.request,
                       lost, errors)
