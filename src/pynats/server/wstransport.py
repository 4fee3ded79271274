"""WebSocket clients: the HTTP upgrade, then NATS in binary frames, under a Connection.

Theory of operation
-------------------
The ``websocket`` listener's protocol is a :class:`WebSocketTransport`. Over the socket
transport (or over a :class:`~pynats.server.tlstransport.TLSTransport` for ``wss``, the
handshake run as soon as the client connects) it first reads one HTTP request, with the
``websockets`` package's sans-I/O protocol doing the parsing, and checks it in
nats-server's order and with its words (``request method must be GET``, ``invalid
value for header 'Upgrade'``, ``origin not allowed: not in the allowed list``...): a
refused request gets Go's plain-text error response and the log line ``<ip:port> -
websocket handshake error: <reason>``. Nothing complete within ``handshake_timeout``
closes the socket.

Accepted, it answers ``101 Switching Protocols`` as nats-server does (with
``permessage-deflate; server_no_context_takeover; client_no_context_takeover`` when
compression is on and asked for) and becomes the transport of a new
:class:`~pynats.server.connection.Connection`: from then on a WebSocket client is a
client like any other, with the same parser, limits, auth and pruning. The payloads of
the data frames of one socket read go to ``Connection.data_received`` in one call;
pings are answered and a close is echoed by the protocol; ``write`` sends one binary
frame per flush. A frame that breaks the protocol (an unmasked one, say) is logged as a
read error and answered with a 1002 close frame in nats-server's words. Closing sends
a close frame whose status follows the connection's close reason, as nats-server's
``wsEnqueueCloseMessage``. Frames are bounded by ``max_frame`` (a larger one is refused
with status 1009, message too big).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.exceptions import PayloadTooBig
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from pynats.server.tlstransport import TLSTransport

#: What Go's HTTP server answers to bytes that are not an HTTP request.
MALFORMED_RESPONSE: Final = (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; "
                             b"charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")
_STATUS_TEXT: Final = {400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed"}
_DATA: Final = (Opcode.BINARY, Opcode.TEXT, Opcode.CONT)
#: nats-server's words for frames it cannot read, by the ``websockets`` message.
_READ_ERRORS: Final = {"incorrect masking": "mask bit missing"}

#: Close statuses by connection close reason (nats-server's ``wsEnqueueCloseMessage``).
_POLICY: Final = frozenset({
    "Authentication Timeout", "Authorization Violation", "Authentication Failure",
    "Slow Consumer (Pending Bytes)", "Slow Consumer (Write Deadline)",
    "Maximum Account Connections Exceeded", "Maximum Connections Exceeded",
    "Maximum Control Line Exceeded", "Maximum Subscriptions Exceeded", "Missing Account",
    "Authentication Expired", "Credentials Revoked", "User Authentication Expired",
    "Account Authentication Expired", "User Authentication Revoked"})
_PROTOCOL: Final = frozenset({"Parse Error", "Protocol Violation",
                              "Bad Client Protocol Version"})
_GOING_AWAY: Final = frozenset({"Write Error", "Read Error", "Stale Connection",
                                "Server Shutdown", "Client Closed Lame Duck"})


def close_status(reason: str) -> int:
    """The WebSocket close status nats-server sends for a connection close ``reason``."""
    if reason in ("", "Client Closed"):
        return 1000
    if reason in _POLICY:
        return 1008
    if reason in _PROTOCOL:
        return 1002
    if reason == "Maximum Message Payload Exceeded":
        return 1009
    if reason in _GOING_AWAY:
        return 1001
    return 1011


@dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """What the upgrade checks and the framing need from the ``websocket`` block.

    Attributes:
        compression: Offer permessage-deflate to clients that ask for it.
        same_origin: An ``Origin`` must match the request's ``Host``.
        allowed_origins: ``(scheme, host, port)`` of the origins allowed (empty: any).
        handshake_timeout: Seconds for TLS and the HTTP request (0: unbounded).
        tls: The ``wss`` context (None for ``ws``).
        max_frame: The largest frame (or fragmented message) accepted, in bytes.
    """

    compression: bool = False
    same_origin: bool = False
    allowed_origins: tuple[tuple[str, str, str], ...] = ()
    handshake_timeout: float = 2.0
    tls: ssl.SSLContext | None = None
    max_frame: int = 8 * 1024 * 1024


def parse_origin(url: str) -> tuple[str, str, str]:
    """``(scheme, host, port)`` of an origin URL, with the scheme's default port."""
    parts = urlsplit(url)
    host, port = _host_and_port(parts.scheme == "https", parts.netloc)
    return parts.scheme, host, port


