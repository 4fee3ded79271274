"""ClientSession: what the server does with each operation a client sends.

Theory of operation
-------------------
One session per client connection, created by the server when the TCP connection is
accepted. ``start`` sends INFO and enforces ``max_connections`` (the refused client sees
INFO first, as from nats-server). Until CONNECT arrives the nats-server defaults apply:
verbose, pedantic and echo on, no headers.

The session is the parser's sink: the parser calls ``on_pub``/``on_hpub`` with the
message's parts and ``on_op`` with a record for anything else, which ``handlers`` maps
to a bound method, in order as they are parsed. Handlers never await: output goes through
``conn.send`` (flushed at the end of the read batch), messages through the Router.

``on_pub``, ``on_hpub`` and ``on_op`` are attributes holding bound methods, chosen for
the client's state so that no state is tested per message:

* awaiting authentication (auth configured, no CONNECT yet): the first operation must
  be CONNECT, else the client gets ``-ERR 'Authorization Violation'`` (unless
  ``no_auth_user`` lets it in); an auth timer closes it with ``Authentication Timeout``;
* open: no publish permissions, the plain fast path;
* guarded: publish permissions; a run of messages to an allowed subject still takes
  the fast path after one cached lookup, others are checked one by one.

Authentication itself is decided by ``server.auth`` (``auth.py``); permissions are
compiled by ``permissions.py``. After a reload the server calls :meth:`recheck_auth`.
In operator mode the login is a user JWT's; ``jwtsession.py`` applies what comes with
it (the account registered under its public key, limits, the expiry timer).

With TLS on the client port, ``start`` hands the connection to
``Connection.begin_tls`` and the auth and ping timers start only once the client is
secured (``on_tls_ready``) or known to stay in plaintext (``on_plaintext``), as
nats-server arms them after the handshake. A failed or timed-out handshake closes the
client with ``TLS Handshake Failure`` and no ``-ERR`` (the reference sends none the
client could read). With ``verify_and_map``, CONNECT is authenticated by the client
certificate (``tls.map_certificate_user``) instead of the user and password it sent.

Keepalive follows nats-server's ``processPingTimer``: the timer fires every
``ping_interval`` (the first time shortly after CONNECT); a PING is skipped when the
client sent PUB, SUB, UNSUB or PING within the interval and its RTT is known; when the
PINGs outstanding would exceed ``ping_max`` the client gets ``-ERR 'Stale
Connection'`` and is closed. Only PONG resets the outstanding count.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynats.protocol import ops
from pynats.protocol.encode import OK, PING, PONG, encode_err, encode_info
from pynats.protocol.errors import ProtocolError, UnknownOperation
from pynats.protocol.parser import framed_size
from pynats.protocol.subjects import is_valid_literal, is_valid_subscription
from pynats.server.accounts import GLOBAL_ACCOUNT, Account
from pynats.server.auth import (
    STANDARD,
    WEBSOCKET,
    Authenticator,
    Credentials,
    Login,
    connection_type_allowed,
    new_nonce,
)
from pynats.server.config.options import Permissions
from pynats.server.log import conn_prefix, go_quote, host_port
from pynats.server.monitor.formats import rfc3339, to_ns
from pynats.server.permissions import ClientPermissions
from pynats.server.sessions import jwtsession
from pynats.server.subscription import Subscription
from pynats.server.tls import PeerTLS, handshake_error, map_certificate_user, pinned_failure
from pynats.server.tlstransport import HandshakeTimeout

if TYPE_CHECKING:
    from pynats.server.connection import Connection
    from pynats.server.server import Server

#: Reserved prefixes a client may not publish to, or use as a reply subject
#: (PROTOCOL.md section 4).
RESERVED_SUBJECT_PREFIXES = (b"_GR_.", b"$NRG.")
RESERVED_REPLY_PREFIXES = (b"_R_.", b"$JS.ACK.", b"_GR_.")
#: First bytes of every reserved prefix: a cheap test before the full one.
_RESERVED_FIRST = frozenset(b"_$")
#: A queue name reserved for the system (PROTOCOL.md 6.2).
RESERVED_QUEUE = b"_sys_"
#: nats-server delays the first PING after CONNECT by at most this (``setFirstPingTimer``).
FIRST_PING_MAX = 2.0

#: The parser sink's entry points, held as attributes (see the module docstring).
PubHandler = Callable[[bytes, bytes, list[bytes], int], None]
HPubHandler = Callable[[bytes, bytes, bytes, bytes, bytes], None]
OpHandler = Callable[[ops.Op], None]

#: CONNECT keys nats-server decodes, with their JSON types. Like Go's decoder, keys match
#: case-insensitively, unknown keys are ignored and a wrong type fails the CONNECT.
_CONNECT_TYPES: dict[str, type] = {
    "verbose": bool, "pedantic": bool, "tls_required": bool, "echo": bool,
    "headers": bool, "no_responders": bool, "protocol": int, "name": str, "lang": str,
    "version": str, "user": str, "pass": str, "auth_token": str, "nkey": str, "sig": str,
    "jwt": str, "account": str, "new_account": bool,
}


class ClientSession:
    """Protocol state of one client."""

    def __init__(self, server: Server, conn: Connection, cid: int):
        self.server = server
        self.conn = conn
        self.cid = cid
        self.closed = False
        self.close_reason = ""
        # CONNECT options, with nats-server's defaults before CONNECT.
        self.verbose = True
        self.pedantic = True
        self.echo = True
        self.headers = False
        self.no_responders = False
        self.protocol = 0
        self.name = ""
        self.lang = ""
        self.version = ""
        self.connected = False
        #: The TLS handshake came before INFO (``/connz`` ``tls_first``).
        self.tls_first = False
        #: Credentials presented in the last CONNECT; ``login`` once authenticated.
        self.credentials = Credentials()
        self.login: Login | None = None
        #: The nonce sent in INFO for nkey users to sign ("" when none are configured).
        self.nonce = ""
        #: ``/connz`` ``authorized_user`` (set from CONNECT even when it is refused).
        self.user = ""
        self.permissions: ClientPermissions | None = None
        #: Subscriptions a JWT login allows (-1: no limit); None: the server's limit.
        self.max_subs: int | None = None
        #: Closes the client when its user or account JWT expires.
        self.expiry_timer: asyncio.TimerHandle | None = None
        self._auth_label = ""  # '"A/user:alice"' in log prefixes, after CONNECT
        self._auth_timer: asyncio.TimerHandle | None = None
        #: Authentication is configured and the client has not passed it yet.
        self.awaiting_auth = False
        self.subs: dict[bytes, Subscription] = {}
        self.in_msgs = 0
        self.in_bytes = 0
        self.out_msgs = 0
        self.out_bytes = 0
        self.started = time.time()  # wall clock, for monitoring
        self.stop = 0.0
        self.last_activity = self.started
        self._start_time = server.now()
        self._activity = 0  # SUB, UNSUB and PING count; PUBs count through in_msgs
        self._activity_seen = 0  # _activity + in_msgs at the last ping tick
        self.pings_out = 0
        self.rtt = 0.0
        self._ping_sent_at = 0.0
        self._first_pong_sent = False
        self._ping_timer: asyncio.TimerHandle | None = None
        #: The account bound at login (``$G`` until then), its index and router.
        self.account: Account = server.accounts[GLOBAL_ACCOUNT]
        self.index = self.account.index
        self.router = self.account.router
        self.handlers: dict[type, Callable[[Any], None]] = {
            ops.Sub: self.on_sub,
            ops.Unsub: self.on_unsub,
            ops.Ping: self.on_ping,
            ops.Pong: self.on_pong,
            ops.Connect: self.on_connect,
            ops.Info: _ignore,
            ops.Ok: _ignore,
        }
        self.on_pub: PubHandler = self._pub_open
        self.on_hpub: HPubHandler = self._hpub_open
        self.on_op: OpHandler = self._dispatch

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Send INFO, enforce max_connections, then secure the client or arm its timers."""
        tls = None if self.conn.websocket else self.server.client_tls  # wss: done already
        first = tls is not None and tls.handshake_first
        if not first:
            self.send_first_info()
        limit = self.server.options.max_connections
        if limit < 0 or self.server.num_clients() > limit:
            self.server.log.error(f"{self.describe()}maximum connections exceeded")
            self.conn.close("Maximum Connections Exceeded", "maximum connections exceeded")
            return
        self.server.log.debug(f"{self.describe()}Client connection created")
        if tls is None:
            self._ready()
        else:
            self.conn.begin_tls(tls, info_sent=not first)

    def send_first_info(self) -> None:
        """Write the INFO a client gets on connecting (TLS first: after the handshake)."""
        info = self.server.client_info(self)
        if self.auth.nonce_required:  # only in this first INFO, as nats-server
            self.nonce = info["nonce"] = new_nonce()
        self.conn.send_now(encode_info(info))

    def _ready(self) -> None:
        """The client may talk: start the auth timer (if needed) and the ping timer."""
        if self.auth.required:
            self._await_auth(self.server.options.auth_timeout)
        self._arm_ping(self.server.options.ping_interval)

    # -- TLS ---------------------------------------------------------------------------------
    def on_tls_start(self) -> None:
        self.server.log.debug(f"{self.describe()}Starting TLS client connection handshake")

    def on_plaintext(self) -> None:
        """``allow_non_tls``: the client chose plaintext."""
        self._ready()

    def on_tls_failed(self, exc: BaseException, peer_der: bytes | None = None) -> None:
        """The handshake failed or timed out: close, as nats-server does, without -ERR."""
        timed_out = isinstance(exc, HandshakeTimeout)
        if timed_out:
            where = f"{self.conn.local_address()}->{host_port(self.conn.host, self.conn.port)}"
            text, quiet = f"read tcp {where}: i/o timeout", True
        else:
            text, quiet = handshake_error(exc, peer_der)
        log = self.server.log.debug if quiet else self.server.log.error
        log(f"{self.describe()}TLS handshake error: {text}")
        self.conn.close("TLS Handshake Failure")
        if timed_out:
            self.server.log.debug(f"{self.describe()}TLS handshake timeout")

    def on_tls_ready(self, peer: PeerTLS, first: bool) -> None:
        """The handshake is done: check pinned certificates, send a held INFO, go on."""
        tls = self.server.client_tls
        refusal = pinned_failure(tls, peer) if tls is not None else ""
        if refusal:
            self.server.log.debug(f"{self.describe()}{refusal}")
            self.on_tls_failed(ConnectionError("certificate not pinned"))
            return
        log = self.server.log
        log.debug(f"{self.describe()}TLS handshake complete")
        log.debug(f"{self.describe()}TLS version {peer.version}, cipher suite {peer.cipher}")
        if first:
            self.tls_first = True
            self.send_first_info()
        if not self.closed:
            self._ready()

    def on_closed(self, reason: str) -> None:
        """The connection is gone: drop subscriptions, timers, registration."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.stop = time.time()
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        self._clear_auth_timer()
        jwtsession.stop(self)
        self._drop_permissions()
        for sub in self.subs.values():
            self.index.remove(sub)
        self.server.client_closed(self)
        self.server.log.debug(f"{self.describe()}Client connection closed: {reason}")

    def on_slow_consumer(self, reason: str) -> None:
        self.server.stats.slow_consumers += 1
        pending = self.server.options.max_pending
        if "Pending" in reason:
            self.server.log.notice(
                f"{self.describe()}Slow Consumer Detected: MaxPending of {pending} Exceeded")
        else:
            self.server.log.notice(f"{self.describe()}Slow Consumer Detected: WriteDeadline "
                                   f"of {self.server.options.write_deadline}s Exceeded")

    def protocol_error(self, exc: ProtocolError) -> None:
        if exc.err is not None:
            self.server.log.error(f"{self.describe()}{exc}")
        else:
            self.server.log.debug(f"{self.describe()}{exc}")
        self.conn.close(exc.reason, exc.err)

    def describe(self) -> str:
        """The connection prefix nats-server puts on log lines."""
        prefix = conn_prefix(self.conn.host, self.conn.port, self.cid,
                             kind="wid" if self.conn.websocket else "cid",
                             version=self.version, lang=self.lang, name=self.name)
        return f"{prefix}{self._auth_label} - " if self._auth_label else prefix

    # -- authentication --------------------------------------------------------------------
    def _await_auth(self, timeout: float) -> None:
        """Require CONNECT first, within ``timeout`` seconds."""
        self.awaiting_auth = True
        self.on_pub = self._pub_before_auth
        self.on_hpub = self._hpub_before_auth
        self.on_op = self._op_before_auth
        if timeout > 0:
            self._auth_timer = self.server.loop.call_later(timeout, self._auth_timed_out)

    def _clear_auth_timer(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    def _auth_timed_out(self) -> None:
        self._auth_timer = None
        if not self.closed:
            self.server.log.debug(f"{self.describe()}Authentication Timeout")
            self.conn.close("Authentication Timeout", "Authentication Timeout")

    def may_start(self, data: bytes) -> bool:
        """The first bytes from a client that must authenticate: CONNECT, or else?

        nats-server decides on the very first byte, before the operation is complete or
        even valid: anything but ``C`` is refused, unless no_auth_user lets it in.
        """
        return data[:1] in (b"C", b"c") or self._login_without_connect()

    def _op_before_auth(self, op: ops.Op) -> None:
        if type(op) is ops.Connect:
            self.on_connect(op)
        elif self._login_without_connect():
            self.on_op(op)

    def _pub_before_auth(self, subject: bytes, reply: bytes, framed: list[bytes],
                         nbytes: int) -> None:
        if self._login_without_connect():
            self.on_pub(subject, reply, framed, nbytes)

    def _hpub_before_auth(self, subject: bytes, reply: bytes, headers: bytes, payload: bytes,
                          hframed: bytes) -> None:
        if self._login_without_connect():
            self.on_hpub(subject, reply, headers, payload, hframed)

    def _login_without_connect(self) -> bool:
        """A first operation other than CONNECT: in as no_auth_user, or refused."""
        self._clear_auth_timer()
        login = self.auth.login_without_connect()
        if login is None:
            self._auth_violation()
            return False
        self.connected = True
        self._log_in(login)
        return True

    def _auth_violation(self, creds: Credentials | None = None,
                        login: Login | None = None) -> None:
        detail = self.auth.nkey_refusal(creds or self.credentials)
        if detail:
            self.server.log.debug(f"{self.describe()}{detail}")
        who = self.auth.effective(creds or self.credentials).who()
        if self.auth.operator is not None:  # nats-server names only a JWT it took
            who = login.who() if login is not None else ""
        self.server.log.error(f"{self.describe()}authentication error" +
                              (f" - {who}" if who else ""))
        self.conn.close("Authentication Failure", "Authorization Violation")

    def _authenticate(self, creds: Credentials) -> Login | None:
        """CONNECT's login: by client certificate with ``verify_and_map``, else as usual."""
        tls, auth = self.server.client_tls, self.auth
        if auth.operator is not None:
            return jwtsession.login(self, creds)
        if tls is not None and tls.map_users and auth.users and not (auth.nkeys and creds.nkey):
            return self._certificate_login(creds)
        return auth.authenticate(creds, self.conn_type)

    def _certificate_login(self, creds: Credentials) -> Login | None:
        """``verify_and_map``: the user the client certificate names (nats-server's order)."""
        log, prefix = self.server.log, self.describe()
        peer = self.conn.tls
        if peer is None or peer.leaf is None:
            log.debug(f"{prefix}User required in cert, no peer certificates found")
            return None
        if len(peer.chain) > 1:
            log.debug(f"{prefix}Multiple peer certificates found, selecting first")
        users = self.auth.users
        kind = self.conn_type
        names = [name for name, user in users.items() if connection_type_allowed(user, kind)]
        name, notes = map_certificate_user(peer.leaf, names)
        for note in notes:
            log.debug(f"{prefix}{note}")
        if not name:
            return None
        if creds.user:
            log.warn(f"User {go_quote(creds.user)} found in connect proto, but user required "
                     "from cert")
        return self.auth.login_as(name, creds)

    def _log_in(self, login: Login) -> None:
        """Become ``login``'s user: identity, permissions, and the matching handlers."""
        self.login = login
        self.user = login.shown_user()
        self.awaiting_auth = False
        self._drop_permissions()
        if login.jwt is not None:
            self._bind(jwtsession.account(self.server, login.jwt))
        else:
            self._bind(self.server.accounts.get(login.user.account or GLOBAL_ACCOUNT,
                                                self.account))
        self.set_permissions(login.permissions)
        if login.jwt is not None:
            jwtsession.start(self, login.jwt)

    def _bind(self, account: Account) -> None:
        """Join ``account``: its index and router serve this client from now on."""
        if account is self.account:
            return
        for sub in self.subs.values():  # only after a reload moved no_auth_user
            self.index.remove(sub)
            account.index.insert(sub)
        self.account, self.index, self.router = account, account.index, account.router

    def set_permissions(self, perms: Permissions | None) -> None:
        """Enforce ``perms`` from now on (``None``: no restriction); drops all caches."""
        self._drop_permissions()
        compiled = None if perms is None else ClientPermissions(perms, self.server.now)
        self.permissions = compiled
        if compiled is not None and compiled.tracks_responses:
            self.router.responders.add(self)
        if self.awaiting_auth:
            return
        guarded = compiled is not None and compiled.restricts_publish
        self.on_pub = self._pub_guarded if guarded else self._pub_open
        self.on_hpub = self._hpub_guarded if guarded else self._hpub_open
        self.on_op = self._dispatch

    def _drop_permissions(self) -> None:
        if self.permissions is not None:
            self.router.responders.discard(self)
            self.account.delivery_filter.discard(self)
            self.permissions = None

    def user_is_gone(self) -> bool:
        """After a reload: whether this client's user (or nkey) no longer exists.

        nats-server closes such clients without an error, and also those whose user
        moved to another account.
        """
        login = self.login
        return login is not None and self.auth.user_is_gone(login.credentials,
                                                                    login.user.account)

    def recheck_auth(self) -> None:
        """Authorization was reloaded: stay with new permissions, or be disconnected.

        The credentials are checked again (as finally used: no_auth_user's when the
        client gave none); a client they no longer let in gets ``Authorization
        Violation``, the others lose the subscriptions the new permissions refuse.
        """
        if self.closed:
            return
        creds = self.login.credentials if self.login is not None else self.credentials
        renewed = self.auth.authenticate(creds)
        if renewed is None:
            self._auth_violation(creds)
        elif not self.awaiting_auth:
            self._log_in(renewed)
            self._recheck_subscriptions()

    def _recheck_subscriptions(self) -> None:
        perms = self.permissions
        if perms is None:
            return
        for sub in list(self.subs.values()):
            if perms.may_subscribe(sub.subject) or (
                    sub.queue and perms.may_subscribe(sub.subject, sub.queue)):
                if perms.needs_delivery_filter(sub.subject):
                    self.account.delivery_filter.add(self)
                continue
            self.remove_subscription(sub)
            queue = f" using queue {_quoted(sub.queue)}" if sub.queue else ""
            where = f"{_quoted(sub.subject)}{queue} (sid {_quoted(sub.sid)})"
            self.conn.send_now(encode_err(f"Permissions Violation for Subscription to {where}"))
            who = (self.login.who() if self.login is not None else self.credentials.who()
                   ) or 'User "N/A"'
            self.server.log.notice(f"Removed sub {where} for {who} - not authorized")

    def denies_delivery(self, subject: bytes) -> bool:
        """Whether a message on ``subject`` may not be delivered to this client."""
        return self.permissions is not None and self.permissions.denies_delivery(subject)

    def note_reply(self, reply: bytes) -> None:
        """A message with reply subject ``reply`` was delivered (``allow_responses``)."""
        if self.permissions is not None:
            self.permissions.received_reply(reply)

    # -- handlers for the other operations ------------------------------------------------
    def on_connect(self, op: ops.Connect) -> None:
        self._clear_auth_timer()
        options = _connect_options(op.options)
        if options is None:
            self.server.log.debug(f"{self.describe()}malformed CONNECT")
            self.conn.close("Protocol Violation")
            return
        if self.conn.websocket:
            options = self._with_cookies(options)
        self.credentials = Credentials.from_connect(options, nonce=self.nonce,
                                                    host=self.conn.host)
        self.user = self.auth.effective(self.credentials).shown_user()
        login = self._authenticate(self.credentials)
        if self.closed:
            return
        if login is None or options.get("account") or options.get("new_account"):
            self._auth_violation(login=login)
            return
        self.verbose = options.get("verbose", self.verbose)
        self.pedantic = options.get("pedantic", self.pedantic)
        self.echo = options.get("echo", self.echo)
        self.name = options.get("name", self.name)
        self.lang = options.get("lang", self.lang)
        self.version = options.get("version", self.version)
        protocol = options.get("protocol", 0)
        if protocol < 0 or protocol > 1:
            self.conn.close("Bad Client Protocol Version", "invalid client protocol")
            return
        self.protocol = protocol
        headers = options.get("headers", False) and not self.server.options.no_header_support
        self.headers = self.conn.parser.headers = headers
        self.no_responders = options.get("no_responders", False)
        if self.no_responders and not headers:
            self.conn.close("No Responders Requires Headers",
                            "no responders requires headers support")
            return
        if self.connected:  # a second CONNECT starts over: subscriptions are dropped
            for sub in list(self.subs.values()):
                self.remove_subscription(sub)
        self.connected = True
        self._log_in(login)
        label = login.label()
        self._auth_label = go_quote(f"{self.account.trace_label}/{label}") if label else ""
        self.rtt = max(self.server.now() - self._start_time, 1e-6)  # nats-server's estimate
        if self.verbose:
            self.conn.send(OK)
        interval = self.server.options.ping_interval
        self._arm_ping(min(interval, FIRST_PING_MAX) * (1 + random.random() * 0.2))

    # The parser's sink: PUB and HPUB come as arguments, the rest as records.
    def _pub_open(self, subject: bytes, reply: bytes, framed: list[bytes], nbytes: int) -> None:
        """``on_pub`` of a client without publish permissions."""
        self.last_activity = time.time()  # messages and subscriptions count, PINGs do not
        self.in_msgs += len(framed)
        self.in_bytes += nbytes
        if self.verbose or (self.pedantic and not is_valid_literal(subject)) or (
                subject[0] in _RESERVED_FIRST) or (reply and (
                reply[0] in _RESERVED_FIRST or self.no_responders)):
            # Per-message replies (+OK, -ERR, 503) interleave with deliveries in order.
            for one in framed:
                if self._admit(subject, reply):
                    self._route(subject, reply, [one], framed_size(one))
            return
        self._route(subject, reply, framed, nbytes)

    def _route(self, subject: bytes, reply: bytes, framed: list[bytes], nbytes: int) -> None:
        router = self.router
        if not router.publish(self, subject, reply, framed, nbytes) and (
                reply and self.no_responders):
            for _ in framed:
                router.no_responders(self, subject, reply)

    def _pub_guarded(self, subject: bytes, reply: bytes, framed: list[bytes],
                     nbytes: int) -> None:
        """``on_pub`` of a client with publish permissions."""
        perms = self.permissions
        if perms is None or perms.publish_allowed(subject):
            self._pub_open(subject, reply, framed, nbytes)
            return
        self.last_activity = time.time()
        self.in_msgs += len(framed)
        self.in_bytes += nbytes
        for one in framed:  # each message may use up an allowed reply
            if self._admit_guarded(subject, reply):
                self._route(subject, reply, [one], framed_size(one))

    def _hpub_open(self, subject: bytes, reply: bytes, headers: bytes, payload: bytes,
                   hframed: bytes) -> None:
        """``on_hpub`` of a client without publish permissions."""
        self._hpub(self._admit, subject, reply, headers, payload, hframed)

    def _hpub_guarded(self, subject: bytes, reply: bytes, headers: bytes, payload: bytes,
                      hframed: bytes) -> None:
        """``on_hpub`` of a client with publish permissions."""
        self._hpub(self._admit_guarded, subject, reply, headers, payload, hframed)

    def _hpub(self, admit: Callable[[bytes, bytes], bool], subject: bytes, reply: bytes,
              headers: bytes, payload: bytes, hframed: bytes) -> None:
        self.last_activity = time.time()
        self.in_msgs += 1
        self.in_bytes += len(headers) + len(payload)
        if admit(subject, reply) and not self.router.publish_headers(
                self, subject, reply, payload, hframed) and reply and self.no_responders:
            self.router.no_responders(self, subject, reply)

    def _admit(self, subject: bytes, reply: bytes) -> bool:
        """nats-server's per-message checks, in its order; False drops the message."""
        if self.pedantic and not is_valid_literal(subject):
            self.conn.send(b"-ERR 'Invalid Publish Subject'\r\n")
        if (subject[0] in _RESERVED_FIRST or (reply and reply[0] in _RESERVED_FIRST)) and (
                self._reserved(subject, reply)):
            return False
        if self.verbose:
            self.conn.send(OK)
        return True

    def _admit_guarded(self, subject: bytes, reply: bytes) -> bool:
        """:meth:`_admit` with the publish permissions checked, in nats-server's order."""
        if self.pedantic and not is_valid_literal(subject):
            self.conn.send(b"-ERR 'Invalid Publish Subject'\r\n")
        perms = self.permissions
        if subject.startswith(RESERVED_SUBJECT_PREFIXES) or (
                perms is not None and not perms.may_publish(subject)):
            self._publish_violation(subject)
            return False
        if reply.startswith(RESERVED_REPLY_PREFIXES):
            self._reply_violation(reply)
            return False
        if self.verbose:
            self.conn.send(OK)
        return True

    def _dispatch(self, op: ops.Op) -> None:
        """``on_op`` once authenticated: each record to its handler."""
        self.handlers[type(op)](op)

    def on_msg(self, subject: bytes, sid: bytes, reply: bytes, payload: bytes) -> None:
        raise UnknownOperation("MSG from a client")  # unreachable: not in the server's verbs

    def on_hmsg(self, subject: bytes, sid: bytes, reply: bytes, headers: bytes,
                payload: bytes) -> None:
        raise UnknownOperation("HMSG from a client")  # unreachable, as on_msg

    def _reserved(self, subject: bytes, reply: bytes) -> bool:
        """Refuse a publish to a reserved subject or with a reserved reply subject."""
        if subject.startswith(RESERVED_SUBJECT_PREFIXES):
            self._publish_violation(subject)
            return True
        if reply.startswith(RESERVED_REPLY_PREFIXES):
            self._reply_violation(reply)
            return True
        return False

    def _publish_violation(self, subject: bytes) -> None:
        self.conn.send(encode_err(f"Permissions Violation for Publish to {_quoted(subject)}"))
        self.server.log.error(f"{self.describe()}Publish Violation - Subject {_quoted(subject)}")

    def _reply_violation(self, reply: bytes) -> None:
        self.conn.send(encode_err(
            f"Permissions Violation for Publish with Reply of {_quoted(reply)}"))
        self.server.log.error(f"{self.describe()}Publish Violation - Reply {_quoted(reply)}")

    def _subscribe_violation(self, op: ops.Sub) -> None:
        subject, queue = _quoted(op.subject), _quoted(op.queue)
        err = f"Permissions Violation for Subscription to {subject}"
        logged = f"Subscription Violation - Subject {subject}"
        if op.queue:
            err += f" using queue {queue}"
            logged += f", Queue: {queue}"
        self.conn.send(encode_err(err))
        self.server.log.error(f"{self.describe()}{logged}, SID {_text(op.sid)}")

    def on_sub(self, op: ops.Sub) -> None:
        # nats-server's order: permissions, the limit, a duplicate sid, the subject.
        self._activity += 1
        self.last_activity = time.time()
        perms = self.permissions
        if op.queue == RESERVED_QUEUE or (
                perms is not None and not perms.may_subscribe(op.subject, op.queue)):
            self._subscribe_violation(op)
            return
        limit = self.max_subs if self.max_subs is not None else (
            self.server.options.max_subscriptions or -1)
        if limit >= 0 and len(self.subs) >= limit:
            self.server.log.error(f"{self.describe()}maximum subscriptions exceeded")
            self.conn.send(b"-ERR 'maximum subscriptions exceeded'\r\n")
            return
        if op.sid not in self.subs:
            if not is_valid_subscription(op.subject):
                self.conn.send(b"-ERR 'Invalid Subject'\r\n")
                return
            sub = Subscription(self, op.subject, op.queue, op.sid)
            self.subs[op.sid] = sub
            if perms is not None and perms.needs_delivery_filter(op.subject):
                self.account.delivery_filter.add(self)
            self.index.insert(sub)
        if self.verbose:
            self.conn.send(OK)

    def on_unsub(self, op: ops.Unsub) -> None:
        self._activity += 1
        self.last_activity = time.time()
        sub = self.subs.get(op.sid)
        if sub is not None:
            if op.max_msgs is not None and op.max_msgs > sub.delivered:
                sub.max_msgs = op.max_msgs
            else:
                self.remove_subscription(sub)
        if self.verbose:
            self.conn.send(OK)

    def remove_subscription(self, sub: Subscription) -> None:
        if self.subs.get(sub.sid) is sub:
            del self.subs[sub.sid]
            self.index.remove(sub)

    def on_ping(self, op: ops.Ping) -> None:
        self._activity += 1
        self.conn.send(PONG)
        if self.protocol >= 1 and self.connected and not self._first_pong_sent:
            self._first_pong_sent = True
            info = self.server.client_info(self)
            info["connect_info"] = True
            info["remote_account"] = self.account.name
            self.conn.send(encode_info(info))

    def on_pong(self, op: ops.Pong) -> None:
        self.pings_out = 0
        if self._ping_sent_at:
            self.rtt = max(self.server.now() - self._ping_sent_at, 1e-6)
            self._ping_sent_at = 0.0

    # -- keepalive -----------------------------------------------------------------------
    def rearm_ping(self) -> None:
        """Restart the ping timer with the current ``ping_interval`` (config reload)."""
        if self._ping_timer is not None:
            self._arm_ping(self.server.options.ping_interval)

    def _arm_ping(self, delay: float) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
        if delay > 0 and not self.closed:
            self._ping_timer = self.server.loop.call_later(delay, self._ping_tick)

    def _ping_tick(self) -> None:
        self._ping_timer = None
        if self.closed:
            return
        interval = self.server.options.ping_interval
        now = self.server.now()
        activity = self._activity + self.in_msgs
        active = activity != self._activity_seen
        self._activity_seen = activity
        if active and self.rtt:
            self.server.log.debug(f"{self.describe()}Delaying PING due to client activity")
        elif self.pings_out + 1 > self.server.options.ping_max:
            self.server.log.debug(f"{self.describe()}Stale Client Connection - Closing")
            self.server.stats.stale_connections += 1
            self.conn.close("Stale Connection", "Stale Connection")
            return
        else:
            self.pings_out += 1
            self._ping_sent_at = now
            self.conn.send_now(PING)
        self._arm_ping(interval)

    def client_info(self, share: bool) -> dict[str, object]:
        """nats-server's ``ClientInfo`` for ``Nats-Request-Info`` (service imports).

        Without ``share`` only the account and the RTT (in nanoseconds), as nats-server
        sends them; with it the client's identity too, empty fields left out.
        """
        rtt = round(self.rtt * 1e9)
        if not share:
            return {"acc": self.account.name, "rtt": rtt}
        info: dict[str, object] = {
            "start": rfc3339(to_ns(self.started)), "host": self.conn.host, "id": self.cid,
            "acc": self.account.name, "user": self.user, "name": self.name,
            "lang": self.lang, "ver": self.version, "rtt": rtt,
            "server": self.server.server_name, "cluster": self.server.cluster_name,
            "kind": "Client", "client_type": "websocket" if self.conn.websocket else "nats"}
        return {key: value for key, value in info.items() if value != ""}

    def _with_cookies(self, options: dict[str, Any]) -> dict[str, Any]:
        """CONNECT options with what the ``*_cookie`` settings take from the upgrade.

        As nats-server: a cookie fills in a credential the CONNECT did not give.
        """
        cookies = getattr(self.conn.transport, "cookies", None)
        if not cookies:
            return options
        ws = self.server.options.websocket
        filled = dict(options)
        for name, key in ((ws.jwt_cookie, "jwt"), (ws.user_cookie, "user"),
                          (ws.pass_cookie, "pass"), (ws.token_cookie, "auth_token")):
            if name and name in cookies and not filled.get(key):
                filled[key] = cookies[name]
        return filled

    @property
    def auth(self) -> Authenticator:
        """The authentication this client faces: the websocket block's over WebSocket."""
        ws_auth = self.server.ws_auth
        return ws_auth if ws_auth is not None and self.conn.websocket else self.server.auth

    @property
    def conn_type(self) -> str:
        """The connection type users' ``allowed_connection_types`` name."""
        return WEBSOCKET if self.conn.websocket else STANDARD

    def send_info(self, info: dict[str, Any]) -> None:
        """Push an asynchronous INFO (only to clients that declared protocol 1)."""
        if self.protocol >= 1 and not self.closed:
            self.conn.send_now(encode_info(info))


def _connect_options(raw: dict[str, Any]) -> dict[str, Any] | None:
    """The known CONNECT keys, lower-cased and type-checked; None if a type is wrong."""
    options: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.lower()
        expected = _CONNECT_TYPES.get(name)
        if expected is None or value is None:  # unknown, or null: Go leaves the field as is
            continue
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            return None
        options[name] = value
    return options


def _text(subject: bytes) -> str:
    return subject.decode(errors="replace")


def _quoted(value: bytes) -> str:
    """Go's ``%q`` of a subject, queue or sid, as nats-server writes them."""
    return go_quote(_text(value))


def _ignore(op: object) -> None:
    """Operations a client may send that nats-server accepts and ignores."""


__all__ = ["ClientSession"]
