"""Run ``python -m pynats ...`` as a subprocess, in the foreground or the background."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from harness import server_env

TIMEOUT = 30.0


def cli_env(config_home: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout's pynats, a private config dir."""
    env = server_env()
    for name in list(env):
        if name.startswith("NATS_"):
            del env[name]
    env.update(XDG_CONFIG_HOME=str(config_home), NO_COLOR="1", **extra)
    return env


def run(env: dict[str, str], *args: str, stdin: str | None = None,
        timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion and capture its output."""
    return subprocess.run([sys.executable, "-m", "pynats", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)


def assert_clean_error(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The command failed with one ``pynats: error:`` line and no traceback."""
    assert result.returncode == status, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("pynats: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


class Background:
    """A long-running CLI command (``sub``, ``reply``), ready once stderr shows ``ready``.

    Use as a context manager; leaving it interrupts the process (SIGINT) and waits.
    """

    def __init__(self, env: dict[str, str], args: Sequence[str], ready: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pynats", *args], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._out_reader.start()
        if not self.wait_for(ready, TIMEOUT):
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{args}: never printed {ready!r}: {self.stderr_lines}")
        self.stdout = ""
        self.returncode: int | None = None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.stderr_lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.stdout_lines.append(line)
                self._cond.notify_all()

    def wait_lines(self, count: int, timeout: float = TIMEOUT) -> bool:
        """Wait until stdout has at least ``count`` lines."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.stdout_lines) < count:
                left = deadline - time.monotonic()
                if left <= 0 or not self._out_reader.is_alive():
                    return len(self.stdout_lines) >= count
                self._cond.wait(min(left, 0.2))
        return True

    def wait_for(self, text: str, timeout: float) -> bool:
        """Wait for a stderr line containing ``text``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not any(text in line for line in self.stderr_lines):
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    return any(text in line for line in self.stderr_lines)
                self._cond.wait(min(left, 0.2))
        return True

    def finish(self, timeout: float = TIMEOUT, interrupt: bool = False) -> int:
        """Wait for the process to exit (after SIGINT when ``interrupt``); its status."""
        if self.returncode is not None:
            return self.returncode
        if interrupt and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        self._out_reader.join(5)
        self.stdout = "".join(self.stdout_lines)
        self.returncode = self.proc.returncode
        return self.returncode

    @property
    def stderr(self) -> str:
        """Everything printed on stderr so far."""
        with self._cond:
            return "\n".join(self.stderr_lines)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish(interrupt=True)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG file's IHDR chunk (checks the signature too)."""
    import struct

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


__all__ = ["Background", "assert_clean_error", "cli_env", "png_size", "run"]
