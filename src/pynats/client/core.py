"""The pure client core: every client decision that needs no event loop.

Theory of operation
-------------------
This is the asyncpg ``CoreProtocol`` layer of the client: plain objects with no asyncio,
no sockets and no clock of their own, shared by the asyncio client (``aio.py``) and the
blocking one. The front ends own the I/O and the waiting; they ask the core what to
send and what an event means:

* :class:`SubscriptionState` is one subscription's accounting: its sid, the remaining
  ``max_msgs``, the pending message and byte counts against their limits, and the
  slow-consumer episode (:meth:`~SubscriptionState.admit` says accept, drop, or drop
  and report, once per episode). Front ends subclass it to add delivery.
* :class:`Outbound` is the write batch and, while disconnected, the bounded reconnect
  buffer: publishes are kept (up to ``buffer_size``) and sent after the reconnect;
  control lines (SUB, UNSUB, PING, PONG) belong to one connection and are dropped when
  it is lost, since subscriptions are replayed from the table instead. It also counts
  what was published. :class:`LockedOutbound` is the same behind a lock, for the
  blocking client whose threads publish while the event loop thread writes.
* :func:`encode_publish` turns a publish into wire bytes and checks it against the
  server's limits (the asyncio client inlines the header-less case on its hot path).
* :class:`Pings` pairs every PONG with the PING that asked for it (a FIFO of waiters,
  ``None`` for keepalive PINGs) and counts unanswered keepalives: one too many is a stale
  connection.
* :class:`RequestMux` is the one wildcard inbox subscription ``<prefix>.<nuid>.*`` that
  all requests share; each request gets a token and its handler is found by the reply
  subject. :class:`Gather` decides, reply by reply, when a scatter-gather request
  (``request_many``) is over: a count, a sentinel, or "no responders" first.
* :func:`connect_options` builds the CONNECT JSON (the nkey/JWT answer to the server's
  nonce comes from :mod:`pynats.client.credentials`); :func:`classify_err` says what an
  ``-ERR`` means (reconnect, authorization, report only, or close), as nats.go does
  (PROTOCOL.md section 13); :class:`ServerInfo` is the typed INFO.

The server pool and reconnect timing live in :mod:`pynats.client.pool`.
"""

from __future__ import annotations

import enum
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from pynats import __version__
from pynats.client.msg import Msg
from pynats.client.nuid import Nuid
from pynats.client.options import ConnectOptions
from pynats.client.pool import ServerAddress
from pynats.errors import (
    AuthorizationError,
    ClientError,
    InvalidSubjectError,
    MaxPayloadError,
    NotSupportedError,
    PermissionsViolationError,
    ReconnectBufferFullError,
    ServerError,
    StaleConnectionError,
)
from pynats.protocol.encode import encode_hpub, encode_sub, encode_unsub
from pynats.protocol.headers import HeaderInput, Headers, encode_headers
from pynats.protocol.subjects import is_valid_subscription

T = TypeVar("T")

LANG: Final = "python3"
_WHITESPACE: Final = (" ", "\t", "\r", "\n")


# -- subjects ------------------------------------------------------------------------------


def encode_subject(subject: str, what: str = "subject") -> bytes:
    """A publish (or reply) subject as wire bytes.

    Raises:
        InvalidSubjectError: empty, or contains whitespace (which would break framing).
    """
    if not subject or any(c in subject for c in _WHITESPACE):
        raise InvalidSubjectError(f"invalid {what}: {subject!r}")
    return subject.encode("utf-8", "surrogateescape")


def encode_subscription(subject: str, queue: str | None) -> tuple[bytes, bytes]:
    """A subscription subject and queue group as wire bytes.

    Raises:
        InvalidSubjectError: the subject is not a valid subscription subject (empty
            token, text after ``>``, whitespace) or the queue name is invalid.
    """
    raw = encode_subject(subject)
    if not is_valid_subscription(raw):
        raise InvalidSubjectError(f"invalid subscription subject: {subject!r}")
    return raw, encode_subject(queue, "queue group") if queue else b""


