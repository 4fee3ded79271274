"""SubjectIndex: which subscriptions does a publish to a subject reach?

Theory of operation
-------------------
A token trie in the shape of nats-server's sublist (``server/sublist.go``). Each node is
one token of a subscription subject; its children are keyed by the next token, with the
wildcards ``*`` and ``>`` stored under those very keys. A node holds the plain
subscriptions and, per queue name, the queue subscriptions whose subject ends there.

``match(subject)`` walks the published subject's tokens, following at each level the
literal child, the ``*`` child, and collecting everything under a ``>`` child. Queue
subscriptions are grouped by queue name across all matching nodes, because one message
goes to one member of each distinct group however the members spelled their subjects
(PROTOCOL.md 6.2).

Results are immutable and cached per published subject. The cache is bounded: when it
holds ``CACHE_MAX`` entries it is swept down to ``CACHE_SWEEP`` (nats-server's 1,024 and
256). A change invalidates only the cached subjects it can affect: a literal
subscription touches one entry, a wildcard one those its pattern matches.

Counters for monitoring (``/subsz``, :meth:`SubjectIndex.stats`) cost the hot path
nothing beyond an integer increment: ``inserts`` and ``removes`` count changes,
``matches`` counts calls to :meth:`~SubjectIndex.match` and ``misses`` those that had
to walk the trie. The router reads ``cache`` directly on its fast path and counts
those hits itself; it hands that count to :meth:`~SubjectIndex.stats`. The fan-out
figures are not counted at all: they are computed from the cached results when asked
for, as nats-server computes them.

The index is pure: no I/O, no asyncio; subscriptions are any objects with ``subject``
and ``queue`` attributes (``queue`` is ``b""`` for plain subscriptions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Final, Generic, NamedTuple, Protocol, TypeVar

from pynats.protocol.subjects import FWC, PWC, matches

CACHE_MAX: Final = 1024
CACHE_SWEEP: Final = 256


class Subscribable(Protocol):
    @property
    def subject(self) -> bytes: ...

    @property
    def queue(self) -> bytes: ...


S = TypeVar("S", bound=Subscribable)


class MatchResult(NamedTuple, Generic[S]):
    """Plain subscriptions, and one tuple of members per distinct queue group."""

    plain: tuple[S, ...]
    queues: tuple[tuple[S, ...], ...]


@dataclass(frozen=True, slots=True)
class IndexStats:
    """A snapshot of an index's counters (nats-server's ``SublistStats``).

    ``matches`` counts lookups and ``cache_hits`` those answered from the cache;
    ``max_fanout`` and ``avg_fanout`` describe the cached results (plain subscriptions
    plus one per queue group), as nats-server reports them.
    """

    num_subscriptions: int
    num_cache: int
    num_inserts: int
    num_removes: int
    num_matches: int
    cache_hits: int
    max_fanout: int
    total_fanout: int

    @property
    def cache_hit_rate(self) -> float:
        """Share of lookups answered from the cache (0 before the first lookup)."""
        return self.cache_hits / self.num_matches if self.num_matches else 0.0

    @property
    def avg_fanout(self) -> float:
        """Mean fan-out over the cached results (0 with an empty cache)."""
        return self.total_fanout / self.num_cache if self.total_fanout else 0.0


class _Node(Generic[S]):
    __slots__ = ("children", "plain", "queues")

    def __init__(self) -> None:
        self.children: dict[bytes, _Node[S]] = {}
        self.plain: dict[S, None] = {}
        self.queues: dict[bytes, dict[S, None]] = {}

    def is_empty(self) -> bool:
        return not (self.children or self.plain or self.queues)


class SubjectIndex(Generic[S]):
    """A subscription index with a bounded match cache.

    Args:
        cache: keep a match cache (nats-server's ``disable_sublist_cache`` turns it off).
    """

    def __init__(self, cache: bool = True):
        self._root: _Node[S] = _Node()
        #: Published subject -> result. Read directly by the router's hot path; every
        #: change here goes through insert/remove/match, which keep it consistent.
        self.cache: dict[bytes, MatchResult[S]] = {}
        self.cache_on = cache
        self.count = 0
        self.inserts = 0
        self.removes = 0
        #: Calls to :meth:`match`. The router's fast path reads ``cache`` without a
        #: call (one call less per message) and counts those hits itself.
        self.matches = 0
        #: Calls to :meth:`match` that had to walk the trie.
        self.misses = 0
        #: Applied to a freshly computed result before it is cached and returned, when
        #: set (the server hides subscriptions whose client may not receive a subject,
        #: ``permissions.DeliveryFilter``). Whoever sets or changes it clears ``cache``.
        self.result_filter: Callable[[bytes, MatchResult[S]], MatchResult[S]] | None = None
        #: Called with the subscription and +1 or -1 after every insert and successful
        #: remove, when set (the cluster's interest bookkeeping, ``cluster.py``).
        self.on_change: Callable[[S, int], None] | None = None

    # -- changes -----------------------------------------------------------------------
    def insert(self, sub: S) -> None:
        """Add ``sub``; its subject must be a valid subscription subject."""
        node = self._root
        for token in sub.subject.split(b"."):
            child = node.children.get(token)
            if child is None:
                child = node.children[token] = _Node()
            node = child
        if sub.queue:
            node.queues.setdefault(sub.queue, {})[sub] = None
        else:
            node.plain[sub] = None
        self.count += 1
        self.inserts += 1
        self._invalidate(sub.subject)
        if self.on_change is not None:
            self.on_change(sub, 1)

    def remove(self, sub: S) -> bool:
        """Remove ``sub``; returns False if it was not in the index."""
        path: list[tuple[_Node[S], bytes]] = []
        node = self._root
        for token in sub.subject.split(b"."):
            child = node.children.get(token)
            if child is None:
                return False
            path.append((node, token))
            node = child
        if not self._remove_from(node, sub):
            return False
        for parent, token in reversed(path):  # prune nodes left empty
            if not parent.children[token].is_empty():
                break
            del parent.children[token]
        self.count -= 1
        self.removes += 1
        self._invalidate(sub.subject)
        if self.on_change is not None:
            self.on_change(sub, -1)
        return True

    @staticmethod
    def _remove_from(node: _Node[S], sub: S) -> bool:
        if not sub.queue:
            return node.plain.pop(sub, False) is None
        group = node.queues.get(sub.queue)
        if group is None or group.pop(sub, False) is not None:
            return False
        if not group:
            del node.queues[sub.queue]
        return True

    def _invalidate(self, pattern: bytes) -> None:
        cache = self.cache
        if not cache:
            return
        if PWC not in pattern and FWC not in pattern:
            cache.pop(pattern, None)
            return
        for subject in [s for s in cache if matches(pattern, s)]:
            del cache[subject]

    # -- lookups -----------------------------------------------------------------------
    def match(self, subject: bytes) -> MatchResult[S]:
        """All subscriptions a publish to ``subject`` reaches."""
        self.matches += 1
        result = self.cache.get(subject)
        if result is not None:
            return result
        self.misses += 1
        result = self._match(subject)
        if self.result_filter is not None:
            result = self.result_filter(subject, result)
        if self.cache_on:
            if len(self.cache) >= CACHE_MAX:
                for old in list(islice(self.cache, CACHE_MAX - CACHE_SWEEP)):
                    del self.cache[old]
            self.cache[subject] = result
        return result

    def _match(self, subject: bytes) -> MatchResult[S]:
        plain: list[S] = []
        groups: dict[bytes, list[S]] = {}
        tokens = subject.split(b".")
        if all(tokens):  # a subject with an empty token matches nothing
            self._collect(self._root, tokens, 0, plain, groups)
        return MatchResult(tuple(plain), tuple(tuple(g) for g in groups.values()))

    def _collect(self, node: _Node[S], tokens: list[bytes], i: int, plain: list[S],
                 groups: dict[bytes, list[S]]) -> None:
        """Gather what matches ``tokens[i:]`` (non-empty) below ``node``."""
        children = node.children
        full = children.get(FWC)
        if full is not None:  # ">" takes every remaining token, and there is at least one
            _gather(full, plain, groups)
        token = tokens[i]
        last = i + 1 == len(tokens)
        # A literal "*" or ">" token in a published subject matches those very children,
        # which the wildcard lookups already visit.
        keys = (PWC,) if token in (PWC, FWC) else (token, PWC)
        for key in keys:
            child = children.get(key)
            if child is None:
                continue
            if last:
                _gather(child, plain, groups)
            else:
                self._collect(child, tokens, i + 1, plain, groups)

    def all(self) -> list[S]:
        """Every subscription in the index (for monitoring)."""
        out: list[S] = []
        stack = [self._root]
        while stack:
            node = stack.pop()
            out.extend(node.plain)
            for group in node.queues.values():
                out.extend(group)
            stack.extend(node.children.values())
        return out

    @property
    def cache_size(self) -> int:
        return len(self.cache)

    def stats(self, extra_hits: int = 0) -> IndexStats:
        """The counters, with the fan-out of the cached results computed now.

        Args:
            extra_hits: Cache hits counted outside :meth:`match` (the router's fast
                path); they count as lookups too.

        Returns:
            A snapshot; computing it costs one pass over the cache (at most
            :data:`CACHE_MAX` entries).
        """
        total = largest = 0
        for result in self.cache.values():
            fanout = len(result.plain) + len(result.queues)
            total += fanout
            largest = max(largest, fanout)
        matches = self.matches + extra_hits
        return IndexStats(num_subscriptions=self.count, num_cache=len(self.cache),
                          num_inserts=self.inserts, num_removes=self.removes,
                          num_matches=matches, cache_hits=matches - self.misses,
                          max_fanout=largest, total_fanout=total)


def _gather(node: _Node[S], plain: list[S], groups: dict[bytes, list[S]]) -> None:
    plain.extend(node.plain)
    for name, members in node.queues.items():
        groups.setdefault(name, []).extend(members)


__all__ = ["CACHE_MAX", "CACHE_SWEEP", "IndexStats", "MatchResult", "SubjectIndex"]
