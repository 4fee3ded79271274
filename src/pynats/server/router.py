"""Router: deliver one published message to every subscription it reaches.

Theory of operation
-------------------
``publish`` is one synchronous loop: match the subject in the SubjectIndex (cached),
build the bytes that every receiver shares once, then for each receiver append three
pieces to its connection's outbound buffer: ``MSG <subject>`` (or ``HMSG``), the
subscription's pre-framed `` <sid> ``, and the shared tail (``[reply ]size\\r\\npayload
\\r\\n``). No await, no task, no per-receiver formatting.

The parser hands over consecutive messages to one subject as a run. When a run goes
only to plain subscribers without auto-unsubscribe limits, each receiver's share is one
``bytes.join`` of the framed payloads with its ``MSG <subject> <sid> `` prefix: the
per-message cost of fan-out drops to a memory copy. Otherwise messages are delivered
one by one, so queue choices and limits apply per message.

A connection that receives its first bytes in the current batch is put on ``dirty``;
the connection that read the batch calls :meth:`flush_dirty` once at the end of its
``data_received``, so every receiver is written to once per read, not once per message
(nats-server's ``pcd``/``flushClients``). Backpressure policy, as in nats-server: a
receiver past 75% of ``max_pending`` stalls the publisher that fed it (it stops reading
until the receiver drains, at most ``write_deadline``); a receiver whose unsent bytes
pass ``max_pending`` is cut off as a slow consumer when it is flushed.

Queue groups get one member per message, chosen from a random start and moving on past
members that may not receive it (the publisher itself with echo off). Auto-unsubscribe
counts at delivery and removes the subscription when it reaches its limit.

Clients whose permissions have ``allow_responses`` are kept in ``responders``: a message
with a reply subject delivered to one of them lets it answer (``permissions.py``). Only
when that set is not empty and the message has a reply does a publish take the slower
:meth:`_publish_noting_replies`, which notes, per receiver, what it was delivered.

Each account has its own Router (``accounts.py``); all share one ``dirty`` list. A
router whose account exports streams that others import holds :class:`StreamBridge`
objects: :meth:`set_bridges` then replaces ``publish`` and ``publish_headers`` on the
instance by variants that also deliver each message, prefixed, in the importing
accounts. Routers without bridges keep the plain methods: no test per message.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from random import random
from typing import TYPE_CHECKING

from pynats.protocol.encode import no_responders_headers
from pynats.protocol.parser import framed_size
from pynats.protocol.subjects import matches
from pynats.server.sublist import MatchResult, SubjectIndex
from pynats.server.subscription import Subscription

if TYPE_CHECKING:
    from pynats.server.connection import Connection
    from pynats.server.sessions.client import ClientSession

#: Subscriptions of responders with their delivery count before a publish.
Watched = list[tuple[Subscription, int]]


@dataclass(frozen=True, slots=True)
class StreamBridge:
    """A stream import, seen from the exporting account's router.

    Attributes:
        subject: The imported subject (may have wildcards) in the exporting account.
        prefix: Put before the subject in the importing account (``b""`` or ``b"p."``).
        target: The importing account's router.
    """

    subject: bytes
    prefix: bytes
    target: Router


class Router:
    """Fan-out of published messages.

    Args:
        index: The account's subscription index.
        dirty: The list of connections with output queued in the current read batch,
            shared by the routers of every account (a new one if not given).
    """

    def __init__(self, index: SubjectIndex[Subscription], dirty: list[Connection] | None = None):
        self.index = index
        self._cache = index.cache
        #: Connections with output queued during the current read batch.
        self.dirty: list[Connection] = [] if dirty is None else dirty
        #: Stream imports of this account's subjects by other accounts.
        self.bridges: tuple[StreamBridge, ...] = ()
        #: Lookups answered by the fast path of :meth:`publish` (one per run of
        #: messages to one subject), added to the index's own counters by monitoring.
        self.cache_hits = 0
        #: Clients with ``allow_responses`` (almost always none).
        self.responders: set[ClientSession] = set()

    def set_bridges(self, bridges: Iterable[StreamBridge]) -> None:
        """Deliver also through ``bridges`` from now on (none: the plain methods)."""
        self.bridges = tuple(bridges)
        if self.bridges:
            self.publish = self._publish_bridged  # type: ignore[method-assign]
            self.publish_headers = self._publish_headers_bridged  # type: ignore[method-assign]
        else:
            self.__dict__.pop("publish", None)
            self.__dict__.pop("publish_headers", None)

    def _publish_bridged(self, origin: ClientSession, subject: bytes, reply: bytes,
                         framed: list[bytes], nbytes: int) -> int:
        """:meth:`publish`, then once more in each account importing ``subject``."""
        delivered = Router.publish(self, origin, subject, reply, framed, nbytes)
        for bridge in self.bridges:
            if matches(bridge.subject, subject):
                delivered += Router.publish(bridge.target, origin, bridge.prefix + subject,
                                            reply, framed, nbytes)
        return delivered

    def _publish_headers_bridged(self, origin: ClientSession, subject: bytes, reply: bytes,
                                 payload: bytes, hframed: bytes) -> int:
        """:meth:`publish_headers`, then in each account importing ``subject``."""
        delivered = Router.publish_headers(self, origin, subject, reply, payload, hframed)
        for bridge in self.bridges:
            if matches(bridge.subject, subject):
                delivered += Router.publish_headers(bridge.target, origin,
                                                    bridge.prefix + subject, reply, payload,
                                                    hframed)
        return delivered

    def flush_dirty(self, reader: Connection | None = None) -> None:
        """Write out every connection that got output in this batch.

        If a receiver is congested (see Connection.flush), ``reader``, the connection
        whose input produced the batch, stops reading until it drains: nats-server's
        fast-producer stall, so a publisher cannot outrun its subscribers.
        """
        dirty = self.dirty
        while dirty:
            batch = dirty[:]
            dirty.clear()
            for conn in batch:
                if conn.flush() and reader is not None and reader is not conn:
                    reader.stall_behind(conn)

    def publish(self, origin: ClientSession, subject: bytes, reply: bytes,
                framed: list[bytes], nbytes: int) -> int:
        """Deliver messages without headers; returns how many deliveries were made.

        Args:
            origin: the publishing client (for echo).
            subject, reply: as published (``reply`` is ``b""`` if none).
            framed: one ``<size>\\r\\n<payload>\\r\\n`` per message, in order.
            nbytes: the sum of the payload sizes.
        """
        found = self._cache.get(subject)  # the index's own cache, read without a call
        if found is None:
            found = self.index.match(subject)
        else:
            self.cache_hits += 1  # for /subsz: the index cannot see this lookup
        plain, queues = found
        if not plain and not queues:
            return 0
        if reply and self.responders:
            return self._publish_noting_replies(origin, found, subject, reply, framed, nbytes)
        if len(framed) > 1 and not queues and not any(s.max_msgs for s in plain):
            return self._deliver_run(origin, plain, subject, reply, framed, nbytes)
        delivered = 0
        for one in framed:
            size = nbytes if len(framed) == 1 else framed_size(one)
            delivered += self._deliver(origin, plain, queues, subject, reply, one, size)
        return delivered

    def publish_headers(self, origin: ClientSession, subject: bytes, reply: bytes,
                        payload: bytes, hframed: bytes) -> int:
        """Deliver one message with headers (stripped for receivers without them).

        ``hframed`` is ``<hdr size> <total>\\r\\n<headers><payload>\\r\\n`` as published.
        """
        plain, queues = self.index.match(subject)
        if not plain and not queues:
            return 0
        size = len(payload)
        total = len(hframed) - hframed.index(b"\n") - 3
        framed = b"%d\r\n%s\r\n" % (size, payload)
        watched = self._responders_in(plain, queues) if reply and self.responders else None
        delivered = self._deliver(origin, plain, queues, subject, reply, framed, size, hframed,
                                  total)
        if watched:
            _note_replies(watched, reply)
        return delivered

    def _publish_noting_replies(self, origin: ClientSession, found: MatchResult[Subscription],
                                subject: bytes, reply: bytes, framed: list[bytes],
                                nbytes: int) -> int:
        """:meth:`publish` when receivers may track the reply (``allow_responses``)."""
        plain, queues = found
        delivered = 0
        for one in framed:  # noted per message: each delivery may count as an answer
            watched = self._responders_in(plain, queues)
            size = nbytes if len(framed) == 1 else framed_size(one)
            delivered += self._deliver(origin, plain, queues, subject, reply, one, size)
            _note_replies(watched, reply)
        return delivered

    def _responders_in(self, plain: tuple[Subscription, ...],
                       queues: tuple[tuple[Subscription, ...], ...]) -> Watched:
        """The subscriptions of responders among the targets, with their delivery counts."""
        responders = self.responders
        return [(sub, sub.delivered) for sub in chain(plain, *queues) if sub.client in responders]

    def _deliver_run(self, origin: ClientSession, plain: tuple[Subscription, ...],
                     subject: bytes, reply: bytes, framed: list[bytes], nbytes: int) -> int:
        """Many messages to plain subscribers: one C-level join per receiver."""
        head = b"MSG " + subject
        after_sid = reply + b" " if reply else b""
        skip_self = not origin.echo
        count = len(framed)
        dirty = self.dirty
        delivered = 0
        for sub in plain:
            client = sub.client
            if client is origin and skip_self:
                continue
            conn = client.conn
            out = conn.out
            if not out:
                dirty.append(conn)
            prefix = head + sub.sid_part + after_sid
            out += prefix
            out += prefix.join(framed)
            client.last_activity = origin.last_activity  # as nats-server: delivery is activity
            client.out_msgs += count
            client.out_bytes += nbytes
            sub.delivered += count
            delivered += count
        return delivered

    def _deliver(self, origin: ClientSession, plain: tuple[Subscription, ...],
                 queues: tuple[tuple[Subscription, ...], ...], subject: bytes, reply: bytes,
                 framed: bytes, size: int, hframed: bytes = b"", total: int = 0) -> int:
        """One message to its plain subscribers and one member of each queue group."""
        # Every receiver gets: head, its sid framed by spaces, then the shared tail.
        head = b"MSG " + subject
        tail = reply + b" " + framed if reply else framed
        if hframed:
            hhead = b"HMSG " + subject
            htail = reply + b" " + hframed if reply else hframed
        skip_self = not origin.echo
        targets = plain
        if queues:
            excluded = origin if skip_self else None
            picked = [self._pick(members, excluded) for members in queues]
            targets = plain + tuple(sub for sub in picked if sub is not None)
        dirty = self.dirty
        delivered = 0
        for sub in targets:
            client = sub.client
            if (client is origin and skip_self) or (
                    sub.max_msgs and sub.delivered >= sub.max_msgs):  # used up earlier in a run
                continue
            conn = client.conn
            out = conn.out
            if not out:
                dirty.append(conn)
            if hframed and client.headers:
                out += hhead
                out += sub.sid_part
                out += htail
                client.out_bytes += total
            else:
                out += head
                out += sub.sid_part
                out += tail
                client.out_bytes += size
            client.last_activity = origin.last_activity
            client.out_msgs += 1
            delivered += 1
            sub.delivered += 1
            if sub.max_msgs and sub.delivered >= sub.max_msgs:
                client.remove_subscription(sub)
        return delivered

    @staticmethod
    def _pick(members: tuple[Subscription, ...],
              excluded: ClientSession | None) -> Subscription | None:
        n = len(members)
        start = int(random() * n)
        for k in range(n):
            sub = members[(start + k) % n]
            if sub.client is not excluded and not sub.client.closed and not (
                    sub.max_msgs and sub.delivered >= sub.max_msgs):
                return sub
        return None

    def no_responders(self, origin: ClientSession, subject: bytes, reply: bytes) -> None:
        """Send ``origin`` the 503 status message on its subscription to ``reply``."""
        for sub in self.index.match(reply).plain:
            if sub.client is origin:
                hdr = no_responders_headers(subject)
                origin.conn.send(b"HMSG %s %s %d %d\r\n%s\r\n" % (
                    reply, sub.sid, len(hdr), len(hdr), hdr))
                return


def _note_replies(watched: Watched, reply: bytes) -> None:
    """Tell each watched receiver that got the message (its count moved) about ``reply``."""
    for sub, before in watched:
        if sub.delivered > before:
            sub.client.note_reply(reply)


__all__ = ["Router", "StreamBridge"]
