"""Raw-socket NATS load-generator workers; each one runs in its own process.

The workers speak the NATS text protocol directly over a blocking TCP socket (no client
library) so that they cost as little CPU as possible and the server stays the bottleneck:

* :func:`publisher` pre-builds one ~256 KiB chunk of identical ``PUB`` commands and
  ``sendall``\\ s it over and over until its time budget (or message cap) is spent, then
  sends ``PING`` and waits for ``PONG``: the ``PONG`` proves the server has processed every
  ``PUB`` before it.
* :func:`subscriber` ``recv_into``\\ s a 1 MiB buffer and counts deliveries without
  parsing them (:class:`MsgCounter`; or checks each one with ``verify``). Its running count
  lives in shared memory so the coordinator sees when everything has arrived.
* :func:`responder` / :func:`requester` do request/reply: the requester keeps ``window``
  requests outstanding (1 = strict one-at-a-time round trips) on one inbox subject and the
  responder answers every request to its reply subject.

Timestamps are ``CLOCK_MONOTONIC``, which is system-wide on Linux, so times taken in
different processes can be subtracted. Every worker reports to the coordinator through a
queue as ``(kind, role, index, data)`` with kind ``"ready"``, ``"result"`` or ``"error"``.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any, Protocol

HOST = "127.0.0.1"
CONNECT = b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":true}\r\n'
CHUNK_BYTES = 256 * 1024
RECV_BYTES = 1 << 20
POLL = 0.1  # how often a blocked reader wakes up to look at the stop flag / deadline
REPLY_TIMEOUT = 5.0  # a requester gives up on outstanding replies after this much silence

Status = Queue  # Queue[tuple[str, str, int, Any]]


class SharedInt(Protocol):
    """A ``multiprocessing`` raw shared ``Value``."""

    value: int


class SharedInts(Protocol):
    """A ``multiprocessing`` raw shared ``Array`` of integers."""

    def __getitem__(self, index: int) -> int: ...

    def __setitem__(self, index: int, value: int) -> None: ...


class ProtocolError(Exception):
    """The server sent ``-ERR``, closed the connection, or answered unexpectedly."""


@dataclass(frozen=True)
class Job:
    """What a worker must do; identical for every worker of one run."""

    port: int
    subject: str
    size: int
    duration: float  # seconds of publishing / requesting
    deadline: float  # absolute CLOCK_MONOTONIC time after which every worker gives up
    max_msgs: int = 0  # per publisher / requester; 0 means no cap
    queue_group: str = ""
    window: int = 1
    verify: bool = False  # parse and check every delivery instead of just counting


def now() -> float:
    """System-wide monotonic clock, comparable between processes."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def remaining(deadline: float) -> float:
    """Seconds left before ``deadline``; raises TimeoutError once it has passed."""
    left = deadline - now()
    if left <= 0:
        raise TimeoutError("hard timeout reached")
    return left


def make_payload(size: int) -> bytes:
    """A payload that contains neither ``MSG `` nor ``PING``."""
    return b"x" * size


