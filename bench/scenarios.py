"""Run one benchmark scenario against one already-running server.

For every run the coordinator spawns fresh worker processes (``spawn`` start method), waits
until each has connected and, for subscribers, subscribed *and* seen the PONG that follows
its SUB, and only then sets a shared ``go`` event, so process start-up is never timed.

Streaming scenarios (``pub``, ``pubsub``, ``fanout4``, ``queue4``): publishers run for
``duration`` seconds; the coordinator polls the subscribers' shared counters and declares
the run over when every expected delivery has arrived, or when nothing new has arrived for
``idle`` seconds after the publishers got their final PONG (the shortfall is reported as
lost). Throughput = messages published / (first publisher send -> last subscriber
delivery); for ``pub`` (no subscribers) the end is the publisher's final PONG.

Request/reply scenarios (``reqrep``, ``reqrep_pipe``): one requester and one responder;
throughput = completed round trips / (first request -> last reply).

Everything is bounded: each worker gives up at an absolute deadline, the coordinator raises
:class:`BenchError` at the same deadline, and every worker process is joined, terminated or
killed on the way out.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.context import SpawnProcess
from pathlib import Path
from types import TracebackType
from typing import Any

import loadgen
from loadgen import Job, now

WATCH_INTERVAL = 0.005
REAP_TIMEOUT = 3.0

CpuProbe = Callable[[], float | None]


@dataclass(frozen=True)
class Scenario:
    """A load shape."""

    name: str
    description: str
    subscribers: int = 0
    queue: bool = False
    reqrep: bool = False
    pipelined: bool = False


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("pub", "publish only, no subscribers (server ingest rate)"),
        Scenario("pubsub", "1 publisher -> 1 subscriber", subscribers=1),
        Scenario("fanout4", "1 publisher -> 4 subscribers (msgs published/s)", subscribers=4),
        Scenario("queue4", "1 publisher -> queue group of 4", subscribers=4, queue=True),
        Scenario("reqrep", "request/reply, 1 outstanding (round trips/s)", reqrep=True),
        Scenario(
            "reqrep_pipe",
            "request/reply, --window outstanding (round trips/s)",
            reqrep=True,
            pipelined=True,
        ),
    )
}


@dataclass(frozen=True)
class Settings:
    """Knobs shared by every run."""

    duration: float = 3.0
    max_msgs: int = 0
    publishers: int = 1
    window: int = 64
    idle: float = 2.0
    timeout: float = 60.0
    verify: bool = False


@dataclass
class RunResult:
    """Outcome of one scenario at one payload size against one server."""

    scenario: str
    size: int
    server: str
    rate: float | None = None
    sent: int = 0
    expected: int = 0
    received: int = 0
    lost: int = 0
    elapsed: float = 0.0
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class BenchError(RuntimeError):
    """A worker failed or the run overran its hard deadline."""


class WorkerGroup:
    """The worker processes of one run and the queue they report on."""

    def __init__(self) -> None:
        self.ctx = mp.get_context("spawn")
        self.status: Any = self.ctx.Queue()
        self.procs: list[SpawnProcess] = []
        self.results: dict[tuple[str, int], dict[str, Any]] = {}

    def spawn(self, target: Any, *args: Any) -> None:
        """Start ``target(*args, status)`` in a new daemon process."""
        proc = self.ctx.Process(target=target, args=(*args, self.status), daemon=True)
        proc.start()
        self.procs.append(proc)

    def poll(self, timeout: float) -> tuple[str, str, int, Any] | None:
        """Next status message (results are also stored); raise on a worker error."""
        try:
            msg: tuple[str, str, int, Any] = self.status.get(timeout=timeout)
        except queue.Empty:
            crashed = [p.exitcode for p in self.procs if p.exitcode not in (None, 0)]
            if crashed:
                raise BenchError(f"worker process died (exit codes {crashed})") from None
            return None
        kind, role, index, data = msg
        if kind == "error":
            raise BenchError(f"{role}[{index}]: {data}")
        if kind == "result":
            self.results[(role, index)] = data
        return msg

    def wait_ready(self, count: int, deadline: float) -> None:
        """Wait until ``count`` workers said they are connected (and subscribed)."""
        ready = 0
        while ready < count:
            if now() > deadline:
                raise BenchError(f"only {ready}/{count} workers ready before the deadline")
            msg = self.poll(0.1)
            if msg is not None and msg[0] == "ready":
                ready += 1

    def wait_results(self, role: str, count: int, deadline: float) -> list[dict[str, Any]]:
        """Wait for the results of workers ``role[0..count)``."""
        keys = [(role, i) for i in range(count)]
        while not all(k in self.results for k in keys):
            if now() > deadline:
                raise BenchError(f"hard timeout waiting for {role} results")
            self.poll(0.1)
        return [self.results[k] for k in keys]

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        deadline = now() + REAP_TIMEOUT
        for proc in self.procs:
            proc.join(max(0.0, deadline - now()))
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(1.0)
            if proc.is_alive():
                proc.kill()
                proc.join(1.0)
        self.status.close()
        self.status.cancel_join_thread()


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat, or None.

    busy = user + nice + system + irq + softirq (loopback TCP work is largely softirq time,
    which the kernel also charges to the processes that caused it); steal = time the
    hypervisor gave to other guests.
    """
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


