"""Go's spellings of quoted strings and OS errors, for messages copied from nats-server.

Theory of operation
-------------------
nats-server builds many of its messages with Go's ``%q`` verb and prints OS errors the
way Go's ``os`` and ``syscall`` packages spell them (``open /x: no such file or
directory``; errno texts are glibc's with a lower-case first letter). Several modules
(the logger, its sinks, ``--signal``) need the same spellings, so they live here,
below all of them, where no import cycle can form.
"""

from __future__ import annotations

import os

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
