"""The client's one transport-aware class: an ``asyncio.Protocol`` per connection.

Theory of operation
-------------------
A :class:`Connection` owns one transport and one pure
:class:`~pynats.protocol.parser.Parser` (role CLIENT), and is the parser's sink.
``data_received`` parses the whole buffer synchronously: every ``MSG``/``HMSG`` goes
straight to the subscription found by sid in the table it shares with the client
(``deliver`` only appends to a deque and wakes a future), so a read buffer's messages
are all delivered without an await and without the client in the call chain. Other
operations go to the owner, the :class:`~pynats.client.aio.Client`.

A connection lives through three phases:

1. *handshake* (:meth:`Connection.handshake`): wait for the first ``INFO``, upgrade to
   TLS when the server requires it (or the client asked and the server offers it),
   send ``CONNECT`` + ``PING`` and wait for the ``PONG``; an ``-ERR`` or the server
   closing fails the handshake with the matching error. The caller bounds it with a
   timeout, so a server that never sends INFO cannot hang a connect.
2. *ready*: the handshake succeeded but the client has not taken the connection yet;
   the connection answers PINGs itself and keeps async INFOs and ``-ERR`` for the
   client to judge when it attaches.
3. *attached* (:meth:`Connection.attach`): every operation other than messages goes to
   the owner, and so does the end of the connection.

Bytes the server sends that break the protocol become a
:class:`~pynats.errors.ServerProtocolError` and the connection is aborted. Writes are
whole batches built by the client (one ``transport.write`` per loop iteration).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from pynats.client.core import SubscriptionState, classify_err
from pynats.errors import ClientError, SecureConnectionError, ServerProtocolError
from pynats.protocol import ops
from pynats.protocol.encode import PING, PONG
from pynats.protocol.errors import ProtocolError
from pynats.protocol.parser import Parser, Role

#: Longest control line accepted from a server; INFO with a big cluster's
#: connect_urls is the longest legitimate one.
MAX_CONTROL_LINE: Final = 64 * 1024

#: Builds the CONNECT line from the server's INFO and whether TLS is on.
ConnectLine = Callable[[Mapping[str, Any], bool], bytes]


class ConnectionOwner(Protocol):
    """What an attached connection reports to its client."""

    def _conn_op(self, conn: Connection, op: ops.Op) -> None: ...

    def _conn_lost(self, conn: Connection, exc: BaseException | None) -> None: ...


class Connection(asyncio.Protocol):
    """One connection to one server.

    Args:
        owner: the client that attached connections report to.
        subs: the client's subscription table, by sid bytes (shared, not copied).

    Attributes:
        info: the server's INFO (updates merged in).
        in_msgs: messages received on this connection.
        in_bytes: payload and header bytes received.
        tls: whether the connection is encrypted.
    """

    def __init__(self, owner: ConnectionOwner, subs: dict[bytes, SubscriptionState]):
        self._owner = owner
        self._subs = subs
        self._parser = Parser(Role.CLIENT, MAX_CONTROL_LINE)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._info_fut: asyncio.Future[dict[str, Any]] = self._loop.create_future()
        self._pong_fut: asyncio.Future[None] | None = None
        self._closed_fut: asyncio.Future[None] = self._loop.create_future()
        self._attached = False
        self._handshaking = True
        self._early: list[ops.Op] = []
        self.lost_error: BaseException | None = None
        self.info: dict[str, Any] = {}
        self.in_msgs = 0
        self.in_bytes = 0
        self.tls = False

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self.tls = transport.get_extra_info("sslcontext") is not None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.parse(data, self)
        except ProtocolError as exc:
            error = ServerProtocolError(f"server broke the protocol: {exc}")
            error.__cause__ = exc
            self._fail(error)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and self.lost_error is None:
            self.lost_error = exc
        if not self._closed_fut.done():
            self._closed_fut.set_result(None)
        if self._attached:
            self._owner._conn_lost(self, self.lost_error)
        else:
            reason = self.lost_error or ConnectionResetError("server closed the connection")
            self._fail_handshake(reason)

    # -- parser sink ---------------------------------------------------------------------------
    def on_msg(self, subject: bytes, sid: bytes, reply: bytes, payload: bytes) -> None:
        self.in_msgs += 1
        self.in_bytes += len(payload)
        sub = self._subs.get(sid)
        if sub is not None:
            sub.deliver(subject, reply, payload, b"")

    def on_hmsg(self, subject: bytes, sid: bytes, reply: bytes, headers: bytes,
                payload: bytes) -> None:
        self.in_msgs += 1
        self.in_bytes += len(payload) + len(headers)
        sub = self._subs.get(sid)
        if sub is not None:
            sub.deliver(subject, reply, payload, headers)

    def on_op(self, op: ops.Op) -> None:
        if self._attached:
            self._owner._conn_op(self, op)
        else:
            self._early_op(op)

    def on_pub(self, subject: bytes, reply: bytes, framed: list[bytes], nbytes: int) -> None:
        """Never called in the client role."""

    def on_hpub(self, subject: bytes, reply: bytes, headers: bytes, payload: bytes,
                hframed: bytes) -> None:
        """Never called in the client role."""

    # -- handshake -----------------------------------------------------------------------------
    def _early_op(self, op: ops.Op) -> None:
        """Operations before the client attached: the handshake's own business."""
        if isinstance(op, ops.Info):
            if not self._handshaking:
                self._early.append(op)  # an async INFO: the owner's business
                return
            self.info.update(op.info)
            if not self._info_fut.done():
                self._info_fut.set_result(op.info)
        elif isinstance(op, ops.Ping):
            self.write(PONG)
        elif isinstance(op, ops.Pong):
            if self._pong_fut is not None and not self._pong_fut.done():
                self._handshaking = False
                self._pong_fut.set_result(None)
        elif isinstance(op, ops.Err):
            if self._handshaking:
                self._fail(classify_err(op.text)[1])
            else:
                self._early.append(op)  # the owner decides, once attached

    async def handshake(self, connect_line: ConnectLine, tls: ssl.SSLContext | None,
                        hostname: str, want_tls: bool) -> dict[str, Any]:
        """INFO, optional TLS upgrade, CONNECT + PING, PONG.

        Args:
            connect_line: builds the CONNECT line from the INFO.
            tls: context for an upgrade after INFO (None: a default context is made if
                the server requires TLS).
            hostname: name to check the server certificate against.
            want_tls: the client requires TLS.

        Returns:
            The server's INFO.

        Raises:
            ClientError: the server refused (``-ERR``), broke the protocol or does not
                offer TLS that the client requires.
            OSError: the connection failed or the server closed it.
        """
        info = await self._info_fut
        if not self.tls:
            if info.get("tls_required") or (want_tls and info.get("tls_available")):
                await self._start_tls(tls or ssl.create_default_context(), hostname)
            elif want_tls:
                raise SecureConnectionError("TLS required by the client, not offered by "
                                            "the server")
        self._pong_fut = self._loop.create_future()
        self.write(connect_line(self.info, self.tls) + PING)
        await self._pong_fut
        return self.info

    async def _start_tls(self, context: ssl.SSLContext, hostname: str) -> None:
        assert self._transport is not None
        transport = await self._loop.start_tls(self._transport, self, context,
                                               server_hostname=hostname)
        if transport is None:
            raise ConnectionResetError("connection closed during the TLS handshake")
        self._transport = transport
        self.tls = True

    def _fail(self, error: ClientError) -> None:
        """A fatal problem: remember it, fail the handshake, drop the connection."""
        if self.lost_error is None:
            self.lost_error = error
        self._fail_handshake(error)
        self.abort()

    def _fail_handshake(self, error: BaseException) -> None:
        for fut in (self._info_fut, self._pong_fut):
            if fut is not None and not fut.done():
                fut.set_exception(error)
                fut.exception()  # retrieved: a handshake already abandoned must not warn

    def attach(self) -> bool:
        """Hand the connection to its owner; False if it was already lost.

        Operations that arrived between the handshake and now are replayed to it.
        """
        self._attached = True
        early, self._early = self._early, []
        for op in early:
            self._owner._conn_op(self, op)
        return not self._closed_fut.done()

    # -- writing and closing -------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Write bytes (ignored once the transport is closing)."""
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def close(self) -> None:
        """Close after writing what is buffered."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection at once."""
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self, timeout: float) -> None:
        """Wait (at most ``timeout`` seconds) until the connection is gone."""
        try:
            await asyncio.wait_for(asyncio.shield(self._closed_fut), timeout)
        except TimeoutError:
            self.abort()

    @property
    def is_closed(self) -> bool:
        """Whether the connection is gone."""
        return self._closed_fut.done()


__all__ = ["MAX_CONTROL_LINE", "ConnectLine", "Connection", "ConnectionOwner"]
