"""The server pool and the reconnect policy: which server next, and when. Pure.

Theory of operation
-------------------
The pool is the list of servers the client may use: the configured ones (*explicit*)
and those learnt from INFO ``connect_urls`` (*implicit*), shuffled unless told not to
(nats.go ``setupServerPool`` / ``addURLToPool``). Every decision about them is made
here, from the clock value the caller passes in, so it is tested without a loop:

* :meth:`ServerPool.plan_initial` orders the first connect and gives each server an
  even share of what is left of the overall ``connect_timeout`` (a stalled first server
  cannot eat the whole budget; the last one gets all that remains).
* :meth:`ServerPool.next_reconnect` rotates the list (the chosen server moves to the
  end, as in nats.go ``selectNextServer``; so does the server just lost, in
  :meth:`ServerPool.disconnected`, so a reconnect starts with the *next* one),
  prefers servers not in lame duck mode, and says how long to wait first: a server is
  retried only after an exponential backoff from its last attempt,
  ``time_wait * 2**(failures-1)`` capped at ``max_time_wait``, plus random jitter
  (:class:`Backoff`). A server that just failed is not retried at once; one that has
  not failed since it last worked (the one just lost, say) is tried immediately.
* :meth:`ServerPool.failed` counts failures. A server leaves the pool after
  ``max_attempts`` consecutive failures, or after the *same* authorization error twice
  in a row (nats.go stops retrying when an auth error repeats).
* :meth:`ServerPool.discovered` merges ``connect_urls``: new ones are added (shuffled),
  implicit ones no longer announced are dropped, except the current server.
"""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from pynats.errors import ConfigError

