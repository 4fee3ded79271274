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
* **PINGs** are muted by replacing the session's ``PING`` handler with one that counts
  and does not answer (the session keeps its handler table as a public attribute).
* **Handshake** faults use the server's one hook for them,
  ``Server.client_accept_hook``: INFO is sent late, never, or the connection is closed
  before it.
* **Partitions** use ``Cluster.refused_peers``: the route between two nodes is closed
  and each side refuses the other's routes at their first INFO until healed; healing
  dials the route again at once from the side that has it configured.
* **Recordings** of deliveries are a subscription in the account's index whose
  "client" only collects what the router writes to it, parsed back into messages: real
  delivery, with echo, queue groups and permissions unaffected (it is a plain
  subscription; note that it counts as a responder, so a request to a recorded subject
  gets no 503).
* **Recordings of what clients published** wrap the account router's ``publish`` and
  ``publish_headers`` on the instance (the way the router itself picks its clustered
  or bridged variants): each publish the server accepted from a local client is noted
  with its publisher, then delivered as usual. Nothing is subscribed, so interest and
  no-responders are unchanged; the wrapper is removed with the last such recording.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from pynats.protocol import ops
from pynats.protocol.encode import encode_err
from pynats.protocol.headers import Headers, parse_headers
from pynats.protocol.parser import Parser, RecordSink, Role, framed_payload
from pynats.protocol.subjects import matches
from pynats.server.accounts import GLOBAL_ACCOUNT
from pynats.server.cluster import RouteURL
from pynats.server.connection import WRITE_HIGH_WATER, Connection
from pynats.server.subscription import Subscription

if TYPE_CHECKING:
    from pynats.server.router import Origin, Router
    from pynats.server.server import Server
    from pynats.server.sessions.client import ClientSession

#: Which clients a control applies to: a client id, a connection name, or all (None).
ClientRef = int | str | None

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


@dataclass(frozen=True, slots=True)
class RecordedMsg:
    """A message as a recording received it (``headers`` None without headers).

    ``client_id`` and ``client_name`` say who published it, in recordings of what
    clients published (``record_published``); 0 and "" in delivery recordings.
    """

    subject: str
    reply: str
    payload: bytes
    headers: Headers | None = None
    client_id: int = 0
    client_name: str = ""


class Recording:
    """Messages delivered on a subject, in order, from any client (or route).

    Made by ``record(subject)`` on a server handle; read it from any thread.
    ``close()`` removes its subscription (also done when its server stops).
    """

    def __init__(self, subject: str, loop: asyncio.AbstractEventLoop,
                 remove: Callable[[], None]):
        self.subject = subject
        self._loop = loop
        self._remove = remove
        self._messages: list[RecordedMsg] = []
        self._lock = threading.Lock()
        self.closed = False

    def _add(self, msgs: Iterable[RecordedMsg]) -> None:
        with self._lock:
            self._messages.extend(msgs)

    @property
    def messages(self) -> list[RecordedMsg]:
        """A copy of what was recorded so far."""
        with self._lock:
            return list(self._messages)

    @property
    def payloads(self) -> list[bytes]:
        """The payloads recorded so far."""
        return [m.payload for m in self.messages]

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def clear(self) -> None:
        """Forget what was recorded so far (keep recording)."""
        with self._lock:
            self._messages.clear()

    def close(self) -> None:
        """Stop recording (safe from any thread, and more than once)."""
        if self.closed:
            return
        self.closed = True
        if self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._remove()
        else:
            self._loop.call_soon_threadsafe(self._remove)


class _RecorderConn:
    """What the router writes to: collects MSG/HMSG bytes, parses them at each flush."""

    def __init__(self, recording: Recording):
        self.out = bytearray()
        self.closing = False
        self._recording = recording
        self._parser = Parser(Role.CLIENT)

    def flush(self) -> bool:
        if not self.out:
            return False
        sink = RecordSink()
        data = bytes(self.out)
        self.out.clear()
        self._parser.parse(data, sink)
        self._recording._add(_recorded(op) for op in sink.ops
                             if isinstance(op, ops.Msg | ops.HMsg))
        return False

    def stall_behind(self, receiver: object) -> None:
        """Never stalls (the router asks only real readers)."""


def _recorded(op: ops.Msg | ops.HMsg) -> RecordedMsg:
    headers = parse_headers(op.headers) if isinstance(op, ops.HMsg) else None
    return RecordedMsg(op.subject.decode(), op.reply.decode(), bytes(op.payload), headers)


