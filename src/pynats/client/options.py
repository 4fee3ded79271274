"""Client options: frozen, typed, validated once, and nothing else.

Theory of operation
-------------------
:class:`ConnectOptions` groups everything a client can be told, with two nested groups
(:class:`ReconnectOptions`, :class:`Callbacks`) instead of forty keywords. It is an
inert value (as h2's ``H2Configuration``): ``__post_init__`` normalises ``servers`` to a
tuple and checks ranges, raising :class:`~pynats.errors.ConfigError`; it never opens a
file, reads the environment or touches the network. :meth:`ConnectOptions.build` is
how ``connect(servers, **overrides)`` turns keywords into options, so unknown keywords
fail loudly.

Callbacks may be plain functions or coroutine functions; the client awaits whatever
they return when it is awaitable, and an exception from one never stops the client (it
goes to the ``error`` callback, or to the ``pynats.client`` logger when that is the one
that failed).
"""

from __future__ import annotations

import dataclasses
import os
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from pynats.errors import ConfigError

#: A lifecycle callback: no arguments, may be a coroutine function.
EventCallback = Callable[[], Awaitable[None] | None]
#: The error callback receives the exception (a ClientError, or what a callback raised).
ErrorCallback = Callable[[BaseException], Awaitable[None] | None]

DEFAULT_URL: Final = "nats://127.0.0.1:4222"
#: nats.go defaults (DefaultSubPendingMsgsLimit / DefaultSubPendingBytesLimit).
DEFAULT_PENDING_MSGS: Final = 512 * 1024
DEFAULT_PENDING_BYTES: Final = 64 * 1024 * 1024
#: nats.go ``DefaultReconnectBufSize``.
DEFAULT_RECONNECT_BUFFER: Final = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Callbacks:
    """Connection lifecycle callbacks; any may be ``None``.

    Attributes:
        disconnected: the connection was lost (before reconnect attempts start).
        reconnected: a new connection is up, subscriptions replayed.
        closed: the client is closed for good (called once).
        error: an asynchronous error: slow consumer, permissions violation, a failed
            reconnect attempt, an exception raised by a message callback.
        discovered_server: an INFO announced servers not yet in the pool.
        lame_duck: the server entered lame duck mode and will close the connection.
    """

    disconnected: EventCallback | None = None
    reconnected: EventCallback | None = None
    closed: EventCallback | None = None
    error: ErrorCallback | None = None
    discovered_server: EventCallback | None = None
    lame_duck: EventCallback | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectOptions:
    """How a lost connection is re-established.

    Attributes:
        enabled: reconnect at all; when False a lost connection closes the client.
        max_attempts: failed attempts per server before it leaves the pool (-1: never).
        time_wait: wait before retrying a server after its first failed attempt; doubles
            with each further consecutive failure on that server.
        max_time_wait: cap of that exponential backoff.
        jitter: up to this many seconds, at random, added to every wait.
        buffer_size: bytes of publishes kept while disconnected and sent after the
            reconnect; a publish that does not fit raises ReconnectBufferFullError.
    """

    enabled: bool = True
    max_attempts: int = 60
    time_wait: float = 2.0
    max_time_wait: float = 30.0
    jitter: float = 0.1
    buffer_size: int = DEFAULT_RECONNECT_BUFFER

    def __post_init__(self) -> None:
        _positive("reconnect.time_wait", self.time_wait, zero=True)
        _positive("reconnect.max_time_wait", self.max_time_wait, zero=True)
        _positive("reconnect.jitter", self.jitter, zero=True)
        _positive("reconnect.buffer_size", self.buffer_size, zero=True)
        if self.max_attempts < -1:
            raise ConfigError("reconnect.max_attempts must be -1 (forever) or >= 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectOptions:
    """Everything ``pynats.client.connect`` can be told.

    Attributes:
        servers: server URLs (``nats://host:port``, ``tls://...``, ``host:port``);
            ``user:password@`` or ``token@`` in a URL are used for that server when no
            explicit credentials are given.
        name: client name shown in the server's monitoring.
        user: user name for user/password authentication.
        password: password for user/password authentication.
        token: authentication token.
        nkey_seed: nkey seed (``SU...``, the text itself, not a file) of an nkey user:
            the client sends its public key and signs the server's nonce with it.
        creds_file: path of a ``.creds`` file (user JWT plus seed) for servers in
            operator mode: the client sends the JWT and signs the nonce with the seed.
            Read at every connect, so a rotated file is used by the next reconnect.
        tls: SSL context; upgrades after INFO when the server offers TLS and requires
            that it does. ``tls://`` URLs use a default context when this is ``None``.
        tls_hostname: name to verify the certificate against (default: the URL host).
        tls_handshake_first: start TLS before the server's INFO (server option
            ``handshake_first``).
        connect_timeout: bounds the whole initial connect over all servers; each server
            gets an even share of what is left. Bounds each reconnect attempt too.
        reconnect: reconnect policy and buffer.
        ping_interval: seconds between client PINGs.
        max_outstanding_pings: unanswered PINGs after which the connection is stale.
        no_echo: do not receive this connection's own publishes.
        pedantic: ask the server for strict subject checks.
        verbose: ask the server to acknowledge every operation with ``+OK``.
        inbox_prefix: prefix of inbox subjects (``_INBOX``).
        pending_msgs_limit: default per-subscription limit of buffered messages
            (0 or less: unlimited).
        pending_bytes_limit: default per-subscription limit of buffered bytes.
        randomize: shuffle the server list (and discovered servers).
        drain_timeout: bound of ``drain()``.
        callbacks: lifecycle and error callbacks.
    """

    servers: tuple[str, ...] = (DEFAULT_URL,)
    name: str | None = None
    user: str | None = None
    password: str | None = None
    token: str | None = None
    nkey_seed: str | None = None
    creds_file: str | os.PathLike[str] | None = None
    tls: ssl.SSLContext | None = None
    tls_hostname: str | None = None
    tls_handshake_first: bool = False
    connect_timeout: float = 5.0
    reconnect: ReconnectOptions = field(default_factory=ReconnectOptions)
    ping_interval: float = 120.0
    max_outstanding_pings: int = 2
    no_echo: bool = False
    pedantic: bool = False
    verbose: bool = False
    inbox_prefix: str = "_INBOX"
    pending_msgs_limit: int = DEFAULT_PENDING_MSGS
    pending_bytes_limit: int = DEFAULT_PENDING_BYTES
    randomize: bool = True
    drain_timeout: float = 30.0
    callbacks: Callbacks = field(default_factory=Callbacks)

    def __post_init__(self) -> None:
        servers: Any = self.servers
        if isinstance(servers, str):
            servers = (servers,)
        servers = tuple(servers)
        if not servers or not all(isinstance(s, str) and s.strip() for s in servers):
            raise ConfigError("servers must be a non-empty list of URLs")
        object.__setattr__(self, "servers", servers)
        _positive("connect_timeout", self.connect_timeout)
        _positive("ping_interval", self.ping_interval)
        _positive("drain_timeout", self.drain_timeout)
        if self.max_outstanding_pings < 1:
            raise ConfigError("max_outstanding_pings must be at least 1")
        prefix = self.inbox_prefix
        if not prefix or any(c in prefix for c in " \t\r\n*>") or "" in prefix.split("."):
            raise ConfigError(f"invalid inbox_prefix: {prefix!r}")
        if self.tls_handshake_first and self.tls is None and not any(
                s.lower().startswith("tls://") for s in servers):
            raise ConfigError("tls_handshake_first needs tls (an SSLContext) or tls:// URLs")
        _check_nkey_options(self.nkey_seed, self.creds_file)
        if not isinstance(self.reconnect, ReconnectOptions):
            raise ConfigError("reconnect must be a ReconnectOptions")
        if not isinstance(self.callbacks, Callbacks):
            raise ConfigError("callbacks must be a Callbacks")

    @classmethod
    def build(cls, servers: str | Iterable[str] | None = None,
              options: ConnectOptions | None = None, **overrides: Any) -> ConnectOptions:
        """Options from a base (or the defaults), a server list and keyword overrides.

        Args:
            servers: replaces ``options.servers`` when given.
            options: the base options.
            **overrides: any ConnectOptions field.

        Returns:
            The combined options.

        Raises:
            ConfigError: an unknown keyword or an invalid value.
        """
        base = options if options is not None else cls()
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown connect option(s): {', '.join(unknown)}")
        if servers is not None:
            overrides["servers"] = (servers,) if isinstance(servers, str) else tuple(servers)
        return dataclasses.replace(base, **overrides) if overrides else base


def _check_nkey_options(seed: str | None, creds_file: object) -> None:
    if seed is None:
        return
    if creds_file is not None:
        raise ConfigError("give nkey_seed or creds_file, not both")
    from pynats.nkeys import decode_seed  # PyNaCl is imported only when nkeys are used

    try:
        decode_seed(seed)
    except ValueError as exc:
        raise ConfigError(f"nkey_seed is not a valid nkey seed: {exc}") from None


def _positive(name: str, value: float, zero: bool = False) -> None:
    if value < 0 or (value == 0 and not zero):
        raise ConfigError(f"{name} must be {'>= 0' if zero else '> 0'}, got {value!r}")


__all__ = [
    "DEFAULT_PENDING_BYTES",
    "DEFAULT_PENDING_MSGS",
    "DEFAULT_RECONNECT_BUFFER",
    "DEFAULT_URL",
    "Callbacks",
    "ConnectOptions",
    "ErrorCallback",
    "EventCallback",
    "ReconnectOptions",
]
