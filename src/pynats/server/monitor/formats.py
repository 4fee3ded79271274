"""How monitoring writes times, durations and numbers, and how it reads query values.

Theory of operation
-------------------
Every monitoring endpoint answers in nats-server's JSON dialect, which is Go's
``encoding/json`` applied to Go types. The builders (``varz.py``, ``connz.py``, ...)
produce plain ``dict``\\ s; this module holds the few conversions they share so that
each Go type is rendered one way everywhere:

* ``time.Time`` is RFC 3339 with up to nine fractional digits, trailing zeros dropped
  (Go's ``time.RFC3339Nano``): :func:`rfc3339`. Times are carried as integer
  nanoseconds since the epoch (:func:`to_ns` converts a ``time.time()`` float);
* ``uptime`` and ``idle`` use nats-server's compact ``1y2d3h4m5s`` (:func:`uptime`),
  ``rtt`` Go's ``time.Duration.String()`` (:func:`go_duration`, :func:`rtt_string`);
  :func:`parse_duration` reads both back (the Prometheus view needs seconds);
* a ``float64`` that holds a whole number is written without a fraction (``2``, not
  ``2.0``): :func:`go_number`.

Query values are decoded like nats-server's ``decodeBool``, ``decodeInt`` and
``decodeUint64`` (Go's ``strconv``), and a value Go would reject raises
:class:`QueryError` carrying nats-server's exact message; the HTTP shell answers it
with a ``400`` and that text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pynats.server.gotext import go_bool, go_duration, go_quote

#: A JSON object as built by the monitoring modules (values are JSON-ready).
JSONObject = dict[str, Any]

NS_PER_SECOND: Final = 1_000_000_000
_INT_RE: Final = re.compile(r"[+-]?[0-9]+")
_UINT_RE: Final = re.compile(r"[0-9]+")
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_DURATION_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0,
                          "m": 60.0, "h": 3600.0, "d": 86400.0, "y": 365 * 86400.0}
_DURATION_PART_RE: Final = re.compile(r"([0-9]+(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h|d|y)")


class QueryError(ValueError):
    """A monitoring query parameter nats-server rejects; ``str()`` is its exact message."""


@dataclass(frozen=True, slots=True)
class Traffic:
    """Message and byte totals: ``in_*`` received from peers, ``out_*`` sent to them."""

    in_msgs: int = 0
    in_bytes: int = 0
    out_msgs: int = 0
    out_bytes: int = 0


# -- times and durations ---------------------------------------------------------------


def to_ns(timestamp: float) -> int:
    """A ``time.time()`` float as nanoseconds, kept to the microseconds it can hold."""
    return round(timestamp * 1_000_000) * 1_000


def rfc3339(ns: int, *, utc: bool = True) -> str:
    """Format a Unix time as Go's ``time.RFC3339Nano`` does.

    Args:
        ns: Nanoseconds since the epoch.
        utc: UTC with a ``Z``; otherwise local time with its offset (``+05:30``).

    Returns:
        For example ``2026-11-26T21:35:41.5447632Z``: trailing zeros of the fraction
        are dropped, and so is the dot when the fraction is zero.
    """
    secs, frac = divmod(ns, NS_PER_SECOND)
    parts = time.gmtime(secs) if utc else time.localtime(secs)
    offset = 0 if utc else parts.tm_gmtoff
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    return time.strftime("%Y-%m-%dT%H:%M:%S", parts) + fraction + _zone(offset)


def _zone(offset: int) -> str:
    if offset == 0:
        return "Z"
    minutes = abs(offset) // 60
    return f"{'+' if offset > 0 else '-'}{minutes // 60:02d}:{minutes % 60:02d}"


def uptime(ns: int) -> str:
    """Format a duration like nats-server's ``myUptime``: whole seconds, compact.

    Args:
        ns: The duration in nanoseconds (negative counts as zero).

    Returns:
        ``4s``, ``3m20s``, ``5h0m1s``, ``2d3h4m5s`` or ``1y2d3h4m5s``.
    """
    secs = max(ns, 0) // NS_PER_SECOND
    mins, hours, days = secs // 60, secs // 3600, secs // 86400
    years = days // 365
    if years:
        return f"{years}y{days % 365}d{hours % 24}h{mins % 60}m{secs % 60}s"
    if days:
        return f"{days}d{hours % 24}h{mins % 60}m{secs % 60}s"
    if hours:
        return f"{hours}h{mins % 60}m{secs % 60}s"
    if mins:
        return f"{mins}m{secs % 60}s"
    return f"{secs}s"


def rtt_string(seconds: float) -> str:
    """A connection's round-trip time as nats-server shows it (``getRTT().String()``).

    Args:
        seconds: The measured RTT; 0 when unknown.

    Returns:
        A Go duration string, truncated to whole microseconds between 1µs and 1ms.
    """
    ns = round(seconds * NS_PER_SECOND)
    if 1_000 < ns < 1_000_000:
        ns -= ns % 1_000
    return go_duration(ns)


def parse_duration(text: str) -> float | None:
    """Read a Go duration (``1.5ms``) or a compact uptime (``2d3h4m5s``) as seconds.

    Args:
        text: The duration as monitoring writes it.

    Returns:
        Seconds, or None when ``text`` is not a duration.
    """
    body = text[1:] if text.startswith("-") else text
    if body == "0":
        return 0.0
    total, pos = 0.0, 0
    for match in _DURATION_PART_RE.finditer(body):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(body):
        return None
    return -total if text.startswith("-") else total


def go_number(value: float) -> int | float:
    """A float as Go's JSON encoder writes it: whole values have no fraction."""
    return int(value) if value.is_integer() else value


