"""The monitoring HTTP listener: a thin shell over :mod:`.snapshots`.

Theory of operation
-------------------
nats-server serves ``/varz``, ``/connz``, ``/healthz`` and an index page at ``/`` from
Go's ``net/http`` (``StartMonitoring`` in ``server/server.go``). This module is the
smallest HTTP/1.1 server that behaves the same way for those endpoints, on asyncio
streams, with no dependencies:

* :func:`start_monitor` binds ``http_host`` (default: ``host``) and ``http_port``
  (``-1``: any free port), records the bound port in ``server.http_port`` and logs
  ``Starting http monitor on HOST:PORT`` as nats-server does.
* Each connection reads a request head (request line and headers, at most
  :data:`MAX_HEAD_BYTES`), answers it and, for HTTP/1.1 without ``Connection: close``,
  waits for the next one (keep-alive). Any method is answered like GET, as Go's mux
  does; HEAD gets the headers only.
* Routing and answers are :meth:`MonitorServer.respond`: exact paths only, an unknown
  path is Go's ``404 page not found``, a path that is not clean (``//varz``,
  ``/./varz``) gets Go's ``307`` redirect to the clean one. Query parameters are
  decoded by the snapshot module's query classes; a bad value is a ``400`` with
  nats-server's plain-text message. JSON is written as Go's encoder writes it: 2-space
  indent (``/healthz``: compact), ``<``, ``>``, ``&`` escaped, non-ASCII as UTF-8.
* Requests per path are counted for ``/varz``'s ``http_req_stats``.

Bounds, so that monitoring can never hurt the server: at most
:data:`MAX_CONNECTIONS` open monitoring connections; a request head must arrive within
:data:`HEAD_TIMEOUT` seconds (an idle keep-alive connection is closed after
:data:`IDLE_TIMEOUT`); a head over the limit is answered ``431`` and a malformed one
``400`` (Go's texts), then the connection is closed; a response the client does not
read within :data:`WRITE_TIMEOUT` closes the connection; a request body larger than
:data:`MAX_BODY_BYTES` is not read (the connection closes after the answer). An
exception while building an answer is logged and costs that request a ``500``; nothing
escapes to the event loop.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from pynats import SERVER_VERSION
from pynats.server.log import go_quote, host_port
from pynats.server.monitor import snapshots
from pynats.server.monitor.snapshots import ConnzQuery, HealthzQuery, QueryError

if TYPE_CHECKING:
    from pynats.server.server import Server

#: Request line plus headers. Go allows 1 MB; ours only ever need a few hundred bytes.
MAX_HEAD_BYTES: Final = 16 * 1024
#: Seconds to receive a complete request head once it has begun (and a first request).
HEAD_TIMEOUT: Final = 5.0
#: Seconds a keep-alive connection may sit idle between requests.
IDLE_TIMEOUT: Final = 30.0
#: Seconds a client has to read a response before the connection is dropped.
WRITE_TIMEOUT: Final = 10.0
#: Seconds spent discarding input after an error response, before closing.
LINGER_TIMEOUT: Final = 0.5
#: Largest request body read and discarded to keep a connection usable.
MAX_BODY_BYTES: Final = 64 * 1024
#: Monitoring connections open at once; more are closed on accept.
MAX_CONNECTIONS: Final = 256

ROOT, VARZ, CONNZ, HEALTHZ = "/", "/varz", "/connz", "/healthz"

_REASONS: Final = {200: "OK", 307: "Temporary Redirect", 400: "Bad Request",
                   404: "Not Found", 431: "Request Header Fields Too Large",
                   500: "Internal Server Error"}
_TEXT: Final = "text/plain; charset=utf-8"
_HTML: Final = "text/html; charset=utf-8"
_JSON_HEADERS: Final = (("Access-Control-Allow-Origin", "*"), ("Content-Type", "application/json"))
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS_RE: Final = re.compile(r"[0-9]+")
_VERSION_RE: Final = re.compile(r"HTTP/([0-9])\.[0-9]")
# Characters Go's JSON encoder escapes that Python's (ensure_ascii=False) writes raw.
_GO_JSON_RE: Final = re.compile("[<>&\u2028\u2029\ud800-\udfff]")
_GO_JSON_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                           "\u2028": "\\u2028", "\u2029": "\\u2029"}


class Closable(Protocol):
    """What :meth:`Server.shutdown` needs of the monitor."""

    def close(self) -> None: ...


class MonitorStartError(OSError):
    """The monitoring port cannot be bound; ``str()`` is nats-server's wording.

    nats-server logs it as ``Can't start monitoring: <message>`` and exits with status 1.
    """

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class BadRequest(Exception):
    """A request that cannot be answered normally; the connection closes after it.

    Args:
        status: 400, 431 or 505.
        reason: The status text (Go puts details there: ``Bad Request: missing
            required Host header``).
    """

    def __init__(self, status: int = 400, reason: str = "Bad Request"):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def to_bytes(self) -> bytes:
        """Go's answer to an unparseable request: no Date, no length, then close."""
        return (f"HTTP/1.1 {self.status} {self.reason}\r\nContent-Type: {_TEXT}\r\n"
                f"Connection: close\r\n\r\n{self.status} {self.reason}").encode("latin-1")


