"""Client-library workers for ``clients.py``: each runs in its own process on one event loop.

Theory of operation
-------------------
Every worker plays one role with one client library, both named in its :class:`ClientJob`:

* :func:`publisher` connects, says ready, waits for the coordinator's ``go``, then
  publishes ``count`` messages in a plain loop and awaits ``flush()``: the flush's PONG
  proves the server has read every message. ``t_start`` is taken just before the first
  publish, ``t_end`` after the flush.
* :func:`subscriber` subscribes with an ``async def`` callback (``mode="cb"``) or
  consumes the subscription as an async iterator (``mode="iter"``), flushes so the
  server has the ``SUB``, says ready, and counts messages until all ``count`` arrived
  (``t_last`` is then taken in the consumer itself), or the publisher is done and
  nothing arrived for ``idle`` seconds (the shortfall is reported as lost), or the
  deadline passed.
* :func:`responder` answers every request with its own payload, from a callback,
  until the coordinator sets ``stop``.
* :func:`requester` makes a few warm-up requests after ``go`` (each library creates its
  reply inbox on the first request), then ``count`` timed requests: one at a time, or
  from ``inflight`` coroutines at once. A request that fails (timeout, no responders) is
  counted as lost, never retried.

The two libraries differ in small ways (``publish`` is a coroutine in nats-py and a plain
method in pynats, the async iterator is ``sub.messages`` in nats-py and the subscription
itself in pynats), so the hot loops are written once per library in :class:`Pynats` and
:class:`NatsPy`; everything else is shared. User code is the same for both: ``async def``
callbacks (nats-py requires them), default connect options, and both subscriptions given
the same pending limits (room for every message of a run, so neither drops any).

Bounded: every worker runs under ``asyncio.timeout`` until the job's absolute deadline and
reports ``("result" | "error", role, index, data)`` on the status queue; the coordinator
joins, terminates or kills every process it started. Timestamps are ``CLOCK_MONOTONIC``,
comparable across processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadgen import SharedInt, now

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    #: The queue workers report on: ``(kind, role, index, data)``.
    Status = Queue[tuple[str, str, int, Any]]

POLL = 0.05  # how often a waiting worker looks at the shared flags and the deadline
REQUEST_TIMEOUT = 5.0
WARMUP_REQUESTS = 10
LIBRARIES = ("pynats", "nats-py")

MsgHandler = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class ClientJob:
    """What one worker does; ``count`` is messages (or requests) to send or expect."""

    library: str
    url: str
    subject: str
    size: int
    count: int
    deadline: float  # absolute CLOCK_MONOTONIC time after which the worker gives up
    idle: float = 2.0
    inflight: int = 1
    loop: str = "asyncio"


class Pynats:
    """pynats.client: the calls the workers make."""

    def __init__(self) -> None:
        from pynats.client import Callbacks, ReconnectOptions, connect
        from pynats.errors import ClientError

        self._connect = connect
        self._callbacks = Callbacks
        self._reconnect = ReconnectOptions
        #: What a failed request raises (timeout, no responders, ...).
        self.request_errors: tuple[type[BaseException], ...] = (ClientError,)

    async def connect(self, url: str, on_error: Callable[[BaseException], Awaitable[None]]
                      ) -> Any:
        """A connected client reporting asynchronous errors to ``on_error``."""
        return await self._connect(url, callbacks=self._callbacks(error=on_error),
                                   reconnect=self._reconnect(enabled=False))

    async def subscribe(self, nc: Any, subject: str, cb: MsgHandler | None, limit: int) -> Any:
        """A subscription (with ``cb``, or to iterate), with room for ``limit`` messages."""
        return nc.subscribe(subject, cb=cb, pending_msgs_limit=limit,
                            pending_bytes_limit=limit * 1024)

    def messages(self, sub: Any) -> AsyncIterator[Any]:
        """The subscription's async iterator."""
        iterator: AsyncIterator[Any] = sub
        return iterator

    async def publish_many(self, nc: Any, subject: str, payload: bytes, count: int) -> None:
        """``count`` publishes in a plain loop (``publish`` only queues bytes)."""
        publish = nc.publish
        for _ in range(count):
            publish(subject, payload)

    def echo(self) -> MsgHandler:
        """A responder callback answering with the request's payload."""
        async def respond(msg: Any) -> None:
            msg.respond(msg.data)
        return respond


