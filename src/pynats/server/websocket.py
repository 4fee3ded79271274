"""The ``websocket`` listener: where WebSocket clients come in (``wstransport.py``).

It binds the block's ``host``/``port`` (``-1``: any free port), logs nats-server's
``Listening for websocket clients on ws://HOST:PORT`` (``wss`` with a ``tls`` block,
and the warning that plain ``ws`` is not for production), and gives every accepted
upgrade to the server as a :class:`~pynats.server.connection.Connection` marked
``websocket``: the same client session, parser, limits and auth as the client port.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from pynats.server.auth import Authenticator
from pynats.server.config.options import ServerOptions, WebsocketOptions
from pynats.server.connection import Connection
from pynats.server.log import host_port
from pynats.server.tls import server_context
from pynats.server.wstransport import WebSocketSettings, WebSocketTransport, parse_origin

if TYPE_CHECKING:
    from pynats.server.server import Server

#: The warning nats-server logs for a WebSocket listener without TLS.
NO_TLS_WARNING = "Websocket not configured with TLS. DO NOT USE IN PRODUCTION!"


def websocket_authenticator(options: ServerOptions) -> Authenticator | None:
    """The authentication of WebSocket clients, when the block overrides the server's.

    As nats-server: a ``user``/``password`` or ``token`` in the block's ``authorization``
    replaces the server's single user or token for WebSocket clients (the ``users``
    stay), and the block's ``no_auth_user`` replaces the server's. None: the same
    authentication as the client port.
    """
    ws = options.websocket
    own = ws.authorization
    if not ws.no_auth_user and (own is None or not (own.username or own.token)):
        return None
    auth = options.authorization
    if own is not None and (own.username or own.token):
        auth = replace(auth, username=own.username, password=own.password, token=own.token)
    return Authenticator(replace(options, authorization=auth,
                                 no_auth_user=ws.no_auth_user or options.no_auth_user))


def settings_of(ws: WebsocketOptions, max_payload: int) -> WebSocketSettings:
    """The upgrade checks and framing limits of the ``websocket`` block."""
    return WebSocketSettings(
        compression=ws.compression, same_origin=ws.same_origin,
        allowed_origins=tuple(parse_origin(url) for url in ws.allowed_origins),
        handshake_timeout=ws.handshake_timeout,
        tls=server_context(ws.tls) if ws.tls is not None else None,
        max_frame=max(8 * 1024 * 1024, 2 * max_payload))


class WebSocketListener:
    """The listening socket for WebSocket clients of one server."""

    def __init__(self, server: Server):
        self.server = server
        self.port = 0
        self._listener: asyncio.Server | None = None
        self._settings = settings_of(server.options.websocket, server.options.max_payload)

    @property
    def secure(self) -> bool:
        return self._settings.tls is not None

    async def start(self) -> None:
        """Bind and log where clients connect."""
        ws = self.server.options.websocket
        port = 0 if ws.port == -1 else ws.port
        self._listener = await self.server.loop.create_server(
            self._accept, ws.host, port, reuse_address=True, backlog=1024)
        self.port = self._listener.sockets[0].getsockname()[1]
        scheme = "wss" if self.secure else "ws"
        log = self.server.log
        log.notice(f"Listening for websocket clients on {scheme}://"
                   f"{host_port(ws.host, self.port)}")
        if not self.secure:
            log.warn(NO_TLS_WARNING)

    def _accept(self) -> WebSocketTransport:
        return WebSocketTransport(self._settings, self._open, self.server.log.error)

    def _open(self, transport: WebSocketTransport) -> Connection:
        conn = Connection(self.server)
        conn.websocket = True
        return conn

    def close(self) -> None:
        """Stop accepting new WebSocket clients."""
        if self._listener is not None:
            self._listener.close()
