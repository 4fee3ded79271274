"""Cluster: the route listener, the dialers, and the interest shared with peer servers.

Theory of operation
-------------------
A server with a ``cluster`` port has one :class:`Cluster`. It keeps a full mesh of
routes to peer servers speaking nats-server 2.x's route protocol without pooling or
compression (CLUSTER.md; one connection per peer carries every account):

* **Listener and dialers.** ``start`` opens the route port and dials every configured
  route. A dial that fails is retried every second (doubling up to 30 s with
  ``connect_backoff``), forever for configured routes, ``connect_retries`` times for
  routes learned by gossip. A lost route that we dialled from the configuration is
  dialled again after one second plus up to 100 ms of jitter, so two servers that
  closed each other's duplicate do not collide again.
* **Registration** (``register``), on the peer's first INFO: the first route to a
  server id wins, a later one is a duplicate and is closed (a configured URL is then
  inherited by the winner, so it is re-dialled if lost). A registered route gets our
  complete interest, and the peer's INFO is forwarded to every other route (gossip),
  unless we dialled it because of gossip or it asked for none (``gossip_mode`` 1).
  Gossip about a server we are not connected to makes us dial it (``gossip_received``).
* **Interest.** Every account's local index reports each insert and remove
  (``SubjectIndex.on_change``). Counts per (subject, queue) decide what peers are
  told: plain interest on 0->1 (``RS+``) and 1->0 (``RS-``); a queue group's member
  count on every change (``RS+ ... <weight>``, ``RS-`` at zero). Lines are queued on
  every registered route and flushed once the current callback is over.
* **Cluster name.** A configured name is fixed; without one a random name is made
  and, like nats-server, given up for a peer's configured name (or a greater dynamic
  one): "Cluster name updated to ...", and every other route is closed to be re-made.
* **Route permissions** (``cluster.permissions``, CLUSTER.md section 14): ``import``
  limits the interest announced to peers (so they send only what we import; like
  nats-server, a routed message is not checked again on arrival); ``export`` limits
  the peer interest taken in, so only exported subjects are forwarded. Both
  are compiled like a user's publish and subscribe permissions (``permissions.py``).
* **Client URLs.** Each registered peer's ``connect_urls`` are advertised to our
  clients (``connect_urls`` in client INFO, pushed to protocol-1 clients whenever the
  set changes) unless ``no_advertise``; a peer in lame duck mode is left out.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from pynats import SERVER_VERSION
from pynats.protocol.encode import encode_rs_minus, encode_rs_plus
from pynats.protocol.parser import Role
from pynats.server.auth import compare_secret
from pynats.server.config.options import Permissions, RoutePermissions
from pynats.server.connection import Connection
from pynats.server.log import host_port
from pynats.server.monitor.routez import subject_permission
from pynats.server.permissions import ClientPermissions
from pynats.server.sessions.route import RouteSession
from pynats.server.tls import RouteTLS

if TYPE_CHECKING:
    from pynats.server.accounts import Account
    from pynats.server.server import Server
    from pynats.server.subscription import Subscription

#: How long one dial may take (nats-server's ``DEFAULT_ROUTE_DIAL``).
DIAL_TIMEOUT: Final = 1.0
#: Delay between dial attempts, and its cap with ``connect_backoff``.
RETRY_DELAY: Final = 1.0
MAX_RETRY_DELAY: Final = 30.0
#: Random extra delay before re-dialling a lost route (``reConnectToRoute``).
RECONNECT_JITTER: Final = 0.1
#: Unsent bytes past which a route is cut off: nats-server has no such limit on routes;
#: this only bounds the memory a peer that stopped reading can cost.
ROUTE_MAX_PENDING: Final = 256 * 1024 * 1024
#: Characters of a dynamically generated cluster name.
_NAME_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class RouteListenError(OSError):
    """The route port cannot be opened; ``str()`` is nats-server's fatal log line."""


