"""Go's spellings of quoted strings, durations, booleans and OS errors.

Theory of operation
-------------------
nats-server builds many of its messages with Go's ``%q`` verb, writes durations with
``time.Duration.String()``, reads booleans with ``strconv.ParseBool`` and prints OS
errors the way Go's ``os`` and ``syscall`` packages spell them (``open /x: no such file
or directory``; errno texts are glibc's with a lower-case first letter). Several modules
(the logger, its sinks, ``--signal``, flags, configuration, monitoring) need the same
spellings, so they live here, below all of them, where no import cycle can form.
"""

from __future__ import annotations

import os

#: ``strconv.ParseBool``'s spellings of true and false.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_NS_PER_SECOND = 1_000_000_000

_GO_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
    "\v": "\\v", '"': '\\"', "\\": "\\\\",
}


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


def go_bool(text: str) -> bool | None:
    """Go's ``strconv.ParseBool``: True or False, or None when ``text`` is neither."""
    if text in GO_TRUE:
        return True
    if text in GO_FALSE:
        return False
    return None


def go_duration(ns: int) -> str:
    """Format a duration like Go's ``time.Duration.String()``.

    Args:
        ns: The duration in nanoseconds.

    Returns:
        ``0s``, ``300ns``, ``512µs``, ``1.234567ms``, ``2m3.5s``, ``1h0m0s`` ...
    """
    if ns == 0:
        return "0s"
    sign, u = ("-", -ns) if ns < 0 else ("", ns)
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_decimal(u, 1_000)}µs"
    if u < _NS_PER_SECOND:
        return f"{sign}{_decimal(u, 1_000_000)}ms"
    secs, frac = divmod(u, _NS_PER_SECOND)
    text = f"{secs % 60}{_fraction(frac, 9)}s"
    mins = secs // 60
    if mins:
        text = f"{mins % 60}m{text}"
        if mins >= 60:
            text = f"{mins // 60}h{text}"
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    return f"{whole}{_fraction(rest, len(str(unit)) - 1)}"


def _fraction(rest: int, digits: int) -> str:
    return f".{rest:0{digits}d}".rstrip("0") if rest else ""


def go_errno_text(errno: int) -> str:
    """Go's text for ``errno`` (``syscall.Errno.Error()``): ``no such process`` ..."""
    text = os.strerror(errno)
    return text[:1].lower() + text[1:]


def go_os_error(op: str, path: str, exc: OSError) -> str:
    """An OS error as Go's ``*os.PathError`` prints it: ``open /x/y: permission denied``.

    Args:
        op: The operation (``open``, ``remove``, ``rename`` ...).
        path: The path it was applied to.
        exc: The Python error.
    """
    detail = go_errno_text(exc.errno) if exc.errno else (exc.strerror or str(exc))
    return f"{op} {path}: {detail}"
