"""Benchmark workers: each publisher, subscriber, requester or responder is a process.

Theory of operation
-------------------
One Python process can drive one NATS connection at a few hundred thousand messages a
second; the server under test should be the bottleneck, so every client of a benchmark
runs in its own process (``multiprocessing``, spawn start method, so it works the same
on every platform) with its own asyncio loop and :mod:`pynats.client` connection. Using
the client library (not a raw socket) keeps authentication and TLS working against any
server.

A worker connects, subscribes if it receives, confirms with a flush, reports
``ready`` on the status queue and waits for the shared ``go`` event, so that process
start-up and connecting are never timed. It then:

* publisher: publishes its share of ``msgs``; the first 8 bytes of each payload (when
  ``size >= 8``) are the send time in ``CLOCK_MONOTONIC`` nanoseconds (system-wide on
  Linux, so comparable between processes); every ``BATCH`` messages it starts a flush
  and waits for the previous one, which bounds what is buffered to two batches and
  makes the last flush prove that the server has everything;
* subscriber: counts deliveries and, from the embedded send time, the delivery latency,
  until it has ``expect`` messages or the coordinator sets ``stop``;
* requester: sends its requests one at a time and times each round trip;
* responder: answers each request with its payload until ``stop``.

Each worker keeps its running count in one slot of a shared array (for progress bars),
samples ``(time, count)`` every ~50 ms (for throughput over time) and finally sends a
``result`` dict; any failure is sent as an ``error`` with a one-line message.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from dataclasses import dataclass
from typing import Any, Protocol

from pynats.cli.connect import ConnSpec, client_error, open_client

BATCH = 1000
SAMPLE_EVERY = 0.05
MAX_LATENCIES = 200_000
_STAMP = struct.Struct("<q")


class StatusQueue(Protocol):
    """The part of a multiprocessing queue the workers use."""

    def put(self, obj: Any) -> None: ...


class Flag(Protocol):
    """A multiprocessing Event."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Counts(Protocol):
    """A multiprocessing shared Array of integers."""

    def __setitem__(self, index: int, value: int) -> None: ...


@dataclass(frozen=True)
class Job:
    """What one worker does. Picklable: it crosses the process boundary.

    Attributes:
        role: ``pub``, ``sub``, ``req`` or ``rep``.
        index: the worker's number within its role (from 0) and its slot in ``counts``
            is ``slot``.
        slot: index into the shared counts array.
        subject: the benchmark subject.
        msgs: messages to publish or requests to send (publishers, requesters);
            deliveries to wait for (subscribers; 0: until stopped).
        size: payload size in bytes.
        queue: queue group of subscribers / responders ('' for none).
        deadline: seconds after ``go`` after which the worker gives up.
        spec: how to connect.
    """

    role: str
    index: int
    slot: int
    subject: str
    msgs: int
    size: int
    queue: str
    deadline: float
    spec: ConnSpec


def now_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds (system-wide, comparable between processes)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def run_worker(job: Job, status: StatusQueue, go: Flag, stop: Flag, counts: Counts) -> None:
    """Process entry point: run ``job`` and report on ``status``."""
    try:
        result = asyncio.run(_run(job, status, go, stop, counts))
    except BaseException as exc:  # reported, never a traceback in a child process
        error = client_error(exc, job.spec)
        text = str(error) if error is not None else f"{type(exc).__name__}: {exc}"
        status.put(("error", job.role, job.index, text))
        return
    status.put(("result", job.role, job.index, result))


async def _run(job: Job, status: StatusQueue, go: Flag, stop: Flag,
               counts: Counts) -> dict[str, Any]:
    nc = await open_client(job.spec, reconnect=False,
                           name=f"pynats bench {job.role} {job.index}")
    try:
        sub = None
        if job.role in ("sub", "rep"):
            sub = nc.subscribe(job.subject, queue=job.queue or None, pending_msgs_limit=0,
                               pending_bytes_limit=0)
        await nc.flush()
        status.put(("ready", job.role, job.index, None))
        loop = asyncio.get_running_loop()
        while not await loop.run_in_executor(None, go.wait, 0.5):
            if stop.is_set():
                return _result(job, 0, 0, 0, 0, [], [])
        if job.role == "pub":
            return await _publish(nc, job, counts)
        if job.role == "req":
            return await _request(nc, job, counts)
        assert sub is not None
        return await _receive(sub, job, stop, counts, respond=job.role == "rep")
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


