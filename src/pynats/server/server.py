"""Server: listeners, the client registry, and the server's life cycle.

Theory of operation
-------------------
``Server(options)`` is inert until ``await start()``, which does what nats-server's
``Start`` does, in its order: load the client port's TLS certificates, log the banner,
start the monitoring listener (if ``http_port`` or ``https_port``), open the client
listener, open the route listener and dial the configured routes (``cluster.py``, with a
``cluster`` port), write the PID and ports files, then log ``Server is ready``. From then on the
event loop drives everything through :class:`~pynats.server.connection.Connection`
callbacks; the server itself owns only the registry of clients, the accounts (each with
its subscription index and router, ``accounts.py``), and counters.

Shutdown (``shutdown()``) closes listeners and every client (they see EOF and
reconnect elsewhere), removes the ports file (not the PID file) and sets
``wait_closed``. Lame duck (``lame_duck()``) first stops accepting, tells protocol-1
clients with an ``ldm`` INFO, waits the grace period and closes clients spread over
the rest of ``lame_duck_duration``, then shuts down (PROTOCOL.md section 12).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import platform
import random
import secrets
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynats import SERVER_VERSION
from pynats.server.accounts import GLOBAL_ACCOUNT, Account, sync_accounts
from pynats.server.auth import Authenticator
from pynats.server.cluster import Cluster
from pynats.server.config.load import UNSUPPORTED, LoadedConfig
from pynats.server.config.options import ServerOptions
from pynats.server.connection import Connection
from pynats.server.log import Logger, host_port
from pynats.server.router import Router
from pynats.server.sessions.client import ClientSession
from pynats.server.tls import ClientTLS
from pynats.server.websocket import WebSocketListener, websocket_authenticator

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: Shortest pause between two closes in lame duck mode, and the longest.
LDM_MIN_PAUSE = 0.001
LDM_MAX_PAUSE = 1.0
#: Logged at start-up when JetStream is asked for (it is out of scope).
JETSTREAM_WARNING = UNSUPPORTED["jetstream"]
#: Logged at start-up when a password is configured in clear (nats-server's wording).
PLAINTEXT_WARNING = "Plaintext passwords detected, use nkeys or bcrypt"


def new_server_id() -> str:
    """A 56-character id shaped like nats-server's (an nkey public key, prefix ``N``)."""
    return "N" + "".join(secrets.choice(_BASE32) for _ in range(55))


@dataclass
class ServerStats:
    """Counters not derivable from the live clients: totals of closed ones and events."""

    total_connections: int = 0
    closed_in_msgs: int = 0
    closed_in_bytes: int = 0
    closed_out_msgs: int = 0
    closed_out_bytes: int = 0
    slow_consumers: int = 0
    stale_connections: int = 0


