"""Where log lines go: a stream, a size-rotated file, or syslog (local or remote).

Theory of operation
-------------------
The :class:`~pynats.server.log.Logger` decides *whether* a line is written and hands
``(level, msg)`` to one sink, which decides *how*. Text sinks (:class:`StreamSink`,
:class:`FileSink`) call a ``render`` function owned by the logger (text or JSON line,
so format and timestamp settings can change live); :class:`SyslogSink` builds a
syslog packet from the bare message instead. No sink ever raises from ``emit``: a
line that cannot be written is dropped, because logging must not take the server down.

File rotation (``log_size_limit`` / ``log_max_num``), as nats-server 2.15
``logger/log.go`` does it (verified against the binary):

* the byte count starts at the file's size when it is opened; after each write that
  leaves it *above* the limit, the file is closed and renamed to
  ``<file>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn`` (local time, nanoseconds), a new file is
  opened, and its first line is ``[INF] Rotated log, backup saved as "<backup>"``; the
  count restarts at that line's length;
* with ``log_max_num`` N > 0, only N-1 backups are kept: backups are the names
  ``<base>.<stamp>`` in the same directory whose stamp parses as that date; the oldest
  (by name) are removed, each logged ``[INF] Purged log file "<name>"``;
* these lines the rotation writes itself (nats-server's ``logDirect``) always carry
  local time, even with ``logtime_utc``, and end in ``\\r\\n``; the logger supplies them
  through ``direct`` so JSON logs stay JSON.

Deviations, deliberately: where nats-server panics because the new file cannot be
created after the rename, we reopen the backup and keep logging there with an error
line; and ``log_max_num`` keeps applying after a SIGUSR1 reopen (nats-server forgets it).

Syslog (``logger/syslog.go`` with Go's ``log/syslog``; bytes verified with the binary):

* local syslog (``syslog: true``) connects to ``/dev/log``, ``/var/run/syslog`` or
  ``/var/run/log`` (datagram first, then stream) with facility ``daemon``;
* ``remote_syslog`` takes ``udp://host:port``, ``tcp://host:port`` (the port is
  required: nats-server has no default) or ``unix:///path`` (a stream socket, as
  nats-server; we also accept a datagram socket there), with facility ``kern`` (0),
  because nats-server passes only a severity;
* severities: ``[INF]`` and ``[TRC]`` notice (5), ``[WRN]`` warning (4), ``[ERR]``
  err (3), ``[FTL]`` crit (2), ``[DBG]`` debug (7); the message carries no level label
  and no pid prefix;
* network packet: ``<PRI>2006-01-02T15:04:05Z07:00 <hostname> <tag>[<pid>]: <msg>\\n``;
  local and ``unix://`` packet: ``<PRI>Jan _2 15:04:05 <tag>[<pid>]: <msg>\\n``, both in
  local time; one write per message (no octet counting on TCP); a failed send
  reconnects and retries once, then the line is dropped.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol, TextIO
from urllib.parse import urlsplit

from pynats.server.gotext import go_errno_text, go_os_error, go_quote

#: A function from ``(level, msg)`` to a full line with its newline.
Render = Callable[[str, str], str]

#: Permissions of a newly created log file (before the umask), as nats-server's.
LOG_FILE_MODE = 0o640
#: Syslog severity of each level label (Go's ``log/syslog`` methods nats-server calls).
SEVERITY: dict[str, int] = {"FTL": 2, "ERR": 3, "WRN": 4, "INF": 5, "TRC": 5, "DBG": 7}
FACILITY_KERN = 0
FACILITY_DAEMON = 3
#: Where local syslog is looked for, in order (Go's ``log/syslog``).
LOCAL_SYSLOG_PATHS: tuple[str, ...] = ("/dev/log", "/var/run/syslog", "/var/run/log")
#: The syslog tag when the program name says nothing (``python -m pynats.server``).
DEFAULT_SYSLOG_TAG = "pynats-server"
#: Seconds a syslog stream socket may block on one send before it is dropped.
SYSLOG_SEND_TIMEOUT = 1.0
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_STAMP_RE = re.compile(r"(\d{4})\.(\d\d)\.(\d\d)\.(\d\d)\.(\d\d)\.(\d\d)(?:\.\d{1,9})?")


class LogSetupError(OSError):
    """A log destination cannot be set up; ``str()`` is nats-server's fatal message.

    For example ``error opening file: open /x/n.log: no such file or directory`` or
    ``error connecting to syslog: "dial tcp 127.0.0.1:1: connect: connection refused"``.
    nats-server prints it with Go's standard logger (see ``log.go_std_log_line``) and
    exits with status 1.
    """


class Sink(Protocol):
    """One log destination."""

    #: ``"stream"``, ``"file"`` or ``"syslog"``.
    kind: str

    def emit(self, level: str, msg: str) -> None:
        """Write one message; never raises."""

    def close(self) -> None:
        """Release the destination (a stream sink leaves its stream open)."""


# -- stream ------------------------------------------------------------------------------


class StreamSink:
    """Lines to a text stream (stderr), written with one ``write`` and flushed."""

    kind = "stream"

    def __init__(self, stream: TextIO, render: Render) -> None:
        self.stream = stream
        self.render = render

    def emit(self, level: str, msg: str) -> None:
        """Write the rendered line and flush; a closed or broken stream drops it."""
        try:
            self.stream.write(self.render(level, msg))
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        """Nothing to do: the stream belongs to the caller."""


# -- file --------------------------------------------------------------------------------


class FileSink:
    """Lines appended to a file, rotated by size like nats-server.

    Args:
        path: The log file (created with :data:`LOG_FILE_MODE`).
        render: Renders ordinary lines.
        direct: Renders the lines rotation writes itself (``Rotated log ...``).
        limit: Rotate once the file grows above this many bytes (0: never).
        max_num: Files to keep, the current one included (0: keep all backups).
        clock: Nanoseconds since the epoch, for backup names.

    Raises:
        LogSetupError: The file cannot be opened.
    """

    kind = "file"

    def __init__(
        self,
        path: str,
        render: Render,
        direct: Render,
        *,
        limit: int = 0,
        max_num: int = 0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = path
        self.render = render
        self.direct = direct
        self.limit = limit
        self.max_num = max_num
        self._clock = clock
        self._lock = threading.Lock()
        self._fd: int | None = _open_fd(path)
        self.size = _fd_size(self._fd)
        self._rotate_at = limit

    @property
    def over_limit(self) -> bool:
        """Whether the file is already above a set limit (nats-server then logs
        ``Rotating logfile...``, which rotates it)."""
        return self.limit > 0 and self.size > self.limit

    def set_limits(self, limit: int, max_num: int) -> None:
        """Change ``log_size_limit`` and ``log_max_num`` (config reload)."""
        with self._lock:
            self.limit = self._rotate_at = limit
            self.max_num = max_num

    def emit(self, level: str, msg: str) -> None:
        """Append the rendered line; rotate when the file went above the limit."""
        data = self.render(level, msg).encode("utf-8", "backslashreplace")
        with self._lock:
            if self._fd is None or not _write_all(self._fd, data):
                return
            self.size += len(data)
            if self._rotate_at > 0 and self.size > self._rotate_at:
                self._rotate()

    def reopen(self) -> None:
        """Open the path again (after logrotate moved it) and close the old file.

        Raises:
            OSError: The file cannot be opened; the old one stays in use.
        """
        fd = _open_fd(self.path)
        with self._lock:
            old, self._fd = self._fd, fd
            self.size = _fd_size(fd)
            self._rotate_at = self.limit
        if old is not None:
            _close_fd(old)

    def close(self) -> None:
        """Close the file; later lines are dropped."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            _close_fd(fd)

    # -- rotation (lock held) ----------------------------------------------------------

    def _rotate(self) -> None:
        assert self._fd is not None
        try:
            os.close(self._fd)
        except OSError as exc:
            self._fd = _open_fd_or_none(self.path)
            self._rotate_at *= 2
            reason = go_os_error("close", self.path, exc)
            self._write_direct("ERR", f"Unable to close logfile for rotation ({reason}), will "
                                      f"attempt next rotation at size {self._rotate_at}")
            return
        backup = f"{self.path}.{backup_stamp(self._clock())}"
        with contextlib.suppress(OSError):
            os.rename(self.path, backup)
        try:
            self._fd = _open_fd(self.path)
        except OSError as exc:
            self._fd = _open_fd_or_none(backup)
            reason = go_os_error("open", self.path, exc)
            self._write_direct("ERR", f"Unable to re-open the logfile {go_quote(self.path)} "
                                      f"after rotation: {reason}")
            return
        self.size = self._write_direct("INF", f"Rotated log, backup saved as {go_quote(backup)}")
        self._rotate_at = self.limit
        if self.max_num > 0:
            self._purge()

    def _purge(self) -> None:
        folder = os.path.dirname(self.path) or "."
        base = os.path.basename(self.path)
        try:
            backups = sorted(
                entry.name for entry in os.scandir(folder)
                if not entry.is_dir(follow_symlinks=False) and is_backup_name(base, entry.name)
            )
        except OSError as exc:
            self._write_direct("ERR", f"Unable to read directory {go_quote(folder)} for log "
                                      f"purge ({go_os_error('open', folder, exc)}), will "
                                      "attempt next rotation")
            return
        for name in backups[: max(len(backups) - (self.max_num - 1), 0)]:
            victim = os.path.join(folder, name)
            try:
                os.remove(victim)
            except OSError as exc:
                self._write_direct("ERR", f"Unable to remove backup log file {go_quote(name)} "
                                          f"({go_os_error('remove', victim, exc)}), will "
                                          "attempt next rotation")
                return
            self._write_direct("INF", f"Purged log file {go_quote(name)}")

    def _write_direct(self, level: str, msg: str) -> int:
        """Write a rotation line; returns its length in bytes."""
        data = self.direct(level, msg).encode("utf-8", "backslashreplace")
        if self._fd is not None:
            _write_all(self._fd, data)
        return len(data)