def encode_publish(subject: bytes, payload: bytes, reply: bytes = b"",
                   headers: Headers | HeaderInput | None = None, *,
                   max_payload: int, headers_supported: bool) -> tuple[bytes, int]:
    """A ``PUB`` or ``HPUB`` for the wire, checked against the server's limits.

    Args:
        subject: the subject, already encoded (:func:`encode_subject`).
        payload: the message body.
        reply: the reply subject, encoded, or empty.
        headers: message headers, or None for a plain ``PUB``.
        max_payload: the server's ``max_payload``.
        headers_supported: whether the server takes headers.

    Returns:
        The wire bytes and the size counted against ``max_payload`` (payload plus
        header block).

    Raises:
        MaxPayloadError: the message is larger than ``max_payload``.
        NotSupportedError: headers, and the server does not support them.
    """
    if headers is None:
        size = len(payload)
        if size > max_payload:
            raise MaxPayloadError(f"payload of {size} bytes exceeds max_payload {max_payload}")
        if reply:
            return b"PUB %s %s %d\r\n%s\r\n" % (subject, reply, size, payload), size
        return b"PUB %s %d\r\n%s\r\n" % (subject, size, payload), size
    if not headers_supported:
        raise NotSupportedError("the server does not support headers")
    block = encode_headers(headers)
    size = len(block) + len(payload)
    if size > max_payload:
        raise MaxPayloadError(f"message of {size} bytes exceeds max_payload {max_payload}")
    return encode_hpub(subject, block, payload, reply), size


# -- subscriptions ---------------------------------------------------------------------------

#: Verdicts of :meth:`SubscriptionState.admit`.
ACCEPT: Final = 0
DROP: Final = 1
DROP_AND_REPORT: Final = 2


class SubscriptionState:
    """One subscription's accounting, shared by every front end.

    Args:
        sid: subscription id.
        subject: the subscribed subject.
        queue: queue group, or empty.
        max_msgs: auto-unsubscribe after this many messages (0: no limit).
        pending_msgs_limit: messages buffered before dropping (<= 0: unlimited).
        pending_bytes_limit: bytes buffered before dropping (<= 0: unlimited).

    Attributes:
        received: messages that arrived (dropped ones included; they count toward
            ``max_msgs`` exactly as on the server).
        delivered: messages handed to the application.
        dropped: messages dropped by the pending limits.
        pending_msgs: messages waiting to be handed over.
        pending_bytes: their size (payload plus headers).
        slow: inside a slow-consumer episode.
        draining: unsubscribed, waiting for messages in flight (never replayed).
        closed: no more messages will be accepted.

    Raises:
        InvalidSubjectError: the subject or queue group cannot be subscribed to.
    """

    __slots__ = (
        "_bytes_cap",
        "_msgs_cap",
        "closed",
        "delivered",
        "draining",
        "dropped",
        "max_msgs",
        "pending_bytes",
        "pending_bytes_limit",
        "pending_msgs",
        "pending_msgs_limit",
        "queue",
        "raw_queue",
        "raw_subject",
        "received",
        "sid",
        "sid_bytes",
        "slow",
        "subject",
    )

    def __init__(self, sid: int, subject: str, queue: str = "", max_msgs: int = 0,
                 pending_msgs_limit: int = 0, pending_bytes_limit: int = 0):
        self.raw_subject, self.raw_queue = encode_subscription(subject, queue)
        self.sid = sid
        self.sid_bytes = b"%d" % sid
        self.subject = subject
        self.queue = queue
        self.max_msgs = max_msgs
        self.pending_msgs_limit = pending_msgs_limit
        self.pending_bytes_limit = pending_bytes_limit
        self._msgs_cap = pending_msgs_limit if pending_msgs_limit > 0 else sys.maxsize
        self._bytes_cap = pending_bytes_limit if pending_bytes_limit > 0 else sys.maxsize
        self.received = self.delivered = self.dropped = 0
        self.pending_msgs = self.pending_bytes = 0
        self.slow = False
        self.draining = False
        self.closed = False

    def deliver(self, subject: bytes, reply: bytes, payload: bytes, headers: bytes) -> None:
        """Hand over a message from the read path; each front end implements this.

        Must not block or raise: it runs for every message inside the parser's loop.
        """
        raise NotImplementedError

    def admit(self, size: int) -> int:
        """Account for an arriving message of ``size`` bytes.

        Returns:
            ACCEPT (buffer it), DROP, or DROP_AND_REPORT (the first drop of a
            slow-consumer episode; the episode ends when a message is accepted again).
        """
        self.received += 1
        if self.pending_msgs >= self._msgs_cap or self.pending_bytes + size > self._bytes_cap:
            self.dropped += 1
            if self.slow:
                return DROP
            self.slow = True
            return DROP_AND_REPORT
        self.slow = False
        self.pending_msgs += 1
        self.pending_bytes += size
        return ACCEPT

    def taken(self, size: int) -> None:
        """A buffered message of ``size`` bytes was handed to the application."""
        self.pending_msgs -= 1
        self.pending_bytes -= size
        self.delivered += 1

    def discard_pending(self) -> None:
        """Forget buffered messages (they were thrown away)."""
        self.pending_msgs = self.pending_bytes = 0

    def end(self) -> None:
        """The client closed: no more messages; front ends also wake their consumers."""
        self.closed = True
        self.discard_pending()

    @property
    def replayable(self) -> bool:
        """Whether a reconnect must subscribe it again."""
        return not (self.closed or self.draining)

    @property
    def exhausted(self) -> bool:
        """Whether ``max_msgs`` messages have arrived."""
        return 0 < self.max_msgs <= self.received

    def unsub_op(self, max_msgs: int | None = None) -> bytes:
        """``UNSUB`` now, or after ``max_msgs`` messages in total."""
        return encode_unsub(self.sid_bytes, max_msgs)

    def sub_ops(self) -> bytes:
        """``SUB`` (plus ``UNSUB`` with the remaining count when ``max_msgs`` is set).

        Used for the first subscribe and to replay the subscription after a reconnect:
        the server then counts from zero, so it is told only what remains.
        """
        ops = encode_sub(self.raw_subject, self.sid_bytes, self.raw_queue)
        if self.max_msgs:
            ops += encode_unsub(self.sid_bytes, max(self.max_msgs - self.received, 0))
        return ops