class WebSocketTransport(asyncio.Transport, asyncio.Protocol):
    """One WebSocket client: the upgrade, then frames (see the module docstring).

    Args:
        settings: The checks and framing limits.
        on_open: Called once the upgrade is done; returns the protocol (a Connection)
            this transport serves, which it calls ``connection_made`` on.
        log_error: Logs one line at error level (handshake refusals).
    """

    def __init__(self, settings: WebSocketSettings,
                 on_open: Callable[[WebSocketTransport], asyncio.Protocol],
                 log_error: Callable[[str], None]):
        super().__init__()
        self.settings = settings
        self._on_open = on_open
        self._log_error = log_error
        extensions = [ServerPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True)] \
            if settings.compression else []
        self.ws = ServerProtocol(extensions=extensions, max_size=settings.max_frame)
        self._raw: asyncio.Transport | None = None
        self._app: asyncio.Protocol | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._secure = settings.tls is not None
        self.close_reason = ""
        #: The cookies of the upgrade request (``jwt_cookie`` and the like read them).
        self.cookies: dict[str, str] = {}

    # -- the socket side ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = transport if isinstance(transport, asyncio.Transport) else None
        if raw is None:
            return
        timeout = self.settings.handshake_timeout
        if timeout > 0:
            self._timer = asyncio.get_running_loop().call_later(timeout, self._timed_out)
        if self.settings.tls is not None:
            self._raw = TLSTransport(raw, self, self.settings.tls, 0, self._tls_done)
        else:
            self._raw = raw

    def _tls_done(self, exc: BaseException | None) -> None:
        if exc is not None:
            self.abort()

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        self.ws.receive_data(data)
        if self._app is None:
            self._upgrade()
        else:
            self._frames()

    def eof_received(self) -> bool | None:
        if self._app is not None:
            self.ws.receive_eof()
            self._send_pending()
            return self._app.eof_received()
        self.abort()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._cancel_timer()
        if self._app is not None:
            self._app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        if self._app is not None:
            self._app.resume_writing()

    # -- the upgrade -------------------------------------------------------------------------
    def _upgrade(self) -> None:
        events = self.ws.events_received()
        if self.ws.handshake_exc is not None:
            self._refuse_malformed()
            return
        if not events:
            return  # the request is not complete yet
        request = events[0]
        assert isinstance(request, Request)
        reason, status = self._check(request)
        if reason:
            self._refuse(status, reason)
            return
        response = self.ws.accept(request)
        if response.status_code != 101:  # websockets found more to object to
            self._refuse(400, response.body.decode(errors="replace").strip())
            return
        self.cookies = _cookies(request.headers)
        self.ws.send_response(_like_nats_server(response))
        self._send_pending()
        self._cancel_timer()
        self._app = self._on_open(self)
        self._app.connection_made(self)
        self._frames()  # frames that came with the request

    def _check(self, request: Request) -> tuple[str, int]:
        """nats-server's reason to refuse ``request`` and the HTTP status ("" if none)."""
        headers = request.headers
        if request.method != "GET":
            return "request method must be GET", 405
        if not headers.get("Host"):
            return "'Host' missing in request", 400
        if not _contains(headers, "Upgrade", "websocket"):
            return "invalid value for header 'Upgrade'", 400
        if not _contains(headers, "Connection", "Upgrade"):
            return "invalid value for header 'Connection'", 400
        if not headers.get("Sec-WebSocket-Key"):
            return "key missing", 400
        if not _contains(headers, "Sec-WebSocket-Version", "13"):
            return "invalid version", 400
        origin = self._origin_problem(headers)
        if origin:
            return f"origin not allowed: {origin}", 403
        return "", 0

    def _origin_problem(self, headers: Headers) -> str:
        settings = self.settings
        if not settings.same_origin and not settings.allowed_origins:
            return ""
        origin = headers.get("Origin") or headers.get("Sec-WebSocket-Origin") or ""
        if not origin:
            return ""
        parts = urlsplit(origin)
        if not parts.scheme or not parts.netloc:
            return f"parse {go_quote_url(origin)}: invalid URI for request"
        host, port = _host_and_port(parts.scheme == "https", parts.netloc)
        if settings.same_origin and (host, port) != _host_and_port(
                self._secure, headers.get("Host", "")):
            return "not same origin"
        if settings.allowed_origins and (parts.scheme, host, port) not in \
                settings.allowed_origins:
            return "not in the allowed list"
        return ""

    def _refuse(self, status: int, reason: str) -> None:
        self._log_error(f"{self._peer()} - websocket handshake error: {reason}")
        text = _STATUS_TEXT.get(status, "Bad Request")
        body = f"{text}\n".encode()
        head = (f"HTTP/1.1 {status} {text}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Sec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n"
                f"Date: {formatdate(usegmt=True)}\r\nContent-Length: {len(body)}\r\n\r\n")
        self._write_raw(head.encode() + body)
        self.close()

    def _refuse_malformed(self) -> None:
        self._write_raw(MALFORMED_RESPONSE)
        self.close()

    def _timed_out(self) -> None:
        self._timer = None
        if self._app is None:
            self.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _peer(self) -> str:
        peer = self.get_extra_info("peername")
        if isinstance(peer, tuple):
            host = str(peer[0])
            return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
        return "?"

    # -- frames ------------------------------------------------------------------------------
    def _frames(self) -> None:
        chunks = [event.data for event in self.ws.events_received()
                  if isinstance(event, Frame) and event.opcode in _DATA]
        app = self._app
        if chunks and app is not None and not self._closed:
            app.data_received(b"".join(chunks))
        if self.ws.parser_exc is not None:
            self._read_error(self.ws.parser_exc)
            return
        self._send_pending()
        if self.ws.state is State.CLOSED or self.ws.close_expected():
            self._close_raw()

    def _read_error(self, exc: Exception) -> None:
        """A frame nats-server cannot read: logged, answered with a 1002 close, closed."""
        text = str(exc.__cause__ or exc)
        reason = _READ_ERRORS.get(text, text)
        app, self._app = self._app, None
        session = getattr(app, "session", None)
        describe = getattr(session, "describe", None)
        prefix = describe() if callable(describe) else f"{self._peer()} - "
        self._log_error(f"{prefix}read error: {reason}")
        self.ws.data_to_send()  # websockets' own close frame, replaced by nats-server's
        status = 1009 if isinstance(exc, PayloadTooBig) else 1002
        close = Close(status, reason[:120]).serialize()
        self._write_raw(Frame(Opcode.CLOSE, close).serialize(mask=False))
        self._close_raw()
        if app is not None:
            app.connection_lost(ConnectionError(reason))

    def _send_pending(self) -> None:
        for chunk in self.ws.data_to_send():
            if chunk:
                self._write_raw(chunk)
            else:
                self._close_raw()

    def _write_raw(self, data: bytes) -> None:
        raw = self._raw
        if raw is not None and not raw.is_closing():
            raw.write(data)

    def _close_raw(self) -> None:
        self._closed = True
        if self._raw is not None:
            self._raw.close()

    # -- the transport side: the connection calls these ---------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed or self.ws.state is not State.OPEN:
            return
        self.ws.send_binary(bytes(data))
        self._send_pending()

    def close(self) -> None:
        """Send a close frame (its status from ``close_reason``), then close the socket."""
        if self._closed:
            return
        if self._app is not None and self.ws.state is State.OPEN:
            reason = self.close_reason
            with contextlib.suppress(Exception):  # the protocol may already be failing
                self.ws.send_close(close_status(reason), reason[:120])
            self._send_pending()
        self._close_raw()

    def abort(self) -> None:
        self._closed = True
        self._cancel_timer()
        if self._raw is not None:
            self._raw.abort()

    def is_closing(self) -> bool:
        return self._closed or self._raw is None or self._raw.is_closing()

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size() if self._raw is not None else 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if self._raw is not None:
            self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._raw.get_write_buffer_limits() if self._raw is not None else (0, 0)

    def pause_reading(self) -> None:
        if self._raw is not None:
            self._raw.pause_reading()

    def resume_reading(self) -> None:
        if self._raw is not None:
            self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw is not None and self._raw.is_reading()

    def can_write_eof(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if self._raw is None:
            return default
        return self._raw.get_extra_info(name, default)


def _like_nats_server(response: Response) -> Response:
    """The 101 response with only the headers nats-server sends, in its order."""
    keep = Headers()
    for name in ("Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Extensions"):
        if name in response.headers:
            keep[name] = response.headers[name]
    return Response(response.status_code, response.reason_phrase, keep, response.body)


def _cookies(headers: Headers) -> dict[str, str]:
    """The request's cookies by name (the first of a name wins, as Go's ``r.Cookie``)."""
    jar = SimpleCookie()
    found: dict[str, str] = {}
    for line in headers.get_all("Cookie"):
        with contextlib.suppress(CookieError):
            jar.load(line)
            for name, morsel in jar.items():
                found.setdefault(name, morsel.value)
    return found


def _contains(headers: Headers, name: str, value: str) -> bool:
    """Whether one comma-separated token of header ``name`` is ``value`` (any case)."""
    return any(token.strip(" \t").lower() == value.lower()
               for line in headers.get_all(name) for token in line.split(","))


def _host_and_port(secure: bool, hostport: str) -> tuple[str, str]:
    """Go's ``wsGetHostAndPort``: lower-cased host, and the scheme's port if none."""
    host, sep, port = hostport.rpartition(":")
    if not sep or "]" in port:
        host, port = hostport, "443" if secure else "80"
    return host.strip("[]").lower(), port


def go_quote_url(text: str) -> str:
    """``text`` quoted as Go's ``url.Error`` quotes a URL."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


__all__ = ["MALFORMED_RESPONSE", "WebSocketSettings", "WebSocketTransport", "close_status",
           "parse_origin"]
