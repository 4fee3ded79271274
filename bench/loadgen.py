"""Raw-socket NATS load-generator workers; each one runs in its own process.

The workers speak the NATS text protocol directly over a blocking TCP socket (no client
library) so that they cost as little CPU as possible and the server stays the bottleneck:

* :func:`publisher` pre-builds one ~256 KiB chunk of identical ``PUB`` commands and
  ``sendall``\\ s it over and over until its time budget (or message cap) is spent, then
  sends ``PING`` and waits for ``PONG``: the ``PONG`` proves the server has processed every
  ``PUB`` before it.
* :func:`subscriber` ``recv_into``\\ s a 1 MiB buffer and only *counts* ``b"MSG "``
  occurrences (the last 3 bytes of each read are kept to catch one split across two reads;
  generated subjects and payloads never contain ``MSG ``). Its running count lives in shared
  memory so the coordinator sees when everything has arrived.
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
    """Incremental parser for what a server sends; keeps only MSG reply subjects."""

    def __init__(self) -> None:
        self.buf = bytearray()

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
        cpu_start = time.process_time()
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
        cpu = time.process_time() - cpu_start
    return {
        "sent": sent,
        "t_start": t_start,
        "t_sent": t_sent,
        "t_pong": t_pong,
        "cpu_s": cpu,
        "busy": cpu / (t_pong - t_start),
    }


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
    count = 0
    tail = b""
    t_first = t_last = cpu_first = 0.0
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
        found = buf.count(b"MSG ", 0, n)
        if tail:
            found += (tail + buf[: min(3, n)]).count(b"MSG ")
        tail = bytes(buf[n - 3 : n]) if n >= 3 else (tail + bytes(buf[:n]))[-3:]
        if found:
            if not count:
                t_first = t
                cpu_first = time.process_time()
            t_last = t
            count += found
            counts[index] = count
        if buf.find(b"PING\r\n", 0, n) >= 0:
            sock.settimeout(remaining(job.deadline))
            sock.sendall(b"PONG\r\n")
            sock.settimeout(POLL)
    cpu = time.process_time() - cpu_first if count else 0.0
    active = t_last - t_first
    return {
        "received": count,
        "cpu_s": cpu,
        "busy": cpu / active if active > 0 else 0.0,
        "t_first": t_first,
        "t_last": t_last,
        "closed_by_server": closed,
        "timed_out": timed_out,
    }


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
        cpu_start = time.process_time()
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
                    cpu_start, t_start = time.process_time(), now()
                answered += len(replies)
                t_last = now()
    active = t_last - t_start
    cpu = time.process_time() - cpu_start
    return {"answered": answered, "cpu_s": cpu, "busy": cpu / active if active > 0 else 0.0}


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
        return _round_trips(sock, job, request)


def _round_trips(sock: socket.socket, job: Job, request: bytes) -> dict[str, Any]:
    reader = FrameReader()
    cap = job.max_msgs or sys.maxsize
    cpu_start = time.process_time()
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
    cpu = time.process_time() - cpu_start
    return {
        "sent": sent,
        "received": received,
        "t_start": t_start,
        "t_last": t_last,
        "cpu_s": cpu,
        "busy": cpu / (t_last - t_start) if t_last > t_start else 0.0,
    }
