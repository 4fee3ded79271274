"""Configuration reload on SIGHUP, checked over the wire against both servers.

Each test starts the server with ``-c FILE``, connects raw clients, rewrites the file,
sends SIGHUP and waits for the reload's log line (never a sleep), then checks what
clients see. The same tests run against the real nats-server, so the expectations are
the reference's.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import RawClient, ServerProcess, server_command

KINDS = ["pynats", "nats-server"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Reloadable:
    """A server process with its configuration file and a SIGHUP helper."""

    def __init__(self, kind: str, path: Path, text: str):
        self.path = path
        path.write_text(text)
        self.server = ServerProcess(kind, ["-c", str(path)])

    def reload(self, text: str, expect: str = "Reloaded server configuration") -> str:
        """Rewrite the file, SIGHUP, and return the first new log line containing ``expect``."""
        self.path.write_text(text)
        mark = len(self.server.lines)
        self.server.signal(signal.SIGHUP)
        line = self.server.wait_for_log(expect, timeout=5, start=mark)
        assert line is not None, "\n".join(self.server.lines[mark:])
        return line

    def client(self) -> RawClient:
        client = RawClient(self.server.port)
        client.send(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        client.expect(b"PONG\r\n")
        return client


@pytest.fixture
def reloadable(kind: str, tmp_path: Path) -> Iterator[Reloadable]:
    holder = Reloadable(kind, tmp_path / "server.conf", "max_payload: 1000\n")
    with holder.server:
        yield holder


def info_of(client: RawClient) -> dict[str, object]:
    line = client.info.decode()
    assert line.startswith("INFO ")
    parsed: dict[str, object] = json.loads(line[5:])
    return parsed


def test_max_payload_changes_for_new_and_existing_clients(reloadable: Reloadable) -> None:
    with reloadable.client() as before:
        assert info_of(before)["max_payload"] == 1000
        reloadable.reload("max_payload: 2000\n")
        before.send(b"PUB big 1500\r\n" + b"x" * 1500 + b"\r\nPING\r\n")
        before.expect(b"PONG\r\n")
    with reloadable.client() as after:
        assert info_of(after)["max_payload"] == 2000
        after.send(b"PUB big 2500\r\n" + b"x" * 2500 + b"\r\n")
        assert after.read_line() == b"-ERR 'Maximum Payload Violation'\r\n"


def test_unreloadable_option_is_refused_and_old_config_stays(reloadable: Reloadable) -> None:
    line = reloadable.reload("max_payload: 2000\nserver_name: renamed\n",
                             expect="Failed to reload server configuration")
    assert line.endswith("[ERR] Failed to reload server configuration: config reload not "
                         "supported for ServerName: old=, new=renamed")
    with reloadable.client() as client:
        info = info_of(client)
    assert info["max_payload"] == 1000
    assert info["server_name"] != "renamed"


def test_bad_file_on_reload_keeps_the_running_config(reloadable: Reloadable) -> None:
    line = reloadable.reload("max_payload: 2000\nbogus_key: 1\n",
                             expect="Failed to reload server configuration")
    assert line.endswith(':2:1: unknown field "bogus_key"')
    with reloadable.client() as client:
        assert info_of(client)["max_payload"] == 1000


def test_lower_max_connections_closes_the_excess(reloadable: Reloadable) -> None:
    first, second = reloadable.client(), reloadable.client()
    with first, second:
        reloadable.reload("max_payload: 1000\nmax_connections: 1\n")
        outcomes = []
        for client in (first, second):
            try:
                client.send(b"PING\r\n")
                outcomes.append(client.read_until_closed(timeout=2))
            except TimeoutError:
                outcomes.append(b"open")
    closed = [out for out in outcomes if out != b"open"]
    assert len(closed) == 1
    assert b"-ERR 'maximum connections exceeded'\r\n" in closed[0]


def test_debug_logging_turns_on_live(reloadable: Reloadable) -> None:
    line = reloadable.reload("max_payload: 1000\ndebug: true\n", expect="Reloaded: debug")
    assert line.endswith("[INF] Reloaded: debug = true")
    mark = len(reloadable.server.lines)
    with reloadable.client():
        assert reloadable.server.wait_for_log("[DBG]", start=mark) is not None


def test_ping_interval_reload_is_logged_as_a_duration(reloadable: Reloadable) -> None:
    line = reloadable.reload('max_payload: 1000\nping_interval: "30s"\n',
                             expect="Reloaded: ping_interval")
    assert line.endswith("[INF] Reloaded: ping_interval = 30s")


def test_reload_without_config_file_is_refused(kind: str) -> None:
    with ServerProcess(kind) as server:
        server.signal(signal.SIGHUP)
        line = server.wait_for_log("Failed to reload")
    assert line is not None
    assert line.endswith("[ERR] Failed to reload server configuration: can only reload "
                         "config when a file is provided using -c or --config")


def test_signal_command_reloads_a_server_by_pid_file(kind: str, tmp_path: Path) -> None:
    """``--signal reload=<pid file>`` from the same executable reloads the running server."""
    pid_file = tmp_path / "server.pid"
    holder = Reloadable(kind, tmp_path / "s.conf", f'max_payload: 1000\npid_file: "{pid_file}"\n')
    with holder.server:
        holder.path.write_text(f'max_payload: 3000\npid_file: "{pid_file}"\n')
        mark = len(holder.server.lines)
        done = subprocess.run([*server_command(kind), "--signal", f"reload={pid_file}"],
                              capture_output=True, text=True, timeout=20)
        assert (done.returncode, done.stderr) == (0, "")
        assert holder.server.wait_for_log("Reloaded: max_payload = 3000", start=mark)


def test_log_file_moves_on_reload_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    holder = Reloadable("pynats", tmp_path / "l.conf", "max_payload: 1000\n")
    with holder.server:
        holder.path.write_text(f'log_file: "{log}"\n')
        holder.server.signal(signal.SIGHUP)
        _wait_for_text(log, "Reloaded server configuration")
        assert "Reloaded: log_file" in log.read_text()
        holder.path.write_text(f'log_file: "{tmp_path}/missing/dir/x.log"\n')
        holder.server.signal(signal.SIGHUP)
        _wait_for_text(log, "Failed to reload server configuration: error opening file")


def _wait_for_text(path: Path, text: str, timeout: float = 5.0) -> None:
    """Wait until ``path`` contains ``text`` (polling the file: the log is not ours)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in {path}: {path.read_text() if path.exists() else ''}")


def test_varz_shows_the_digest_and_load_time_of_the_config_in_force(kind: str,
                                                                     tmp_path: Path) -> None:
    holder = Reloadable(kind, tmp_path / "d.conf", "max_payload: 1000\n")
    holder.server.args += ["-m", "-1"]
    with holder.server:
        using = holder.server.wait_for_log("Using configuration file:")
        assert using is not None
        first = _varz(holder.server.http_port)
        assert using.endswith(f"({first['config_digest']})")
        line = holder.reload("max_payload: 2000\n")
        second = _varz(holder.server.http_port)
    assert line.endswith(f"Reloaded server configuration ({second['config_digest']})")
    assert second["config_digest"] != first["config_digest"]
    assert second["config_load_time"] != first["config_load_time"]


def _varz(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/varz", timeout=5) as response:
        parsed: dict[str, object] = json.loads(response.read())
    return parsed
