"""Terminal-aware output for the CLI: errors, numbers, JSON and progress bars.

Theory of operation
-------------------
Everything the commands print goes through here so that one rule holds everywhere:
decorations (colour, progress bars, carriage-return updates) only when the stream is a
terminal; when stdout is piped the output is plain lines that a script can parse, and
commands that print a summary offer ``--json`` instead. Errors are one line on stderr,
``pynats: error: ...``, raised as :class:`CliError` by the commands and printed by
:func:`pynats.cli.main`, which also picks the exit status.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from typing import Any, TextIO

PROG = "pynats"


class CliError(Exception):
    """A failure to report as one line on stderr, with an exit status.

    Args:
        message: what went wrong, without the ``pynats: error:`` prefix.
        status: the exit status (1 unless a command documents another).
    """

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


def is_tty(stream: TextIO) -> bool:
    """True when ``stream`` is an interactive terminal (and ``NO_COLOR`` does not matter)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set (no-color.org)."""
    return is_tty(stream) and not os.environ.get("NO_COLOR")


def bold(text: str, stream: TextIO | None = None) -> str:
    """``text`` in bold when ``stream`` (default stdout) takes colour."""
    return f"\x1b[1m{text}\x1b[0m" if use_colour(stream or sys.stdout) else text


def error_line(message: str) -> None:
    """Print ``pynats: error: message`` on stderr."""
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    print(json.dumps(data, indent=2, sort_keys=False), flush=True)


def commas(value: float) -> str:
    """An integer with thousands separators: ``1,234,567``."""
    return f"{round(value):,}"


def human_bytes(size: float) -> str:
    """Bytes in binary units as natscli prints them: ``128 B``, ``1.0 KiB``, ``2.5 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def parse_size(text: str) -> int:
    """A byte count with an optional unit (``128``, ``1K``, ``1KB``, ``2MiB``), 1024 based.

    Raises:
        ValueError: not a size.
    """
    raw = text.strip().upper()
    units = {"": 0, "B": 0, "K": 10, "KB": 10, "KIB": 10, "M": 20, "MB": 20, "MIB": 20,
             "G": 30, "GB": 30, "GIB": 30}
    digits = raw.rstrip("KMGIB")
    unit = raw[len(digits):]
    if not digits.isdigit() or unit not in units:
        raise ValueError(f"invalid size {text!r}: use a number with B, K, KB, M, MB, G or GB")
    return int(digits) << units[unit]


def parse_duration(text: str) -> float:
    """Seconds from ``1.5``, ``500ms``, ``2s``, ``1m`` or ``10us`` (Go-style units).

    Raises:
        ValueError: not a duration.
    """
    raw = text.strip().lower()
    for suffix, scale in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9),
                          ("s", 1.0), ("m", 60.0), ("h", 3600.0)):
        if raw.endswith(suffix):
            raw, factor = raw[: -len(suffix)], scale
            break
    else:
        factor = 1.0
    try:
        value = float(raw) * factor
    except ValueError:
        raise ValueError(f"invalid duration {text!r}: use e.g. 500ms, 2s or 1.5") from None
    if value < 0:
        raise ValueError(f"invalid duration {text!r}: negative")
    return value


def format_duration(seconds: float) -> str:
    """A short duration: ``812µs``, ``1.25ms``, ``3.5s``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f}ms"
    return f"{seconds:.2f}s"


class Progress:
    """Progress bars on stderr, redrawn in place; silent when stderr is not a terminal.

    Args:
        labels: one bar per label, drawn in this order.
        totals: the count that fills each bar.
        enabled: draw at all (``None``: only when stderr is a terminal).
    """

    def __init__(self, labels: list[str], totals: list[int], enabled: bool | None = None):
        self.labels = labels
        self.totals = totals
        self.enabled = is_tty(sys.stderr) if enabled is None else enabled
        self._drawn = 0
        self._last = 0.0

    def update(self, counts: list[int], force: bool = False) -> None:
        """Redraw with ``counts`` (at most 10 times a second unless ``force``)."""
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.1:
            return
        self._last = now
        width = max(10, min(50, shutil.get_terminal_size((80, 20)).columns - 40))
        label_width = max(len(label) for label in self.labels)
        lines = []
        for label, total, count in zip(self.labels, self.totals, counts, strict=True):
            share = min(1.0, count / total) if total else 1.0
            filled = int(share * width)
            bar = "█" * filled + "░" * (width - filled)
            lines.append(f"{label:>{label_width}} {bar} {share * 100:5.1f}% "
                         f"{commas(count)}/{commas(total)}")
        out = sys.stderr
        if self._drawn:
            out.write(f"\x1b[{self._drawn}F")
        out.write("".join(f"\x1b[2K{line}\n" for line in lines))
        out.flush()
        self._drawn = len(lines)

    def close(self, counts: list[int]) -> None:
        """Draw the final state and leave the bars on screen."""
        self.update(counts, force=True)