def text(data: bytes) -> str:
    """Bytes from the wire (subjects, sids, queue names) as JSON text."""
    return data.decode("utf-8", errors="replace")


# -- query decoding --------------------------------------------------------------------


def parse_bool(params: Mapping[str, str], name: str) -> bool:
    """Decode a boolean parameter like nats-server's ``decodeBool``.

    Args:
        params: Query parameters (first value of each).
        name: The parameter.

    Returns:
        False when absent or empty, otherwise Go's ``strconv.ParseBool`` of the value.

    Raises:
        QueryError: The value is not one of Go's boolean spellings.
    """
    value = params.get(name, "")
    decoded = go_bool(value) if value else False
    if decoded is not None:
        return decoded
    raise QueryError(f"Error decoding boolean for '{name}': strconv.ParseBool: "
                     f"parsing {go_quote(value)}: invalid syntax")


def parse_int(params: Mapping[str, str], name: str) -> int:
    """Decode an integer parameter like nats-server's ``decodeInt`` (``strconv.Atoi``).

    Raises:
        QueryError: The value is not a 64-bit decimal integer.
    """
    return _parse_number(params, name, "int", "strconv.Atoi", _INT_RE, _INT64_MIN, _INT64_MAX)


def parse_uint(params: Mapping[str, str], name: str) -> int:
    """Decode an unsigned parameter like nats-server's ``decodeUint64``.

    Raises:
        QueryError: The value is not an unsigned 64-bit decimal integer.
    """
    return _parse_number(params, name, "uint64", "strconv.ParseUint", _UINT_RE, 0, _UINT64_MAX)


def _parse_number(params: Mapping[str, str], name: str, kind: str, func: str,
                  pattern: re.Pattern[str], low: int, high: int) -> int:
    value = params.get(name, "")
    if not value:
        return 0
    problem = "invalid syntax"
    if pattern.fullmatch(value):
        number = int(value)
        if low <= number <= high:
            return number
        problem = "value out of range"
    raise QueryError(f"Error decoding {kind} for '{name}': {func}: "
                     f"parsing {go_quote(value)}: {problem}")


def parse_subs(params: Mapping[str, str]) -> tuple[bool, bool]:
    """Decode ``subs`` like nats-server's ``decodeSubs``: a boolean or ``detail``.

    Returns:
        ``(subs, detail)``; ``detail`` (any case) wins and is never an error.

    Raises:
        QueryError: Neither ``detail`` nor a Go boolean.
    """
    if params.get("subs", "").lower() == "detail":
        return False, True
    return parse_bool(params, "subs"), False


def page(items: list[Any], offset: int, limit: int) -> list[Any]:
    """The ``offset``/``limit`` window nats-server's list endpoints return."""
    return items[offset:offset + limit]


__all__ = [
    "NS_PER_SECOND", "JSONObject", "QueryError", "Traffic", "go_duration", "go_number", "page",
    "parse_bool", "parse_duration", "parse_int", "parse_subs", "parse_uint", "rfc3339",
    "rtt_string", "text", "to_ns", "uptime",
]