class NatsPy:
    """nats-py: the calls the workers make."""

    def __init__(self) -> None:
        import nats
        from nats.errors import Error

        self._nats = nats
        #: What a failed request raises (timeout, no responders, ...).
        self.request_errors: tuple[type[BaseException], ...] = (Error, asyncio.TimeoutError)

    async def connect(self, url: str, on_error: Callable[[BaseException], Awaitable[None]]
                      ) -> Any:
        """A connected client reporting asynchronous errors to ``on_error``."""
        return await self._nats.connect(url, error_cb=on_error, allow_reconnect=False)

    async def subscribe(self, nc: Any, subject: str, cb: MsgHandler | None, limit: int) -> Any:
        """A subscription (with ``cb``, or to iterate), with room for ``limit`` messages."""
        return await nc.subscribe(subject, cb=cb, pending_msgs_limit=limit,
                                  pending_bytes_limit=limit * 1024)

    def messages(self, sub: Any) -> AsyncIterator[Any]:
        """The subscription's async iterator."""
        iterator: AsyncIterator[Any] = sub.messages
        return iterator

    async def publish_many(self, nc: Any, subject: str, payload: bytes, count: int) -> None:
        """``count`` publishes in a plain loop (``publish`` is a coroutine)."""
        publish = nc.publish
        for _ in range(count):
            await publish(subject, payload)

    def echo(self) -> MsgHandler:
        """A responder callback answering with the request's payload."""
        async def respond(msg: Any) -> None:
            await msg.respond(msg.data)
        return respond


Library = Pynats | NatsPy


def library(name: str) -> Library:
    """The adapter for a library name in :data:`LIBRARIES`."""
    if name == "pynats":
        return Pynats()
    if name == "nats-py":
        return NatsPy()
    raise ValueError(f"unknown client library {name!r}")


class Errors:
    """Counts the asynchronous errors a client reports (slow consumer, ...)."""

    def __init__(self) -> None:
        self.count = 0
        self.first: str | None = None

    def callback(self) -> Callable[[BaseException], Awaitable[None]]:
        """The error callback: a coroutine function, as nats-py requires."""
        async def on_error(exc: BaseException) -> None:
            self.count += 1
            if self.first is None:
                self.first = f"{type(exc).__name__}: {exc}"
        return on_error

    def report(self) -> dict[str, Any]:
        """The counts, for a worker's result."""
        return {"async_errors": self.count, "first_async_error": self.first}


# -- process entry points -------------------------------------------------------------------


def publisher(job: ClientJob, index: int, go: Any, status: Status) -> None:
    """Publish ``job.count`` messages once ``go`` is set."""
    _run_worker("pub", index, status, job, _publish(job, index, go, status))


def subscriber(job: ClientJob, mode: str, index: int, pub_done: SharedInt,
               status: Status) -> None:
    """Count deliveries through a callback (``mode="cb"``) or the async iterator."""
    _run_worker("sub", index, status, job, _subscribe(job, mode, index, pub_done, status))


def responder(job: ClientJob, index: int, stop: SharedInt, status: Status) -> None:
    """Answer requests until ``stop`` is set."""
    _run_worker("resp", index, status, job, _respond(job, index, stop, status))


def requester(job: ClientJob, index: int, go: Any, status: Status) -> None:
    """Make ``job.count`` requests, ``job.inflight`` at a time, once ``go`` is set."""
    _run_worker("req", index, status, job, _request(job, index, go, status))


def _run_worker(role: str, index: int, status: Status, job: ClientJob,
                main: Awaitable[dict[str, Any]]) -> None:
    """Run ``main`` on a fresh loop until the deadline; report its result or its error."""
    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(job.deadline - now()):
            return await main

    try:
        if job.loop == "uvloop":
            import uvloop

            result = uvloop.run(bounded())
        else:
            result = asyncio.run(bounded())
    except TimeoutError:
        status.put(("error", role, index, "hard deadline passed"))
    except BaseException as exc:  # report anything; the coordinator decides
        status.put(("error", role, index, f"{type(exc).__name__}: {exc}"))
    else:
        status.put(("result", role, index, result))


# -- roles ----------------------------------------------------------------------------------


async def _wait_flag(flag: Callable[[], bool]) -> None:
    """Wait until ``flag()`` (a multiprocessing flag) is true, without blocking the loop."""
    while not flag():
        await asyncio.sleep(POLL)


async def _publish(job: ClientJob, index: int, go: Any, status: Status) -> dict[str, Any]:
    lib = library(job.library)
    errors = Errors()
    nc = await lib.connect(job.url, errors.callback())
    try:
        await nc.flush()
        status.put(("ready", "pub", index, None))
        await _wait_flag(go.is_set)
        payload = b"x" * job.size
        cpu0, t_start = time.process_time(), now()
        await lib.publish_many(nc, job.subject, payload, job.count)
        await nc.flush(timeout=max(1.0, job.deadline - now()))
        t_end, cpu = now(), time.process_time() - cpu0
    finally:
        await nc.close()
    return {"sent": job.count, "t_start": t_start, "t_end": t_end, "cpu_s": cpu,
            **errors.report()}


