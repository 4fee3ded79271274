"""nats-server's log format: one line per event, flushed at once.

Theory of operation
-------------------
A line is ``[<pid>] <date> <time>.<micros> [<LVL>] <message>``, exactly what
nats-server's logger writes (Go ``log`` flags ``LstdFlags|Lmicroseconds`` behind a
``[pid] `` prefix); with ``logtime`` off the timestamp is left out:
``[12345] [INF] Server is ready``. Times are local unless ``utc``.

:class:`Logger` writes to a log file (opened in append mode, always plain) or else to
a stream, stderr by default, where the level label is coloured when the stream is a
terminal (``[\\x1b[32mINF\\x1b[0m]``). Every line is written with one ``write`` and
flushed, because test harnesses and supervisors wait for lines through a pipe.
Nothing it does may crash the server: a closed or broken stream drops the line.

Hot paths check the plain attributes ``debug_enabled`` / ``trace_enabled`` before
building a message. The formatted date and time is cached per second, so a line
costs one clock read and a few string joins.

:meth:`Logger.reopen` closes and reopens the file (SIGUSR1, after logrotate has
renamed it) and logs the same notice nats-server does.

:func:`conn_prefix` builds the connection description nats-server puts in front of
connection-scoped messages, ``127.0.0.1:53212 - cid:5 - ``; once CONNECT gave a
version, lang or name it becomes ``127.0.0.1:53212 - cid:5 - "v2.16.0:python3:myapp" - ``
(the present ones, joined by ``:``, quoted like Go's ``%q``; observed with nats-server
2.15.1). :func:`go_quote` is that quoting, also used by messages like
``authentication error - User "alice"``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, TextIO

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
#: Permissions of a newly created log file (before the umask), as nats-server's.
LOG_FILE_MODE = 0o640

_GO_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", '"': '\\"', "\\": "\\\\",
}


class Logger:
    """A nats-server style logger.

    Attributes:
        debug_enabled: ``[DBG]`` lines are written only when true.
        trace_enabled: ``[TRC]`` lines are written only when true.
        logtime: Whether lines carry a timestamp.
        path: The log file, or ``""`` when writing to the stream.
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
    ) -> None:
        """Create a logger; opens ``path`` (append mode) if given.

        Args:
            debug: Write ``[DBG]`` lines.
            trace: Write ``[TRC]`` lines.
            logtime: Prefix lines with the date and time.
            utc: Timestamps in UTC instead of local time.
            path: Log file; when empty, lines go to ``stream``.
            stream: Where lines go without a file (default: ``sys.stderr`` now).
            colors: Colour the labels; None means only when ``stream`` is a terminal.
                Files are never coloured.
            clock: Nanoseconds since the epoch (tests pass a fixed one).

        Raises:
            OSError: The log file cannot be opened.
        """
        self.debug_enabled = debug
        self.trace_enabled = trace
        self.logtime = logtime
        self._utc = utc
        self.path = path
        self._stream: TextIO = stream if stream is not None else sys.stderr
        self._out: IO[str] | None = _open_log(path) if path else self._stream
        self._clock = clock
        self._pid = f"[{os.getpid()}] "
        wants_colors = _is_tty(self._stream) if colors is None else colors
        self._labels = _labels(wants_colors and not path)
        self._second = -1
        self._second_text = ""

    @property
    def utc(self) -> bool:
        """Whether timestamps are UTC rather than local time (settable)."""
        return self._utc

    @utc.setter
    def utc(self, value: bool) -> None:
        self._utc = value
        self._second = -1  # the cached date and time is in the old zone

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
        not a file logger`` without one, as nats-server does. If the file cannot be
        opened the old one stays in use and an error is logged to it.

        Returns:
            Whether a file was reopened.
        """
        if not self.path:
            self.notice("File log re-open ignored, not a file logger")
            return False
        try:
            new = _open_log(self.path)
        except OSError as exc:
            self.error(f"Unable to re-open log file {self.path}: {exc}")
            return False
        old, self._out = self._out, new
        if old is not None:
            _close_quietly(old)
        self.notice("File log re-opened")
        return True

    def close(self) -> None:
        """Close the log file; later lines are dropped. The stream is left open."""
        out, self._out = self._out, None
        if out is not None and self.path:
            _close_quietly(out)

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
        """The full line (with newline) for ``msg`` at ``level`` (``"INF"`` ...)."""
        return f"{self._pid}{self._timestamp()}{self._labels[level]}{msg}\n"

    def _log(self, level: str, msg: str) -> None:
        out = self._out
        if out is None:
            return
        try:
            out.write(self.format_line(level, msg))
            out.flush()
        except (OSError, ValueError):
            pass  # closed or broken: logging must never take the server down

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


def _labels(colors: bool) -> dict[str, str]:
    """Each level's label with its trailing space: ``[INF] `` or its coloured form."""
    if colors:
        return {lvl: f"[{color}{lvl}{_RESET}] " for lvl, color in COLORS.items()}
    return {lvl: f"[{lvl}] " for lvl in COLORS}


def _open_log(path: str) -> IO[str]:
    """Open ``path`` for appending, creating it with :data:`LOG_FILE_MODE`."""
    return open(
        path, "a", encoding="utf-8", errors="backslashreplace",
        opener=lambda p, flags: os.open(p, flags, LOG_FILE_MODE),
    )


def _close_quietly(out: IO[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        out.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def go_quote(text: str) -> str:
    """Quote ``text`` like Go's ``%q`` / ``strconv.Quote``.

    Args:
        text: Any string.

    Returns:
        ``text`` in double quotes, with ``"`` and ``\\`` escaped and unprintable
        characters written as ``\\n``, ``\\x01``, ``\\u00a0`` ...
    """
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return '"' + "".join(_go_char(char) for char in text) + '"'


def _go_char(char: str) -> str:
    """One character of :func:`go_quote`'s output."""
    if char in _GO_ESCAPES:
        return _GO_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if 0xDC80 <= code <= 0xDCFF:  # a byte smuggled in by surrogateescape: Go shows the byte
        return f"\\x{code - 0xDC00:02x}"
    if 0xD800 <= code <= 0xDFFF:
        return "\\ufffd"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


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
