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


def server_pid(server: ServerProcess) -> int:
    assert server.proc is not None
    return server.proc.pid


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
    if recorder.figures:
        with _LOCK:
            _RESULTS[recorder.nodeid] = dict(recorder.figures)


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
    """A server of ``kind`` with config text ``conf`` (written to a file) and ``args``."""
    argv = list(args)
    if conf:
        argv = ["-c", str(conf_file(tmp_path, f"{kind}-{time.monotonic_ns()}", conf)), *argv]
    return ServerProcess(kind, argv).start()


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
    raw.ping_pong()
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
    "Recorder",
    "Sampler",
    "Scale",
    "closed_by_peer",
    "conf_file",
    "fd_count",
    "keep",
    "mib",
    "raw_connect",
    "rss_bytes",
    "scale_factor",
    "server_pid",
    "start",
    "wait_until",
    "write_results",
]
