"""The monitoring listener: a thin HTTP(S) shell over the snapshot modules.

Theory of operation
-------------------
nats-server serves its monitoring endpoints from Go's ``net/http``
(``StartMonitoring`` in ``server/server.go``). This module is the smallest HTTP/1.1
server that behaves the same way, on asyncio streams, with no dependencies:

* :func:`start_monitor` refuses ``http_port`` and ``https_port`` together and HTTPS
  without a certificate (nats-server's texts, raised as :class:`MonitorStartError`),
  binds ``http_host`` (default: ``host``) and the port (``-1``: any free port), with
  TLS for ``https_port`` (:mod:`pynats.server.tls`), records the bound port in ``server.http_port``
  and logs ``Starting http monitor on HOST:PORT`` (``https``) as nats-server does.
* Each connection reads a request head (at most :data:`MAX_HEAD_BYTES`), answers it
  and, for HTTP/1.1 without ``Connection: close``, waits for the next one (keep-alive).
  Any method is answered like GET, as Go's mux does; HEAD gets the headers only.
* Routing (:meth:`MonitorServer.respond`) is on exact paths under ``http_base_path``;
  an unknown path is Go's ``404 page not found``, a path that is not clean
  (``//varz``) Go's ``307`` to the clean one. Each endpoint decodes its query with
  its module's query class, calls the pure builder and encodes the result as Go does
  (:mod:`.httpwire`); a bad value is a ``400`` with nats-server's plain-text message.
* Requests per endpoint are counted for ``/varz``'s ``http_req_stats`` at the point
  nats-server counts them: most handlers count before decoding their query,
  ``/connz`` and ``/routez`` after it (so a malformed query is not counted there).

Bounds, so that monitoring can never hurt the server: at most
:data:`MAX_CONNECTIONS` open monitoring connections; a request head must arrive within
:data:`HEAD_TIMEOUT` seconds (an idle keep-alive connection is closed after
:data:`IDLE_TIMEOUT`); a head over the limit is answered ``431`` and a malformed one
``400`` (Go's texts), then the connection is closed; a response the client does not
read within :data:`WRITE_TIMEOUT` closes the connection; a request body larger than
:data:`MAX_BODY_BYTES` (or chunked) is not read, and the connection closes after the
answer. An exception while building an answer is logged and costs that request a
``500``; nothing escapes to the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol, TypeVar
from urllib.parse import unquote

from pynats import SERVER_VERSION
from pynats.server.log import go_quote, host_port
from pynats.server.monitor import accountz, connz, healthz, inactive, metrics, routez, subsz
from pynats.server.monitor.formats import JSONObject, QueryError
from pynats.server.monitor.httpwire import (
    HTML,
    NOT_FOUND,
    REASONS,
    BadRequest,
    Request,
    Response,
    clean_path,
    encode_response,
    json_response,
    parse_head,
    redirect,
    text_response,
)
from pynats.server.monitor.varz import varz
from pynats.server.tls import monitor_context

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

ROOT, VARZ, CONNZ, ROUTEZ, SUBSZ = "/", "/varz", "/connz", "/routez", "/subsz"
GATEWAYZ, LEAFZ, ACCOUNTZ, ACCSTATZ = "/gatewayz", "/leafz", "/accountz", "/accstatz"
JSZ, HEALTHZ, METRICS, SUBSCRIPTIONSZ = "/jsz", "/healthz", "/metrics", "/subscriptionsz"

#: The index page's links, in nats-server's order (``/metrics`` is pynats's own).
INDEX_LINKS: Final = ((VARZ, "General"), (JSZ, "JetStream"), (CONNZ, "Connections"),
                      (ACCOUNTZ, "Accounts"), (ACCSTATZ, "Account Stats"),
                      (SUBSZ, "Subscriptions"), (ROUTEZ, "Routes"), (LEAFZ, "LeafNodes"),
                      (GATEWAYZ, "Gateways"), (HEALTHZ, "Health Probe"),
                      (METRICS, "Prometheus Metrics"))
_DIGITS: Final = frozenset("0123456789")

Q = TypeVar("Q")


class Closable(Protocol):
    """What :meth:`Server.shutdown` needs of the monitor."""

    def close(self) -> None: ...


class MonitorStartError(OSError):
    """Monitoring cannot start; ``str()`` is nats-server's wording.

    nats-server logs it as ``Can't start monitoring: <message>`` and exits with status 1.
    """

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def base_path(configured: str) -> str:
    """The prefix of every endpoint for an ``http_base_path`` (``nats/`` is ``/nats``)."""
    cleaned = clean_path("/" + configured)
    return cleaned.rstrip("/") or "/"


def under(base: str, path: str) -> str:
    """An endpoint path below ``base`` (the index page is ``base`` itself)."""
    if base == "/":
        return path
    return base if path == ROOT else base + path


def index_page(base: str = "/") -> bytes:
    """The index page: links to the endpoints, relative as nats-server writes them."""
    prefix = "" if base == "/" else base
    links = "\n".join(f'    <a href=".{prefix}{path}">{label}</a><br/>'
                      for path, label in INDEX_LINKS)
    return (f'<html lang="en">\n  <head><title>NATS Server Monitoring</title></head>\n'
            f"  <body>\n    <h1>NATS Server Monitoring</h1>\n"
            f"    <p>nats-server v{SERVER_VERSION} (pynats)</p>\n{links}\n"
            f'    <p><a href="https://docs.nats.io/running-a-nats-service/nats_admin/'
            f'monitoring">Help</a></p>\n  </body>\n</html>\n').encode()


class MonitorServer:
    """The monitoring listener of one :class:`~pynats.server.server.Server`.

    Attributes:
        req_stats: Requests answered per endpoint path (``/varz``'s ``http_req_stats``).
        secure: Whether this listener serves HTTPS (``https_port``).
    """

    def __init__(self, server: Server):
        self.server = server
        self.req_stats: dict[str, int] = {}
        self.secure = bool(server.options.https_port) and not server.options.http_port
        self._base = base_path(server.options.http_base_path)
        self._listener: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        handlers: dict[str, Callable[[Request], Response]] = {
            ROOT: self._root, VARZ: self._varz, CONNZ: self._connz, ROUTEZ: self._routez,
            GATEWAYZ: self._gatewayz, LEAFZ: self._leafz, SUBSZ: self._subsz,
            SUBSCRIPTIONSZ: self._subsz, ACCOUNTZ: self._accountz, ACCSTATZ: self._accstatz,
            JSZ: self._jsz, HEALTHZ: self._healthz, METRICS: self._metrics,
        }
        self._routes = {under(self._base, path): handler for path, handler in handlers.items()}

    async def start(self) -> None:
        """Bind the listener, set ``server.http_port`` and log it.

        Raises:
            MonitorStartError: The configuration is refused or the address cannot be bound.
        """
        opts = self.server.options
        context = self._ssl_context()
        host = opts.http_host or opts.host
        configured = opts.https_port if self.secure else opts.http_port
        port = 0 if configured < 0 else configured
        try:
            sock = await _bind(host, port)
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise MonitorStartError(exc.errno, "can't listen to the monitor port: listen tcp "
                                    f"{host_port(host, port)}: bind: {reason}") from exc
        timeout = opts.tls.timeout if context is not None and opts.tls is not None else None
        self._listener = await asyncio.start_server(
            self._serve, sock=sock, limit=MAX_HEAD_BYTES, ssl=context,
            ssl_handshake_timeout=timeout)
        self.server.http_port = sock.getsockname()[1]
        scheme = "https" if self.secure else "http"
        self.server.log.notice(
            f"Starting {scheme} monitor on {host_port(host, self.server.http_port)}")

    def _ssl_context(self) -> ssl.SSLContext | None:
        opts = self.server.options
        if opts.http_port and opts.https_port:
            raise MonitorStartError(errno.EINVAL, f"can't specify both HTTP ({opts.http_port}) "
                                    f"and HTTPs ({opts.https_port}) ports")
        if not self.secure:
            return None
        try:
            return monitor_context(opts.tls)
        except ValueError as exc:
            raise MonitorStartError(errno.EINVAL, str(exc)) from exc
        except OSError as exc:
            raise MonitorStartError(exc.errno or errno.EINVAL,
                                    f"error loading TLS certificate for HTTPS: {exc}") from exc

    def close(self) -> None:
        """Stop listening and drop every open monitoring connection."""
        if self._closed:
            return
        self._closed = True
        if self._listener is not None:
            self._listener.close()
        for writer in list(self._writers):
            writer.close()

    async def wait_closed(self) -> None:
        """After :meth:`close`: return once every connection handler has finished."""
        if self._tasks:
            await asyncio.wait(list(self._tasks))

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

    def _endpoint(self, request: Request, path: str, decode: Callable[[Mapping[str, str]], Q],
                  build: Callable[[Q], JSONObject], *, count_first: bool = True) -> Response:
        """Decode, count, build and encode one JSON answer; a QueryError is a 400."""
        if count_first:
            self._count(path)
        try:
            query = decode(request.params())
            if not count_first:
                self._count(path)
            return json_response(build(query))
        except QueryError as exc:
            return text_response(400, str(exc))

    def _root(self, request: Request) -> Response:
        self._count(ROOT)
        return Response(200, index_page(self._base), (("Content-Type", HTML),))

    def _varz(self, request: Request) -> Response:
        self._count(VARZ)
        return json_response(varz(self.server, http_req_stats=self.req_stats))

    def _connz(self, request: Request) -> Response:
        return self._endpoint(request, CONNZ, connz.ConnzQuery.from_params,
                              lambda q: connz.connz(self.server, q), count_first=False)

    def _routez(self, request: Request) -> Response:
        return self._endpoint(request, ROUTEZ, routez.RoutezQuery.from_params,
                              lambda q: routez.routez(self.server, q), count_first=False)

    def _subsz(self, request: Request) -> Response:
        return self._endpoint(request, SUBSZ, subsz.SubszQuery.from_params,
                              lambda q: subsz.subsz(self.server, q))

    def _accountz(self, request: Request) -> Response:
        return self._endpoint(request, ACCOUNTZ, accountz.AccountzQuery.from_params,
                              lambda q: accountz.accountz(self.server, q))

    def _accstatz(self, request: Request) -> Response:
        return self._endpoint(request, ACCSTATZ, accountz.AccstatzQuery.from_params,
                              lambda q: accountz.accstatz(self.server, q))

    def _gatewayz(self, request: Request) -> Response:
        return self._endpoint(request, GATEWAYZ, inactive.GatewayzQuery.from_params,
                              lambda q: inactive.gatewayz(self.server, q))

    def _leafz(self, request: Request) -> Response:
        return self._endpoint(request, LEAFZ, inactive.LeafzQuery.from_params,
                              lambda q: inactive.leafz(self.server, q))

    def _jsz(self, request: Request) -> Response:
        return self._endpoint(request, JSZ, inactive.JszQuery.from_params,
                              lambda q: inactive.jsz(self.server, q))

    def _healthz(self, request: Request) -> Response:
        self._count(HEALTHZ)
        try:
            query = healthz.HealthzQuery.from_params(request.params())
        except QueryError as exc:
            return text_response(400, str(exc))
        status, body = healthz.healthz(self.server, query)
        if "error" in body:
            self.server.log.warn(f"Healthcheck failed: {go_quote(str(body['error']))}")
        elif "errors" in body:
            self.server.log.warn(f"Healthcheck failed: {len(body['errors'])} errors")
        return json_response(body, status=status, indent=False)

    def _metrics(self, request: Request) -> Response:
        self._count(METRICS)
        page = metrics.metrics_text(self.server, http_req_stats=self.req_stats)
        return Response(200, page.encode(), (("Content-Type", metrics.CONTENT_TYPE),))

    # -- connections ---------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closed or len(self._writers) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
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
                raise BadRequest(431, REASONS[431]) from None
            if not line.endswith(b"\n"):
                return None
            size += len(line)
            if size > MAX_HEAD_BYTES:
                raise BadRequest(431, REASONS[431])
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
    if not length or not set(length) <= _DIGITS:
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
        server: The server; ``http_port`` or ``https_port`` is non-zero.

    Returns:
        The running monitor; ``close()`` stops it.

    Raises:
        MonitorStartError: Both ports are set, HTTPS lacks a certificate, or the
            monitoring address cannot be bound.
    """
    monitor = MonitorServer(server)
    await monitor.start()
    return monitor


__all__ = [
    "HEAD_TIMEOUT", "IDLE_TIMEOUT", "INDEX_LINKS", "LINGER_TIMEOUT", "MAX_BODY_BYTES",
    "MAX_CONNECTIONS", "MAX_HEAD_BYTES", "WRITE_TIMEOUT", "Closable", "MonitorServer",
    "MonitorStartError", "base_path", "index_page", "start_monitor", "under",
]