@dataclass(frozen=True, slots=True)
class RouteURL:
    """Where to dial a route, and with which credentials.

    Attributes:
        raw: The URL as configured (or as gossip carried it).
        explicit: From the configuration (retried forever), not learned by gossip.
    """

    raw: str
    host: str
    port: int
    user: str = ""
    password: str = ""
    explicit: bool = True

    @classmethod
    def parse(cls, raw: str, explicit: bool = True) -> RouteURL | None:
        """``nats-route://[user:pass@]host:port`` (any scheme); None if unusable."""
        text = raw.strip()
        parts = urllib.parse.urlsplit(text if "://" in text else f"nats-route://{text}")
        try:
            port = parts.port
        except ValueError:
            return None
        if not parts.hostname or not port:
            return None
        return cls(text, parts.hostname, port, urllib.parse.unquote(parts.username or ""),
                   urllib.parse.unquote(parts.password or ""), explicit)

    @property
    def address(self) -> str:
        return host_port(self.host, self.port)


@dataclass(frozen=True, slots=True)
class _ServerInterest:
    """Interest held by the server itself, for imports (see ``Cluster._attach_internal``)."""

    subject: bytes
    queue: bytes = b""


def _internal_interest(account: Account) -> frozenset[_ServerInterest]:
    """The stream and response subjects of ``account`` that other accounts import."""
    router = account.router
    subjects = {bridge.subject for bridge in router.bridges}
    if router.responses is not None:
        subjects.add(router.responses.prefix + b">")
    return frozenset(_ServerInterest(subject) for subject in subjects)


def dynamic_cluster_name() -> str:
    """A random cluster name of nats-server's shape (22 characters)."""
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(22))