class _RecorderClient:
    """The "client" of a recording's subscription: the attributes the router reads."""

    cid = 0
    name = "pynats.testing recorder"
    headers = True
    closed = False
    echo = True

    def __init__(self, conn: _RecorderConn):
        self.conn = conn
        self.last_activity = 0.0
        self.out_msgs = 0
        self.out_bytes = 0

    def remove_subscription(self, sub: Subscription) -> None:
        """Unreachable: a recording has no auto-unsubscribe limit."""

    def denies_delivery(self, subject: bytes) -> bool:
        return False

    def note_reply(self, reply: bytes) -> None:
        """A recording never answers."""


class _PublishTap:
    """Wraps one router's publish entry points while publish recordings exist."""

    def __init__(self, router: Router):
        self.router = router
        self.recordings: list[tuple[Recording, bytes, ClientRef]] = []
        self._publish = router.publish
        self._publish_headers = router.publish_headers
        #: The instance's own entry points before ours (None: the class's methods).
        self._own = (router.__dict__.get("publish"), router.__dict__.get("publish_headers"))
        router.publish = self.publish  # type: ignore[method-assign]
        router.publish_headers = self.publish_headers  # type: ignore[method-assign]

    def remove(self) -> None:
        """Put the router's own entry points back (unless it has chosen new ones)."""
        attrs = self.router.__dict__
        for name, ours, before in (("publish", self.publish, self._own[0]),
                                   ("publish_headers", self.publish_headers, self._own[1])):
            if attrs.get(name) == ours:
                if before is None:
                    del attrs[name]
                else:
                    attrs[name] = before

    def _note(self, origin: Origin, subject: bytes, reply: bytes,
              payloads: list[tuple[bytes, Headers | None]]) -> None:
        cid, name = getattr(origin, "cid", 0), getattr(origin, "name", "")
        for recording, pattern, which in self.recordings:
            if matches(pattern, subject) and which in (None, cid, name):
                recording._add(RecordedMsg(subject.decode(), reply.decode(), payload,
                                           headers, cid, name)
                               for payload, headers in payloads)

    def publish(self, origin: Origin, subject: bytes, reply: bytes, framed: list[bytes],
                nbytes: int) -> int:
        self._note(origin, subject, reply, [(framed_payload(f), None) for f in framed])
        return self._publish(origin, subject, reply, framed, nbytes)

    def publish_headers(self, origin: Origin, subject: bytes, reply: bytes, payload: bytes,
                        hframed: bytes) -> int:
        head, _, rest = hframed.partition(b"\r\n")
        block = rest[:int(head.split()[0])]
        self._note(origin, subject, reply, [(payload, parse_headers(block))])
        return self._publish_headers(origin, subject, reply, payload, hframed)


class FaultTransport(asyncio.Transport):
    """Stands between a client's connection and its socket (see the module docstring).

    Args:
        inner: The connection's transport (the socket's, or TLS's).
        conn: The connection, told to pause and resume writing as a socket would.
    """

    def __init__(self, inner: asyncio.Transport, conn: Connection):
        super().__init__()
        self.inner = inner
        self.conn = conn
        self.reading_paused = False  # by the fault
        self._server_paused = False  # by the server's own stall
        self.holding = False
        self._held = bytearray()
        self._told_pause = False

    # -- the faults ------------------------------------------------------------------------
    def pause(self) -> None:
        self.reading_paused = True
        self.inner.pause_reading()

    def resume(self) -> None:
        self.reading_paused = False
        if not self._server_paused and not self.inner.is_closing():
            self.inner.resume_reading()

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        held, self._held = bytes(self._held), bytearray()
        if held and not self.inner.is_closing():
            self.inner.write(held)
        if self._told_pause:
            self._told_pause = False
            self.conn.resume_writing()

    # -- asyncio.Transport -------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.holding:
            self.inner.write(data)
            return
        self._held += data
        if len(self._held) > WRITE_HIGH_WATER and not self._told_pause:
            self._told_pause = True
            self.conn.pause_writing()

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size() + len(self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._server_paused = True
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self._server_paused = False
        if not self.reading_paused:
            self.inner.resume_reading()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def close(self) -> None:
        self._held.clear()
        self.inner.close()

    def abort(self) -> None:
        self._held.clear()
        self.inner.abort()

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def can_write_eof(self) -> bool:
        return self.inner.can_write_eof()

    def write_eof(self) -> None:
        self.inner.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.inner.get_protocol()


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
        self._taps: dict[str, _PublishTap] = {}
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
        if any(matches(sub.subject, wanted) and not isinstance(sub.client, _RecorderClient)
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
        client = _RecorderClient(_RecorderConn(recording))
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
            tap = self._taps[account] = _PublishTap(router)
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
    "ClientRef",
    "FaultTransport",
    "Faults",
    "RecordedMsg",
    "Recording",
    "SubscriptionInfo",
    "heal",
    "kill",
    "partition",
]
