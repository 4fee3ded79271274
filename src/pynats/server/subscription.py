"""The server's records of subscriptions: a local client's, and a peer server's interest."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pynats.server.sessions.client import ClientSession
    from pynats.server.sessions.route import RouteSession


class Subscription:
    """One ``SUB`` of one client.

    ``sid_part`` is the sid framed by spaces, ready to go between subject and size in a
    ``MSG`` line, so a delivery costs appends and no formatting. ``max_msgs`` is 0 when
    there is no auto-unsubscribe limit.
    """

    __slots__ = ("client", "delivered", "max_msgs", "queue", "sid", "sid_part", "subject")

    def __init__(self, client: ClientSession, subject: bytes, queue: bytes, sid: bytes):
        self.client = client
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.sid_part = b" " + sid + b" "
        self.max_msgs = 0
        self.delivered = 0

    def __repr__(self) -> str:
        q = f" queue={self.queue!r}" if self.queue else ""
        return f"<Subscription cid={self.client.cid} sid={self.sid!r} {self.subject!r}{q}>"


class RemoteSubscription:
    """Interest a peer server declared on a route (``RS+``), in one account.

    ``queue`` is ``b""`` for plain interest; ``weight`` is the peer's member count of the
    queue group, replaced in place by every later ``RS+`` for the same key (cached match
    results hold this very object, so they see the new weight).
    """

    __slots__ = ("account", "queue", "route", "subject", "weight")

    def __init__(self, route: RouteSession, account: str, subject: bytes, queue: bytes,
                 weight: int):
        self.route = route
        self.account = account
        self.subject = subject
        self.queue = queue
        self.weight = weight

    @property
    def sid(self) -> bytes:
        """The key nats-server shows as a route subscription's sid (``/routez``)."""
        key = b"R " + self.account.encode() + b" " + self.subject
        return key + b" " + self.queue if self.queue else key

    def __repr__(self) -> str:
        q = f" queue={self.queue!r} weight={self.weight}" if self.queue else ""
        return f"<RemoteSubscription rid={self.route.rid} {self.subject!r}{q}>"