def backup_stamp(now_ns: int) -> str:
    """The suffix of a rotated file: local ``YYYY.MM.DD.hh.mm.ss.nnnnnnnnn``."""
    seconds, nanos = divmod(now_ns, 1_000_000_000)
    t = time.localtime(seconds)
    return (f"{t.tm_year:04d}.{t.tm_mon:02d}.{t.tm_mday:02d}."
            f"{t.tm_hour:02d}.{t.tm_min:02d}.{t.tm_sec:02d}.{nanos:09d}")


def is_backup_name(base: str, name: str) -> bool:
    """Whether ``name`` is a rotated backup of the log file named ``base``.

    As nats-server decides it: ``<base>.`` followed by a valid date and time
    ``YYYY.MM.DD.hh.mm.ss`` with an optional fraction of up to 9 digits.
    """
    prefix = base + "."
    if not name.startswith(prefix):
        return False
    match = _STAMP_RE.fullmatch(name[len(prefix):])
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


def _open_fd(path: str) -> int:
    """Open ``path`` for appending, creating it with :data:`LOG_FILE_MODE`."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, LOG_FILE_MODE)


def _open_fd_or_none(path: str) -> int | None:
    try:
        return _open_fd(path)
    except OSError:
        return None


def _fd_size(fd: int) -> int:
    return os.fstat(fd).st_size


def _write_all(fd: int, data: bytes) -> bool:
    """Write all of ``data``; False if the file refused it."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        return False
    return True