DEFAULT_PORT: Final = 4222
SCHEMES: Final = ("nats", "tls")
#: Failures beyond this do not grow the backoff (2**32 * time_wait is forever anyway).
_MAX_DOUBLINGS: Final = 32


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where a server is, and the credentials its URL carried.

    Attributes:
        scheme: ``nats`` or ``tls`` (``tls`` asks for TLS).
        host: host name or IP (IPv6 without brackets).
        port: TCP port.
        user: user from ``user:password@``.
        password: password from ``user:password@``.
        token: token from ``token@``.
    """

    scheme: str
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    token: str | None = None

    @property
    def hostport(self) -> str:
        """``host:port`` (IPv6 in brackets), the form of INFO ``connect_urls``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The URL without credentials."""
        return f"{self.scheme}://{self.hostport}"


def parse_url(url: str, scheme: str = "nats") -> ServerAddress:
    """Parse ``nats://[user:pass@|token@]host[:port]``; the scheme may be omitted.

    Args:
        url: the server URL or ``host:port``.
        scheme: scheme to assume when the URL has none.

    Returns:
        The address.

    Raises:
        ConfigError: an unsupported scheme, no host, or a bad port.
    """
    text = url.strip()
    if "://" not in text:
        text = f"{scheme}://{text}"
    try:
        split = urllib.parse.urlsplit(text)
        port = split.port or DEFAULT_PORT
    except ValueError as exc:
        raise ConfigError(f"invalid server URL {url!r}: {exc}") from None
    if split.scheme not in SCHEMES:
        raise ConfigError(f"invalid server URL {url!r}: scheme must be nats:// or tls://")
    if not split.hostname:
        raise ConfigError(f"invalid server URL {url!r}: no host")
    user = urllib.parse.unquote(split.username) if split.username else None
    password = urllib.parse.unquote(split.password) if split.password is not None else None
    if user is not None and password is None:
        return ServerAddress(split.scheme, split.hostname, port, token=user)
    return ServerAddress(split.scheme, split.hostname, port, user, password)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter.

    Attributes:
        time_wait: the wait after the first failure.
        max_time_wait: the cap.
        jitter: up to this many seconds added at random.
    """

    time_wait: float
    max_time_wait: float
    jitter: float

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after ``failures`` consecutive failures (0 for none)."""
        if failures <= 0:
            return 0.0
        base = min(self.time_wait * (1 << min(failures - 1, _MAX_DOUBLINGS)), self.max_time_wait)
        return base + rng.uniform(0.0, self.jitter) if self.jitter else base


@dataclass(slots=True, eq=False)
class ServerEntry:
    """One server of the pool and what happened with it.

    Attributes:
        address: where it is.
        implicit: learnt from ``connect_urls`` rather than configured.
        failures: consecutive failed attempts.
        last_attempt: clock value of the last attempt (or connection), None if never.
        did_connect: a connection to it succeeded at least once.
        last_auth_error: text of the last authorization error it gave, if any.
        lame_duck: it announced lame duck mode.
    """

    address: ServerAddress
    implicit: bool = False
    failures: int = 0
    last_attempt: float | None = None
    did_connect: bool = False
    last_auth_error: str | None = None
    lame_duck: bool = False


@dataclass(slots=True)
class ServerPool:
    """The servers a client may connect to.

    Attributes:
        entries: the pool, in the order servers will be tried.
        backoff: reconnect waits.
        max_attempts: consecutive failures before a server leaves (-1: never).
        randomize: shuffle servers as they are added.
        rng: randomness for shuffling and jitter.
        current: the server of the current (or last) connection.
    """

    entries: list[ServerEntry]
    backoff: Backoff
    max_attempts: int = 60
    randomize: bool = True
    rng: random.Random = field(default_factory=random.Random)
    current: ServerEntry | None = None

    @classmethod
    def from_urls(cls, urls: Iterable[str], backoff: Backoff, *, max_attempts: int = 60,
                  randomize: bool = True, rng: random.Random | None = None) -> ServerPool:
        """A pool of the configured servers (duplicates dropped, shuffled if asked).

        Raises:
            ConfigError: a URL cannot be parsed.
        """
        pool = cls([], backoff, max_attempts, randomize, rng or random.Random())
        seen: set[str] = set()
        for url in urls:
            address = parse_url(url)
            if address.hostport not in seen:
                seen.add(address.hostport)
                pool.entries.append(ServerEntry(address))
        if randomize:
            pool.rng.shuffle(pool.entries)
        return pool

    def __len__(self) -> int:
        return len(self.entries)

    def find(self, hostport: str) -> ServerEntry | None:
        """The entry for ``host:port``, if any."""
        for entry in self.entries:
            if entry.address.hostport == hostport:
                return entry
        return None

    # -- initial connect -------------------------------------------------------------
    def plan_initial(self) -> list[ServerEntry]:
        """The servers to try on the first connect, in order (each once)."""
        return list(self.entries)

    @staticmethod
    def attempt_budget(remaining: float, servers_left: int) -> float:
        """Seconds for one attempt: an even share of what is left of the deadline."""
        return remaining / max(servers_left, 1)

    # -- outcomes --------------------------------------------------------------------
    def connected(self, entry: ServerEntry, now: float) -> None:
        """A connection to ``entry`` succeeded."""
        entry.failures = 0
        entry.last_attempt = now
        entry.did_connect = True
        entry.last_auth_error = None
        entry.lame_duck = False
        self.current = entry

    def disconnected(self) -> None:
        """The current connection was lost: the reconnect starts with the next server."""
        entry = self.current
        if entry is not None and entry in self.entries:
            self.entries.remove(entry)
            self.entries.append(entry)

    def failed(self, entry: ServerEntry, now: float, auth_error: str | None = None) -> bool:
        """An attempt on ``entry`` failed; returns False when it left the pool.

        Args:
            entry: the server.
            now: the clock.
            auth_error: the error text when the server refused the credentials.
        """
        entry.failures += 1
        entry.last_attempt = now
        repeated = auth_error is not None and auth_error == entry.last_auth_error
        entry.last_auth_error = auth_error
        if repeated or self._exhausted(entry):
            self.remove(entry)
            return False
        return True

    def remove(self, entry: ServerEntry) -> None:
        """Take ``entry`` out of the pool."""
        if entry in self.entries:
            self.entries.remove(entry)

    def _exhausted(self, entry: ServerEntry) -> bool:
        return 0 <= self.max_attempts <= entry.failures

    # -- reconnect -------------------------------------------------------------------
    def next_reconnect(self, now: float) -> tuple[ServerEntry, float] | None:
        """The server to try next and how long to wait first; None when none is left."""
        self.entries = [e for e in self.entries if not self._exhausted(e)]
        if not self.entries:
            return None
        index = next((i for i, e in enumerate(self.entries) if not e.lame_duck), 0)
        entry = self.entries.pop(index)
        self.entries.append(entry)
        if entry.last_attempt is None:
            return entry, 0.0
        ready_at = entry.last_attempt + self.backoff.delay(entry.failures, self.rng)
        return entry, max(0.0, ready_at - now)

    def lame_duck(self, entry: ServerEntry) -> None:
        """``entry`` announced lame duck mode: try the others first."""
        entry.lame_duck = True

    # -- discovery -------------------------------------------------------------------
    def discovered(self, urls: Iterable[str], scheme: str = "nats") -> list[ServerEntry]:
        """Merge INFO ``connect_urls``; returns the entries that are new.

        Implicit servers no longer announced are dropped (never the current one).
        Unparsable URLs are ignored: they come from the server, not the user.
        """
        announced: dict[str, ServerAddress] = {}
        for url in urls:
            try:
                address = parse_url(url, scheme)
            except ConfigError:
                continue
            announced[address.hostport] = address
        self.entries = [e for e in self.entries if not e.implicit or e is self.current
                        or e.address.hostport in announced]
        known = {e.address.hostport for e in self.entries}
        new = [ServerEntry(a, implicit=True) for k, a in announced.items() if k not in known]
        if self.randomize:
            self.rng.shuffle(new)
        self.entries.extend(new)
        return new


__all__ = [
    "DEFAULT_PORT",
    "Backoff",
    "ServerAddress",
    "ServerEntry",
    "ServerPool",
    "parse_url",
]