def _schedstat() -> tuple[float, float]:
    """(CPU seconds run, seconds spent runnable but waiting for a CPU) of this thread."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            ran, waited = f.read().split()[:2]
    except (OSError, ValueError):
        return time.thread_time(), 0.0
    return int(ran) / 1e9, int(waited) / 1e9


class CpuMeter:
    """How busy this worker was: CPU time and run-queue wait over its active period.

    ``busy`` (CPU / wall) well below 1 with a small ``runq`` (waiting for a CPU / wall) means
    the worker spent its time blocked on the socket, i.e. waiting for the server.
    """

    def __init__(self) -> None:
        self.start = _schedstat()

    def restart(self) -> None:
        """Start measuring now."""
        self.start = _schedstat()

    def report(self, active: float) -> dict[str, float]:
        """``cpu_s``, ``busy`` and ``runq`` for an active period of ``active`` seconds."""
        ran, waited = (b - a for a, b in zip(self.start, _schedstat(), strict=True))
        active = max(active, 1e-9)
        return {"cpu_s": ran, "busy": ran / active, "runq": waited / active}


# -- connection helpers ------------------------------------------------------------------
def wait_pong(sock: socket.socket, deadline: float) -> None:
    """Read until ``PONG`` arrives, answering server PINGs; raise on -ERR or close."""
    seen = b""
    while True:
        sock.settimeout(remaining(deadline))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(f"no PONG before the deadline; last bytes {seen!r}") from None
        if not chunk:
            raise ProtocolError(f"connection closed by server; last bytes {seen!r}")
        seen = seen[-16:] + chunk
        if b"-ERR" in seen:
            raise ProtocolError(seen[seen.index(b"-ERR") :].split(b"\r\n")[0].decode())
        if b"PING\r\n" in chunk:
            sock.sendall(b"PONG\r\n")
        if b"PONG\r\n" in seen:
            return


def handshake(port: int, deadline: float, setup: bytes = b"") -> socket.socket:
    """Connect, send CONNECT (+ ``setup``, e.g. SUBs) and a PING, and wait for the PONG."""
    sock = socket.create_connection((HOST, port), timeout=remaining(deadline))
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(CONNECT + setup + b"PING\r\n")
        wait_pong(sock, deadline)
    except BaseException:
        sock.close()
        raise
    return sock


def sub_command(subject: str, queue_group: str = "", sid: int = 1) -> bytes:
    """``SUB <subject> [queue] <sid>``."""
    group = f" {queue_group}" if queue_group else ""
    return f"SUB {subject}{group} {sid}\r\n".encode()


class FrameReader:
    """Incremental parser for what a server sends; keeps only MSG reply subjects.

    With ``expect`` = (subject, sid, payload) every MSG must match it exactly.
    """

    def __init__(self, expect: tuple[bytes, bytes, bytes] | None = None) -> None:
        self.buf = bytearray()
        self.expect = expect

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """Add ``data``; return the reply subjects of complete MSGs and the PING count."""
        buf = self.buf
        buf += data
        size = len(buf)
        replies: list[bytes] = []
        pings = 0
        pos = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            if buf.startswith(b"MSG ", pos):
                parts = buf[pos:eol].split()
                end = eol + 4 + int(parts[-1])
                if end > size:
                    break
                if self.expect:
                    self._check(parts, buf[eol + 2 : end])
                replies.append(bytes(parts[3]) if len(parts) == 5 else b"")
                pos = end
                continue
            line = bytes(buf[pos:eol])
            pos = eol + 2
            if line == b"PING":
                pings += 1
            elif line.startswith(b"-ERR"):
                raise ProtocolError(line.decode(errors="replace"))
            # INFO, +OK and PONG need no action.
        del buf[:pos]
        return replies, pings

    def _check(self, parts: list[bytearray], body: bytearray) -> None:
        assert self.expect is not None
        subject, sid, payload = self.expect
        if parts[1] != subject or parts[2] != sid or body != payload + b"\r\n":
            head = b" ".join(parts).decode(errors="replace")
            raise ProtocolError(f"unexpected delivery {head!r} + {bytes(body[:40])!r}")


def _report(role: str, index: int, status: Status, body: Callable[[], dict[str, Any]]) -> None:
    """Run a worker body, sending its result (or its error) to the coordinator."""
    try:
        result = body()
    except BaseException as exc:  # report everything, including KeyboardInterrupt
        status.put(("error", role, index, f"{type(exc).__name__}: {exc}"))
        return
    status.put(("result", role, index, result))


# -- publisher ---------------------------------------------------------------------------
def publisher(job: Job, index: int, go: Event, status: Status) -> None:
    """Process entry point: publish as fast as possible once ``go`` is set."""
    _report("pub", index, status, lambda: _publish(job, index, go, status))


def _publish(job: Job, index: int, go: Event, status: Status) -> dict[str, Any]:
    with handshake(job.port, job.deadline) as sock:
        status.put(("ready", "pub", index, None))
        if not go.wait(remaining(job.deadline)):
            raise TimeoutError("never told to start")
        command = f"PUB {job.subject} {job.size}\r\n".encode() + make_payload(job.size) + b"\r\n"
        per_chunk = max(1, CHUNK_BYTES // len(command))
        chunk = command * per_chunk
        cap = job.max_msgs or sys.maxsize
        sent = 0
        meter = CpuMeter()
        t_start = now()
        end = t_start + job.duration
        while sent < cap:
            count = min(per_chunk, cap - sent)
            sock.settimeout(remaining(job.deadline))
            sock.sendall(chunk if count == per_chunk else command * count)
            sent += count
            if now() >= end:
                break
        t_sent = now()
        sock.sendall(b"PING\r\n")
        wait_pong(sock, job.deadline)
        t_pong = now()
        usage = meter.report(t_pong - t_start)
    return {"sent": sent, "t_start": t_start, "t_sent": t_sent, "t_pong": t_pong, **usage}


# -- subscriber --------------------------------------------------------------------------
def subscriber(job: Job, index: int, stop: SharedInt, counts: SharedInts, status: Status) -> None:
    """Process entry point: count deliveries until told to stop."""
    _report("sub", index, status, lambda: _subscribe(job, index, stop, counts, status))


def _subscribe(
    job: Job, index: int, stop: SharedInt, counts: SharedInts, status: Status
) -> dict[str, Any]:
    setup = sub_command(job.subject, job.queue_group)
    with handshake(job.port, job.deadline, setup) as sock:
        status.put(("ready", "sub", index, None))
        return _count_messages(sock, job, index, stop, counts)


def _count_messages(
    sock: socket.socket, job: Job, index: int, stop: SharedInt, counts: SharedInts
) -> dict[str, Any]:
    buf = bytearray(RECV_BYTES)
    counter = make_counter(job)
    count = 0
    t_first = t_last = 0.0
    meter = CpuMeter()
    closed = timed_out = False
    sock.settimeout(POLL)
    while not stop.value:
        try:
            n = sock.recv_into(buf)
        except TimeoutError:
            if now() > job.deadline:
                timed_out = True
                break
            continue
        except ConnectionError:
            n = 0
        if n == 0:
            closed = True
            break
        t = now()
        found, pings = counter.feed(buf, n)
        if found:
            if not count:
                t_first = t
                meter.restart()
            t_last = t
            count += found
            counts[index] = count
        if pings:
            sock.settimeout(remaining(job.deadline))
            sock.sendall(b"PONG\r\n" * pings)
            sock.settimeout(POLL)
    return {
        "received": count,
        **meter.report(t_last - t_first),
        "t_first": t_first,
        "t_last": t_last,
        "closed_by_server": closed,
        "timed_out": timed_out,
    }


class MsgCounter:
    """Counts the MSG frames of a byte stream read in arbitrary pieces, cheaply.

    Every delivery of a run has the same length, so while the counter is *in step* (it knows
    where the next frame starts) a read is counted arithmetically. It only has to make sure
    that nothing else slipped in: three ``memchr`` scans for ``P``, ``I`` and ``-`` (PING,
    INFO, -ERR; none occurs in our subjects or payloads) and spot checks that the first and
    last frames of the read start with ``MSG `` where expected. Otherwise the read is
    scanned: ``MSG `` occurrences and PINGs are counted (the last bytes of the previous read
    are kept to catch one split across two reads), and the counter gets back in step at the
    next read whose last frame runs to its end. In both modes a frame is counted in the read
    holding the space of its ``MSG `` (offset 3).
    """

    def __init__(self, frame_len: int) -> None:
        self.frame_len = frame_len
        self.next_event: int | None = 3  # where the next frame's "MSG " ends, from read start
        self.tail = b""

    def feed(self, buf: bytearray, n: int) -> tuple[int, int]:
        """Count the frames in ``buf[:n]``; return (frames, PINGs seen)."""
        found = self._in_step(buf, n)
        pings = 0
        if found is None:
            found = self._scan(buf, n)
            junction = self.tail + bytes(buf[: min(5, n)])  # a PING split across reads
            pings = buf.count(b"PING\r\n", 0, n) + junction.count(b"PING\r\n")
        self.tail = (self.tail + bytes(buf[max(0, n - 5) : n]))[-5:]
        return found, pings

    def _in_step(self, buf: bytearray, n: int) -> int | None:
        event = self.next_event
        if event is None or any(buf.find(c, 0, n) >= 0 for c in (b"P", b"I", b"-")):
            return None
        if event >= n:
            self.next_event = event - n
            return 0
        found = 1 + (n - 1 - event) // self.frame_len
        last = event + (found - 1) * self.frame_len
        if not (self._msg_ends_at(buf, event) and self._msg_ends_at(buf, last)):
            return None
        self.next_event = last + self.frame_len - n
        return found

    def _msg_ends_at(self, buf: bytearray, pos: int) -> bool:
        if pos >= 3:
            return buf[pos - 3 : pos + 1] == b"MSG "
        return (self.tail + bytes(buf[: pos + 1]))[-4:] == b"MSG "

    def _scan(self, buf: bytearray, n: int) -> int:
        found = buf.count(b"MSG ", 0, n)
        found += (self.tail[-3:] + bytes(buf[: min(3, n)])).count(b"MSG ")
        start = buf.rfind(b"MSG ", 0, n)
        if start >= 0 and start + self.frame_len >= n:
            self.next_event = start + 3 + self.frame_len - n  # the read ends inside its frame
        else:
            self.next_event = None
        return found


class StrictCounter:
    """Parses every frame and checks each delivery byte for byte (``--verify``)."""

    def __init__(self, expect: tuple[bytes, bytes, bytes]) -> None:
        self.reader = FrameReader(expect)

    def feed(self, buf: bytearray, n: int) -> tuple[int, int]:
        """Count the frames in ``buf[:n]``; return (frames, PINGs seen)."""
        replies, pings = self.reader.feed(bytes(buf[:n]))
        return len(replies), pings


def make_counter(job: Job) -> MsgCounter | StrictCounter:
    """The delivery counter for a subscriber of ``job``."""
    subject, payload = job.subject.encode(), make_payload(job.size)
    if job.verify:
        return StrictCounter((subject, b"1", payload))
    header = b"MSG %s 1 %d\r\n" % (subject, job.size)
    return MsgCounter(len(header) + len(payload) + 2)


# -- request / reply ---------------------------------------------------------------------
def responder(job: Job, index: int, stop: SharedInt, status: Status) -> None:
    """Process entry point: answer every request on ``job.subject`` until told to stop."""
    _report("resp", index, status, lambda: _respond(job, index, stop, status))


def _respond(job: Job, index: int, stop: SharedInt, status: Status) -> dict[str, Any]:
    with handshake(job.port, job.deadline, sub_command(job.subject)) as sock:
        status.put(("ready", "resp", index, None))
        reader = FrameReader()
        reply_tail = f" {job.size}\r\n".encode() + make_payload(job.size) + b"\r\n"
        answered = 0
        meter = CpuMeter()
        t_start = t_last = now()
        while not stop.value:
            sock.settimeout(POLL)
            try:
                data = sock.recv(RECV_BYTES)
            except TimeoutError:
                remaining(job.deadline)
                continue
            if not data:
                raise ProtocolError("connection closed by server")
            replies, pings = reader.feed(data)
            out = b"".join([b"PUB " + reply + reply_tail for reply in replies if reply])
            if out or pings:
                sock.settimeout(remaining(job.deadline))
                sock.sendall(out + b"PONG\r\n" * pings)
            if replies:
                if not answered:
                    meter.restart()
                    t_start = now()
                answered += len(replies)
                t_last = now()
    return {"answered": answered, **meter.report(t_last - t_start)}


def requester(job: Job, index: int, go: Event, status: Status) -> None:
    """Process entry point: keep ``job.window`` requests in flight for ``job.duration``."""
    _report("req", index, status, lambda: _request(job, index, go, status))


def _request(job: Job, index: int, go: Event, status: Status) -> dict[str, Any]:
    inbox = f"_INBOX.bench.{os.getpid()}.{index}"
    with handshake(job.port, job.deadline, sub_command(inbox)) as sock:
        status.put(("ready", "req", index, None))
        if not go.wait(remaining(job.deadline)):
            raise TimeoutError("never told to start")
        request = (
            f"PUB {job.subject} {inbox} {job.size}\r\n".encode() + make_payload(job.size) + b"\r\n"
        )
        expect = (inbox.encode(), b"1", make_payload(job.size)) if job.verify else None
        return _round_trips(sock, job, request, FrameReader(expect))


def _round_trips(
    sock: socket.socket, job: Job, request: bytes, reader: FrameReader
) -> dict[str, Any]:
    cap = job.max_msgs or sys.maxsize
    meter = CpuMeter()
    t_start = t_last = now()
    end = t_start + job.duration
    sent = min(job.window, cap)
    received = 0
    sending = True
    sock.settimeout(remaining(job.deadline))
    sock.sendall(request * sent)
    while received < sent:
        sock.settimeout(min(REPLY_TIMEOUT, remaining(job.deadline)))
        try:
            data = sock.recv(RECV_BYTES)
        except TimeoutError:
            break  # the outstanding requests are reported as lost
        if not data:
            raise ProtocolError("connection closed by server")
        replies, pings = reader.feed(data)
        out = b"PONG\r\n" * pings
        if replies:
            received += len(replies)
            t_last = now()
            sending = sending and t_last < end and sent < cap
            if sending:
                more = min(len(replies), cap - sent)
                out += request * more
                sent += more
        if out:
            sock.sendall(out)
    return {
        "sent": sent,
        "received": received,
        "t_start": t_start,
        "t_last": t_last,
        **meter.report(t_last - t_start),
    }
