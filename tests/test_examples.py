"""The scripts in ``examples/`` run against a pynats-server and do what they say.

Each example runs as a subprocess with ``--server`` pointing at a server started for this
module; long-running ones (subscribers, the service) are started first and the test waits
for their "Listening" line before the publisher or requester runs. Every process has a
timeout and is killed if it overruns, so a broken example fails the test, never hangs it.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import ServerProcess

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
RUN_TIMEOUT = 30.0
READY_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    """A pynats-server of its own for the examples (they use fixed ``demo.*`` subjects)."""
    with ServerProcess("pynats") as server:
        yield server.url


def _argv(name: str, url: str, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / name), "--server", url, *args]


def run_example(name: str, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an example to completion (bounded by RUN_TIMEOUT)."""
    return subprocess.run(_argv(name, url, *args), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)


class Background:
    """An example running in the background; its output lines are collected by a thread."""

    def __init__(self, name: str, url: str, *args: str):
        self.proc = subprocess.Popen(_argv(name, url, *args), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = READY_TIMEOUT) -> None:
        """Wait until an output line contains ``text``."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} in time; output: {self.seen}") from None
            if line is None:
                raise AssertionError(f"exited before {text!r}; output: {self.seen}")
            self.seen.append(line)

    def finish(self, timeout: float = RUN_TIMEOUT) -> tuple[int, str]:
        """Wait for the exit (killing it after ``timeout``); exit status and all output."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"example did not exit in time; output: {self.seen}") from None
        while (line := self.lines.get(timeout=5)) is not None:
            self.seen.append(line)
        return code, "\n".join(self.seen)

    def kill(self) -> None:
        """Make sure the process is gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def background() -> Iterator[list[Background]]:
    """Background examples started by a test; killed at the end whatever happens."""
    started: list[Background] = []
    yield started
    for example in started:
        example.kill()


def start(started: list[Background], name: str, url: str, *args: str) -> Background:
    example = Background(name, url, *args)
    started.append(example)
    return example


def test_pub(url: str) -> None:
    done = run_example("pub.py", url, "--count", "3")
    assert done.returncode == 0, done.stderr
    assert "Published 3 message(s) to demo.greeting" in done.stdout


def test_sub_receives_what_pub_sends(url: str, background: list[Background]) -> None:
    sub = start(background, "sub.py", url, "--count", "3")
    sub.wait_for("Listening on demo.>")
    assert run_example("pub.py", url, "--count", "3", "hi").returncode == 0
    code, output = sub.finish()
    assert code == 0
    assert "[1] demo.greeting: hi 0" in output
    assert "[3] demo.greeting: hi 2" in output
    assert "Received 3 message(s)" in output


def test_sub_gives_up_after_its_timeout(url: str) -> None:
    done = run_example("sub.py", url, "--subject", "demo.nobody", "--timeout", "0.5")
    assert done.returncode == 0, done.stderr
    assert "Timed out after 0.5s" in done.stdout
    assert "Received 0 message(s)" in done.stdout


def test_queue_group_members_share_the_messages(url: str,
                                                background: list[Background]) -> None:
    group = start(background, "queue_sub.py", url, "--count", "12")
    group.wait_for("in queue group 'workers'")
    assert run_example("pub.py", url, "--count", "12", "job").returncode == 0
    code, output = group.finish()
    assert code == 0
    handled = [line for line in output.splitlines() if line.startswith("member ")]
    payloads = sorted(line.rsplit(": ", 1)[1] for line in handled)
    assert payloads == sorted(f"job {i}" for i in range(12))  # each exactly once
    assert "Handled 12 message(s)" in output


def test_request_gets_the_reply_service_answer(url: str,
                                               background: list[Background]) -> None:
    service = start(background, "reply.py", url, "--count", "2")
    service.wait_for("Listening for requests on demo.service")
    done = run_example("request.py", url, "--count", "2", "ping")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == ["Reply: PING 0", "Reply: PING 1"]
    code, output = service.finish()
    assert code == 0
    assert "Answered request 2: ping 1" in output


def test_request_without_a_service_says_so(url: str) -> None:
    done = run_example("request.py", url, "--subject", "demo.nobody")
    assert done.returncode == 1
    assert "No service is listening on demo.nobody" in done.stdout


def test_blocking_client(url: str, background: list[Background]) -> None:
    service = start(background, "reply.py", url, "--count", "1")
    service.wait_for("Listening for requests on demo.service")
    done = run_example("blocking.py", url, "--request", "demo.service")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Received on demo.blocking: hello from a blocking client" in done.stdout
    assert "Reply: BLOCKING REQUEST" in done.stdout
    assert service.finish()[0] == 0