def _result(job: Job, msgs: int, size: int, start: int, end: int, latencies: list[float],
            samples: list[tuple[int, int]]) -> dict[str, Any]:
    return {"role": job.role, "index": job.index, "msgs": msgs, "bytes": msgs * size,
            "start": start, "end": end, "latencies": latencies, "samples": samples}


async def _publish(nc: Any, job: Job, counts: Counts) -> dict[str, Any]:
    stamped = job.size >= _STAMP.size
    filler = b"x" * (job.size - _STAMP.size if stamped else job.size)
    pack = _STAMP.pack
    publish, subject = nc.publish, job.subject
    samples: list[tuple[int, int]] = []
    pending: asyncio.Future[None] | None = None
    start = now_ns()
    next_sample = start
    limit = start + int(job.deadline * 1e9)
    for n in range(1, job.msgs + 1):
        publish(subject, pack(now_ns()) + filler if stamped else filler)
        if n % BATCH == 0:
            if pending is not None:
                await pending
            pending = asyncio.ensure_future(nc.flush())
            counts[job.slot] = n
            t = now_ns()
            if t >= next_sample:
                samples.append((t, n))
                next_sample = t + int(SAMPLE_EVERY * 1e9)
            if t > limit:
                raise TimeoutError(f"publisher {job.index} passed its deadline")
    if pending is not None:
        await pending
    await nc.flush()
    end = now_ns()
    counts[job.slot] = job.msgs
    samples.append((end, job.msgs))
    return _result(job, job.msgs, job.size, start, end, [], samples)


async def _request(nc: Any, job: Job, counts: Counts) -> dict[str, Any]:
    payload = b"x" * job.size
    latencies: list[float] = []
    samples: list[tuple[int, int]] = []
    start = now_ns()
    next_sample = start
    for n in range(1, job.msgs + 1):
        sent = now_ns()
        await nc.request(job.subject, payload, timeout=5.0)
        done = now_ns()
        latencies.append((done - sent) / 1e9)
        if done >= next_sample:
            counts[job.slot] = n
            samples.append((done, n))
            next_sample = done + int(SAMPLE_EVERY * 1e9)
    end = now_ns()
    counts[job.slot] = job.msgs
    samples.append((end, job.msgs))
    return _result(job, job.msgs, job.size, start, end, latencies, samples)


async def _receive(sub: Any, job: Job, stop: Flag, counts: Counts,
                   respond: bool) -> dict[str, Any]:
    latencies: list[float] = []
    samples: list[tuple[int, int]] = []
    stride = max(1, job.msgs // MAX_LATENCIES) if job.msgs else 10
    unpack = _STAMP.unpack_from
    stamped = job.size >= _STAMP.size and not respond
    received = 0
    first = last = 0
    next_sample = 0
    while not job.msgs or received < job.msgs:
        try:
            msg = await sub.next_msg(timeout=0.2)
        except TimeoutError:
            counts[job.slot] = received  # a queue member's share ends between batches
            if stop.is_set():
                break
            continue
        last = now_ns()
        if respond:
            msg.respond(msg.data)
        received += 1
        if received == 1:
            first = last
        if stamped and received % stride == 0 and len(latencies) < MAX_LATENCIES:
            latencies.append((last - unpack(msg.data)[0]) / 1e9)
        if received % BATCH == 0 or (job.msgs and received == job.msgs):
            counts[job.slot] = received
            if last >= next_sample:
                samples.append((last, received))
                next_sample = last + int(SAMPLE_EVERY * 1e9)
            if stop.is_set():
                break
    counts[job.slot] = received
    if received:
        samples.append((last, received))
    return _result(job, received, job.size, first, last, latencies, samples)