# -- requests ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request head. Header names are lower case; the first value wins."""

    method: str
    target: str
    version: str
    headers: Mapping[str, str]

    @property
    def raw_path(self) -> str:
        """The path as sent, still percent-encoded."""
        if self.target.startswith("/"):
            return self.target.partition("?")[0]
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        if self.target.startswith("/"):
            return self.target.partition("?")[2]
        return urlsplit(self.target).query

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection stay open after the response."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def params(self) -> dict[str, str]:
        """Query parameters, first value of each (Go's ``URL.Query().Get``)."""
        params: dict[str, str] = {}
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            params.setdefault(key, value)
        return params


def parse_head(lines: list[bytes]) -> Request:
    """Parse a request line and header lines (line endings already removed).

    Args:
        lines: The request line, then one line per header.

    Returns:
        The request.

    Raises:
        BadRequest: Malformed, or HTTP/1.1 without a ``Host`` header.
    """
    try:
        method, target, version = lines[0].decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest() from None
    major = _VERSION_RE.fullmatch(version)
    if not major or not _TOKEN_RE.fullmatch(method) or not target.startswith(
            ("/", "http://", "https://")):
        raise BadRequest()
    if major.group(1) != "1":
        raise BadRequest(505, "HTTP Version Not Supported: unsupported protocol version")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not _TOKEN_RE.fullmatch(name):
            raise BadRequest()
        headers.setdefault(name.lower(), value.strip(" \t"))
    if version != "HTTP/1.0" and "host" not in headers:
        raise BadRequest(reason="Bad Request: missing required Host header")
    return Request(method, target, version, headers)


def clean_path(path: str) -> str:
    """Go's ``cleanPath``: resolve ``.``, ``..`` and repeated slashes, keep a trailing one.

    Args:
        path: A decoded URL path.

    Returns:
        The canonical path, always starting with ``/``.
    """
    parts: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if parts:
                parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


# -- responses ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Response:
    """An answer. ``headers`` come first; ``sniffed`` is the Content-Type Go adds last."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    sniffed: str = ""


def go_json(value: Any, *, indent: bool = True) -> bytes:
    """Encode like Go's ``json.MarshalIndent(v, "", "  ")`` (or ``json.Marshal``).

    Args:
        value: JSON-ready data.
        indent: Two-space indentation; compact when false.

    Returns:
        UTF-8 JSON with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as Go escapes
        them and unpaired surrogates replaced by ``\\ufffd``.
    """
    if indent:
        text = json.dumps(value, ensure_ascii=False, indent=2)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _GO_JSON_RE.sub(lambda m: _GO_JSON_ESCAPES.get(m.group(), "\\ufffd"), text).encode()


def json_response(value: Any, *, status: int = 200, indent: bool = True) -> Response:
    """A JSON answer with nats-server's headers."""
    return Response(status, go_json(value, indent=indent), _JSON_HEADERS)


def text_response(status: int, text: str) -> Response:
    """A plain-text answer (query errors, internal errors)."""
    return Response(status, text.encode(), sniffed=_TEXT)


NOT_FOUND: Final = Response(404, b"404 page not found\n",
                            (("Content-Type", _TEXT), ("X-Content-Type-Options", "nosniff")))


def redirect(path: str, query: str) -> Response:
    """Go's ``307`` to the clean form of a path."""
    location = quote(path, safe="/:@!$&'()*+,;=-._~") + (f"?{query}" if query else "")
    body = f'<a href="{html.escape(location)}">Temporary Redirect</a>.\n\n'.encode()
    return Response(307, body, (("Content-Type", _HTML), ("Location", location)))


