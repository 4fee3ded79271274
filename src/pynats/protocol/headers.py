"""NATS message headers: the ``NATS/1.0`` block, parsed and built (PROTOCOL.md 6.3).

Theory of operation
-------------------
A header block is a status line, ``Name: value`` lines and a blank line::

    NATS/1.0[ <3-digit status>[ <description>]]\\r\\n
    Name: value\\r\\n            (zero or more; names may repeat; case kept)
    \\r\\n

The server never looks inside; only clients do. :class:`Headers` is the user-facing
value: a mutable mapping whose keys compare case-insensitively, which keeps every value
of a repeated name (``get_all``, ``add``) and the spelling of the name as first given,
and which carries the status line (``status``, ``description``) of the block it came
from. ``h[name]`` is the first value, as in most multi-value mappings.

:func:`parse_headers` and :func:`encode_headers` convert between the two;
:func:`status_of` reads only the status code, which is all the client's request path
needs (a ``503`` means no responders), without building a mapping. Everything here is
pure; malformed input raises :class:`~pynats.errors.HeaderError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Final

from pynats.errors import HeaderError

#: The version tag every header block starts with.
VERSION_LINE: Final = b"NATS/1.0"
_CRLF: Final = b"\r\n"
#: Status codes a client reacts to.
NO_RESPONDERS: Final = 503
#: Bytes that may not appear in a header name (besides controls and non-ASCII).
_NAME_FORBIDDEN: Final = frozenset(" \t:")

HeaderInput = Mapping[str, "str | Sequence[str]"] | Iterable[tuple[str, str]]


class Headers(MutableMapping[str, str]):
    """A case-insensitive, multi-value mapping of message headers.

    Args:
        data: initial headers: a mapping (a value may be a list of values) or an
            iterable of ``(name, value)`` pairs.
        status: the status code of the block, or ``None``.
        description: the status description (empty when there is none).

    ``h["Name"]`` is the first value; ``h["Name"] = v`` replaces all values;
    ``h.add("Name", v)`` appends one; ``h.get_all("name")`` lists them all.
    Iteration yields each distinct name once, spelt as first given.
    """

    __slots__ = ("_names", "_values", "description", "status")

    def __init__(self, data: HeaderInput | None = None, /, *, status: int | None = None,
                 description: str = ""):
        self._names: dict[str, str] = {}
        self._values: dict[str, list[str]] = {}
        self.status = status
        self.description = description
        if data is not None:
            self.update_all(data)

    def update_all(self, data: HeaderInput) -> None:
        """Add every header of ``data`` (list values add one header per item)."""
        items: Iterable[tuple[str, str | Sequence[str]]]
        items = data.items() if isinstance(data, Mapping) else data
        for name, value in items:
            if isinstance(value, str):
                self.add(name, value)
            else:
                for one in value:
                    self.add(name, one)

    # -- mapping protocol ----------------------------------------------------------------
    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()][0]

    def __setitem__(self, name: str, value: str) -> None:
        key = name.lower()
        self._names.setdefault(key, name)
        self._values[key] = [value]

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        del self._values[key]
        del self._names[key]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._names.values())

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return (self.status == other.status and self.description == other.description
                    and self._multi_lower() == other._multi_lower())
        if isinstance(other, Mapping):
            return self.status is None and self == Headers(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        status = f", status={self.status!r}" if self.status is not None else ""
        return f"Headers({self.multi_items()!r}{status})"

    # -- multi-value access ---------------------------------------------------------------
    def add(self, name: str, value: str) -> None:
        """Append one value for ``name`` (keeping any earlier ones)."""
        key = name.lower()
        self._names.setdefault(key, name)
        self._values.setdefault(key, []).append(value)

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` in order; an empty list when absent."""
        return list(self._values.get(name.lower(), ()))

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, names spelt as first given."""
        return [(self._names[k], v) for k, vs in self._values.items() for v in vs]

    def copy(self) -> Headers:
        """A copy (values lists are not shared)."""
        return Headers(self.multi_items(), status=self.status, description=self.description)

    def _multi_lower(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._values.items()}


def status_of(block: bytes) -> int | None:
    """The status code of a header block, or ``None`` when its first line has none.

    Cheap: looks only at ``NATS/1.0 NNN`` at the start, with no validation beyond that.
    """
    if len(block) >= 12 and block[8] == 32 and block.startswith(VERSION_LINE):
        code = block[9:12]
        if code.isdigit():
            return int(code)
    return None


def parse_headers(block: bytes) -> Headers:
    """Parse a complete header block.

    Args:
        block: the header bytes of an HMSG, from ``NATS/1.0`` to the blank line.

    Returns:
        The headers, with ``status`` and ``description`` from the first line.

    Raises:
        HeaderError: the block does not start with ``NATS/1.0`` or a line has no colon.
    """
    text = block.decode("utf-8", "surrogateescape")
    lines = text.split("\r\n")
    first = lines[0]
    if not first.startswith("NATS/1.0"):
        raise HeaderError(f"header block does not start with NATS/1.0: {first[:32]!r}")
    headers = Headers()
    rest = first[8:].strip()
    if rest:
        code, _, description = rest.partition(" ")
        if len(code) != 3 or not code.isdigit():
            raise HeaderError(f"invalid status in header block: {first[:32]!r}")
        headers.status = int(code)
        headers.description = description.strip()
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise HeaderError(f"malformed header line: {line[:64]!r}")
        headers.add(name.strip(), value.strip())
    return headers


def _check_name(name: str) -> None:
    if not name or not name.isascii() or not name.isprintable() or (
            _NAME_FORBIDDEN.intersection(name)):
        raise HeaderError(f"invalid header name: {name!r}")


def _check_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value:
        raise HeaderError(f"header {name!r} has a line break in its value")


def encode_headers(headers: Headers | HeaderInput) -> bytes:
    """Build the header block for ``headers`` (status line included when set).

    Args:
        headers: a :class:`Headers`, a plain mapping (values may be lists of values)
            or ``(name, value)`` pairs.

    Returns:
        ``NATS/1.0...\\r\\n`` up to and including the blank line.

    Raises:
        HeaderError: a name is empty or contains whitespace, ``:`` or control or
            non-ASCII characters, or a value contains a line break.
    """
    if not isinstance(headers, Headers):
        headers = Headers(headers)
    first = "NATS/1.0"
    if headers.status is not None:
        if not 100 <= headers.status <= 999:
            raise HeaderError(f"invalid status code: {headers.status!r}")
        first += f" {headers.status}"
        if headers.description:
            _check_value("description", headers.description)
            first += f" {headers.description}"
    parts = [first]
    for name, value in headers.multi_items():
        _check_name(name)
        _check_value(name, value)
        parts.append(f"{name}: {value}")
    parts.append("\r\n")
    return "\r\n".join(parts).encode("utf-8", "surrogateescape")


__all__ = [
    "NO_RESPONDERS",
    "VERSION_LINE",
    "HeaderInput",
    "Headers",
    "encode_headers",
    "parse_headers",
    "status_of",
]
