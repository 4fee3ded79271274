"""Fault controls and inspection, run on the server's own event loop.

Theory of operation
-------------------
Everything here is synchronous code that must run on the loop of the server it acts on
(the handles of :mod:`pynats.testing.server` take care of that: a thread handle sends
each call to the server thread and waits for it; an async handle calls it directly).
Faults act on the real server's objects, never on a mock:

* **Clients** are the server's :class:`~pynats.server.sessions.client.ClientSession`
  objects, chosen by a :data:`ClientRef`: a client id (``cid``, what INFO's
  ``client_id`` told the client), a connection name (CONNECT ``name``), or ``None`` for
  every client.
* **Dropping** a client closes its connection as the server would (``abort`` resets
  the socket at once; otherwise queued output is flushed and the socket closed).
* **Paused reading** and **stalled delivery** put a :class:`FaultTransport` between the
  connection and its socket (the way TLS puts its own transport there). Paused reading
  stops reading the socket (``pause_reading``; the server's own fast-producer stall can
  no longer resume it). Stalled delivery keeps everything the server writes to the
  client in the wrapper, as if the client stopped reading its socket: the server's
  pending-bytes count includes it, so past ``max_pending`` the server cuts the client
  off as a slow consumer, and past the write buffer's high-water mark the write deadline
  runs as for a real socket ("Slow Consumer (Write Deadline)").
* **PINGs** are muted by replacing the session's ``PING`` handler with one that does
  not answer (the session keeps its handler table as a public attribute).
* **Handshake** faults use the server's one hook for them,
  ``Server.client_accept_hook``: INFO is sent late, never, or the connection is closed
  before it.
* **Partitions** use ``Cluster.refused_peers``: the route between two nodes is closed
  and each side refuses the other's routes at their first INFO until healed; healing
  dials the route again at once from the side that has it configured.
* **Recordings** are in :mod:`pynats.testing.recording`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from pynats.protocol import ops
from pynats.protocol.encode import encode_err
from pynats.protocol.subjects import matches
from pynats.server.accounts import GLOBAL_ACCOUNT
from pynats.server.cluster import RouteURL
from pynats.server.subscription import Subscription
from pynats.testing.recording import (
    ClientRef,
    PublishTap,
    RecorderClient,
    RecorderConn,
    Recording,
)
from pynats.testing.transport import FaultTransport

if TYPE_CHECKING:
    from pynats.server.server import Server
    from pynats.server.sessions.client import ClientSession

#: Close reason shown in ``/connz`` for a client dropped by a test.
DROPPED = "Client Closed"


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """One subscription of one client, as the server holds it."""

    cid: int
    subject: str
    queue: str | None
    sid: str
    delivered: int


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """A snapshot of one client connection (taken on the server's loop)."""

    cid: int
    name: str
    lang: str
    version: str
    account: str
    host: str
    port: int
    subscriptions: tuple[SubscriptionInfo, ...]
    in_msgs: int
    out_msgs: int
    in_bytes: int
    out_bytes: int
    pending_bytes: int


def _mute_ping(op: ops.Ping) -> None:
    """A PING handler that does not answer."""


class Faults:
    """The fault controls and inspection of one running :class:`Server`.

    Every method must be called on the server's loop.
    """

    def __init__(self, server: Server):
        self.server = server
        self._mute_new_pings = False
        self._handshake: tuple[str, float] | None = None  # ("delay", s) / ("drop"|"hang", 0)
        self._recordings: list[Recording] = []
        self._taps: dict[str, PublishTap] = {}
        server.client_accept_hook = self._on_accept

    # -- choosing clients -----------------------------------------------------------------
    def sessions(self, which: ClientRef = None) -> list[ClientSession]:
        """The live client sessions ``which`` selects (see :data:`ClientRef`)."""
        live = [s for s in self.server.clients.values() if not s.closed]
        if which is None:
            return live
        if isinstance(which, bool) or not isinstance(which, int | str):
            raise TypeError(f"a client is chosen by id (int) or name (str), not {which!r}")
        if isinstance(which, int):
            return [s for s in live if s.cid == which]
        return [s for s in live if s.name == which]

    def _chosen(self, which: ClientRef) -> list[ClientSession]:
        found = self.sessions(which)
        if not found and which is not None:
            raise LookupError(f"no connected client {which!r}")
        return found

    # -- inspection -------------------------------------------------------------------------
    def clients(self, which: ClientRef = None) -> list[ClientInfo]:
        """Snapshots of the clients ``which`` selects, by client id."""
        return [_client_info(s) for s in sorted(self.sessions(which), key=lambda s: s.cid)]

    def subscriptions(self, which: ClientRef = None) -> list[SubscriptionInfo]:
        """The subscriptions of the clients ``which`` selects."""
        return [sub for info in self.clients(which) for sub in info.subscriptions]

    def has_subscription(self, subject: str, queue: str | None = None, count: int = 1,
                         which: ClientRef = None) -> bool:
        """Whether at least ``count`` subscriptions to exactly ``subject`` (and ``queue``)
        are registered for the clients ``which`` selects."""
        want_subject = subject.encode()
        want_queue = (queue or "").encode()
        found = sum(1 for s in self.sessions(which) for sub in list(s.subs.values())
                    if sub.subject == want_subject and sub.queue == want_queue)
        return found >= count

    def has_interest(self, subject: str, account: str = GLOBAL_ACCOUNT,
                     remote: bool = True) -> bool:
        """Whether a publish to ``subject`` would reach a subscriber here (or, with
        ``remote``, on a peer server whose interest reached us)."""
        acc = self.server.accounts.get(account)
        if acc is None:
            return False
        wanted = subject.encode()
        if any(matches(sub.subject, wanted) and not isinstance(sub.client, RecorderClient)
               for sub in acc.index.all()):
            return True
        return remote and any(matches(sub.subject, wanted) for sub in acc.remote.all())

    def record(self, subject: str, account: str = GLOBAL_ACCOUNT) -> Recording:
        """Start recording messages on ``subject`` (wildcards allowed)."""
        acc = self.server.accounts[account]
        recording: Recording
        sub: Subscription

        def remove() -> None:
            acc.index.remove(sub)
            if recording in self._recordings:
                self._recordings.remove(recording)

        recording = Recording(subject, self.server.loop, remove)
        client = RecorderClient(RecorderConn(recording))
        sub = Subscription(cast("ClientSession", client), subject.encode(), b"", b"rec")
        acc.index.insert(sub)
        self._recordings.append(recording)
        return recording

    def record_published(self, subject: str = ">", which: ClientRef = None,
                         account: str = GLOBAL_ACCOUNT) -> Recording:
        """Start recording what local clients (``which``: all) publish on ``subject``.

        Unlike :meth:`record`, it subscribes to nothing: it sees publishes that reach no
        one, and says who published each message (``RecordedMsg.client_id``).
        """
        if which is not None and (isinstance(which, bool) or not isinstance(which, int | str)):
            raise TypeError(f"a client is chosen by id (int) or name (str), not {which!r}")
        router = self.server.accounts[account].router
        tap = self._taps.get(account)
        if tap is None or tap.router is not router:
            tap = self._taps[account] = PublishTap(router)
        entry: tuple[Recording, bytes, ClientRef]

        def remove() -> None:
            if entry in tap.recordings:
                tap.recordings.remove(entry)
            if not tap.recordings and self._taps.get(account) is tap:
                tap.remove()
                del self._taps[account]
            if recording in self._recordings:
                self._recordings.remove(recording)

        recording = Recording(subject, self.server.loop, remove)
        entry = (recording, subject.encode(), which)
        tap.recordings.append(entry)
        self._recordings.append(recording)
        return recording

    def close_recordings(self) -> None:
        for recording in list(self._recordings):
            recording.close()

    # -- faults on clients ----------------------------------------------------------------
    def drop_client(self, which: ClientRef = None, abort: bool = True) -> int:
        """Close the chosen clients' connections; returns how many."""
        chosen = self._chosen(which)
        for session in chosen:
            conn = session.conn
            transport = conn.transport
            if abort:
                conn.out.clear()
            conn.close(DROPPED)  # the session is closed (unsubscribed) before we return
            if abort and transport is not None:
                transport.abort()
        return len(chosen)

    def _wrap(self, session: ClientSession) -> FaultTransport | None:
        conn = session.conn
        transport = conn.transport
        if transport is None or conn.closing:
            return None
        if not isinstance(transport, FaultTransport):
            transport = conn.transport = FaultTransport(transport, conn)
        return transport

    def pause_reading(self, which: ClientRef = None) -> int:
        """Stop reading what the chosen clients send; returns how many."""
        chosen = self._chosen(which)
        for session in chosen:
            wrapper = self._wrap(session)
            if wrapper is not None:
                wrapper.pause()
        return len(chosen)

    def resume_reading(self, which: ClientRef = None) -> int:
        """Undo :meth:`pause_reading`."""
        chosen = self.sessions(which)
        for session in chosen:
            if isinstance(session.conn.transport, FaultTransport):
                session.conn.transport.resume()
        return len(chosen)

    def stall_client(self, which: ClientRef = None) -> int:
        """Hold everything sent to the chosen clients, as if they stopped reading."""
        chosen = self._chosen(which)
        for session in chosen:
            wrapper = self._wrap(session)
            if wrapper is not None:
                wrapper.hold()
        return len(chosen)

    def unstall_client(self, which: ClientRef = None) -> int:
        """Undo :meth:`stall_client`: what was held is written out."""
        chosen = self.sessions(which)
        for session in chosen:
            if isinstance(session.conn.transport, FaultTransport):
                session.conn.transport.release()
        return len(chosen)

    def send_error(self, which: ClientRef, message: str, close: bool = False) -> int:
        """Send ``-ERR '<message>'`` to the chosen clients (and close them if asked)."""
        chosen = self._chosen(which)
        for session in chosen:
            if close:
                session.conn.close(DROPPED, message)
            else:
                session.conn.send_now(encode_err(message))
        return len(chosen)

    def stop_answering_pings(self, which: ClientRef = None) -> int:
        """The chosen clients' PINGs go unanswered; with ``None`` also new clients'."""
        if which is None:
            self._mute_new_pings = True
        chosen = self._chosen(which)
        for session in chosen:
            session.handlers[ops.Ping] = _mute_ping
        return len(chosen)

    def answer_pings(self, which: ClientRef = None) -> int:
        """Undo :meth:`stop_answering_pings`."""
        if which is None:
            self._mute_new_pings = False
        chosen = self.sessions(which)
        for session in chosen:
            session.handlers[ops.Ping] = session.on_ping
        return len(chosen)

    # -- the handshake ---------------------------------------------------------------------
    def delay_handshake(self, seconds: float) -> None:
        """New clients get INFO ``seconds`` late."""
        self._handshake = ("delay", seconds)

    def drop_handshake(self, close: bool = True) -> None:
        """New clients get no INFO: their connection is closed at once, or, with
        ``close=False``, accepted and left silent."""
        self._handshake = ("drop" if close else "hang", 0.0)

    def restore_handshake(self) -> None:
        """New clients get INFO at once again."""
        self._handshake = None

    def _on_accept(self, session: ClientSession) -> bool:
        if self._mute_new_pings:
            session.handlers[ops.Ping] = _mute_ping
        fault = self._handshake
        if fault is None:
            return True
        kind, delay = fault
        if kind == "delay":
            self.server.loop.call_later(delay, _late_start, session)
        elif kind == "drop":
            session.conn.close(DROPPED)
        return False

    # -- the server -----------------------------------------------------------------------
    def enter_lame_duck(self, duration: float | None = None,
                        grace: float | None = None) -> None:
        """Enter lame duck mode, optionally with another duration and grace period."""
        server = self.server
        changes: dict[str, float] = {}
        if duration is not None:
            changes["lame_duck_duration"] = duration
        if grace is not None:
            changes["lame_duck_grace_period"] = grace
        if changes:
            server.options = replace(server.options, **changes)  # type: ignore[arg-type]
        server.lame_duck()


def _late_start(session: ClientSession) -> None:
    if not session.closed and not session.conn.closing:
        session.start()


def _client_info(s: ClientSession) -> ClientInfo:
    subs = tuple(SubscriptionInfo(s.cid, sub.subject.decode(),
                                  sub.queue.decode() if sub.queue else None,
                                  sub.sid.decode(), sub.delivered)
                 for sub in list(s.subs.values()))
    return ClientInfo(cid=s.cid, name=s.name, lang=s.lang, version=s.version,
                      account=s.account.name, host=s.conn.host, port=s.conn.port,
                      subscriptions=subs, in_msgs=s.in_msgs, out_msgs=s.out_msgs,
                      in_bytes=s.in_bytes, out_bytes=s.out_bytes,
                      pending_bytes=s.conn.pending_bytes)


def partition(a: Server, b: Server) -> None:
    """Close the route between ``a`` and ``b``; each refuses the other until healed.

    Both servers must run on the calling loop.
    """
    for one, other in ((a, b), (b, a)):
        cluster = one.cluster
        if cluster is None:
            raise ValueError("partition needs two clustered servers")
        cluster.refused_peers.add(other.server_id)
    for one, other in ((a, b), (b, a)):
        cluster = one.cluster
        assert cluster is not None
        for route in [*cluster.pending, *cluster.by_id.values()]:
            if route.remote_id == other.server_id:
                route.close("Route Refused")


def heal(a: Server, b: Server) -> None:
    """Undo :func:`partition` and dial the route again at once.

    Whichever of the two has the other among its configured routes dials it now (a
    re-dial already waiting for its delay makes this a no-op, and connects itself).
    """
    for one, other in ((a, b), (b, a)):
        if one.cluster is not None:
            one.cluster.refused_peers.discard(other.server_id)
    for one, other in ((a, b), (b, a)):
        cluster = one.cluster
        if cluster is None or other.cluster_port == 0:
            continue
        for raw in one.options.cluster.routes:
            url = RouteURL.parse(raw)
            if url is not None and url.port == other.cluster_port:
                cluster.dial(url)


def kill(server: Server) -> None:
    """Reset every client and route socket at once, as a crashed process would."""
    for session in list(server.clients.values()):
        if session.conn.transport is not None:
            session.conn.transport.abort()
    cluster = server.cluster
    if cluster is not None:
        for route in [*cluster.pending, *cluster.by_id.values()]:
            if route.conn.transport is not None:
                route.conn.transport.abort()


__all__ = [
    "ClientInfo",
    "Faults",
    "SubscriptionInfo",
    "heal",
    "kill",
    "partition",
]
