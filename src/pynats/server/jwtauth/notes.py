"""Log lines decided by the operator-mode code and written by whoever holds the logger.

The JWT checks are pure functions of their inputs; what nats-server would log on the
way (``Account [A...] fetch took 2µs``, ``Signature not verified``...) is collected as
:class:`Note` values, in order, and the client session writes them: connection-scoped
ones with the client's log prefix, the others as server lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

Level = Literal["debug", "warn", "error"]

DEBUG: Final = "debug"
WARN: Final = "warn"
ERROR: Final = "error"


@dataclass(frozen=True, slots=True)
class Note:
    """One log line: its level, its text, and whether it belongs to the connection."""

    level: Level
    text: str
    client: bool = True


@dataclass(slots=True)
class Notes:
    """An ordered collection of :class:`Note` (a list with level helpers)."""

    items: list[Note] = field(default_factory=list)

    def debug(self, text: str, client: bool = True) -> None:
        """Record a debug line (``client``: with the connection's prefix)."""
        self.items.append(Note("debug", text, client))

    def warn(self, text: str, client: bool = True) -> None:
        """Record a warning."""
        self.items.append(Note("warn", text, client))

    def error(self, text: str, client: bool = True) -> None:
        """Record an error line."""
        self.items.append(Note("error", text, client))


__all__ = ["DEBUG", "ERROR", "WARN", "Level", "Note", "Notes"]