class Server:
    """A NATS server.

    Args:
        options: the frozen server options.
        log: where log lines go; by default a Logger built from the options.
    """

    def __init__(self, options: ServerOptions, log: Logger | None = None, *,
                 config: LoadedConfig | None = None,
                 explicit: frozenset[str] = frozenset()):
        self.options = options
        #: The command line's options and the fields it set: laid over the file again
        #: on every reload, so that flags keep overriding the file.
        self.flag_overrides: tuple[ServerOptions, frozenset[str]] = (options, explicit)
        self.log = log or Logger(debug=options.debug, trace=options.trace,
                                 logtime=options.logtime, utc=options.logtime_utc,
                                 path=options.log_file)
        self.server_id = new_server_id()
        self.server_name = options.server_name or self.server_id
        #: Connections with output queued in the current read batch (every account's).
        self.dirty: list[Connection] = []
        #: The accounts by name (``accounts.py``); rebuilt by :meth:`on_auth_reload`.
        self.accounts: dict[str, Account] = sync_accounts(
            options, {}, self.dirty, cache=not options.disable_sublist_cache)
        #: ``$G``'s router; its ``flush_dirty`` writes out every account's receivers.
        self.router: Router = self.accounts[GLOBAL_ACCOUNT].router
        #: Client authentication in force; rebuilt by :meth:`on_auth_reload`.
        self.auth = Authenticator(options)
        #: WebSocket clients' authentication when the block overrides it (else None).
        self.ws_auth = websocket_authenticator(options)
        #: The client port's TLS (None without); built by :meth:`start`, rebuilt by
        #: :meth:`on_tls_reload`.
        self.client_tls: ClientTLS | None = None
        self.clients: dict[int, ClientSession] = {}
        self.closed_clients: collections.deque[ClientSession] = collections.deque(
            maxlen=max(options.max_closed_clients, 0))
        self.stats = ServerStats()
        self.start_time = time.time()
        #: ``sha256:<hex>`` of the configuration file in force ("" without one).
        self.config_digest = config.digest if config else ""
        self._notices = config.notices if config else ()
        #: Wall-clock time the configuration was (re)loaded.
        self.config_load_time = self.start_time
        self.lame_duck_mode = False
        self.client_port = 0
        #: The bound monitoring port (HTTP or HTTPS), 0 without monitoring.
        self.http_port = 0
        self.loop: asyncio.AbstractEventLoop  # bound in start()
        self._next_cid = 0
        self._listener: asyncio.Server | None = None
        self._monitor: Any = None
        self._ports_file: Path | None = None
        self._closed = asyncio.Event()
        self._shutting_down = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: The WebSocket listener (None without a ``websocket`` port).
        self.websocket: WebSocketListener | None = None
        #: Called with each new client session before its handshake (INFO) starts, when
        #: set; returning False means the hook has started, delayed or dropped it itself.
        #: Only ``pynats.testing`` sets it (fault injection: delayed or dropped INFO).
        self.client_accept_hook: Callable[[ClientSession], bool] | None = None
        #: The routes to peer servers (None without a ``cluster`` port).
        self.cluster: Cluster | None = Cluster(self) if options.cluster.enabled else None
        #: The registered routes by route id (``/routez``, ``/varz``); empty unclustered.
        self.routes: dict[int, Any] = self.cluster.routes if self.cluster is not None else {}

    # -- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the listeners and log ``Server is ready``."""
        self.loop = asyncio.get_running_loop()
        self.client_tls = ClientTLS.from_options(self.options)
        self._banner()
        if self.options.http_port or self.options.https_port:
            from pynats.server.monitor.http import start_monitor

            self._monitor = await start_monitor(self)
        opts = self.options
        if opts.websocket.port:
            self.websocket = WebSocketListener(self)
            await self.websocket.start()
        port = 0 if opts.port == -1 else opts.port
        self._listener = await self.loop.create_server(
            lambda: Connection(self), opts.host, port, reuse_address=True, backlog=1024)
        self.client_port = self._listener.sockets[0].getsockname()[1]
        where = host_port(opts.host, self.client_port)
        self.log.notice(f"Listening for client connections on {where}")
        if self.client_tls is not None:
            for level, line in self.client_tls.startup_notices():
                getattr(self.log, level)(line)
        if self.cluster is not None:
            await self.cluster.start()
        self._write_pid_file()
        self._write_ports_file()
        self.log.notice("Server is ready")

    def _banner(self) -> None:
        opts = self.options
        self.log.notice("Starting nats-server")
        self.log.notice(f"  Version:  {SERVER_VERSION}")
        self.log.notice("  Git:      [not set]")
        if self.cluster is not None:
            self.log.notice(f"  Cluster:  {self.cluster.name}")
        self.log.notice(f"  Name:     {self.server_name}")
        self.log.notice(f"  ID:       {self.server_id}")
        tls = self.options.tls
        if self.auth.plaintext_passwords(cert_logins=tls is not None and tls.verify_and_map):
            self.log.warn(PLAINTEXT_WARNING)
        if opts.config_file:
            self.log.notice(f"Using configuration file: {opts.config_file} "
                            f"({self.config_digest})")
        for level, line in self.auth.operator.startup_notices() if self.auth.operator else ():
            getattr(self.log, level)(line)
        notices = list(self._notices)
        if (opts.jetstream or opts.store_dir) and JETSTREAM_WARNING not in notices:
            notices.insert(0, JETSTREAM_WARNING)
        for notice in notices:
            self.log.warn(notice)

    async def wait_closed(self) -> None:
        """Return once the server has shut down."""
        await self._closed.wait()

    async def shutdown(self) -> None:
        """Close listeners and clients; the PID file stays, the ports file goes."""
        if self._shutting_down:
            await self._closed.wait()
            return
        self._shutting_down = True
        if self._listener is not None:
            self._listener.close()
        if self.websocket is not None:
            self.websocket.close()
        if self._monitor is not None:
            self._monitor.close()
        if self.cluster is not None:
            self.cluster.shutdown()
        for session in list(self.clients.values()):
            session.conn.close("Server Shutdown")
        if self._ports_file is not None:
            self._ports_file.unlink(missing_ok=True)
        for task in self._tasks:
            task.cancel()
        self.log.notice("Server Exiting..")
        self._closed.set()

    def lame_duck(self) -> None:
        """Enter lame duck mode (SIGUSR2): stop accepting, then close clients gradually."""
        if self.lame_duck_mode or self._shutting_down:
            return
        self.lame_duck_mode = True
        task = self.loop.create_task(self._lame_duck())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _lame_duck(self) -> None:
        opts = self.options
        self.log.notice("Entering lame duck mode, stop accepting new clients")
        if self._listener is not None:
            self._listener.close()
        if self.cluster is not None:
            self.cluster.lame_duck()
        if not self.clients:
            await self.shutdown()
            return
        info = dict(self.client_info(None), ldm=True)
        for session in list(self.clients.values()):
            session.send_info(dict(info, client_id=session.cid))
        grace = min(opts.lame_duck_grace_period, opts.lame_duck_duration)
        self.log.notice(f"Waiting {grace:g}s before closing clients")
        await asyncio.sleep(grace)
        clients = list(self.clients.values())
        spread = max(opts.lame_duck_duration - grace, 0.0)
        pause = min(max(spread / max(len(clients), 1), LDM_MIN_PAUSE), LDM_MAX_PAUSE)
        self.log.notice(f"Closing {len(clients)} existing clients")
        for session in clients:
            session.conn.close("Server Shutdown")
            await asyncio.sleep(pause * (0.5 + 0.5 * random.random()))
        await self.shutdown()

    # -- clients -------------------------------------------------------------------------
    def next_cid(self) -> int:
        """A new connection id; clients and routes share the numbering, as in nats-server."""
        self._next_cid += 1
        return self._next_cid

    def accept_client(self, conn: Connection) -> ClientSession:
        """Register a new client connection and start its handshake."""
        session = ClientSession(self, conn, self.next_cid())
        self.clients[session.cid] = session
        self.stats.total_connections += 1
        conn.session = session  # start() may hand the connection to TLS, which calls back
        hook = self.client_accept_hook
        if hook is None or hook(session):
            session.start()
        return session

    def client_closed(self, session: ClientSession) -> None:
        if self.clients.pop(session.cid, None) is None:
            return
        stats = self.stats
        stats.closed_in_msgs += session.in_msgs
        stats.closed_in_bytes += session.in_bytes
        stats.closed_out_msgs += session.out_msgs
        stats.closed_out_bytes += session.out_bytes
        self.closed_clients.append(session)

    def num_clients(self) -> int:
        return len(self.clients)

    @property
    def cluster_name(self) -> str:
        return self.cluster.name if self.cluster is not None else ""

    @property
    def cluster_port(self) -> int:
        return self.cluster.port if self.cluster is not None else 0

    @staticmethod
    def go_version() -> str:
        """What INFO's ``go`` field says of this runtime."""
        return f"python{platform.python_version()}"

    def _client_address(self) -> tuple[str, int]:
        """The host and port clients are told (``client_advertise`` wins)."""
        opts = self.options
        host, port = opts.host, self.client_port
        if opts.client_advertise:
            host, _, adv_port = opts.client_advertise.rpartition(":")
            port = int(adv_port) if adv_port.isdigit() else port
            host = host or opts.client_advertise
        return host, port

    def _websocket_address(self) -> tuple[str, int]:
        """The host and port WebSocket clients are told (the block's ``advertise`` wins)."""
        ws = self.options.websocket
        port = self.websocket.port if self.websocket is not None else ws.port
        if ws.advertise:
            host, _, adv_port = ws.advertise.rpartition(":")
            return host or ws.advertise, int(adv_port) if adv_port.isdigit() else port
        return ws.host, port

    def websocket_urls(self) -> list[str]:
        """This server's own WebSocket URLs (``host:port``) as peers advertise them."""
        host, port = self._websocket_address()
        hosts = [host] if self.options.websocket.advertise else _hosts(host)
        return [host_port(h, port) for h in hosts]

    @property
    def websocket_port(self) -> int:
        """The bound WebSocket port (0 without one), for ``/varz``."""
        return self.websocket.port if self.websocket is not None else 0

    def client_urls(self) -> list[str]:
        """This server's own client URLs (``host:port``) as peers advertise them."""
        host, port = self._client_address()
        hosts = [host] if self.options.client_advertise else _hosts(host)
        return [host_port(h, port) for h in hosts]

    def push_client_info(self) -> None:
        """Send every protocol-1 client the current INFO (new ``connect_urls``)."""
        infos = {False: self.client_info(None)}
        for session in list(self.clients.values()):
            if session.connected:
                websocket = session.conn.websocket
                if websocket not in infos:
                    infos[websocket] = self.client_info(None, websocket=True)
                session.send_info(dict(infos[websocket], client_id=session.cid))

    def client_info(self, session: ClientSession | None,
                    websocket: bool = False) -> dict[str, Any]:
        """The INFO object for a client (PROTOCOL.md section 2), in nats-server's order.

        WebSocket clients (``session``'s connection, or ``websocket`` without a session)
        are told the WebSocket address and URLs, and nothing about the client port's TLS.
        """
        opts = self.options
        websocket = session.conn.websocket if session is not None else websocket
        host, port = self._websocket_address() if websocket else self._client_address()
        info: dict[str, Any] = {
            "server_id": self.server_id,
            "server_name": self.server_name,
            "version": SERVER_VERSION,
            "proto": 1,
            "go": self.go_version(),
            "host": host,
            "port": port,
            "headers": not opts.no_header_support,
        }
        # no_auth_user clears it for clients, not in the server's own (/varz, lame duck).
        if self.auth.info_required if session is not None else self.auth.required:
            info["auth_required"] = True
        if self.client_tls is not None and not websocket:
            info.update(_tls_info(self.client_tls, session))
        info["max_payload"] = opts.max_payload
        if session is not None:
            info["client_id"] = session.cid
            info["client_ip"] = session.conn.host
        if self.cluster is not None:
            info["cluster"] = self.cluster.name
            urls = (self.cluster.websocket_connect_urls() if websocket
                    else self.cluster.client_connect_urls())
            if urls:
                info["connect_urls"] = urls
        return info

    def now(self) -> float:
        return self.loop.time()

    def on_auth_reload(self) -> None:
        """Authorization changed on reload: re-check every client against it.

        As nats-server's ``reloadAuthorization``: first the clients whose user is gone
        (or moved account) are closed, then every other client is authenticated again
        with what it presented; those refused are disconnected, the others get their
        new permissions and lose the subscriptions these no longer allow.
        """
        self.auth = Authenticator(self.options)
        self.ws_auth = websocket_authenticator(self.options)
        self.accounts = sync_accounts(self.options, self.accounts, self.dirty,
                                      cache=not self.options.disable_sublist_cache)
        sessions = [self.clients[cid] for cid in sorted(self.clients)]
        staying = []
        for session in sessions:
            if session.user_is_gone():
                session.conn.close("Client Closed")
            else:
                staying.append(session)
        for session in staying:
            session.recheck_auth()
        if self.cluster is not None:
            self.cluster.attach()

    def on_cluster_reload(self) -> None:
        """Route permissions or ``no_advertise`` changed (see ``Cluster.on_reload``)."""
        if self.cluster is not None:
            self.cluster.on_reload()

    def on_routes_reload(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        """``cluster.routes`` changed on reload (see ``Cluster.on_routes_reload``)."""
        if self.cluster is not None:
            self.cluster.on_routes_reload(old, new)

    def on_tls_reload(self) -> None:
        """The ``tls`` block changed: new clients get the new settings."""
        self.client_tls = ClientTLS.from_options(self.options)

    # -- files ---------------------------------------------------------------------------
    def write_process_files(self, old: ServerOptions) -> None:
        """Rewrite the PID and ports files after a reload changed where they go."""
        if old.pid_file != self.options.pid_file:
            self._write_pid_file()
        if old.ports_file_dir != self.options.ports_file_dir:
            if self._ports_file is not None:
                self._ports_file.unlink(missing_ok=True)
                self._ports_file = None
            self._write_ports_file()

    def _write_pid_file(self) -> None:
        if self.options.pid_file:
            Path(self.options.pid_file).write_text(str(os.getpid()))

    def _write_ports_file(self) -> None:
        directory = self.options.ports_file_dir
        if not directory:
            return
        exe = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
        if not exe or exe.endswith(".py") or exe == "-c":
            exe = "pynats-server"
        ports: dict[str, list[str]] = {
            "nats": [f"nats://{host_port(h, self.client_port)}" for h in _hosts(self.options.host)],
        }
        if self.http_port:
            scheme = "http" if self.options.http_port else "https"
            ports["monitoring"] = [f"{scheme}://{host_port(h, self.http_port)}"
                                   for h in _hosts(self.options.http_host or self.options.host)]
        path = Path(directory) / f"{exe}_{os.getpid()}.ports"
        path.write_text(json.dumps(ports))
        self._ports_file = path


def _tls_info(tls: ClientTLS, session: ClientSession | None) -> dict[str, Any]:
    """INFO's TLS fields: required (or, with ``allow_non_tls``, available), verify."""
    required = tls.required or (session is not None and session.tls_first)
    fields: dict[str, Any] = {"tls_required": True} if required else {}
    if tls.verify:
        fields["tls_verify"] = True
    if not required:
        fields["tls_available"] = True
    return fields


def _hosts(host: str) -> list[str]:
    """The addresses a listener on ``host`` can be reached at (all for a wildcard)."""
    if host not in ("0.0.0.0", "::", ""):
        return [host]
    found: list[str] = []
    with contextlib.suppress(OSError):
        found = socket.gethostbyname_ex(socket.gethostname())[2]
    return list(dict.fromkeys(["127.0.0.1", *found]))


__all__ = ["Server", "ServerStats", "new_server_id"]
