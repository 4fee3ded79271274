"""RouteSession: what the server does with each operation a peer server sends on a route.

Theory of operation
-------------------
One session per route connection, accepted on the cluster port or dialled by the
cluster (``cluster.py``), as nats-server 2.x's route protocol has it (CLUSTER.md
sections 2 to 7 and 12):

* Handshake. The accepting side sends its INFO at once and requires ``CONNECT`` as the
  peer's first operation (anything else: ``-ERR 'Authorization Violation'`` and a
  close); CONNECT is checked for a client that came to the wrong port (``lang``), a
  gateway, the cluster's credentials and its cluster name. The dialling side sends
  CONNECT, then INFO, straight away.
* Registration happens on the peer's first INFO, never on CONNECT: nats-server opens
  extra connections (its ``$SYS`` pinned route) that send CONNECT and an ``-ERR`` but
  never INFO, and those must not disturb the real route. The cluster refuses a route to
  ourselves or a second route to a server already connected ("Duplicate Route", no
  ``-ERR``). Only a registered route's interest and messages are taken in.
* Later INFOs: the same server id updates what the peer advertises (``connect_urls``,
  lame duck); another id is gossip about a server to dial (handed to the cluster).
* ``RS+``/``RS-`` keep one :class:`RemoteSubscription` per key (account, subject,
  queue) in the account's ``remote`` index; a queue key's weight is replaced in place.
  Unknown accounts are ignored, as nats-server ignores them. On close every one goes.
* ``RMSG``/``HMSG`` go to the account's router, which delivers them to local
  subscribers only (``Router.publish_routed``).
* Keepalive: a PING every ``cluster.ping_interval`` (or ``ping_interval``, at most 30 s,
  the first after about a second), whatever the traffic; more than ``ping_max``
  outstanding is ``-ERR 'Stale Connection'`` and a close.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from pynats.protocol import ops
from pynats.protocol.encode import PING, PONG, encode_connect, encode_info
from pynats.protocol.errors import ProtocolError
from pynats.protocol.subjects import is_valid_subscription
from pynats.server.gotext import go_quote
from pynats.server.log import host_port
from pynats.server.subscription import RemoteSubscription

if TYPE_CHECKING:
    from pynats.server.cluster import Cluster, RouteURL
    from pynats.server.connection import Connection

#: Longest interval between route PINGs (nats-server's ``routeMaxPingInterval``).
MAX_PING_INTERVAL: Final = 30.0
#: The first PING goes out after about this long (plus up to 20%).
FIRST_PING: Final = 1.0
#: nats-server's error when it cannot get a pinned-account route from a no-pool peer.
DEDICATED_ROUTE_ERR: Final = "Not possible to have a dedicated route"

#: A remote subscription's key: account, subject, queue.
SubKey = tuple[str, bytes, bytes]


class RouteSession:
    """Protocol state of one route.

    Args:
        cluster: The server's cluster.
        conn: The route's connection.
        rid: The route id (shared numbering with client ids, as nats-server's).
        url: The URL this route was dialled at (None when accepted).
    """

    def __init__(self, cluster: Cluster, conn: Connection, rid: int, url: RouteURL | None):
        self.cluster = cluster
        self.server = cluster.server
        self.conn = conn
        self.rid = rid
        self.url = url
        self.did_solicit = url is not None
        #: Dialled from the configuration (re-dialled when lost), not found by gossip.
        self.is_configured = url is not None and url.explicit
        self.awaiting_auth = False  # Connection's check; routes check CONNECT themselves
        self.echo = True  # the router's echo test: a route is never its own receiver
        self.closed = False
        self.registered = False
        self.remote_id = ""
        self.remote_name = ""
        self.remote_info: dict[str, Any] = {}
        #: The peer announced ``headers`` (else headers are stripped for it).
        self.headers = True
        #: The peer's client URLs, advertised to our clients while it is registered.
        self.connect_urls: list[str] = []
        #: The peer's WebSocket client URLs (``ws_connect_urls``).
        self.ws_connect_urls: list[str] = []
        #: The peer is in lame duck mode: its URLs are no longer advertised.
        self.lame_duck = False
        self.subs: dict[SubKey, RemoteSubscription] = {}
        self.in_msgs = self.in_bytes = self.out_msgs = self.out_bytes = 0
        self.started = time.time()
        self.last_activity = self.started
        self.rtt = 0.0
        self.pings_out = 0
        self._ping_sent_at = 0.0
        self._ping_timer: asyncio.TimerHandle | None = None
        self._auth_timer: asyncio.TimerHandle | None = None
        self.handlers: dict[type, Callable[[Any], None]] = {
            ops.RSub: self.on_rsub,
            ops.RUnsub: self.on_runsub,
            ops.Ping: self.on_ping,
            ops.Pong: self.on_pong,
            ops.Info: self.on_info,
            ops.Err: self.on_err,
            ops.Connect: _ignore,
            ops.Ok: _ignore,
            ops.Ignored: _ignore,
        }
        self.on_op: Callable[[ops.Op], None] = self._dispatch

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Begin the handshake: INFO first when accepted, CONNECT then INFO when dialled."""
        self.server.log.notice(f"{self.describe()}Route connection created")
        if self.url is None:
            self.on_op = self._expect_connect
            self.conn.send_now(encode_info(self.cluster.route_info()))
            timeout = self.server.options.cluster.auth_timeout
            if self.cluster.auth_required and timeout > 0:
                self._auth_timer = self.server.loop.call_later(timeout, self._auth_timed_out)
            return
        self.conn.send_now(encode_connect(self.cluster.connect_options(self.url)) +
                           encode_info(self.cluster.route_info()))
        self.server.log.debug(f"{self.describe()}Route connect msg sent")

    def describe(self) -> str:
        """The prefix nats-server puts on a route's log lines."""
        return f"{host_port(self.conn.host, self.conn.port)} - rid:{self.rid} - "

    def may_start(self, data: bytes) -> bool:
        return True

    def close(self, reason: str, err: str | None = None) -> None:
        self.conn.close(reason, err)

    def on_closed(self, reason: str) -> None:
        """The connection is gone: drop the peer's interest, timers and registration."""
        if self.closed:
            return
        self.closed = True
        for timer in (self._ping_timer, self._auth_timer):
            if timer is not None:
                timer.cancel()
        for sub in self.subs.values():
            account = self.server.accounts.get(sub.account)
            if account is not None:
                account.remote.remove(sub)
        self.subs.clear()
        remote = f" - Remote: {self.remote_name}" if self.remote_name else ""
        self.server.log.notice(f"{self.describe()}Router connection closed: {reason}{remote}")
        self.cluster.route_closed(self)

    def on_slow_consumer(self, reason: str) -> None:
        self.server.stats.slow_consumers += 1
        self.server.log.notice(f"{self.describe()}Slow Consumer Detected: {reason}")

    def protocol_error(self, exc: ProtocolError) -> None:
        self.server.log.error(f"{self.describe()}{exc}")
        self.close(exc.reason, exc.err)

    # -- handshake -----------------------------------------------------------------------
    def _expect_connect(self, op: ops.Op) -> None:
        """An accepted route's first operation must be CONNECT."""
        if type(op) is not ops.Connect:
            self._auth_violation()
            return
        self._clear_auth_timer()
        refusal = self.cluster.check_connect(op.options)
        if refusal is not None:
            reason, err = refusal
            self.server.log.error(f"{self.describe()}{err}")
            self.close(reason, err)
            return
        self.on_op = self._dispatch

    def _auth_violation(self) -> None:
        self._clear_auth_timer()
        self.server.log.error(f"{self.describe()}authentication error")
        self.close("Authentication Failure", "Authorization Violation")

    def _auth_timed_out(self) -> None:
        self._auth_timer = None
        if not self.closed:
            self.close("Authentication Timeout", "Authentication Timeout")

    def _clear_auth_timer(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    def on_info(self, op: ops.Info) -> None:
        info = op.info
        server_id = info.get("server_id")
        if not self.remote_id:
            self._first_info(info, server_id)
        elif server_id == self.remote_id:
            self._info_update(info)
        elif self.registered and isinstance(server_id, str):
            self.cluster.gossip_received(self, info)

    def _first_info(self, info: dict[str, Any], server_id: object) -> None:
        if not isinstance(server_id, str) or not server_id:
            self.close("Protocol Violation")
            return
        refusal = self.cluster.check_first_info(self, info)
        if refusal:
            self.close(refusal)
            return
        self.remote_id = server_id
        name = info.get("server_name")
        self.remote_name = name if isinstance(name, str) else ""
        self.headers = info.get("headers") is True
        self.remote_info = info
        self.connect_urls = _urls(info.get("connect_urls"))
        self.ws_connect_urls = _urls(info.get("ws_connect_urls"))
        if not self.cluster.register(self):
            self.close("Duplicate Route")
            return
        self.registered = True
        interval = self.ping_interval()
        self._arm_ping(min(FIRST_PING, interval) * (1 + random.random() * 0.2))

    def _info_update(self, info: dict[str, Any]) -> None:
        """An asynchronous INFO from the peer itself: new client URLs or lame duck."""
        self.remote_info = info
        lame_duck = info.get("ldm") is True
        urls = _urls(info.get("connect_urls"))
        ws_urls = _urls(info.get("ws_connect_urls"))
        if lame_duck != self.lame_duck or (urls and urls != self.connect_urls) or (
                ws_urls and ws_urls != self.ws_connect_urls):
            self.lame_duck = lame_duck
            self.connect_urls = urls or self.connect_urls
            self.ws_connect_urls = ws_urls or self.ws_connect_urls
            self.cluster.client_urls_changed()

    # -- interest ------------------------------------------------------------------------
    def on_rsub(self, op: ops.RSub) -> None:
        if not self.registered:
            return
        account = self.cluster.account(op.account)
        if account is None:
            self.server.log.error(f"{self.describe()}Unknown account "
                                  f"{go_quote(op.account.decode(errors='replace'))} for "
                                  f"remote subject {go_quote(op.subject.decode(errors='replace'))}")
            return
        key = (account.name, op.subject, op.queue)
        existing = self.subs.get(key)
        if existing is not None:
            existing.weight = op.weight  # cached results hold this object: no invalidation
            return
        if not is_valid_subscription(op.subject):
            self.server.log.debug(f"{self.describe()}Invalid remote subject {op.subject!r}")
            return
        if not self.cluster.exports(op.subject, op.queue):
            return  # interest in what we do not export is ignored silently
        sub = RemoteSubscription(self, account.name, op.subject, op.queue, op.weight)
        self.subs[key] = sub
        account.remote.insert(sub)

    def on_runsub(self, op: ops.RUnsub) -> None:
        account = self.cluster.account(op.account)
        if account is None:
            return
        sub = self.subs.pop((account.name, op.subject, op.queue), None)
        if sub is not None:
            account.remote.remove(sub)

    def drop_unexported(self) -> None:
        """Forget the peer's interest in subjects no longer exported (after a reload)."""
        for key, sub in list(self.subs.items()):
            if not self.cluster.exports(sub.subject, sub.queue):
                del self.subs[key]
                account = self.server.accounts.get(sub.account)
                if account is not None:
                    account.remote.remove(sub)

    # -- messages ------------------------------------------------------------------------
    def on_rmsg(self, account: bytes, subject: bytes, reply: bytes, queues: tuple[bytes, ...],
                framed: list[bytes], nbytes: int) -> None:
        self.in_msgs += len(framed)
        self.in_bytes += nbytes
        self.last_activity = time.time()
        target = self.cluster.account(account) if self.registered else None
        if target is not None:
            target.router.publish_routed(self, subject, reply, queues, framed, nbytes)

    def on_rhmsg(self, account: bytes, subject: bytes, reply: bytes, queues: tuple[bytes, ...],
                 headers: bytes, payload: bytes, hframed: bytes) -> None:
        self.in_msgs += 1
        self.in_bytes += len(headers) + len(payload)
        self.last_activity = time.time()
        target = self.cluster.account(account) if self.registered else None
        if target is not None:
            target.router.publish_routed_headers(self, subject, reply, queues, payload, hframed)

    # -- the rest ------------------------------------------------------------------------
    def _dispatch(self, op: ops.Op) -> None:
        self.handlers[type(op)](op)

    def on_err(self, op: ops.Err) -> None:
        """Any ``-ERR`` closes the route, as nats-server's ``processErr`` does."""
        if op.text.startswith(DEDICATED_ROUTE_ERR):  # nats-server's $SYS route attempt
            self.server.log.debug(f"{self.describe()}Route Error {go_quote(op.text)}")
        else:
            self.server.log.error(f"{self.describe()}Route Error {go_quote(op.text)}")
        self.close("Parse Error")

    def on_ping(self, op: ops.Ping) -> None:
        self.conn.send(PONG)

    def on_pong(self, op: ops.Pong) -> None:
        self.pings_out = 0
        if self._ping_sent_at:
            self.rtt = max(self.server.now() - self._ping_sent_at, 1e-6)
            self._ping_sent_at = 0.0

    def ping_interval(self) -> float:
        """``cluster.ping_interval`` or ``ping_interval``, at most 30 seconds."""
        opts = self.server.options
        interval = opts.cluster.ping_interval or opts.ping_interval
        return min(interval, MAX_PING_INTERVAL) if interval > 0 else MAX_PING_INTERVAL

    def _arm_ping(self, delay: float) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if not self.closed:
            self._ping_timer = self.server.loop.call_later(delay, self._ping_tick)

    def _ping_tick(self) -> None:
        self._ping_timer = None
        if self.closed:
            return
        opts = self.server.options
        if self.pings_out + 1 > (opts.cluster.ping_max or opts.ping_max):
            self.server.log.debug(f"{self.describe()}Stale Route Connection - Closing")
            self.server.stats.stale_connections += 1
            self.close("Stale Connection", "Stale Connection")
            return
        self.pings_out += 1
        self._ping_sent_at = self.server.now()
        self.conn.send_now(PING)
        self._arm_ping(self.ping_interval())

    def send_info(self, info: dict[str, Any]) -> None:
        """Send an asynchronous INFO (gossip, lame duck)."""
        if self.registered and not self.closed:
            self.conn.send_now(encode_info(info))

    def __repr__(self) -> str:
        return f"<RouteSession rid={self.rid} remote={self.remote_name or self.remote_id!r}>"


def _urls(value: object) -> list[str]:
    return [url for url in value if isinstance(url, str)] if isinstance(value, list) else []


def _ignore(op: object) -> None:
    """Operations a route may send that need no action."""


__all__ = ["RouteSession"]
