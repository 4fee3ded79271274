"""Connection: the one class that touches a client's (or a route's) transport.

Theory of operation
-------------------
``Connection`` is an ``asyncio.Protocol``. Everything behind it (parser, session,
router, index) is synchronous and never awaits.

* Inbound: ``data_received`` feeds the whole read buffer to the pure parser, with the
  session as its sink, so each operation is handled as soon as it is parsed. When the
  buffer is done, every connection that got output meanwhile (this one for ``+OK`` or
  ``PONG``, receivers for ``MSG``) is flushed once: ``Router.flush_dirty``.
* Outbound: output is appended to ``out`` (a bytearray kept for the connection's life,
  so subscriptions can append to it directly) and written with one ``transport.write``
  per flush.
* Slow consumers, as nats-server: when a flush would leave more than ``max_pending``
  bytes unsent, the connection is aborted, no ``-ERR`` ("Slow Consumer (Pending
  Bytes)"). When the transport asks us to pause writing (its buffer passed the high-water
  mark) and sends nothing at all for ``write_deadline``, the same ("Slow Consumer (Write
  Deadline)").
* Fast-producer stall: a receiver past ``STALL_SHARE`` of ``max_pending`` makes the
  connection that fed it stop reading until the receiver's transport drains below its
  low-water mark, for at most :data:`STALL_MAX` (nats-server's
  ``stallClientMaxDuration``); so a publisher cannot outrun healthy subscribers, a
  stuck one is still cut off at ``max_pending``, and the publisher's other subscribers
  are not held up meanwhile.
* Errors: a ``ProtocolError`` from the parser becomes its ``-ERR`` line (if it has one)
  and a close. A close flushes what is queued, then closes the transport; a peer that
  will not read is aborted after ``write_deadline``. No exception escapes to the loop.
* TLS (PROTOCOL.md section 10), started by the session with :meth:`Connection.begin_tls`
  in the order of nats-server's ``createClientEx``: with ``handshake_first`` the
  handshake comes before INFO (or, with a fallback delay and no bytes from the client
  meanwhile, INFO goes out in plaintext after the delay); with ``allow_non_tls`` the
  first byte decides (``0x16`` is TLS; nothing within ``tls.timeout`` is plaintext);
  otherwise the handshake follows INFO. The stand-ins of
  :mod:`~pynats.server.tlstransport` become the socket's protocol meanwhile, and a
  :class:`~pynats.server.tlstransport.TLSTransport` becomes ``transport`` once the
  handshake is done; a plaintext client gets the socket back, so neither ever changes
  ``data_received``.
* Routes (``cluster.py``) use the same class with the route role's parser, a session
  made by the cluster instead of the server's client registry, and no ``max_pending``
  cut-off (nats-server has none on routes; the write deadline still applies).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from pynats.protocol.encode import encode_err
from pynats.protocol.errors import ProtocolError
from pynats.protocol.parser import Parser, Role
from pynats.server.log import host_port
from pynats.server.tls import TLS_HANDSHAKE_RECORD, ClientTLS, PeerTLS, peer_chain_der
from pynats.server.tlstransport import FirstBytes, TLSTransport
from pynats.server.wstransport import WebSocketTransport

if TYPE_CHECKING:
    from pynats.protocol.parser import RouteSink, Sink
    from pynats.server.server import Server
    from pynats.server.sessions.client import ClientSession

#: Transport buffer size above which asyncio asks us to pause writing. Past it the
#: write-deadline clock runs (see module docstring).
WRITE_HIGH_WATER = 256 * 1024
#: Share of max_pending past which a receiver stalls its producers (nats-server's 75%).
STALL_SHARE = 0.75
#: Longest a producer stays stalled behind one receiver (nats-server's 5 ms
#: ``stallClientMaxDuration``). A longer stall lets one subscriber that stopped reading
#: hold every other subscriber of that publisher up until it is finally cut off.
STALL_MAX = 0.005
#: A route's longest control line: 16 times a client's default (CLUSTER.md section 5).
ROUTE_MAX_CONTROL_LINE = 16 * 4096


class Session(Protocol):
    """What a connection needs of the session behind it (a client's or a route's)."""

    awaiting_auth: bool

    def may_start(self, data: bytes) -> bool: ...

    def protocol_error(self, exc: ProtocolError) -> None: ...

    def describe(self) -> str: ...

    def on_closed(self, reason: str) -> None: ...

    def on_slow_consumer(self, reason: str) -> None: ...


#: Makes the session of a connection once its transport is there.
SessionFactory = Callable[["Connection"], Session]


class Connection(asyncio.Protocol):
    """Transport adapter for one client (or route) connection.

    Args:
        server: The server.
        role: The parser's role (a route's: :attr:`Role.ROUTE`).
        make_session: Builds the session in ``connection_made``; the server's client
            registry by default.
        max_pending: Unsent bytes past which the peer is a slow consumer; the server's
            ``max_pending`` (read live, for reloads) when 0.
    """

    def __init__(self, server: Server, role: Role = Role.SERVER,
                 make_session: SessionFactory | None = None, max_pending: int = 0):
        self.server = server
        opts = server.options
        if role is Role.SERVER:
            self.parser = Parser(role, opts.max_control_line, opts.max_payload, headers=False)
        else:
            self.parser = Parser(role, ROUTE_MAX_CONTROL_LINE)
        self._make_session: SessionFactory = make_session or server.accept_client
        #: Routes are never stalled behind a slow receiver: that would hold up every
        #: other message on the route (the slow receiver is cut off instead).
        self._stallable = role is Role.SERVER
        self._max_pending = max_pending
        self.out = bytearray()
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.closing = False
        self.host = ""
        self.port = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._paused = False  # the transport asked us to pause writing
        self._written_since = 0  # bytes handed to the transport since the deadline was armed
        self._buffered_at_arm = 0
        self._waiters: list[Connection] = []  # producers stalled behind this connection
        self._stalled = False
        self._stall_timer: asyncio.TimerHandle | None = None
        #: What the TLS handshake negotiated (None for a plaintext client).
        self.tls: PeerTLS | None = None
        self._tls_conf: ClientTLS | None = None
        self._local = ""
        #: The client came in over WebSocket (``wstransport.py``).
        self.websocket = False

    # -- asyncio.Protocol ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.host, self.port = str(peer[0]), int(peer[1])
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple):
            self._local = host_port(str(local[0]), int(local[1]))
        self.session = self._make_session(self)

    def data_received(self, data: bytes) -> None:
        session = self.session
        if session is None or self.closing:
            return
        try:
            # A client that must authenticate is judged on its first byte (may_start).
            if not session.awaiting_auth or self.parser.buffered or session.may_start(data):
                self.parser.parse(data, cast("Sink | RouteSink", session))
        except ProtocolError as exc:
            session.protocol_error(exc)
        except Exception as exc:  # a bug must cost one connection, never the server
            self.server.log.error(f"{session.describe()}internal error: {exc!r}")
            self.close("Protocol Violation")
        self.server.router.flush_dirty(self)

    def eof_received(self) -> bool | None:
        self.close("Client Closed")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        self.resume_writing()  # producers stalled behind us go on
        self.unstall()
        if not self.closing:
            self.closing = True
            reason = "Client Closed" if exc is None else "Read Error"
            if self.session is not None:
                self.session.on_closed(reason)
        self.out.clear()

    def pause_writing(self) -> None:
        self._paused = True
        self._arm_deadline()

    def resume_writing(self) -> None:
        self._paused = False
        self._cancel_deadline()
        waiters, self._waiters = self._waiters, []
        for reader in waiters:
            reader.unstall()

    def _arm_deadline(self) -> None:
        deadline = self.server.options.write_deadline
        if deadline > 0 and self._deadline is None and not self.closing:
            self._written_since = 0
            self._buffered_at_arm = self.pending_bytes
            self._deadline = asyncio.get_running_loop().call_later(
                deadline, self._write_deadline_passed)

    # -- fast-producer stall ---------------------------------------------------------------
    def stall_behind(self, receiver: Connection) -> None:
        """Stop reading until ``receiver`` drains (or :data:`STALL_MAX` passes)."""
        if self._stalled or self.closing or self.transport is None or not self._stallable:
            return
        self._stalled = True
        self.transport.pause_reading()
        receiver._waiters.append(self)
        self._stall_timer = asyncio.get_running_loop().call_later(STALL_MAX, self.unstall)

    def unstall(self) -> None:
        if not self._stalled:
            return
        self._stalled = False
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    # -- output --------------------------------------------------------------------------
    def send(self, data: bytes) -> None:
        """Queue ``data``; it goes out when the current batch is flushed."""
        out = self.out
        if not out and not self.closing:
            self.server.router.dirty.append(self)
        out += data

    def send_now(self, data: bytes) -> None:
        """Queue ``data`` and write it at once (for output not caused by a read)."""
        self.out += data
        self.flush()

    def flush(self) -> bool:
        """Write queued output; cut the connection off if it cannot keep up.

        Returns True when the connection is congested: what it has not sent yet is past
        ``STALL_SHARE`` of ``max_pending``, so its producers should wait for it.
        """
        out = self.out
        transport = self.transport
        if not out or transport is None or self.closing:
            return False
        max_pending = self._max_pending or self.server.options.max_pending
        pending = transport.get_write_buffer_size() + len(out)
        if pending > max_pending:
            out.clear()
            self.slow_consumer("Slow Consumer (Pending Bytes)")
            return False
        self._written_since += len(out)
        transport.write(bytes(out))
        out.clear()
        return self._paused and pending > max_pending * STALL_SHARE

    @property
    def pending_bytes(self) -> int:
        """Bytes queued and not yet written to the socket."""
        buffered = self.transport.get_write_buffer_size() if self.transport else 0
        return buffered + len(self.out)

    def local_address(self) -> str:
        """``host:port`` of the server's end of the socket."""
        return self._local

    # -- TLS ------------------------------------------------------------------------------
    def begin_tls(self, tls: ClientTLS, info_sent: bool) -> None:
        """Secure the connection as ``tls`` demands (see the module docstring).

        Args:
            tls: The client port's TLS settings.
            info_sent: INFO has gone out already (false: TLS comes first).
        """
        self._tls_conf = tls
        if info_sent:
            self._after_info()
        elif tls.fallback > 0:
            self._hold(tls.fallback, self._after_fallback_wait)
        else:
            self._handshake(b"", first=True)

    def _after_info(self) -> None:
        tls = self._tls_conf
        assert tls is not None
        if tls.optional:
            self._hold(tls.timeout, self._tls_or_plain)
        else:
            self._handshake(b"", first=False)

    def _hold(self, wait: float, decide: Callable[[bytes], None]) -> None:
        if self.transport is not None:
            FirstBytes(self.transport, self, wait, decide)

    @property
    def _client(self) -> ClientSession | None:
        """The session as the client session TLS on the client port works with."""
        return cast("ClientSession | None", self.session)

    def _after_fallback_wait(self, first_bytes: bytes) -> None:
        """``handshake_first`` with a delay: bytes mean TLS first, silence means INFO."""
        session = self._client
        if self.closing or session is None:
            return
        if first_bytes:
            self._handshake(first_bytes, first=True)
            return
        session.send_first_info()
        if not self.closing:
            self._after_info()

    def _tls_or_plain(self, first_bytes: bytes) -> None:
        """``allow_non_tls``: a TLS handshake record starts TLS, anything else is plain."""
        session = self._client
        if self.closing or session is None:
            return
        if first_bytes[:1] == bytes([TLS_HANDSHAKE_RECORD]):
            self._handshake(first_bytes, first=False)
            return
        if self.transport is not None:
            self.transport.set_protocol(self)
        session.on_plaintext()
        if first_bytes and not self.closing:
            self.data_received(first_bytes)

    def _handshake(self, first_bytes: bytes, first: bool) -> None:
        tls, raw, session = self._tls_conf, self.transport, self._client
        if tls is None or raw is None or session is None or self.closing:
            return
        session.on_tls_start()
        layer = TLSTransport(raw, self, tls.context, tls.timeout,
                             lambda exc: self._handshake_done(layer, exc, first))
        layer.feed(first_bytes)

    def _handshake_done(self, layer: TLSTransport, exc: BaseException | None,
                        first: bool) -> None:
        session = self._client
        if self.closing or session is None:
            return
        if exc is not None:
            chain = peer_chain_der(layer.sslobj)
            session.on_tls_failed(exc, chain[0] if chain else None)
            return
        self.transport = layer
        self.tls = PeerTLS.from_ssl(layer.sslobj)
        session.on_tls_ready(self.tls, first)

    # -- closing -------------------------------------------------------------------------
    def close(self, reason: str, err: str | None = None) -> None:
        """Close after writing what is queued (and ``-ERR '<err>'`` if given)."""
        if self.closing:
            return
        if err is not None:
            self.out += encode_err(err)
        self.flush()
        self.closing = True
        self.parser.stop()
        if self.session is not None:
            self.session.on_closed(reason)
        transport = self.transport
        if transport is not None:
            if isinstance(transport, WebSocketTransport):
                transport.close_reason = reason  # the close frame's status follows it
            transport.close()
            deadline = max(self.server.options.write_deadline, 0.1)
            asyncio.get_running_loop().call_later(deadline, transport.abort)

    def slow_consumer(self, reason: str) -> None:
        """Drop the connection at once, discarding what it could not take."""
        if self.closing:
            return
        self.closing = True
        self.parser.stop()
        self.out.clear()
        if self.session is not None:
            self.session.on_slow_consumer(reason)
            self.session.on_closed(reason)
        if self.transport is not None:
            self.transport.abort()

    def _write_deadline_passed(self) -> None:
        """The socket stayed above its high-water mark for ``write_deadline``.

        A consumer that still made progress (sent bytes) keeps its connection and the
        clock starts again; one that took nothing at all is a slow consumer.
        """
        self._deadline = None
        sent = self._buffered_at_arm + self._written_since - self.pending_bytes
        if sent > 0 and self._paused:
            self._arm_deadline()
            return
        self.slow_consumer("Slow Consumer (Write Deadline)")

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


__all__ = ["Connection"]