@dataclass(frozen=True)
class _CpuMark:
    wall: float
    machine: tuple[float, float] | None
    server: float | None


class CpuWindow:
    """CPU used by the whole machine and by the server during the measured window."""

    def __init__(self, server_cpu: CpuProbe | None) -> None:
        self.server_cpu = server_cpu or (lambda: None)
        self.marks: list[_CpuMark] = []

    def mark(self) -> None:
        """Call just before the workers are told to go, and again when the run is over."""
        self.marks.append(_CpuMark(now(), machine_cpu_seconds(), self.server_cpu()))

    def report(self, result: RunResult, workers_cpu: float, units: int) -> None:
        """Add the server's CPU (total, per message) and the disturbance figures to ``result``.

        ``other_cores``: CPU used by processes that are neither the server nor our workers,
        per second of the window (accounting differences make it accurate to ~0.15 only);
        ``steal_cores``: CPU taken by the hypervisor, per second. Both should be ~0.
        """
        if len(self.marks) != 2:
            return
        first, last = self.marks
        if first.server is None or last.server is None:
            return
        server = last.server - first.server
        result.details["server_cpu_s"] = server
        if units:
            result.details["server_cpu_us_per_msg"] = server / units * 1e6
        if first.machine is None or last.machine is None:
            return
        wall = max(last.wall - first.wall, 1e-9)
        busy = last.machine[0] - first.machine[0]
        result.details["other_cores"] = max(0.0, busy - server - workers_cpu) / wall
        result.details["steal_cores"] = (last.machine[1] - first.machine[1]) / wall


def run(
    scenario: Scenario,
    port: int,
    size: int,
    server: str,
    settings: Settings,
    server_cpu: CpuProbe | None = None,
    *,
    sub_port: int | None = None,
    before_go: Callable[[], None] | None = None,
) -> RunResult:
    """Run ``scenario`` once; errors are returned in ``RunResult.error``, never raised.

    ``server_cpu`` returns the server's CPU seconds so far (for the CPU diagnostics).
    Streaming scenarios only: ``sub_port`` connects the subscribers to another server
    than the publishers (another node of a cluster), and ``before_go`` is called once
    every worker is ready, just before the publishers are released (e.g. to wait until
    the subscriptions are known on the publishers' node); it may raise BenchError.
    """
    result = RunResult(scenario.name, size, server)
    window = CpuWindow(server_cpu)
    started = now()
    try:
        if scenario.reqrep:
            _run_reqrep(scenario, port, size, settings, result, window)
        else:
            placement = _Placement(sub_port or port, before_go or (lambda: None))
            _run_stream(scenario, port, size, settings, result, window, placement)
    except BenchError as exc:
        result.error = str(exc)
    except Exception as exc:  # e.g. OSError: report it in the table, go on with the next run
        result.error = f"{type(exc).__name__}: {exc}"
    result.elapsed = now() - started
    return result


def subject_of(scenario: Scenario) -> str:
    """The subject every worker of ``scenario`` publishes / subscribes / requests on."""
    return f"bench.{scenario.name}"


def _job(scenario: Scenario, port: int, size: int, settings: Settings, window: int = 1) -> Job:
    return Job(
        port=port,
        subject=subject_of(scenario),
        size=size,
        duration=settings.duration,
        deadline=now() + settings.duration + settings.timeout,
        max_msgs=settings.max_msgs,
        queue_group="workers" if scenario.queue else "",
        window=window,
        verify=settings.verify,
    )


@dataclass(frozen=True)
class _Placement:
    """Where the subscribers connect, and what must hold before publishing starts."""

    sub_port: int
    before_go: Callable[[], None]


def _run_stream(
    scenario: Scenario,
    port: int,
    size: int,
    settings: Settings,
    result: RunResult,
    window: CpuWindow,
    placement: _Placement,
) -> None:
    job = _job(scenario, port, size, settings)
    sub_job = replace(job, port=placement.sub_port)
    nsubs, npubs = scenario.subscribers, settings.publishers
    with WorkerGroup() as group:
        stop = group.ctx.Value("b", 0, lock=False)
        counts = group.ctx.Array("q", max(nsubs, 1), lock=False)
        go = group.ctx.Event()
        try:
            for i in range(nsubs):
                group.spawn(loadgen.subscriber, sub_job, i, stop, counts)
            for i in range(npubs):
                group.spawn(loadgen.publisher, job, i, go)
            group.wait_ready(nsubs + npubs, job.deadline)
            placement.before_go()
            window.mark()
            go.set()
            _watch(group, counts, scenario, settings, job.deadline)
            window.mark()
        finally:
            stop.value = 1
        pubs = group.wait_results("pub", npubs, job.deadline)
        subs = group.wait_results("sub", nsubs, job.deadline)
    _reduce_stream(scenario, pubs, subs, result)
    window.report(result, sum(w["cpu_s"] for w in pubs + subs), result.sent)