def _close_fd(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)


# -- syslog ------------------------------------------------------------------------------


class _Transport:
    """A socket to a syslog server that reconnects once when a send fails."""

    def __init__(self, connect: Callable[[], socket.socket]) -> None:
        self._connect = connect
        self._sock: socket.socket | None = connect()

    def send(self, data: bytes) -> None:
        for _ in range(2):
            if self._sock is None:
                try:
                    self._sock = self._connect()
                except OSError:
                    return
            try:
                self._sock.sendall(data)
                return
            except OSError:
                self.close()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class SyslogSink:
    """Messages to syslog, one packet each, as Go's ``log/syslog`` writes them.

    Build one with :func:`open_local_syslog` or :func:`open_remote_syslog`.

    Args:
        transport: The connected socket wrapper.
        facility: Syslog facility number (daemon locally, kern remotely).
        tag: The program name in each packet.
        hostname: Included (after an RFC 3339 timestamp) for network syslog; None for
            local sockets, which get a ``Jan _2 15:04:05`` timestamp and no hostname.
        clock: Nanoseconds since the epoch.
    """

    kind = "syslog"

    def __init__(
        self,
        transport: _Transport,
        *,
        facility: int,
        tag: str,
        hostname: str | None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._transport = transport
        self._facility = facility
        self._tag = tag
        self._hostname = hostname
        self._clock = clock
        self._pid = os.getpid()

    def emit(self, level: str, msg: str) -> None:
        """Send ``msg`` with the severity of ``level``; a lost server drops it."""
        priority = self._facility * 8 + SEVERITY[level]
        packet = syslog_packet(priority, msg, tag=self._tag, pid=self._pid,
                               hostname=self._hostname, now_ns=self._clock())
        self._transport.send(packet)

    def close(self) -> None:
        """Close the socket."""
        self._transport.close()


def syslog_packet(
    priority: int, msg: str, *, tag: str, pid: int, hostname: str | None, now_ns: int
) -> bytes:
    """One syslog message as Go's ``log/syslog`` formats it.

    Args:
        priority: ``facility * 8 + severity``.
        msg: The message (a newline is added unless it ends with one).
        tag: Program name.
        pid: Process id.
        hostname: For network syslog; None for a local socket.
        now_ns: The time, nanoseconds since the epoch (shown in local time).
    """
    seconds = now_ns // 1_000_000_000
    newline = "" if msg.endswith("\n") else "\n"
    if hostname is None:
        head = f"<{priority}>{_go_stamp(seconds)} {tag}[{pid}]: "
    else:
        head = f"<{priority}>{_go_rfc3339(seconds)} {hostname} {tag}[{pid}]: "
    return (head + msg + newline).encode("utf-8", "backslashreplace")


def _go_stamp(seconds: int) -> str:
    """Go's ``time.Stamp`` in local time: ``Jan _2 15:04:05``."""
    t = time.localtime(seconds)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def _go_rfc3339(seconds: int) -> str:
    """Go's ``time.RFC3339`` in local time: ``2006-01-02T15:04:05+01:00`` or ``...Z``."""
    t = time.localtime(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + utc_offset(t.tm_gmtoff)


def utc_offset(offset_seconds: int) -> str:
    """An RFC 3339 zone: ``Z`` for UTC, else ``+05:30`` / ``-08:00``."""
    if offset_seconds == 0:
        return "Z"
    sign = "+" if offset_seconds > 0 else "-"
    minutes = abs(offset_seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def syslog_tag(argv0: str | None = None) -> str:
    """The syslog tag: the program's base name, as nats-server uses ``os.Args[0]``.

    ``python -m pynats.server`` (a ``.py`` path), ``python -c`` and ``python -`` give
    :data:`DEFAULT_SYSLOG_TAG`.
    """
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    if name in ("", "-", "-c") or name.endswith(".py"):
        return DEFAULT_SYSLOG_TAG
    return name


def open_local_syslog(
    *, tag: str, clock: Callable[[], int] = time.time_ns,
    paths: tuple[str, ...] | None = None,
) -> SyslogSink:
    """Connect to the local syslog daemon (``syslog: true``).

    Args:
        tag: Program name in each packet.
        clock: Nanoseconds since the epoch.
        paths: Sockets to try (default :data:`LOCAL_SYSLOG_PATHS`).

    Raises:
        LogSetupError: No syslog socket accepts a connection
            (``error connecting to syslog: "Unix syslog delivery error"``).
    """
    candidates = LOCAL_SYSLOG_PATHS if paths is None else paths

    def connect() -> socket.socket:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            for path in candidates:
                with contextlib.suppress(OSError):
                    return _connect_unix(path, kind)
        raise OSError("Unix syslog delivery error")

    transport = _setup(connect)
    return SyslogSink(transport, facility=FACILITY_DAEMON, tag=tag, hostname=None, clock=clock)


def open_remote_syslog(
    url: str, *, tag: str, clock: Callable[[], int] = time.time_ns
) -> SyslogSink:
    """Connect to ``remote_syslog`` (``udp://host:port``, ``tcp://host:port``,
    ``unix:///path``).

    Raises:
        LogSetupError: With nats-server's message for a bad URL
            (``error invalid network type: "http"``) or a failed connection.
    """
    network, address = parse_syslog_url(url)
    if network == "unix":
        transport = _setup(lambda: _dial_unix(address))
        return SyslogSink(transport, facility=FACILITY_KERN, tag=tag, hostname=None,
                          clock=clock)
    host, port = _split_host_port(network, address)
    transport = _setup(lambda: _dial_inet(network, address, host, port))
    return SyslogSink(transport, facility=FACILITY_KERN, tag=tag,
                      hostname=socket.gethostname(), clock=clock)


def parse_syslog_url(url: str) -> tuple[str, str]:
    """``(network, address)`` of a ``remote_syslog`` URL, as nats-server reads it.

    ``udp``/``tcp`` give the URL's host part (``127.0.0.1:514``), ``unix`` its path.

    Raises:
        LogSetupError: Another scheme, or a URL Go would not parse.
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise LogSetupError(f"parse {go_quote(url)}: {exc}") from None
    if not parts.scheme and ":" in url.split("/", 1)[0]:
        raise LogSetupError(
            f"parse {go_quote(url)}: first path segment in URL cannot contain colon")
    network = parts.scheme.lower()
    if network in ("udp", "tcp"):
        return network, parts.netloc.rpartition("@")[2]
    if network == "unix":
        return network, parts.path
    raise LogSetupError(f"error invalid network type: {go_quote(parts.scheme)}")


def _setup(connect: Callable[[], socket.socket]) -> _Transport:
    """Make the first connection; a failure is nats-server's fatal syslog error."""
    try:
        return _Transport(connect)
    except OSError as exc:
        detail = exc.args[0] if len(exc.args) == 1 else str(exc)
        raise LogSetupError(f"error connecting to syslog: {go_quote(str(detail))}") from None


def _split_host_port(network: str, address: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort`` for dialing; errors worded like ``net.Dial``'s."""
    if not address:
        raise LogSetupError(f'error connecting to syslog: "dial {network}: missing address"')
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if bracket and rest.startswith(":"):
            return host, rest[1:]
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, port
    reason = "too many colons" if address.count(":") > 1 else "missing port"
    raise LogSetupError(f"error connecting to syslog: "
                        f'"dial {network}: address {address}: {reason} in address"')


def _dial_inet(network: str, address: str, host: str, port: str) -> socket.socket:
    """Connect a UDP or TCP socket like Go's ``net.Dial``; OSError texts are Go's."""
    kind = socket.SOCK_DGRAM if network == "udp" else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(host or "127.0.0.1", port or 0, type=kind)
    except socket.gaierror:
        raise OSError(f"dial {network}: lookup {host}: no such host") from None
    last: OSError = OSError(f"dial {network} {address}: connect: no address")
    for family, socktype, proto, _, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(SYSLOG_SEND_TIMEOUT * 5)
            sock.connect(sockaddr)
            sock.settimeout(SYSLOG_SEND_TIMEOUT)
            return sock
        except OSError as exc:
            sock.close()
            last = OSError(f"dial {network} {address}: connect: {_errno_text(exc)}")
    raise last


def _dial_unix(path: str) -> socket.socket:
    """A stream socket as nats-server uses; a datagram one if the server wants that."""
    try:
        return _connect_unix(path, socket.SOCK_STREAM)
    except OSError as exc:
        if exc.errno != errno.EPROTOTYPE:
            raise OSError(f"dial unix {path}: connect: {_errno_text(exc)}") from None
    try:
        return _connect_unix(path, socket.SOCK_DGRAM)
    except OSError as exc:
        raise OSError(f"dial unix {path}: connect: {_errno_text(exc)}") from None


def _connect_unix(path: str, kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        sock.settimeout(SYSLOG_SEND_TIMEOUT)
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def _errno_text(exc: OSError) -> str:
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return "i/o timeout"
    return go_errno_text(exc.errno) if exc.errno else str(exc)


__all__ = [
    "DEFAULT_SYSLOG_TAG",
    "LOCAL_SYSLOG_PATHS",
    "LOG_FILE_MODE",
    "SEVERITY",
    "FileSink",
    "LogSetupError",
    "Render",
    "Sink",
    "StreamSink",
    "SyslogSink",
    "backup_stamp",
    "is_backup_name",
    "open_local_syslog",
    "open_remote_syslog",
    "parse_syslog_url",
    "syslog_packet",
    "syslog_tag",
    "utc_offset",
]
