"""Per-client publish and subscribe permissions, enforced as nats-server does.

Theory of operation
-------------------
A user's ``permissions`` block (:class:`~pynats.server.config.options.Permissions`) is
compiled at login into a :class:`ClientPermissions`. Each allow or deny list becomes a
small :class:`~pynats.server.sublist.SubjectIndex` of patterns, so "is this subject
covered by the list" is the same trie walk, with the same rules, as message routing
(nats-server keeps one sublist per list too; ``setPermissions`` in ``server/client.go``).

Publish: a subject is allowed when the allow list (if there is one) matches it and the
deny list (if there is one) does not: deny wins, and no allow list means everything is
allowed. Decisions are cached per subject in a dict of at most :data:`PUB_CACHE_MAX`
entries (oldest :data:`PUB_CACHE_PRUNE` dropped when full), nats-server's per-client
cache. The session only asks for clients that have publish permissions, so the others
pay nothing on their hot path.

``allow_responses``: when set, an absent publish allow list means "nothing" rather than
"everything" (nats-server's ``validateResponsePermissions``). Every message with a reply
subject delivered to the client (:meth:`ClientPermissions.received_reply`) lets it
publish to that reply up to ``max`` times (default 1) within ``expires`` (default two
minutes); the map of open replies is pruned as in nats-server.

Subscribe: allow entries may name a queue group (``"foo.* workers"``); queue names in
the lists may themselves be patterns. As nats-server's ``canSubscribe``: a subscription
is allowed when the allow list has a plain entry covering its subject, but when it is a
queue subscription and queue entries cover the subject, its queue must be one of them;
then the deny list refuses it when a plain entry covers the subject, unless it is a
queue subscription and deny queue entries cover the subject, in which case only a
listed queue is refused. The subscription's subject is matched as if it were a
published one, so ``allow: "foo.*"`` also admits ``SUB foo.>`` (nats-server does).

Deny on delivery: a wildcard subscription can reach subjects the deny list forbids
(``SUB foo.*`` with ``deny: "foo.secret"``). When a client makes such a subscription
(its subject and a deny entry have a subject in common), nats-server starts filtering
every message delivered to the client through the deny list. :class:`DeliveryFilter` does that by
hooking the subscription index: results are filtered when computed, before they are
cached, so delivery itself costs nothing more, and servers where no client needs it
have no hook at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Final

from pynats.protocol.subjects import FWC, PWC
from pynats.server.config.options import Permissions
from pynats.server.sublist import MatchResult, SubjectIndex
from pynats.server.subscription import Subscription

if TYPE_CHECKING:
    from pynats.server.sessions.client import ClientSession

#: Publish decisions cached per client (nats-server's ``maxPermCacheSize``).
PUB_CACHE_MAX: Final = 128
#: Entries dropped from a full cache at once (nats-server's ``pruneSize``).
PUB_CACHE_PRUNE: Final = 32
#: Default ``allow_responses`` limits (``DEFAULT_ALLOW_RESPONSE_*``).
DEFAULT_RESPONSE_MAX_MSGS: Final = 1
DEFAULT_RESPONSE_EXPIRES: Final = 120.0
#: Open replies recorded before the map is pruned, and the longest time between prunes
#: (nats-server's ``replyPermLimit`` and ``replyPruneTime``).
REPLY_PRUNE_COUNT: Final = 4096
REPLY_PRUNE_AFTER: Final = 1.0
#: Deny-filter decisions cached per client.
DENY_CACHE_MAX: Final = 1024


class _Pattern:
    """One entry of an allow or deny list, shaped like a subscription for the index."""

    __slots__ = ("queue", "subject")

    def __init__(self, subject: bytes, queue: bytes = b""):
        self.subject = subject
        self.queue = queue


def _publish_index(entries: Iterable[str]) -> SubjectIndex[_Pattern]:
    index: SubjectIndex[_Pattern] = SubjectIndex(cache=False)
    for entry in entries:
        index.insert(_Pattern(entry.encode()))
    return index


def _subscribe_index(entries: Iterable[str]) -> SubjectIndex[_Pattern]:
    """Entries are ``subject`` or ``subject queue``; malformed ones are skipped."""
    index: SubjectIndex[_Pattern] = SubjectIndex(cache=False)
    for entry in entries:
        fields = entry.encode().split()
        if len(fields) in (1, 2):
            index.insert(_Pattern(fields[0], fields[1] if len(fields) == 2 else b""))
    return index


@dataclass(slots=True)
class _Reply:
    """A reply subject the client may answer: when it was received, answers sent."""

    since: float
    sent: int = 0


class ClientPermissions:
    """The compiled permissions of one client, with its caches.

    Args:
        perms: The user's permissions.
        clock: Monotonic seconds, for ``allow_responses`` expiry.
    """

    def __init__(self, perms: Permissions, clock: Callable[[], float]):
        self._clock = clock
        pub, sub, responses = perms.publish, perms.subscribe, perms.allow_responses
        allow = pub.allow if pub is not None else ()
        self._pub_allow = _publish_index(allow) if allow or responses is not None else None
        self._pub_deny = _publish_index(pub.deny) if pub is not None and pub.deny else None
        #: Whether publishing is checked at all (the session's hot path asks this once).
        self.restricts_publish = self._pub_allow is not None or self._pub_deny is not None
        self._sub_allow = _subscribe_index(sub.allow) if sub is not None and sub.allow else None
        self._sub_deny = _subscribe_index(sub.deny) if sub is not None and sub.deny else None
        self._deny_entries = tuple(e.encode() for e in sub.deny) if sub is not None else ()
        self._pub_cache: dict[bytes, bool] = {}
        self._deny_cache: dict[bytes, bool] = {}
        #: Whether the client tracks replies it may answer (``allow_responses``).
        self.tracks_responses = responses is not None
        self._max_replies = DEFAULT_RESPONSE_MAX_MSGS
        self._reply_ttl = DEFAULT_RESPONSE_EXPIRES
        if responses is not None:
            self._max_replies = responses.max_msgs or DEFAULT_RESPONSE_MAX_MSGS
            self._reply_ttl = responses.expires or DEFAULT_RESPONSE_EXPIRES
        self._replies: dict[bytes, _Reply] = {}
        self._recorded = 0
        self._pruned_at = clock()

    # -- publish -------------------------------------------------------------------------
    def publish_allowed(self, subject: bytes) -> bool:
        """The allow/deny decision for ``subject``, from the cache when possible."""
        allowed = self._pub_cache.get(subject)
        if allowed is None:
            allowed = self._decide_publish(subject)
        return allowed

    def may_publish(self, subject: bytes) -> bool:
        """Whether one message to ``subject`` may go out now; uses up a reply if needed."""
        if self.publish_allowed(subject):
            return True
        return self.tracks_responses and self._answer(subject)

    def _decide_publish(self, subject: bytes) -> bool:
        allowed = self._pub_allow is None or _covers(self._pub_allow, subject)
        if allowed and self._pub_deny is not None:
            allowed = not _covers(self._pub_deny, subject)
        cache = self._pub_cache
        if len(cache) >= PUB_CACHE_MAX:
            for old in list(islice(cache, PUB_CACHE_PRUNE)):
                del cache[old]
        cache[subject] = allowed
        return allowed

    # -- allow_responses -----------------------------------------------------------------
    def received_reply(self, reply: bytes) -> None:
        """A message with reply subject ``reply`` was delivered to this client."""
        if self.may_publish(reply):  # as nats-server, this counts as an answer if open
            return
        now = self._clock()
        self._replies[reply] = _Reply(now)
        self._recorded += 1
        if self._recorded > REPLY_PRUNE_COUNT or now - self._pruned_at > REPLY_PRUNE_AFTER:
            self._prune_replies(now)

    def _answer(self, subject: bytes) -> bool:
        reply = self._replies.get(subject)
        if reply is None:
            return False
        reply.sent += 1
        if reply.sent > self._max_replies > 0 or self._clock() - reply.since > self._reply_ttl:
            del self._replies[subject]
            return False
        return True

    def _prune_replies(self, now: float) -> None:
        done = [subject for subject, reply in self._replies.items()
                if reply.sent >= self._max_replies > 0 or now - reply.since > self._reply_ttl]
        for subject in done:
            del self._replies[subject]
        self._recorded = 0
        self._pruned_at = now

    # -- subscribe -----------------------------------------------------------------------
    def may_subscribe(self, subject: bytes, queue: bytes = b"") -> bool:
        """Whether a subscription to ``subject`` (in ``queue``, if any) is allowed."""
        allowed = True
        if self._sub_allow is not None:
            plain, queues = self._sub_allow.match(subject)
            allowed = bool(plain)
            if queue and queues:
                allowed = _queue_listed(queue, queues)
        if allowed and self._sub_deny is not None:
            plain, queues = self._sub_deny.match(subject)
            allowed = not plain
            if queue and queues:
                allowed = not _queue_listed(queue, queues)
        return allowed

    def needs_delivery_filter(self, subject: bytes) -> bool:
        """Whether an allowed subscription to ``subject`` can reach denied subjects."""
        if PWC not in subject and FWC not in subject:
            return False
        return any(subjects_collide(entry, subject) for entry in self._deny_entries)

    def denies_delivery(self, subject: bytes) -> bool:
        """Whether a message on ``subject`` must not be delivered to this client."""
        denied = self._deny_cache.get(subject)
        if denied is None:
            denied = self._sub_deny is not None and bool(self._sub_deny.match(subject).plain)
            if len(self._deny_cache) >= DENY_CACHE_MAX:
                self._deny_cache.clear()
            self._deny_cache[subject] = denied
        return denied


def _covers(index: SubjectIndex[_Pattern], subject: bytes) -> bool:
    plain, queues = index.match(subject)
    return bool(plain or queues)


def _queue_listed(queue: bytes, groups: tuple[tuple[_Pattern, ...], ...]) -> bool:
    """Whether ``queue`` is one of the queue names (or patterns) of the matching entries."""
    for members in groups:
        name = members[0].queue
        if queue == name or ((PWC in name or FWC in name) and is_subset(queue, name)):
            return True
    return False


def is_subset(subject: bytes, pattern: bytes) -> bool:
    """Whether every subject that ``subject`` matches is also matched by ``pattern``.

    Both may contain wildcards: ``foo.bar`` and ``foo.*`` are subsets of ``foo.*``;
    ``foo.>`` is not a subset of ``foo.*``, nor ``a.>`` of ``*.b``.
    """
    tokens, wanted = subject.split(b"."), pattern.split(b".")
    for i, want in enumerate(wanted):
        if i >= len(tokens):
            return False
        if want == FWC:
            return True
        token = tokens[i]
        if token == FWC or (token == PWC and want != PWC):
            return False
        if want not in (PWC, token):
            return False
    return len(tokens) == len(wanted)


def subjects_collide(first: bytes, second: bytes) -> bool:
    """Whether some subject is matched by both patterns (``a.>`` and ``*.b`` share ``a.b``)."""
    left, right = first.split(b"."), second.split(b".")
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else None
        b = right[i] if i < len(right) else None
        if (a == FWC and b is not None) or (b == FWC and a is not None):
            return True
        if a is None or b is None or (a != b and PWC not in (a, b)):
            return False
    return True


class DeliveryFilter:
    """Hides messages from the subscriptions of clients whose deny list forbids them.

    Args:
        index: The server's subscription index; the filter installs itself as the
            index's ``result_filter`` while at least one client needs it.
    """

    def __init__(self, index: SubjectIndex[Subscription]):
        self._index = index
        self._clients: set[ClientSession] = set()

    def add(self, client: ClientSession) -> None:
        """Start filtering deliveries to ``client``."""
        if client not in self._clients:
            self._clients.add(client)
            self._index.result_filter = self._filter
            self._index.cache.clear()

    def discard(self, client: ClientSession) -> None:
        """Stop filtering deliveries to ``client``."""
        if client in self._clients:
            self._clients.discard(client)
            if not self._clients:
                self._index.result_filter = None
            self._index.cache.clear()

    def _filter(self, subject: bytes, result: MatchResult[Subscription]
                ) -> MatchResult[Subscription]:
        clients = self._clients

        def denied(sub: Subscription) -> bool:
            return sub.client in clients and sub.client.denies_delivery(subject)

        if not any(denied(sub) for sub in result.plain) and not any(
                denied(sub) for members in result.queues for sub in members):
            return result
        plain = tuple(sub for sub in result.plain if not denied(sub))
        groups = (tuple(sub for sub in members if not denied(sub)) for members in result.queues)
        return MatchResult(plain, tuple(group for group in groups if group))


__all__ = [
    "DEFAULT_RESPONSE_EXPIRES", "DEFAULT_RESPONSE_MAX_MSGS", "PUB_CACHE_MAX",
    "ClientPermissions", "DeliveryFilter", "is_subset", "subjects_collide",
]
