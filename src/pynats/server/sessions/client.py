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
from pynats.protocol.encode import OK, PING, PONG, encode_info
from pynats.protocol.errors import ProtocolError, UnknownOperation
from pynats.protocol.parser import framed_size
from pynats.protocol.subjects import is_valid_literal, is_valid_subscription
from pynats.server.log import conn_prefix
from pynats.server.subscription import Subscription

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
        self.router = server.router
        self.handlers: dict[type, Callable[[Any], None]] = {
            ops.Sub: self.on_sub,
            ops.Unsub: self.on_unsub,
            ops.Ping: self.on_ping,
            ops.Pong: self.on_pong,
            ops.Connect: self.on_connect,
            ops.Info: _ignore,
            ops.Ok: _ignore,
        }

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Send INFO, enforce max_connections, arm the ping timer."""
        self.conn.send_now(encode_info(self.server.client_info(self)))
        limit = self.server.options.max_connections
        if limit < 0 or self.server.num_clients() > limit:
            self.server.log.error(f"{self.describe()}maximum connections exceeded")
            self.conn.close("Maximum Connections Exceeded", "maximum connections exceeded")
            return
        self.server.log.debug(f"{self.describe()}Client connection created")
        self._arm_ping(self.server.options.ping_interval)

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
        for sub in self.subs.values():
            self.server.index.remove(sub)
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
        return conn_prefix(self.conn.host, self.conn.port, self.cid,
                           version=self.version, lang=self.lang, name=self.name)

    # -- handlers for the other operations ------------------------------------------------
    def on_connect(self, op: ops.Connect) -> None:
        options = _connect_options(op.options)
        if options is None:
            self.server.log.debug(f"{self.describe()}malformed CONNECT")
            self.conn.close("Protocol Violation")
            return
        if options.get("account") or options.get("new_account"):
            self.server.log.error(f'{self.describe()}authentication error - User "N/A"')
            self.conn.close("Authentication Failure", "Authorization Violation")
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
        self.rtt = max(self.server.now() - self._start_time, 1e-6)  # nats-server's estimate
        if self.verbose:
            self.conn.send(OK)
        interval = self.server.options.ping_interval
        self._arm_ping(min(interval, FIRST_PING_MAX) * (1 + random.random() * 0.2))

    # The parser's sink: PUB and HPUB come as arguments, the rest as records.
    def on_pub(self, subject: bytes, reply: bytes, framed: list[bytes], nbytes: int) -> None:
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

    def on_hpub(self, subject: bytes, reply: bytes, headers: bytes, payload: bytes,
                hframed: bytes) -> None:
        self.last_activity = time.time()
        self.in_msgs += 1
        self.in_bytes += len(headers) + len(payload)
        if self._admit(subject, reply) and not self.router.publish_headers(
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

    def on_op(self, op: ops.Op) -> None:
        self.handlers[type(op)](op)

    def on_msg(self, subject: bytes, sid: bytes, reply: bytes, payload: bytes) -> None:
        raise UnknownOperation("MSG from a client")  # unreachable: not in the server's verbs

    def on_hmsg(self, subject: bytes, sid: bytes, reply: bytes, headers: bytes,
                payload: bytes) -> None:
        raise UnknownOperation("HMSG from a client")  # unreachable, as on_msg

    def _reserved(self, subject: bytes, reply: bytes) -> bool:
        """Refuse a publish to a reserved subject or with a reserved reply subject."""
        if subject.startswith(RESERVED_SUBJECT_PREFIXES):
            self._violation(f'Permissions Violation for Publish to "{_text(subject)}"')
            return True
        if reply.startswith(RESERVED_REPLY_PREFIXES):
            self._violation(f'Permissions Violation for Publish with Reply of "{_text(reply)}"')
            return True
        return False

    def _violation(self, text: str) -> None:
        self.server.log.error(f"{self.describe()}{text}")
        self.conn.send(b"-ERR '" + text.encode() + b"'\r\n")

    def on_sub(self, op: ops.Sub) -> None:
        # nats-server's order: permissions, the limit, a duplicate sid, the subject.
        self._activity += 1
        self.last_activity = time.time()
        if op.queue == RESERVED_QUEUE:
            self._violation(f'Permissions Violation for Subscription to "{_text(op.subject)}" '
                            f'using queue "{_text(op.queue)}"')
            return
        limit = self.server.options.max_subscriptions
        if limit > 0 and len(self.subs) >= limit:
            self.server.log.error(f"{self.describe()}maximum subscriptions exceeded")
            self.conn.send(b"-ERR 'maximum subscriptions exceeded'\r\n")
            return
        if op.sid not in self.subs:
            if not is_valid_subscription(op.subject):
                self.conn.send(b"-ERR 'Invalid Subject'\r\n")
                return
            sub = Subscription(self, op.subject, op.queue, op.sid)
            self.subs[op.sid] = sub
            self.server.index.insert(sub)
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
            self.server.index.remove(sub)

    def on_ping(self, op: ops.Ping) -> None:
        self._activity += 1
        self.conn.send(PONG)
        if self.protocol >= 1 and self.connected and not self._first_pong_sent:
            self._first_pong_sent = True
            info = self.server.client_info(self)
            info["connect_info"] = True
            info["remote_account"] = "$G"
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


def _ignore(op: object) -> None:
    """Operations a client may send that nats-server accepts and ignores."""


__all__ = ["ClientSession"]
