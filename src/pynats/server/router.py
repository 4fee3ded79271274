"""Router: deliver one published message to every subscription it reaches.

Theory of operation
-------------------
``publish`` is one synchronous loop: match the subject in the SubjectIndex (cached),
build the bytes that every receiver shares once, then for each receiver append three
pieces to its connection's outbound buffer: ``MSG <subject>`` (or ``HMSG``), the
subscription's pre-framed `` <sid> ``, and the shared tail (``[reply ]size\\r\\npayload
\\r\\n``). No await, no task, no per-receiver formatting.

A connection that receives its first bytes in the current batch is put on ``dirty``;
the connection that read the batch calls :meth:`flush_dirty` once at the end of its
``data_received``, so every receiver is written to once per read, not once per message
(nats-server's ``pcd``/``flushClients``). Backpressure policy, as in nats-server: none
towards the publisher; a receiver whose unsent bytes pass ``max_pending`` is cut off as
a slow consumer when it is flushed (Connection.flush).

Queue groups get one member per message, chosen from a random start and moving on past
members that may not receive it (the publisher itself with echo off). Auto-unsubscribe
counts at delivery and removes the subscription when it reaches its limit.
"""

from __future__ import annotations

from random import random
from typing import TYPE_CHECKING

from pynats.protocol.encode import no_responders_headers
from pynats.server.sublist import SubjectIndex
from pynats.server.subscription import Subscription

if TYPE_CHECKING:
    from pynats.server.connection import Connection
    from pynats.server.sessions.client import ClientSession


class Router:
    """Fan-out of published messages."""

    def __init__(self, index: SubjectIndex[Subscription]):
        self.index = index
        #: Connections with output queued during the current read batch.
        self.dirty: list[Connection] = []

    def flush_dirty(self) -> None:
        """Write out every connection that got output in this batch."""
        dirty = self.dirty
        while dirty:
            batch = dirty[:]
            dirty.clear()
            for conn in batch:
                conn.flush()

    def publish(self, origin: ClientSession, subject: bytes, reply: bytes,
                headers: bytes | None, payload: bytes) -> int:
        """Deliver to all matching subscriptions; returns how many received it."""
        plain, queues = self.index.match(subject)
        if not plain and not queues:
            return 0
        size = len(payload)
        # Every receiver gets: head, its sid framed by spaces, then the shared tail.
        if reply:
            tail = b"%s %d\r\n%s\r\n" % (reply, size, payload)
        else:
            tail = b"%d\r\n%s\r\n" % (size, payload)
        head = b"MSG " + subject
        hhead = htail = b""
        total = size
        if headers is not None:
            total = len(headers) + size
            hhead = b"HMSG " + subject
            htail = b"%s%d %d\r\n%s%s\r\n" % (
                reply + b" " if reply else b"", len(headers), total, headers, payload)
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
            if client is origin and skip_self:
                continue
            out = client.conn.out
            if not out:
                dirty.append(client.conn)
            if headers is not None and client.headers:
                out += hhead
                out += sub.sid_part
                out += htail
                sent = total
            else:
                out += head
                out += sub.sid_part
                out += tail
                sent = size
            client.out_msgs += 1
            client.out_bytes += sent
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
            if sub.client is not excluded and not sub.client.closed:
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


__all__ = ["Router"]
