"""nats-server's log format: one line per event, flushed at once; files, rotation, syslog.

Theory of operation
-------------------
A line is ``[<pid>] <date> <time>.<micros> [<LVL>] <message>``, exactly what
nats-server's logger writes (Go ``log`` flags ``LstdFlags|Lmicroseconds`` behind a
``[pid] `` prefix); with ``logtime`` off the timestamp is left out:
``[12345] [INF] Server is ready``. Times are local unless ``utc`` (``logtime_utc``).

:class:`Logger` decides whether a line is written (the level checks) and hands it to
one sink (``logsinks.py``), chosen as nats-server's ``ConfigureLogger`` does: a log
file if ``log_file`` is set (optionally rotated by size, ``log_size_limit`` /
``log_max_num``), else ``remote_syslog``, else local ``syslog``, else a stream, stderr
by default, where the level label is coloured when the stream is a terminal
(``[\\x1b[32mINF\\x1b[0m]``). Every line is written with one ``write`` and flushed,
because test harnesses and supervisors wait for lines through a pipe. Nothing it does
may crash the server: a closed or broken destination drops the line. Syslog messages
carry neither the pid prefix nor the label (the severity says it).

Hot paths check the plain attributes ``debug_enabled`` / ``trace_enabled`` before
building a message. The formatted date and time is cached per second, so a line
costs one clock read and a few string joins.

:meth:`Logger.from_options` builds a logger from :class:`ServerOptions`;
:meth:`Logger.apply` changes it live on config reload (levels, timestamps, format,
rotation limits, and the destination: a new file is opened before the old one is
closed, so a failure leaves everything as it was). :meth:`Logger.reopen` closes and
reopens the file (SIGUSR1, after logrotate has renamed it) and logs the same notices
nats-server does. Setting up a destination that fails raises
:class:`~pynats.server.logsinks.LogSetupError` with nats-server's fatal message;
:func:`go_std_log_line` renders it the way nats-server prints it before exiting 1.

JSON lines (``log_format: json``, a pynats addition) are one object per line::

    {"time":"2024-01-02T03:04:05.000123Z","level":"info","pid":12345,"msg":"..."}

* ``time``: RFC 3339 with microseconds, local time with its offset (``+05:30``) or
  ``Z`` with ``logtime_utc``; absent when ``logtime`` is false;
* ``level``: ``info``, ``warn``, ``error``, ``fatal``, ``debug`` or ``trace``;
* ``pid``: the process id (number); ``msg``: the message exactly as in text lines;
* for connection-scoped messages, also ``remote`` (``"127.0.0.1:53212"``) and the
  connection id under its kind: ``cid``, ``rid``, ``gid``, ``lid``, ``wid`` or ``mid``
  (a number), parsed from the message's prefix.

:func:`conn_prefix` builds the connection description nats-server puts in front of
connection-scoped messages, ``127.0.0.1:53212 - cid:5 - ``; once CONNECT gave a
version, lang or name it becomes ``127.0.0.1:53212 - cid:5 - "v2.16.0:python3:myapp" - ``
(the present ones, joined by ``:``, quoted like Go's ``%q``; observed with nats-server
2.15.1). :func:`go_quote` is that quoting, also used by messages like
``authentication error - User "alice"``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from pynats.server.gotext import go_os_error, go_quote
from pynats.server.logsinks import (
    LOG_FILE_MODE,
    FileSink,
    LogSetupError,
    Sink,
    StreamSink,
    open_local_syslog,
    open_remote_syslog,
    syslog_tag,
    utc_offset,
)

if TYPE_CHECKING:
    from pynats.server.config.options import LogFormat, ServerOptions

#: ANSI colour of each level label on a terminal (nats-server ``logger/log.go``).
COLORS: dict[str, str] = {
    "INF": "\x1b[32m",
    "WRN": "\x1b[0;93m",
    "ERR": "\x1b[31m",
    "FTL": "\x1b[31m",
    "DBG": "\x1b[36m",
    "TRC": "\x1b[33m",
}
_RESET = "\x1b[0m"
#: The ``level`` of each label in JSON lines.
JSON_LEVELS: dict[str, str] = {
    "INF": "info", "WRN": "warn", "ERR": "error", "FTL": "fatal", "DBG": "debug",
    "TRC": "trace",
}
_CONN_RE = re.compile(r"(\[[^\]\s]*\]:\d+|[^\s:\[\]]+:\d+) - ([crglwm]id):(\d+) - ")


@dataclass(frozen=True, slots=True)
class _Destination:
    """Where lines go, in nats-server's order of precedence."""

    kind: str  # "file", "remote", "syslog" or "stream"
    target: str = ""

    @staticmethod
    def choose(path: str, remote_syslog: str, syslog: bool) -> _Destination:
        if path:
            return _Destination("file", path)
        if remote_syslog:
            return _Destination("remote", remote_syslog)
        return _Destination("syslog") if syslog else _Destination("stream")