def encode_response(response: Response, request: Request, *, keep_alive: bool) -> bytes:
    """Serialise ``response`` to ``request`` (HEAD: headers only).

    Args:
        response: The answer.
        request: The request it answers (its version and method matter).
        keep_alive: Whether the connection stays open afterwards.

    Returns:
        The bytes to write.
    """
    version = "HTTP/1.0" if request.version == "HTTP/1.0" else "HTTP/1.1"
    lines = [f"{version} {response.status} {_REASONS[response.status]}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    lines.append(f"Date: {formatdate(usegmt=True)}")
    lines.append(f"Content-Length: {len(response.body)}")
    if response.sniffed:
        lines.append(f"Content-Type: {response.sniffed}")
    if version == "HTTP/1.1" and not keep_alive:
        lines.append("Connection: close")
    elif version == "HTTP/1.0" and keep_alive:
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if request.method == "HEAD" else head + response.body


def index_page() -> bytes:
    """The ``/`` page: links to the endpoints this server has."""
    links = "\n".join(f'    <a href=".{path}">{label}</a><br/>' for path, label in
                      ((VARZ, "General"), (CONNZ, "Connections"), (HEALTHZ, "Health Probe")))
    return (f'<html lang="en">\n  <head><title>NATS Server Monitoring</title></head>\n'
            f"  <body>\n    <h1>NATS Server Monitoring</h1>\n"
            f"    <p>nats-server v{SERVER_VERSION} (pynats)</p>\n{links}\n"
            f'    <p><a href="https://docs.nats.io/running-a-nats-service/nats_admin/'
            f'monitoring">Help</a></p>\n  </body>\n</html>\n').encode()


# -- the server --------------------------------------------------------------------------


class MonitorServer:
    """The monitoring listener of one :class:`~pynats.server.server.Server`.

    Attributes:
        req_stats: Requests answered per endpoint path (``/varz``'s ``http_req_stats``).
    """

    def __init__(self, server: Server):
        self.server = server
        self.req_stats: dict[str, int] = {}
        self._listener: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._closed = False
        self._routes: dict[str, Callable[[Request], Response]] = {
            ROOT: self._root, VARZ: self._varz, CONNZ: self._connz, HEALTHZ: self._healthz,
        }

    async def start(self) -> None:
        """Bind the listener, set ``server.http_port`` and log it.

        Raises:
            MonitorStartError: The address cannot be bound.
        """
        opts = self.server.options
        host = opts.http_host or opts.host
        port = 0 if opts.http_port < 0 else opts.http_port
        try:
            sock = await _bind(host, port)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise MonitorStartError(exc.errno, "can't listen to the monitor port: listen tcp "
                                    f"{host_port(host, port)}: bind: {reason}") from exc
        self._listener = await asyncio.start_server(self._serve, sock=sock,
                                                    limit=MAX_HEAD_BYTES)
        self.server.http_port = sock.getsockname()[1]
        self.server.log.notice(f"Starting http monitor on {host_port(host, self.server.http_port)}")

    def close(self) -> None:
        """Stop listening and drop every open monitoring connection."""
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.close()
        for writer in list(self._writers):
            writer.close()

    # -- routing -------------------------------------------------------------------------
    def respond(self, request: Request) -> Response:
        """Answer one request; a failure while answering becomes a 500.

        Args:
            request: The parsed request.

        Returns:
            The response to send.
        """
        try:
            path = unquote(request.raw_path)
            cleaned = clean_path(path)
            if cleaned != path:
                return redirect(cleaned, request.query)
            handler = self._routes.get(path)
            return NOT_FOUND if handler is None else handler(request)
        except Exception as exc:  # a bug costs this request, never the server
            self.server.log.error(f"Error handling monitoring request {request.target!r}: "
                                  f"{exc!r}")
            return text_response(500, "500 Internal Server Error")

    def _count(self, path: str) -> None:
        self.req_stats[path] = self.req_stats.get(path, 0) + 1

    def _root(self, request: Request) -> Response:
        self._count(ROOT)
        return Response(200, index_page(), (("Content-Type", _HTML),))

    def _varz(self, request: Request) -> Response:
        self._count(VARZ)
        return json_response(snapshots.varz(self.server, http_req_stats=self.req_stats))

    def _connz(self, request: Request) -> Response:
        try:
            query = ConnzQuery.from_params(request.params())
        except QueryError as exc:
            return text_response(400, str(exc))
        self._count(CONNZ)
        return json_response(snapshots.connz(self.server, query))

    def _healthz(self, request: Request) -> Response:
        self._count(HEALTHZ)
        try:
            query = HealthzQuery.from_params(request.params())
        except QueryError as exc:
            return text_response(400, str(exc))
        status, body = snapshots.healthz(self.server, query)
        if "error" in body:
            self.server.log.warn(f"Healthcheck failed: {go_quote(str(body['error']))}")
        elif "errors" in body:
            self.server.log.warn(f"Healthcheck failed: {len(body['errors'])} errors")
        return json_response(body, status=status, indent=False)

    # -- connections ---------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed or len(self._writers) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._writers.add(writer)
        try:
            await self._serve_requests(reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            pass  # the peer went away, or was too slow
        except Exception as exc:  # never let a monitoring connection hurt the loop
            self.server.log.error(f"Monitoring connection error: {exc!r}")
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _serve_requests(self, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
        timeout = HEAD_TIMEOUT
        while not self._closed:
            try:
                request = await _read_head(reader, timeout)
                if request is None:
                    return
                reusable = await _discard_body(reader, request)
            except BadRequest as exc:
                writer.write(exc.to_bytes())
                await _drain(writer)
                await _linger(reader, writer)
                return
            keep_alive = reusable and request.keep_alive and not self._closed
            writer.write(encode_response(self.respond(request), request, keep_alive=keep_alive))
            await _drain(writer)
            if not keep_alive:
                return
            timeout = IDLE_TIMEOUT


async def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on the first address ``host`` resolves to (one port only)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def _read_head(reader: asyncio.StreamReader, timeout: float) -> Request | None:
    """Read one request head; None when the peer closes (or stops) before completing it.

    ``timeout`` bounds the wait for the request line; once it has started, the rest
    must arrive within :data:`HEAD_TIMEOUT`.
    """
    loop = asyncio.get_running_loop()
    lines: list[bytes] = []
    size = 0
    async with asyncio.timeout(timeout) as deadline:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # one line over the reader's limit
                raise BadRequest(431, _REASONS[431]) from None
            if not line.endswith(b"\n"):
                return None
            size += len(line)
            if size > MAX_HEAD_BYTES:
                raise BadRequest(431, _REASONS[431])
            line = line.rstrip(b"\r\n")
            if not line:
                if lines:
                    return parse_head(lines)
                continue  # blank lines before a request line are ignored
            if not lines:
                deadline.reschedule(loop.time() + HEAD_TIMEOUT)
            lines.append(line)


async def _discard_body(reader: asyncio.StreamReader, request: Request) -> bool:
    """Consume a small request body; False when the connection cannot be reused."""
    if "transfer-encoding" in request.headers:
        return False
    length = request.headers.get("content-length", "0")
    if not _DIGITS_RE.fullmatch(length):
        raise BadRequest()
    size = int(length)
    if size > MAX_BODY_BYTES:
        return False
    if size:
        async with asyncio.timeout(HEAD_TIMEOUT):
            await reader.readexactly(size)
    return True


async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-close, then drop what the client is still sending for a moment.

    Closing a socket with unread input makes the kernel send a reset, which can destroy
    the error response before the client reads it (Go's ``closeWriteAndWait``).
    """
    if writer.can_write_eof():
        writer.write_eof()
    try:
        async with asyncio.timeout(LINGER_TIMEOUT):
            while await reader.read(65536):
                pass
    except (TimeoutError, OSError):
        pass


async def _drain(writer: asyncio.StreamWriter) -> None:
    async with asyncio.timeout(WRITE_TIMEOUT):
        await writer.drain()


async def start_monitor(server: Server) -> MonitorServer:
    """Start the monitoring listener of ``server`` (called by ``Server.start``).

    Args:
        server: The server; ``server.options.http_port`` is non-zero.

    Returns:
        The running monitor; ``close()`` stops it.

    Raises:
        MonitorStartError: The monitoring address cannot be bound.
    """
    monitor = MonitorServer(server)
    await monitor.start()
    return monitor


__all__ = [
    "HEAD_TIMEOUT", "IDLE_TIMEOUT", "LINGER_TIMEOUT", "MAX_BODY_BYTES", "MAX_CONNECTIONS",
    "MAX_HEAD_BYTES", "WRITE_TIMEOUT", "BadRequest", "Closable", "MonitorServer",
    "MonitorStartError", "Request", "Response", "clean_path", "encode_response", "go_json",
    "parse_head", "start_monitor",
]