def _watch(
    group: WorkerGroup, counts: Any, scenario: Scenario, settings: Settings, deadline: float
) -> None:
    """Return once all deliveries arrived, or nothing arrived for ``settings.idle`` s."""
    nsubs, npubs = scenario.subscribers, settings.publishers
    per_message = 1 if scenario.queue else nsubs
    expected: int | None = None
    total, last_change = 0, now()
    while True:
        group.poll(WATCH_INTERVAL)
        t = now()
        if expected is None and all(("pub", i) in group.results for i in range(npubs)):
            sent = sum(group.results[("pub", i)]["sent"] for i in range(npubs))
            expected, last_change = sent * per_message, t
        current = sum(counts[:nsubs]) if nsubs else 0
        if current != total:
            total, last_change = current, t
        if expected is not None:
            subs_gone = all(("sub", i) in group.results for i in range(nsubs))
            if total >= expected or subs_gone or t - last_change > settings.idle:
                return
        if t > deadline:
            raise BenchError(f"hard timeout: {total} of {expected or '?'} deliveries")


def _reduce_stream(
    scenario: Scenario, pubs: list[dict[str, Any]], subs: list[dict[str, Any]], result: RunResult
) -> None:
    sent = sum(p["sent"] for p in pubs)
    t_start = min(p["t_start"] for p in pubs)
    t_pong = max(p["t_pong"] for p in pubs)
    result.sent = sent
    result.details["publish_rate"] = sent / (t_pong - t_start)
    result.details["pub_busy"] = max(p["busy"] for p in pubs)
    result.details["pub_runq"] = max(p["runq"] for p in pubs)
    if not subs:
        result.rate = sent / (t_pong - t_start)
        return
    received = [s["received"] for s in subs]
    result.received = sum(received)
    result.details["sub_busy"] = max(s["busy"] for s in subs)
    result.details["sub_runq"] = max(s["runq"] for s in subs)
    if scenario.queue:
        result.expected = sent
        result.lost = max(0, sent - result.received)
        result.details["per_subscriber"] = received
    else:
        result.expected = sent * len(subs)
        result.lost = sum(max(0, sent - r) for r in received)
    t_end = max([s["t_last"] for s in subs if s["received"]], default=0.0)
    if result.lost:  # some deliveries never came: at least count until the server had read all
        t_end = max(t_end, t_pong)
    result.rate = sent / (t_end - t_start) if t_end > t_start else None
    cut = [i for i, s in enumerate(subs) if s["closed_by_server"]]
    if cut:
        result.details["subscribers_closed_by_server"] = cut


def run_request_pair(responder: Callable[..., None], requester: Callable[..., None],
                     job: Any, deadline: float, mark: Callable[[], None]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One responder and one requester process, released together; their results.

    ``mark`` is called when the requester is released and again when it has finished,
    before the responder is told to stop: that is the measured window.
    """
    with WorkerGroup() as group:
        stop = group.ctx.Value("b", 0, lock=False)
        go = group.ctx.Event()
        try:
            group.spawn(responder, job, 0, stop)
            group.spawn(requester, job, 0, go)
            group.wait_ready(2, deadline)
            mark()
            go.set()
            (req,) = group.wait_results("req", 1, deadline)
            mark()
        finally:
            stop.value = 1
        (resp,) = group.wait_results("resp", 1, deadline)
    return req, resp


def _run_reqrep(
    scenario: Scenario,
    port: int,
    size: int,
    settings: Settings,
    result: RunResult,
    window: CpuWindow,
) -> None:
    outstanding = settings.window if scenario.pipelined else 1
    job = _job(scenario, port, size, settings, outstanding)
    req, resp = run_request_pair(loadgen.responder, loadgen.requester, job, job.deadline,
                                 window.mark)
    result.sent = req["sent"]
    result.expected = req["sent"]
    result.received = req["received"]
    result.lost = req["sent"] - req["received"]
    result.details["window"] = outstanding
    result.details["answered"] = resp["answered"]
    for role, usage in (("req", req), ("resp", resp)):
        result.details[f"{role}_busy"] = usage["busy"]
        result.details[f"{role}_runq"] = usage["runq"]
    elapsed = req["t_last"] - req["t_start"]
    result.rate = req["received"] / elapsed if elapsed > 0 else None
    window.report(result, req["cpu_s"] + resp["cpu_s"], req["received"])