class Logger:
    """A nats-server style logger.

    Attributes:
        debug_enabled: ``[DBG]`` lines are written only when true.
        trace_enabled: ``[TRC]`` lines are written only when true.
        logtime: Whether lines carry a timestamp.
        path: The log file, or ``""`` when writing elsewhere.
    """

    def __init__(
        self,
        *,
        debug: bool = False,
        trace: bool = False,
        logtime: bool = True,
        utc: bool = False,
        path: str = "",
        stream: TextIO | None = None,
        colors: bool | None = None,
        clock: Callable[[], int] = time.time_ns,
        log_format: LogFormat = "text",
        size_limit: int = 0,
        max_num: int = 0,
        syslog: bool = False,
        remote_syslog: str = "",
        tag: str | None = None,
    ) -> None:
        """Create a logger and open its destination.

        Args:
            debug: Write ``[DBG]`` lines.
            trace: Write ``[TRC]`` lines.
            logtime: Prefix lines with the date and time.
            utc: Timestamps in UTC instead of local time.
            path: Log file (appended to); it wins over syslog and the stream.
            stream: Where lines go without a file or syslog (default: ``sys.stderr``).
            colors: Colour the labels; None means only when ``stream`` is a terminal.
                Files are never coloured.
            clock: Nanoseconds since the epoch (tests pass a fixed one).
            log_format: ``text`` (nats-server's lines) or ``json`` (one object per line).
            size_limit: Rotate the file above this many bytes (0: never).
            max_num: Files kept on rotation, the current one included (0: all).
            syslog: Log to the local syslog daemon (unless ``path`` is set).
            remote_syslog: ``udp://host:port``, ``tcp://host:port`` or ``unix:///path``
                (unless ``path`` is set; wins over ``syslog``).
            tag: Syslog program name (default: :func:`~pynats.server.logsinks.syslog_tag`).

        Raises:
            LogSetupError: (an ``OSError``) The file or syslog cannot be opened; the
                message is nats-server's (``error opening file: open ...``).
        """
        self.debug_enabled = debug
        self.trace_enabled = trace
        self.logtime = logtime
        self._utc = utc
        self._json = log_format == "json"
        self._clock = clock
        self._pid = os.getpid()
        self._pid_prefix = f"[{self._pid}] "
        self._stream: TextIO = stream if stream is not None else sys.stderr
        self._colors = colors
        self._tag = tag
        self._second = self._json_second = -1
        self._second_text = self._json_second_text = ""
        self._dest = _Destination.choose(path, remote_syslog, syslog)
        self._sink: Sink | None = self._open(self._dest, size_limit, max_num)
        self.path = self._dest.target if self._dest.kind == "file" else ""
        self._labels = _labels(self._wants_colors())
        self._check_size_limit()

    @classmethod
    def from_options(
        cls,
        opts: ServerOptions,
        *,
        stream: TextIO | None = None,
        colors: bool | None = None,
        clock: Callable[[], int] = time.time_ns,
        tag: str | None = None,
    ) -> Logger:
        """A logger configured by ``opts`` (``debug``, ``trace``, ``logtime``,
        ``logtime_utc``, ``log_file``, ``log_size_limit``, ``log_max_num``,
        ``log_format``, ``syslog``, ``remote_syslog``).

        The keyword arguments are as for the constructor.

        Raises:
            LogSetupError: The destination cannot be opened (nats-server's message).
        """
        return cls(
            debug=opts.debug, trace=opts.trace, logtime=opts.logtime,
            utc=opts.logtime_utc, path=opts.log_file, stream=stream, colors=colors,
            clock=clock, log_format=opts.log_format, size_limit=opts.log_size_limit,
            max_num=opts.log_max_num, syslog=opts.syslog, remote_syslog=opts.remote_syslog,
            tag=tag,
        )

    def apply(self, opts: ServerOptions) -> None:
        """Reconfigure from ``opts`` in place (config reload).

        Levels, timestamps, format and rotation limits change at once. A new
        destination (another file, syslog, the stream) is opened first and only then
        is the old one closed; the same file is kept open.

        Raises:
            LogSetupError: The new destination cannot be opened; nothing was changed.
        """
        dest = _Destination.choose(opts.log_file, opts.remote_syslog, opts.syslog)
        new_sink = None
        if dest != self._dest or self._sink is None:
            new_sink = self._open(dest, opts.log_size_limit, opts.log_max_num)
        self.debug_enabled = opts.debug
        self.trace_enabled = opts.trace
        self.logtime = opts.logtime
        self.utc = opts.logtime_utc
        self._json = opts.log_format == "json"
        if new_sink is not None:
            old, self._sink, self._dest = self._sink, new_sink, dest
            self.path = dest.target if dest.kind == "file" else ""
            self._labels = _labels(self._wants_colors())
            if old is not None:
                old.close()
        if isinstance(self._sink, FileSink):
            self._sink.set_limits(opts.log_size_limit, opts.log_max_num)
            self._check_size_limit()

    @property
    def utc(self) -> bool:
        """Whether timestamps are UTC rather than local time (settable)."""
        return self._utc

    @utc.setter
    def utc(self, value: bool) -> None:
        if value != self._utc:
            self._utc = value
            self._second = self._json_second = -1  # the cached texts are in the old zone

    @property
    def log_format(self) -> LogFormat:
        """``text`` or ``json``."""
        return "json" if self._json else "text"

    @property
    def destination(self) -> str:
        """``file``, ``remote`` (syslog), ``syslog`` (local) or ``stream``."""
        return self._dest.kind

    def notice(self, msg: str) -> None:
        """Log ``msg`` at ``[INF]``."""
        self._log("INF", msg)

    def warn(self, msg: str) -> None:
        """Log ``msg`` at ``[WRN]``."""
        self._log("WRN", msg)

    def error(self, msg: str) -> None:
        """Log ``msg`` at ``[ERR]``."""
        self._log("ERR", msg)

    def fatal(self, msg: str) -> None:
        """Log ``msg`` at ``[FTL]``; the caller then exits with status 1."""
        self._log("FTL", msg)

    def debug(self, msg: str) -> None:
        """Log ``msg`` at ``[DBG]`` if debug logging is on."""
        if self.debug_enabled:
            self._log("DBG", msg)

    def trace(self, msg: str) -> None:
        """Log ``msg`` at ``[TRC]`` if trace logging is on."""
        if self.trace_enabled:
            self._log("TRC", msg)

    def reopen(self) -> bool:
        """Reopen the log file (SIGUSR1, e.g. after logrotate renamed it).

        Logs ``File log re-opened`` to the new file, or ``File log re-open ignored,
        not a file logger`` without one, as nats-server does; a file already above
        ``log_size_limit`` is first rotated (``Rotating logfile...``). If the file
        cannot be opened the old one stays in use and an error is logged to it.

        Returns:
            Whether a file was reopened.
        """
        sink = self._sink
        if not isinstance(sink, FileSink):
            self.notice("File log re-open ignored, not a file logger")
            return False
        try:
            sink.reopen()
        except OSError as exc:
            self.error(f"Unable to re-open log file {self.path}: "
                       f"{go_os_error('open', self.path, exc)}")
            return False
        self._check_size_limit()
        self.notice("File log re-opened")
        return True

    def close(self) -> None:
        """Close the file or syslog socket; later lines are dropped. A stream stays open."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.close()

    def __enter__(self) -> Logger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def format_line(self, level: str, msg: str) -> str:
        """The full line (with newline) for ``msg`` at ``level`` (``"INF"`` ...), text or
        JSON as configured."""
        if self._json:
            return self._json_line(level, msg)
        return f"{self._pid_prefix}{self._timestamp()}{self._labels[level]}{msg}\n"

    def _log(self, level: str, msg: str) -> None:
        sink = self._sink
        if sink is not None:
            sink.emit(level, msg)

    # -- destinations ---------------------------------------------------------------------

    def _open(self, dest: _Destination, size_limit: int, max_num: int) -> Sink:
        """Open the sink for ``dest``; errors carry nats-server's fatal message."""
        if dest.kind == "file":
            try:
                return FileSink(dest.target, self.format_line, self._direct_line,
                                limit=size_limit, max_num=max_num, clock=self._clock)
            except OSError as exc:
                raise LogSetupError(
                    f"error opening file: {go_os_error('open', dest.target, exc)}") from None
        tag = self._tag or syslog_tag()
        if dest.kind == "remote":
            return open_remote_syslog(dest.target, tag=tag, clock=self._clock)
        if dest.kind == "syslog":
            return open_local_syslog(tag=tag, clock=self._clock)
        return StreamSink(self._stream, self.format_line)

    def _wants_colors(self) -> bool:
        if self._dest.kind != "stream":
            return False
        return _is_tty(self._stream) if self._colors is None else self._colors

    def _check_size_limit(self) -> None:
        """nats-server's ``SetSizeLimit``: a file already too big is rotated at once."""
        sink = self._sink
        if isinstance(sink, FileSink) and sink.over_limit:
            self.notice("Rotating logfile...")

    # -- rendering ------------------------------------------------------------------------

    def _timestamp(self) -> str:
        """``YYYY/MM/DD HH:MM:SS.micros `` or ``""`` without logtime."""
        if not self.logtime:
            return ""
        second, micros = divmod(self._clock() // 1000, 1_000_000)
        if second != self._second:
            parts = time.gmtime(second) if self._utc else time.localtime(second)
            self._second_text = time.strftime("%Y/%m/%d %H:%M:%S", parts)
            self._second = second
        return f"{self._second_text}.{micros:06d} "

    def _json_line(self, level: str, msg: str) -> str:
        record: dict[str, Any] = {}
        if self.logtime:
            record["time"] = self._json_time()
        record["level"] = JSON_LEVELS[level]
        record["pid"] = self._pid
        record["msg"] = msg
        conn = _CONN_RE.match(msg)
        if conn is not None:
            record["remote"] = conn.group(1)
            record[conn.group(2)] = int(conn.group(3))
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"

    def _json_time(self) -> str:
        """RFC 3339 with microseconds: ``2024-01-02T03:04:05.000123+05:30``."""
        second, micros = divmod(self._clock() // 1000, 1_000_000)
        if second != self._json_second:
            parts = time.gmtime(second) if self._utc else time.localtime(second)
            zone = "Z" if self._utc else utc_offset(parts.tm_gmtoff)
            self._json_second_text = time.strftime("%Y-%m-%dT%H:%M:%S.{}", parts) + zone
            self._json_second = second
        return self._json_second_text.format(f"{micros:06d}")

    def _direct_line(self, level: str, msg: str) -> str:
        """A line the file rotation writes itself: in text, nats-server's ``logDirect``
        (local time whatever ``utc`` says, plain label, ``\\r\\n``)."""
        if self._json:
            return self._json_line(level, msg)
        stamp = ""
        if self.logtime:
            second, micros = divmod(self._clock() // 1000, 1_000_000)
            stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(second))
            stamp = f"{stamp}.{micros:06d} "
        return f"{self._pid_prefix}{stamp}[{level}] {msg}\r\n"


def _labels(colors: bool) -> dict[str, str]:
    """Each level's label with its trailing space: ``[INF] `` or its coloured form."""
    if colors:
        return {lvl: f"[{color}{lvl}{_RESET}] " for lvl, color in COLORS.items()}
    return {lvl: f"[{lvl}] " for lvl in COLORS}


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def go_std_log_line(msg: str, now: float | None = None) -> str:
    """``msg`` as Go's standard logger prints it (``2006/01/02 15:04:05 msg\\n``, local
    time, no pid): how nats-server reports a :class:`LogSetupError` before exiting 1."""
    when = time.localtime(time.time() if now is None else now)
    return f"{time.strftime('%Y/%m/%d %H:%M:%S', when)} {msg}\n"


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets (``[::1]:4222``) like Go."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def client_label(version: str = "", lang: str = "", name: str = "") -> str:
    """The quoted client identity nats-server shows after CONNECT.

    Args:
        version: CONNECT ``version`` (shown with a ``v`` in front).
        lang: CONNECT ``lang``.
        name: CONNECT ``name``.

    Returns:
        The non-empty ones joined by ``:`` and Go-quoted (``"v2.16.0:python3:myapp"``,
        ``"go:x"``), or ``""`` when all are empty.
    """
    joined = ":".join(part for part in (f"v{version}" if version else "", lang, name) if part)
    return go_quote(joined) if joined else ""


def conn_prefix(
    host: str,
    port: int,
    cid: int,
    *,
    kind: str = "cid",
    version: str = "",
    lang: str = "",
    name: str = "",
) -> str:
    """The prefix of a connection-scoped log message, as nats-server writes it.

    Args:
        host: Remote IP address.
        port: Remote port.
        cid: Connection id.
        kind: ``cid`` for clients; ``rid`` routes, ``gid`` gateways, ``lid`` leaf
            nodes, ``wid`` websocket, ``mid`` MQTT.
        version: CONNECT ``version`` ("" before CONNECT).
        lang: CONNECT ``lang``.
        name: CONNECT ``name``.

    Returns:
        ``127.0.0.1:53212 - cid:5 - `` or, after CONNECT,
        ``127.0.0.1:53212 - cid:5 - "v2.16.0:python3:myapp" - ``.
    """
    label = client_label(version, lang, name)
    base = f"{host_port(host, port)} - {kind}:{cid} - "
    return f"{base}{label} - " if label else base


__all__ = [
    "COLORS",
    "JSON_LEVELS",
    "LOG_FILE_MODE",
    "LogSetupError",
    "Logger",
    "client_label",
    "conn_prefix",
    "go_quote",
    "go_std_log_line",
    "host_port",
]