class Cluster:
    """The routes of one server (see the module docstring).

    Args:
        server: The server; its ``options.cluster`` must be enabled.
    """

    def __init__(self, server: Server):
        self.server = server
        opts = server.options.cluster
        self.name = opts.name or dynamic_cluster_name()
        #: The name was generated, not configured (it may be given up for a peer's).
        self.dynamic = not opts.name
        self.auth_required = bool(opts.username)
        #: TLS on routes (None without ``cluster.tls``); built by :meth:`start`.
        self.tls: RouteTLS | None = None
        #: Route permissions (None: everything is imported and exported).
        self.permissions: ClientPermissions | None = None
        self._set_permissions(opts.permissions)
        #: Registered routes by route id (``/routez``) and by remote server id.
        self.routes: dict[int, RouteSession] = {}
        self.by_id: dict[str, RouteSession] = {}
        #: Connected routes that have not registered (yet).
        self.pending: set[RouteSession] = set()
        self.port = 0
        self._listener: asyncio.Server | None = None
        self._dialers: dict[str, asyncio.Task[None]] = {}
        self._self_urls: set[str] = set()
        self._interest: dict[str, dict[tuple[bytes, bytes], int]] = {}
        #: The interest the server holds itself, per exporting account.
        self._internal: dict[str, frozenset[_ServerInterest]] = {}
        self._accounts: dict[bytes, Account] = {}
        self._flush_scheduled = False
        self._advertised: tuple[list[str], list[str]] = ([], [])
        self._peer_urls_seen = False
        self._closing = False
        #: Server ids of peers whose routes are refused at their first INFO, in both
        #: directions (``pynats.testing`` partitions; empty otherwise).
        self.refused_peers: set[str] = set()

    # -- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Open the route listener, log it as nats-server does, dial configured routes."""
        server, opts = self.server, self.server.options.cluster
        port = 0 if opts.port == -1 else opts.port
        self.tls = tls = RouteTLS.from_options(opts.tls)
        try:
            self._listener = await server.loop.create_server(
                lambda: Connection(server, Role.ROUTE, self.accept_route, ROUTE_MAX_PENDING),
                opts.host, port, reuse_address=True, backlog=128,
                ssl=tls.accept if tls else None, ssl_handshake_timeout=tls.timeout if tls else None)
        except OSError as exc:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            raise RouteListenError(
                f"Error listening on router port: {port} - listen tcp "
                f"{host_port(opts.host, port)}: bind: {why[:1].lower()}{why[1:]}") from exc
        self.port = self._listener.sockets[0].getsockname()[1]
        server.log.notice(f"Cluster name is {self.name}")
        if self.dynamic:
            server.log.warn("Cluster name was dynamically generated, consider setting one")
        server.log.notice(f"Listening for route connections on {host_port(opts.host, self.port)}")
        self.attach()
        self._advertised = (self.client_connect_urls(), self.websocket_connect_urls())
        for raw in opts.routes:
            self._dial_configured(raw)

    def _set_permissions(self, perms: RoutePermissions | None) -> None:
        self.permissions = None if perms is None else ClientPermissions(
            Permissions(publish=perms.import_, subscribe=perms.export), time.monotonic)

    def imports(self, subject: bytes) -> bool:
        """Whether routed messages on ``subject`` (and interest in it) are imported."""
        return self.permissions is None or self.permissions.publish_allowed(subject)

    def exports(self, subject: bytes, queue: bytes = b"") -> bool:
        """Whether a peer's interest in ``subject`` is served (the subject exported)."""
        return self.permissions is None or self.permissions.may_subscribe(subject, queue)

    def attach(self) -> None:
        """Watch every account's local interest (again after a reload made new ones)."""
        self._accounts = {name.encode(): acc for name, acc in self.server.accounts.items()}
        for account in self.server.accounts.values():
            account.index.on_change = functools.partial(self._local_change, account)
            account.router.set_clustered(True)
        self._attach_internal()

    def _attach_internal(self) -> None:
        """Interest the server holds itself, for what other accounts import from here.

        Like nats-server, a node declares interest in an exporting account's stream
        subjects (so messages published there on peers come here and are delivered to
        the importers' subscribers on this node) and in its response subjects
        ``_R_.<prefix>.>`` (answers from responders on peers come back to the node that
        holds the mapping, ``services.py``). Peers hear it as ``RS+``.
        """
        wanted = {name: _internal_interest(account)
                  for name, account in self.server.accounts.items()}
        for name in set(self._internal) | set(wanted):
            before = self._internal.get(name, frozenset())
            after = wanted.get(name, frozenset())
            account = self.server.accounts.get(name)
            if account is not None:
                for interest in before - after:
                    self._local_change(account, interest, -1)
                for interest in after - before:
                    self._local_change(account, interest, 1)
            if after:
                self._internal[name] = after
            else:
                self._internal.pop(name, None)

    def shutdown(self) -> None:
        """Stop listening and dialling; close every route."""
        self._closing = True
        if self._listener is not None:
            self._listener.close()
        for task in self._dialers.values():
            task.cancel()
        for route in [*self.pending, *self.by_id.values()]:
            route.conn.close("Server Shutdown")

    def lame_duck(self) -> None:
        """Tell every peer we are going (``ldm`` INFO): they stop advertising our URLs."""
        info = dict(self.route_info(), ldm=True)
        for route in list(self.by_id.values()):
            route.send_info(info)

    # -- connections ---------------------------------------------------------------------
    def accept_route(self, conn: Connection) -> RouteSession:
        """A peer connected to the route port."""
        return self._open(conn, None)

    def _open(self, conn: Connection, url: RouteURL | None) -> RouteSession:
        route = RouteSession(self, conn, self.server.next_cid(), url)
        conn.session = route
        self.pending.add(route)
        route.start()
        return route

    def _dial_configured(self, raw: str) -> None:
        url = RouteURL.parse(raw)
        if url is None:
            self.server.log.error(f"Error parsing route URL {raw!r}")
            return
        self.dial(url)

    def dial(self, url: RouteURL, delay: float = 0.0) -> None:
        """Dial ``url`` (once at a time per URL), retrying as the module docstring says."""
        if (self._listener is None or self._closing or url.raw in self._dialers
                or url.raw in self._self_urls):  # not started, stopping, busy, or us
            return
        task = self.server.loop.create_task(self._solicit(url, delay))
        self._dialers[url.raw] = task
        task.add_done_callback(lambda _: self._dialers.pop(url.raw, None))

    async def _solicit(self, url: RouteURL, delay: float) -> None:
        server, opts = self.server, self.server.options.cluster
        pause, attempts = RETRY_DELAY, 0
        if delay:
            await asyncio.sleep(delay)
        while not self._closing and url.raw not in self._self_urls:
            server.log.debug(f"Trying to connect to route on {url.address}")
            tls = self.tls
            try:
                await asyncio.wait_for(server.loop.create_connection(
                    lambda: Connection(server, Role.ROUTE,
                                       functools.partial(self._open, url=url),
                                       ROUTE_MAX_PENDING), url.host, url.port,
                    ssl=tls.dial if tls else None, server_hostname=url.host if tls else None,
                    ssl_handshake_timeout=tls.timeout if tls else None),
                    DIAL_TIMEOUT + (tls.timeout if tls else 0.0))
                return
            except (OSError, TimeoutError) as exc:
                attempts += 1
                server.log.debug(f"Error trying to connect to route (attempt {attempts}): "
                                 f"{exc or type(exc).__name__}")
            if not url.explicit and attempts > opts.connect_retries:
                return
            await asyncio.sleep(pause)
            if opts.connect_backoff:
                pause = min(pause * 2, MAX_RETRY_DELAY)

    # -- the handshake's checks ----------------------------------------------------------
    def check_connect(self, options: dict[str, Any]) -> tuple[str, str] | None:
        """An accepted route's CONNECT: (close reason, ``-ERR`` text) if refused."""
        if options.get("lang"):
            return "Incorrect Port", "attempted to connect to route port"
        gateway = options.get("gateway")
        if gateway:
            return ("Wrong Gateway",
                    f'Rejecting connection from gateway "{gateway}" on the Route port')
        if self.auth_required and not self._credentials_match(options):
            return "Authentication Failure", "Authorization Violation"
        theirs = options.get("cluster")
        if isinstance(theirs, str) and self._name_conflict(theirs,
                                                          options.get("cluster_dynamic") is True):
            return ("Cluster Name Conflict",
                    f'Rejecting connection, cluster name "{theirs}" does not match '
                    f'"{self.name}"')
        return None

    def _credentials_match(self, options: dict[str, Any]) -> bool:
        opts = self.server.options.cluster
        user, password = options.get("user"), options.get("pass")
        return (isinstance(user, str) and isinstance(password, str) and
                compare_secret(opts.username, user) and compare_secret(opts.password, password))

    def check_first_info(self, route: RouteSession, info: dict[str, Any]) -> str:
        """The peer's first INFO: the close reason if the route must go, else ""."""
        log = self.server.log
        if info.get("server_id") == self.server.server_id:
            if route.url is not None:
                self._self_urls.add(route.url.raw)
                log.debug(f"Detected route to self, ignoring {route.url.raw!r}")
            return "Duplicate Route"
        if info.get("server_id") in self.refused_peers:
            return "Route Refused"
        theirs = info.get("cluster")
        if isinstance(theirs, str) and self._name_conflict(theirs,
                                                          info.get("cluster_dynamic") is True,
                                                          keep=route):
            log.error(f"{route.describe()}Cluster name conflict: ours {self.name!r}, "
                      f"theirs {theirs!r}")
            return "Cluster Name Conflict"
        if route.url is None and info.get("server_name") == self.server.server_name:
            log.error(f"{route.describe()}Remote server has a duplicate name: "
                      f"{self.server.server_name!r}")
            return "Duplicate Server Name"
        return ""

    def _name_conflict(self, theirs: str, their_dynamic: bool,
                       keep: RouteSession | None = None) -> bool:
        """Compare cluster names; adopt the peer's where ours may yield (module docstring)."""
        if not theirs or theirs == self.name:
            return False
        if self.dynamic and (not their_dynamic or theirs > self.name):
            self._adopt_name(theirs, their_dynamic, keep)
            return False
        return not (self.dynamic or their_dynamic)

    def _adopt_name(self, name: str, dynamic: bool, keep: RouteSession | None) -> None:
        self.name = name
        self.dynamic = dynamic
        self.server.log.notice(f"Cluster name updated to {name}")
        for route in [*self.pending, *self.by_id.values()]:
            if route is not keep and route.remote_id:
                route.close("Cluster Name Conflict")

    # -- registration --------------------------------------------------------------------
    def register(self, route: RouteSession) -> bool:
        """Register ``route`` under its peer's id; False for a duplicate."""
        log = self.server.log
        existing = self.by_id.get(route.remote_id)
        if existing is not None:
            if route.url is not None and route.url.explicit and not existing.is_configured:
                existing.url, existing.is_configured = route.url, True  # re-dial it if lost
            log.debug(f"{route.describe()}Detected duplicate remote route "
                      f"{route.remote_id!r}")
            return False
        self.pending.discard(route)
        self.by_id[route.remote_id] = route
        self.routes[route.rid] = route
        log.debug(f'{route.describe()}Registering remote route "{route.remote_id}"')
        self._send_interest(route)
        log.debug(f"{route.describe()}Sent local subscriptions to route")
        self._forward_gossip(route)
        self.client_urls_changed()
        return True

    def route_closed(self, route: RouteSession) -> None:
        """Forget ``route``; dial it again if it is ours to re-make."""
        self.pending.discard(route)
        if self.by_id.get(route.remote_id) is route:
            del self.by_id[route.remote_id]
            self.routes.pop(route.rid, None)
            self.client_urls_changed()
        url = route.url
        if self._closing or url is None or route.remote_id in self.by_id:
            return
        if url.explicit or route.registered:
            self.dial(url, RETRY_DELAY + random.random() * RECONNECT_JITTER)

    # -- gossip --------------------------------------------------------------------------
    def _forward_gossip(self, route: RouteSession) -> None:
        """Tell every other peer about the newly registered ``route``'s server."""
        info = dict(route.remote_info)
        if info.get("gossip_mode") == 1 or (route.url is not None and not route.url.explicit):
            return
        info.pop("nonce", None)
        port = info.get("port")
        if "ip" not in info and isinstance(port, int):
            info["ip"] = f"nats-route://{host_port(route.conn.host, port)}/"
        for other in list(self.by_id.values()):
            if other is not route:
                other.send_info(info)

    def gossip_received(self, route: RouteSession, info: dict[str, Any]) -> None:
        """A peer told us about another server: dial it unless we know it already."""
        server_id = info.get("server_id")
        if server_id == self.server.server_id or server_id in self.by_id or (
                info.get("route_account")):
            return
        raw = info.get("ip")
        if not isinstance(raw, str) or not raw:
            host, port = info.get("host"), info.get("port")
            raw = f"nats-route://{host_port(str(host), int(port))}" if isinstance(
                port, int) else ""
        url = RouteURL.parse(raw, explicit=False)
        if url is None or self._is_configured_address(url):
            return
        opts = self.server.options.cluster
        if info.get("auth_required") and opts.username:
            url = replace(url, user=opts.username, password=opts.password)
        self.dial(url)

    def _is_configured_address(self, url: RouteURL) -> bool:
        for raw in self.server.options.cluster.routes:
            known = RouteURL.parse(raw)
            if known is not None and (known.host, known.port) == (url.host, url.port):
                return True
        return False

    # -- interest ------------------------------------------------------------------------
    def _local_change(self, account: Account, sub: Subscription | _ServerInterest,
                      delta: int) -> None:
        """A local subscription came or went: tell the peers if the interest changed."""
        counts = self._interest.setdefault(account.name, {})
        key = (sub.subject, sub.queue)
        count = counts.get(key, 0) + delta
        wire = account.router.account
        if count <= 0:
            counts.pop(key, None)
            line = encode_rs_minus(wire, sub.subject, sub.queue)
        else:
            counts[key] = count
            if not sub.queue and (count != 1 or delta < 0):
                return
            line = encode_rs_plus(wire, sub.subject, sub.queue, count)
        if self.by_id and self.imports(sub.subject):
            for route in self.by_id.values():
                route.conn.send(line)
            self._schedule_flush()

    def _send_interest(self, route: RouteSession) -> None:
        """Every local interest, for a newly registered route."""
        lines = [encode_rs_plus(wire, subject, queue, count)
                 for wire, subject, queue, count in self._local_interest()
                 if self.imports(subject)]
        if lines:
            route.conn.send(b"".join(lines))
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        """Flush queued route output once the current callback is done."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.server.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        self.server.router.flush_dirty()

    def account(self, wire: bytes) -> Account | None:
        """The account a route names in RS+/RMSG (None when we have no such account)."""
        return self._accounts.get(wire)

    # -- what we tell peers and clients --------------------------------------------------
    def route_info(self) -> dict[str, Any]:
        """Our route INFO (CLUSTER.md section 3): no pooling, compression or ``lnoc``."""
        server, opts = self.server, self.server.options
        cluster = opts.cluster
        host, port = cluster.host, self.port
        advertised = cluster.advertise and RouteURL.parse(cluster.advertise)
        if advertised:
            host, port = advertised.host, advertised.port
        info: dict[str, Any] = {
            "server_id": server.server_id, "server_name": server.server_name,
            "version": SERVER_VERSION, "proto": 1, "go": server.go_version(),
            "host": host, "port": port, "headers": not opts.no_header_support,
        }
        if self.auth_required:
            info["auth_required"] = True
        if cluster.tls is not None:
            info.update(tls_required=True, tls_verify=True)
        info["max_payload"] = opts.max_payload
        if advertised:
            info["ip"] = f"nats-route://{advertised.address}/"
        info["cluster"] = self.name
        if self.dynamic:
            info["cluster_dynamic"] = True
        perms = cluster.permissions
        if perms is not None:
            for key, perm in (("import", perms.import_), ("export", perms.export)):
                shown = subject_permission(perm)
                if shown:
                    info[key] = shown
        if not cluster.no_advertise:
            info["connect_urls"] = server.client_urls()
            if server.websocket is not None:
                info["ws_connect_urls"] = server.websocket_urls()
        if server.lame_duck_mode:
            info["ldm"] = True
        return info

    def connect_options(self, url: RouteURL) -> dict[str, Any]:
        """The CONNECT we send on a route we dialled (CLUSTER.md section 4)."""
        options: dict[str, Any] = {"echo": True, "verbose": False, "pedantic": False}
        if url.user:
            options.update(user=url.user, **{"pass": url.password})
        options.update({
            "tls_required": self.tls is not None,
            "headers": not self.server.options.no_header_support,
            "name": self.server.server_id, "cluster": self.name,
            "cluster_dynamic": self.dynamic,
        })
        return options

    def client_connect_urls(self) -> list[str]:
        """``connect_urls`` for client INFO: ours and every registered peer's.

        Empty until a peer first advertises some (nats-server leaves the field out until
        then); from then on it always holds ours.
        """
        if self.server.options.cluster.no_advertise:
            return []
        peers = [url for route in self.by_id.values() if not route.lame_duck
                 for url in route.connect_urls]
        if not peers and not self._peer_urls_seen:
            return []
        self._peer_urls_seen = True
        return list(dict.fromkeys([*self.server.client_urls(), *peers]))

    def websocket_connect_urls(self) -> list[str]:
        """``connect_urls`` for WebSocket clients' INFO: ours and the peers' ws URLs."""
        if self.server.options.cluster.no_advertise or self.server.websocket is None:
            return []
        peers = [url for route in self.by_id.values() if not route.lame_duck
                 for url in route.ws_connect_urls]
        return list(dict.fromkeys([*self.server.websocket_urls(), *peers])) if peers else []

    def client_urls_changed(self) -> None:
        """Push an INFO to clients when the advertised URLs changed."""
        urls = (self.client_connect_urls(), self.websocket_connect_urls())
        if urls != self._advertised:
            self._advertised = urls
            self.server.push_client_info()

    def on_reload(self) -> None:
        """Route permissions or ``no_advertise`` changed on reload.

        Peers get our new INFO (its ``import``/``export``), interest we no longer
        import is withdrawn and newly imported interest announced, peer interest we no
        longer export is dropped, and clients get the new ``connect_urls``.
        """
        old = self.permissions
        self._set_permissions(self.server.options.cluster.permissions)
        lines = self._reannounce(
            old.publish_allowed if old is not None else lambda subject: True)
        info = self.route_info()
        for route in list(self.by_id.values()):
            route.send_info(info)
            if lines:
                route.conn.send(lines)
            route.drop_unexported()
        self._schedule_flush()
        self.client_urls_changed()

    def _reannounce(self, imported_before: Callable[[bytes], bool]) -> bytes:
        """RS- for interest no longer imported, RS+ for interest newly imported."""
        lines: list[bytes] = []
        for wire, subject, queue, count in self._local_interest():
            was, now = imported_before(subject), self.imports(subject)
            if was and not now:
                lines.append(encode_rs_minus(wire, subject, queue))
            elif now and not was:
                lines.append(encode_rs_plus(wire, subject, queue, count))
        return b"".join(lines)

    def _local_interest(self) -> Iterator[tuple[bytes, bytes, bytes, int]]:
        """Every local interest key with its count: (account, subject, queue, count)."""
        for name, counts in self._interest.items():
            account = self.server.accounts.get(name)
            if account is not None:
                for (subject, queue), count in counts.items():
                    yield account.router.account, subject, queue, count

    def on_routes_reload(self, old: tuple[str, ...], new: tuple[str, ...]) -> None:
        """``cluster.routes`` changed on reload: dial the new ones, drop the removed."""
        for raw in old:
            if raw in new:
                continue
            task = self._dialers.pop(raw, None)
            if task is not None:
                task.cancel()
            for route in [*self.pending, *self.by_id.values()]:
                if route.url is not None and route.url.raw == raw:
                    route.url, route.is_configured = None, False
                    route.conn.close("Route Removed")
        for raw in new:
            if raw not in old:
                self._dial_configured(raw)


__all__ = ["Cluster", "RouteListenError", "RouteURL", "dynamic_cluster_name"]