# -- outbound --------------------------------------------------------------------------------


class Outbound:
    """The write batch, which doubles as the reconnect buffer while disconnected.

    Args:
        limit: bytes of publishes kept while disconnected.

    Attributes:
        chunks: bytes queued for the next write, in order.
        size: their total length.
        connected: whether a connection takes the writes.
        msgs: messages published since the client was created.
        payload_bytes: their payload and header bytes.
    """

    __slots__ = ("_control", "chunks", "connected", "limit", "msgs", "payload_bytes", "size")

    def __init__(self, limit: int):
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0
        self.connected = False
        self.msgs = self.payload_bytes = 0
        self._control: list[int] = []

    def publish(self, data: bytes, payload_size: int = 0) -> None:
        """Queue a PUB/HPUB and count it.

        Args:
            data: the wire bytes.
            payload_size: payload plus header bytes, for the statistics.

        Raises:
            ReconnectBufferFullError: disconnected and the buffer cannot take ``data``.
        """
        if not self.connected and self.size + len(data) > self.limit:
            raise ReconnectBufferFullError(
                f"reconnect buffer full ({self.size} of {self.limit} bytes used, "
                f"{len(data)} more asked)"
            )
        self.chunks.append(data)
        self.size += len(data)
        self.msgs += 1
        self.payload_bytes += payload_size

    def control(self, data: bytes) -> None:
        """Queue a control line for the current connection (dropped if it is lost)."""
        self._control.append(len(self.chunks))
        self.chunks.append(data)
        self.size += len(data)

    def take(self) -> list[bytes]:
        """Everything queued, emptying the batch."""
        chunks = self.chunks
        self.chunks = []
        self.size = 0
        self._control.clear()
        return chunks

    def disconnected(self) -> None:
        """The connection was lost: keep the publishes, drop the control lines."""
        self.connected = False
        if self._control:
            drop = set(self._control)
            self.chunks = [c for i, c in enumerate(self.chunks) if i not in drop]
            self.size = sum(len(c) for c in self.chunks)
            self._control.clear()


class LockedOutbound(Outbound):
    """An :class:`Outbound` whose every change holds ``lock``: threads may publish.

    The blocking client publishes from any thread while its event loop thread takes the
    batch, drops control lines on a disconnect, and queues control lines; the lock makes
    each of those one atomic step. (Setting ``connected`` is a single store.)

    Args:
        limit: bytes of publishes kept while disconnected.
    """

    __slots__ = ("lock",)

    def __init__(self, limit: int):
        super().__init__(limit)
        self.lock = threading.Lock()

    def publish(self, data: bytes, payload_size: int = 0) -> None:
        with self.lock:
            super().publish(data, payload_size)

    def control(self, data: bytes) -> None:
        with self.lock:
            super().control(data)

    def take(self) -> list[bytes]:
        with self.lock:
            return super().take()

    def disconnected(self) -> None:
        with self.lock:
            super().disconnected()


# -- pings -----------------------------------------------------------------------------------


