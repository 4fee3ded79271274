"""The one rooted error tree of pynats.

::

    PynatsError
    ├── ProtocolError                 a peer sent bytes that break the NATS protocol
    │     (pynats.protocol.errors: each carries the -ERR text and close reason)
    ├── ConfigError                   options or a configuration file are invalid
    ├── HeaderError (ValueError)      a header block cannot be parsed or built
    └── ClientError                   anything the client library raises or reports
        ├── ConnectionClosedError     the client is closed: the operation cannot run
        ├── ConnectionLostError       the connection dropped before the server answered
        ├── NoServersError            no server in the pool could be reached
        ├── TimeoutError (builtins.TimeoutError)
        │                             a bounded wait (connect, flush, request, next_msg,
        │                             drain) ran out
        ├── NoRespondersError         a request reached no subscriber (status 503)
        ├── SlowConsumerError         a subscription dropped messages (reported, not raised)
        ├── StaleConnectionError      PINGs went unanswered (client or server noticed)
        ├── MaxPayloadError (ValueError)
        │                             a message larger than the server's max_payload
        ├── InvalidSubjectError (ValueError)
        │                             a subject, queue or reply that cannot go on the wire
        ├── ReconnectBufferFullError  a publish while disconnected found the buffer full
        ├── SubscriptionClosedError   next_msg on a subscription that has ended
        ├── SecureConnectionError     TLS was wanted by one side and not offered by the other
        ├── NotSupportedError         a feature not available (yet, or on this server)
        ├── ServerProtocolError       the server sent bytes that break the protocol
        │                             (``__cause__`` is the parser's ProtocolError)
        └── ServerError               the server sent ``-ERR``; ``text`` is what it said
            ├── AuthorizationError    credentials refused (or expired)
            └── PermissionsViolationError
                                      a publish or subscribe was refused; the
                                      connection stays open

"You misused it" errors (``MaxPayloadError``, ``InvalidSubjectError``, ``HeaderError``)
also subclass ``ValueError``; the client's ``TimeoutError`` also subclasses the built-in
one, so ``except TimeoutError`` works with either.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence


class PynatsError(Exception):
    """Root of every exception pynats raises on purpose."""


class ConfigError(PynatsError):
    """Options, flags or a configuration file are invalid.

    The message names what is wrong (for a file: ``file:line:col`` and the key).
    """


class HeaderError(PynatsError, ValueError):
    """A NATS header block cannot be parsed, or a header cannot be encoded."""


class ClientError(PynatsError):
    """Root of the errors the client library raises or hands to the error callback."""


class ConnectionClosedError(ClientError):
    """The client is closed (or closing), so the operation cannot run."""


class ConnectionLostError(ClientError):
    """The connection dropped while waiting for the server (a flush or rtt in flight)."""


class NoServersError(ClientError):
    """No server in the pool could be reached.

    Attributes:
        errors: ``(server url, error)`` for every attempt that failed, oldest first.
    """

    def __init__(self, message: str, errors: Sequence[tuple[str, BaseException]] = ()):
        super().__init__(message)
        self.errors = list(errors)


class TimeoutError(ClientError, builtins.TimeoutError):
    """A bounded wait ran out (connect, flush, request, next_msg, drain)."""


class NoRespondersError(ClientError):
    """A request was published where no subscriber listens (a 503 status reply).

    Attributes:
        subject: the request subject.
    """

    def __init__(self, subject: str):
        super().__init__(f"no responders on {subject!r}")
        self.subject = subject


class SlowConsumerError(ClientError):
    """A subscription hit its pending limits and dropped a message.

    Handed to the error callback once per episode (until a message is accepted again);
    never raised to the code consuming the subscription.

    Attributes:
        subject: the subscription's subject.
        sid: its subscription id.
        pending_msgs: messages waiting when the limit was hit.
        pending_bytes: bytes waiting when the limit was hit.
    """

    def __init__(self, subject: str, sid: int, pending_msgs: int, pending_bytes: int):
        super().__init__(
            f"slow consumer on {subject!r} (sid {sid}): {pending_msgs} msgs / "
            f"{pending_bytes} bytes pending, dropping messages"
        )
        self.subject = subject
        self.sid = sid
        self.pending_msgs = pending_msgs
        self.pending_bytes = pending_bytes


class StaleConnectionError(ClientError):
    """PINGs went unanswered; the connection is dropped and re-established."""


class MaxPayloadError(ClientError, ValueError):
    """A message (headers included) larger than the server's ``max_payload``."""


class InvalidSubjectError(ClientError, ValueError):
    """A subject, queue group or reply subject that cannot be sent."""


class ReconnectBufferFullError(ClientError):
    """A publish made while disconnected does not fit in the reconnect buffer."""


class SubscriptionClosedError(ClientError):
    """The subscription has ended (unsubscribed, drained, limit reached or closed)."""


class SecureConnectionError(ClientError):
    """TLS was required by one side and is not available on the other."""


class NotSupportedError(ClientError):
    """A feature that is not available: not implemented yet, or not on this server."""


class ServerProtocolError(ClientError):
    """The server sent bytes that break the protocol; the connection is dropped."""


class ServerError(ClientError):
    """The server sent ``-ERR``.

    Attributes:
        text: the error text without quotes, as the server sent it.
    """

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class AuthorizationError(ServerError):
    """The server refused the credentials (``Authorization Violation`` and kin)."""


class PermissionsViolationError(ServerError):
    """The server refused a publish or a subscription; the connection stays open."""


__all__ = [
    "AuthorizationError",
    "ClientError",
    "ConfigError",
    "ConnectionClosedError",
    "ConnectionLostError",
    "HeaderError",
    "InvalidSubjectError",
    "MaxPayloadError",
    "NoRespondersError",
    "NoServersError",
    "NotSupportedError",
    "PermissionsViolationError",
    "PynatsError",
    "ReconnectBufferFullError",
    "SecureConnectionError",
    "ServerError",
    "ServerProtocolError",
    "SlowConsumerError",
    "StaleConnectionError",
    "SubscriptionClosedError",
    "TimeoutError",
]


class NkeyError(PynatsError, ValueError):
    """An NKEY, seed, signature, JWT or ``.creds`` file is malformed or does not verify."""