@dataclass
class _Count:
    """Deliveries so far; ``t_last`` is set when the last expected one arrives."""

    target: int
    received: int = 0
    t_last: float = 0.0


async def _subscribe(job: ClientJob, mode: str, index: int, pub_done: SharedInt,
                     status: Status) -> dict[str, Any]:
    lib = library(job.library)
    errors = Errors()
    count = _Count(job.count)
    done = asyncio.Event()
    nc = await lib.connect(job.url, errors.callback())
    consumer: asyncio.Task[None] | None = None
    try:
        if mode == "cb":
            await lib.subscribe(nc, job.subject, _counting_callback(count, done), job.count)
        else:
            sub = await lib.subscribe(nc, job.subject, None, job.count)
            consumer = asyncio.create_task(_iterate(lib.messages(sub), count, done))
        await nc.flush()
        status.put(("ready", "sub", index, None))
        cpu0 = time.process_time()
        t_progress = await _watch(count, done, pub_done, job.idle)
        cpu = time.process_time() - cpu0
    finally:
        if consumer is not None:
            consumer.cancel()
        await nc.close()
    t_last = count.t_last if count.received == count.target else t_progress
    return {"received": count.received, "t_last": t_last, "cpu_s": cpu, **errors.report()}


def _counting_callback(count: _Count, done: asyncio.Event) -> MsgHandler:
    async def on_msg(msg: Any) -> None:
        count.received += 1
        if count.received == count.target:
            count.t_last = now()
            done.set()
    return on_msg


async def _iterate(messages: AsyncIterator[Any], count: _Count, done: asyncio.Event) -> None:
    async for _msg in messages:
        count.received += 1
        if count.received == count.target:
            count.t_last = now()
            done.set()
            return


async def _watch(count: _Count, done: asyncio.Event, pub_done: SharedInt,
                 idle: float) -> float:
    """Until every message arrived, or none for ``idle`` s after the publisher finished.

    Returns when the count last changed (the end of the run if messages were lost).
    """
    seen, t_progress = 0, now()
    while not done.is_set():
        try:
            async with asyncio.timeout(POLL):
                await done.wait()
        except TimeoutError:
            pass
        t = now()
        if count.received != seen:
            seen, t_progress = count.received, t
        elif pub_done.value and t - t_progress > idle:
            break
    return t_progress


async def _respond(job: ClientJob, index: int, stop: SharedInt,
                   status: Status) -> dict[str, Any]:
    lib = library(job.library)
    errors = Errors()
    nc = await lib.connect(job.url, errors.callback())
    answered = 0
    echo = lib.echo()

    async def on_request(msg: Any) -> None:
        nonlocal answered
        answered += 1
        await echo(msg)

    try:
        await lib.subscribe(nc, job.subject, on_request, 1 << 20)
        await nc.flush()
        status.put(("ready", "resp", index, None))
        cpu0 = time.process_time()
        await _wait_flag(lambda: bool(stop.value))
        cpu = time.process_time() - cpu0
    finally:
        await nc.close()
    return {"answered": answered, "cpu_s": cpu, **errors.report()}


async def _request(job: ClientJob, index: int, go: Any, status: Status) -> dict[str, Any]:
    lib = library(job.library)
    errors = Errors()
    nc = await lib.connect(job.url, errors.callback())
    payload = b"x" * job.size
    failures: list[str] = []
    remaining = job.count

    async def one_at_a_time() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                await nc.request(job.subject, payload, timeout=REQUEST_TIMEOUT)
            except lib.request_errors as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    try:
        await nc.flush()
        status.put(("ready", "req", index, None))
        await _wait_flag(go.is_set)
        for _ in range(WARMUP_REQUESTS):
            await nc.request(job.subject, payload, timeout=REQUEST_TIMEOUT)
        cpu0, t_start = time.process_time(), now()
        await asyncio.gather(*(one_at_a_time() for _ in range(job.inflight)))
        t_end, cpu = now(), time.process_time() - cpu0
    finally:
        await nc.close()
    return {"sent": job.count, "received": job.count - len(failures), "t_start": t_start,
            "t_end": t_end, "cpu_s": cpu, "first_failure": failures[0] if failures else None,
            **errors.report()}