class Pings(Generic[T]):
    """PING/PONG accounting for one connection.

    Args:
        max_outstanding: unanswered keepalive PINGs tolerated.

    Every PING the client sends is recorded with a waiter (``None`` for keepalives);
    the server answers in order, so each PONG completes the oldest one.
    """

    __slots__ = ("max_outstanding", "outstanding", "waiters")

    def __init__(self, max_outstanding: int):
        self.max_outstanding = max_outstanding
        self.outstanding = 0
        self.waiters: deque[T | None] = deque()

    def keepalive(self) -> bool:
        """The ping timer fired: True to send a PING now, False if the connection is stale."""
        if self.outstanding + 1 > self.max_outstanding:
            return False
        self.outstanding += 1
        self.waiters.append(None)
        return True

    def sent(self, waiter: T) -> None:
        """A PING was sent for ``waiter`` (a flush or rtt)."""
        self.waiters.append(waiter)

    def pong(self) -> T | None:
        """A PONG arrived: the waiter it answers (None for a keepalive or a stray)."""
        self.outstanding = 0
        return self.waiters.popleft() if self.waiters else None

    def reset(self) -> list[T]:
        """The connection is gone: every waiter still pending."""
        waiting = [w for w in self.waiters if w is not None]
        self.waiters.clear()
        self.outstanding = 0
        return waiting


# -- request/reply ---------------------------------------------------------------------------


class RequestMux(Generic[T]):
    """One wildcard inbox for all requests of a client.

    Args:
        inbox_prefix: the inbox prefix (``_INBOX``).
        nuid: id generator for the unique part.

    Attributes:
        subject: what the client subscribes to, ``<prefix>.<nuid>.*``.
    """

    __slots__ = ("_handlers", "_prefix", "_prefix_bytes", "_seq", "subject")

    def __init__(self, inbox_prefix: str, nuid: Nuid):
        self._prefix = f"{inbox_prefix}.{nuid.next_str()}."
        self._prefix_bytes = self._prefix.encode()
        self.subject = self._prefix + "*"
        self._handlers: dict[bytes, T] = {}
        self._seq = 0

    def register(self, handler: T) -> str:
        """A new reply subject whose replies go to ``handler``."""
        self._seq += 1
        token = b"%x" % self._seq
        self._handlers[token] = handler
        return self._prefix + token.decode()

    def get(self, subject: bytes) -> T | None:
        """The handler for a reply arriving on ``subject``."""
        if subject.startswith(self._prefix_bytes):
            return self._handlers.get(subject[len(self._prefix_bytes):])
        return None

    def discard(self, reply: str) -> None:
        """Stop routing replies of ``reply``."""
        self._handlers.pop(reply[len(self._prefix):].encode(), None)

    def clear(self) -> list[T]:
        """Unregister every handler and return them."""
        handlers = list(self._handlers.values())
        self._handlers.clear()
        return handlers

    def __len__(self) -> int:
        return len(self._handlers)


#: A sentinel ending a scatter-gather: a payload, or a predicate on the reply.
Sentinel = bytes | Callable[[Msg], bool]

#: Verdicts of :meth:`Gather.verdict`.
YIELD: Final = 0
YIELD_LAST: Final = 1
END: Final = 2
NO_RESPONDERS: Final = 3


class Gather:
    """When a scatter-gather request is over, decided one reply at a time.

    The front ends own the clock (overall deadline, stall) and the waiting; this says
    what each reply means.

    Args:
        max_msgs: stop after this many replies (None: no count).
        sentinel: a payload, or a predicate, that marks the end (never yielded).

    Attributes:
        count: replies yielded so far.
    """

    __slots__ = ("count", "max_msgs", "sentinel")

    def __init__(self, max_msgs: int | None = None, sentinel: Sentinel | None = None):
        self.max_msgs = max_msgs
        self.sentinel = sentinel
        self.count = 0

    def verdict(self, msg: Msg) -> int:
        """What to do with ``msg``.

        Returns:
            YIELD (hand it over), YIELD_LAST (hand it over, then stop: the count is
            reached), END (a sentinel: stop without it), or NO_RESPONDERS (the first
            reply says no one listens).
        """
        if self.count == 0 and msg.is_no_responders:
            return NO_RESPONDERS
        if self._is_sentinel(msg):
            return END
        self.count += 1
        if self.max_msgs is not None and self.count >= self.max_msgs:
            return YIELD_LAST
        return YIELD

    def _is_sentinel(self, msg: Msg) -> bool:
        sentinel = self.sentinel
        if sentinel is None:
            return False
        if isinstance(sentinel, bytes):
            return msg.data == sentinel
        return sentinel(msg)


