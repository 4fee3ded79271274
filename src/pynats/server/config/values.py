"""Typed reads of configuration tree values, with nats-server's messages.

Theory of operation
-------------------
The options layer (``load.py``, ``blocks.py``) walks the generic tree that
``parser.py`` produces and reads each value through the helpers here. nats-server reads
its tree with Go type assertions (``v.(int64)``); a value of the wrong type panics and
the panic becomes a located error ``interface conversion: interface {} is string, not
int64``. :func:`want` reproduces that: it raises :class:`Mismatch`, which the walker
turns into an error at the offending value's position, so one bad key costs one error
and the walk goes on to report the others.

:class:`Problems` collects errors and warnings in nats-server's formats:

* ``file:line:col: <reason>`` for an error;
* ``file:line:col: unknown field "<key>"`` for an unknown key;
* ``file:line:col: invalid use of field "<key>": <reason>`` for a warning (for example a
  bare integer where a duration is expected: it is taken as seconds).

Durations are Go's ``time.ParseDuration`` syntax (:func:`parse_duration`), with Go's
error texts.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pynats.server.config.parser import Node, Pos
from pynats.server.gotext import go_duration, go_quote

T = TypeVar("T")

#: Go's names for the tree's value types, as a failed type assertion prints them.
_GO_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "bool"),
    (int, "int64"),
    (float, "float64"),
    (str, "string"),
    (list, "[]interface {}"),
    (dict, "map[string]interface {}"),
    (datetime.datetime, "time.Time"),
)


def go_type(value: object) -> str:
    """The Go type nats-server's tree holds for ``value`` (``int64``, ``string``...)."""
    for kind, name in _GO_TYPES:
        if isinstance(value, kind):
            return name
    return type(value).__name__


class Mismatch(Exception):
    """A value of the wrong type: nats-server's failed type assertion."""

    def __init__(self, node: Node, message: str):
        super().__init__(message)
        self.node = node


def want(node: Node, kind: type[T]) -> T:
    """The value of ``node`` if it is a ``kind``; else raise :class:`Mismatch`.

    ``bool`` is not accepted as an ``int`` (Go keeps them apart).
    """
    value = node.value
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    expected = dict(_GO_TYPES).get(kind, kind.__name__)
    raise Mismatch(node, f"interface conversion: interface {{}} is {go_type(value)}, "
                         f"not {expected}")


def want_str(node: Node) -> str:
    return want(node, str)


def want_int(node: Node) -> int:
    return want(node, int)


def want_bool(node: Node) -> bool:
    return want(node, bool)


def want_map(node: Node) -> dict[str, Node]:
    return want(node, dict)


def want_list(node: Node) -> list[Node]:
    return want(node, list)


def want_strings(node: Node) -> tuple[str, ...]:
    """A string or a list of strings (``server_tags``, ``allowed_origins``...)."""
    if isinstance(node.value, list):
        return tuple(want_str(item) for item in node.value)
    return (want_str(node),)


def want_seconds(node: Node) -> float:
    """A number of seconds given as an integer or a float (``authorization.timeout``)."""
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Mismatch(node, f"interface conversion: interface {{}} is {go_type(value)}, "
                             "not float64")
    return float(value)


def where(node: Node) -> Pos:
    """Where nats-server reports a problem with ``node``: its key if it has one.

    nats-server's value tokens carry the position of the key they belong to; only
    array items (which have no key) are reported at the value itself.
    """
    return node.key_pos or node.pos


@dataclass
class Problems:
    """Errors and warnings found while mapping a tree onto options."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, node: Node | None, reason: str) -> None:
        """Record an error at ``node``'s position (none: nats-server gives none either)."""
        self.errors.append(reason if node is None else f"{where(node)}: {reason}")

    def unknown(self, key: str, node: Node) -> None:
        """Record an unknown key, unless it names a variable used elsewhere."""
        if not node.used_variable:
            self.errors.append(f"{where(node)}: unknown field {go_quote(key)}")

    def warn(self, node: Node, key: str, reason: str) -> None:
        """Record a warning about ``key`` at ``node``'s position."""
        self.warnings.append(f"{where(node)}: invalid use of field {go_quote(key)}: {reason}")

    def guard(self, apply: Callable[..., None], *args: Any) -> None:
        """Run ``apply(*args)``; a :class:`Mismatch` inside becomes an error, not an exit."""
        try:
            apply(*args)
        except Mismatch as exc:
            self.error(exc.node, str(exc))

    def read_into(self, fields: dict[str, Any], name: str, read: Callable[[Node], object],
                  node: Node) -> None:
        """``fields[name] = read(node)``, or an error if ``node`` has the wrong type."""
        try:
            fields[name] = read(node)
        except Mismatch as exc:
            self.error(exc.node, str(exc))


# -- durations (Go's time.ParseDuration) -----------------------------------------------

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
          "m": 60.0, "h": 3600.0}
_NUMBER = re.compile(r"[0-9]*(?:\.[0-9]*)?")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``"1h30m"``, ``"500ms"``, ``"-2s"``).

    Raises:
        ValueError: with Go's message, e.g. ``time: invalid duration "abc"``.
    """
    quoted = go_quote(text)
    rest = text
    sign = 1.0
    if rest[:1] in ("-", "+"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        match = _NUMBER.match(rest)
        number = match.group(0) if match else ""
        if not number or number == ".":
            raise ValueError(f"time: invalid duration {quoted}")
        rest = rest[len(number):]
        unit = _leading_unit(rest)
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        rest = rest[len(unit):]
        total += float(number) * _UNITS[unit]
    return sign * total


def _leading_unit(text: str) -> str:
    """The unit at the front of ``text``: every character up to the next digit or dot."""
    end = 0
    while end < len(text) and text[end] not in "0123456789.":
        end += 1
    return text[:end]


def format_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()`` of ``seconds`` (``1m30s``, ``500ms``)."""
    return go_duration(round(seconds * 1e9))


def duration_or_seconds(key: str, node: Node, problems: Problems) -> float:
    """A duration string, or (with nats-server's warning) a bare integer of seconds."""
    if isinstance(node.value, str):
        try:
            return parse_duration(node.value)
        except ValueError as exc:
            problems.error(node, f"error parsing {key}: {exc}")
            return 0.0
    seconds = want_int(node)
    problems.warn(node, key, f"{key} should be converted to a duration")
    return float(seconds)


def duration_string(key: str, node: Node, problems: Problems) -> float | None:
    """A duration that must be a string (``lame_duck_duration``...); None on error."""
    try:
        return parse_duration(want_str(node))
    except ValueError as exc:
        problems.error(node, f"error parsing {key}: {exc}")
        return None


# -- addresses ---------------------------------------------------------------------------

def parse_listen(node: Node) -> tuple[str, int]:
    """``listen``/``http``: a port, or ``"host:port"``; raises ValueError (Go's text)."""
    value: Any = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        return "", value
    if not isinstance(value, str):
        raise ValueError(f"expected port or host:port, got {go_type(value)}")
    host, port = split_host_port(value)
    if not re.fullmatch(r"[+-]?[0-9]+", port):
        raise ValueError(f"could not parse port {go_quote(port)}")
    return host, int(port)


def split_host_port(text: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort`` (brackets for IPv6); raises ValueError on bad input."""
    bad = ValueError(f"could not parse address string {go_quote(text)}")
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise bad
        return text[1:end], text[end + 2:]
    host, sep, port = text.rpartition(":")
    if not sep or ":" in host:
        raise bad
    return host, port