# -- INFO, CONNECT and -ERR -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """The server's INFO, typed. ``raw`` keeps the JSON object as received."""

    server_id: str = ""
    server_name: str = ""
    version: str = ""
    proto: int = 0
    host: str = ""
    port: int = 0
    headers: bool = False
    max_payload: int = 1024 * 1024
    client_id: int = 0
    client_ip: str = ""
    auth_required: bool = False
    tls_required: bool = False
    tls_available: bool = False
    nonce: str | None = None
    cluster: str | None = None
    connect_urls: tuple[str, ...] = ()
    ldm: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_wire(cls, info: Mapping[str, Any]) -> ServerInfo:
        """Convert the INFO JSON, tolerating missing or oddly typed fields."""
        def text(key: str) -> str:
            value = info.get(key)
            return value if isinstance(value, str) else ""

        def number(key: str, default: int = 0) -> int:
            value = info.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else default

        urls = info.get("connect_urls")
        return cls(
            server_id=text("server_id"), server_name=text("server_name"),
            version=text("version"), proto=number("proto"), host=text("host"),
            port=number("port"), headers=info.get("headers") is True,
            max_payload=number("max_payload", 1024 * 1024), client_id=number("client_id"),
            client_ip=text("client_ip"), auth_required=info.get("auth_required") is True,
            tls_required=info.get("tls_required") is True,
            tls_available=info.get("tls_available") is True,
            nonce=text("nonce") or None, cluster=text("cluster") or None,
            connect_urls=tuple(u for u in urls if isinstance(u, str))
            if isinstance(urls, list) else (),
            ldm=info.get("ldm") is True, raw=dict(info),
        )


def connect_options(options: ConnectOptions, info: ServerInfo, address: ServerAddress,
                    tls: bool, auth: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The CONNECT JSON object for this server.

    Explicit credentials win over those in the server URL.

    Args:
        options: the client options.
        info: the server's INFO.
        address: the server (its URL may carry credentials).
        tls: whether the connection is encrypted.
        auth: the answer to the nonce challenge (``nkey``/``jwt`` and ``sig``, see
            :meth:`pynats.client.credentials.Credentials.connect_fields`).

    Returns:
        The JSON object.
    """
    obj: dict[str, Any] = {
        "verbose": options.verbose, "pedantic": options.pedantic, "tls_required": tls,
        "lang": LANG, "version": __version__, "protocol": 1, "echo": not options.no_echo,
        "headers": info.headers, "no_responders": info.headers,
    }
    if options.name:
        obj["name"] = options.name
    user = options.user if options.user is not None else address.user
    password = options.password if options.password is not None else address.password
    token = options.token if options.token is not None else address.token
    if user is not None:
        obj["user"] = user
        obj["pass"] = password or ""
    elif token is not None:
        obj["auth_token"] = token
    if auth:
        obj.update(auth)
    return obj


class ErrAction(enum.Enum):
    """What the client does about an ``-ERR``."""

    #: Drop the connection and reconnect (stale connection, connection limits).
    RECONNECT = "reconnect"
    #: Credentials refused: the server closes; reconnect, unless it repeats.
    AUTH = "auth"
    #: Tell the error callback; the connection stays (permissions, subscription limit).
    REPORT = "report"
    #: Anything else: close the client for good (nats.go's default).
    CLOSE = "close"


_RECONNECT_ERRS: Final = (
    "stale connection", "maximum connections exceeded",
    "maximum account active connections exceeded",
)
_AUTH_ERRS: Final = (
    "authorization violation", "user authentication expired",
    "user authentication revoked", "account authentication expired",
    "authentication timeout",
)


def classify_err(text: str) -> tuple[ErrAction, ClientError]:
    """Decide what an ``-ERR '<text>'`` means and the error that describes it."""
    low = text.lower().strip()
    if low.startswith(_RECONNECT_ERRS):
        if low.startswith("stale connection"):
            return ErrAction.RECONNECT, StaleConnectionError(f"server: {text}")
        return ErrAction.RECONNECT, ServerError(text)
    if low.startswith(_AUTH_ERRS):
        return ErrAction.AUTH, AuthorizationError(text)
    if low.startswith("permissions violation"):
        return ErrAction.REPORT, PermissionsViolationError(text)
    if low.startswith("maximum subscriptions exceeded"):
        return ErrAction.REPORT, ServerError(text)
    return ErrAction.CLOSE, ServerError(text)


__all__ = [
    "ACCEPT",
    "DROP",
    "DROP_AND_REPORT",
    "END",
    "LANG",
    "NO_RESPONDERS",
    "YIELD",
    "YIELD_LAST",
    "ErrAction",
    "Gather",
    "LockedOutbound",
    "Outbound",
    "Pings",
    "RequestMux",
    "Sentinel",
    "ServerInfo",
    "SubscriptionState",
    "classify_err",
    "connect_options",
    "encode_publish",
    "encode_subject",
    "encode_subscription",
]
