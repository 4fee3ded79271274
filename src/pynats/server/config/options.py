"""Typed, frozen server options.

Configuration is built in three stages (STYLE.md 2a.6): text (``lexer.py``), then a
generic tree (``parser.py``), then these frozen dataclasses (``load.py`` maps the tree
onto them). This module is the last stage's vocabulary: inert values that the rest of
the server reads and never mutates. A reload builds a whole new :class:`ServerOptions`
and the server swaps it in (``reload.py``).

Command-line flags produce a :class:`ServerOptions` with :func:`dataclasses.replace`
over the defaults; when a file is given, the flags that were set on the command line
are replaced over the file's options, so that flags override the file (nats-server's
``MergeOptions``).

Defaults are nats-server 2.x's (``server/const.go``, ``setBaselineOptions``); see
SERVER.md section 3. Durations are seconds as floats; sizes are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Bytes of one message (headers and payload) a client may publish.
DEFAULT_MAX_PAYLOAD = 1024 * 1024
#: Bytes queued for one connection's socket before it is cut off as a slow consumer.
DEFAULT_MAX_PENDING = 64 * 1024 * 1024
#: Bytes of a control line's arguments. nats-server 2.x uses 4096 (the docs' 1024 is stale).
DEFAULT_MAX_CONTROL_LINE = 4096
DEFAULT_MAX_CONNECTIONS = 64 * 1024
DEFAULT_PORT = 4222
DEFAULT_HOST = "0.0.0.0"
#: Seconds a client has to send CONNECT when authentication is required.
DEFAULT_AUTH_TIMEOUT = 2.0
#: Seconds a TLS handshake may take (``TLS_TIMEOUT``).
DEFAULT_TLS_TIMEOUT = 2.0

LogFormat = Literal["text", "json"]


@dataclass(frozen=True, slots=True)
class SubjectPermission:
    """One direction of a permission: subjects allowed and denied (deny wins).

    An empty ``allow`` with ``allow_all`` false means "nothing allowed"; a
    permission given only as a deny list allows everything else.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResponsePermission:
    """``allow_responses``: publishing to reply subjects of received requests."""

    max_msgs: int = 1
    expires: float = 0.0


@dataclass(frozen=True, slots=True)
class Permissions:
    """A user's ``permissions`` block (``None`` directions mean "no restriction")."""

    publish: SubjectPermission | None = None
    subscribe: SubjectPermission | None = None
    allow_responses: ResponsePermission | None = None


@dataclass(frozen=True, slots=True)
class User:
    """One entry of a ``users`` list (password or nkey), or the single user."""

    username: str = ""
    password: str = ""
    nkey: str = ""
    permissions: Permissions | None = None
    allowed_connection_types: tuple[str, ...] = ()
    #: Account the user belongs to (``""`` = the global account ``$G``).
    account: str = ""


@dataclass(frozen=True, slots=True)
class Authorization:
    """The ``authorization`` block (client port, websocket or cluster)."""

    username: str = ""
    password: str = ""
    token: str = ""
    users: tuple[User, ...] = ()
    timeout: float = DEFAULT_AUTH_TIMEOUT
    default_permissions: Permissions | None = None

    @property
    def required(self) -> bool:
        """Whether any credential is configured."""
        return bool(self.username or self.token or self.users)


#: nats-server's default ``response_threshold`` of service exports (2 minutes).
DEFAULT_RESPONSE_THRESHOLD = 120.0


@dataclass(frozen=True, slots=True)
class Export:
    """An account export: a stream or a service subject, optionally to some accounts."""

    kind: Literal["stream", "service"]
    subject: str
    accounts: tuple[str, ...] = ()
    response_type: str = "Singleton"
    #: How long a service's responders may take to answer.
    response_threshold: float = DEFAULT_RESPONSE_THRESHOLD


@dataclass(frozen=True, slots=True)
class Import:
    """An account import: ``prefix`` for streams, ``to`` (local subject) for services."""

    kind: Literal["stream", "service"]
    account: str
    subject: str
    prefix: str = ""
    to: str = ""
    #: A service import shares the requester's details in ``Nats-Request-Info``.
    share: bool = False


@dataclass(frozen=True, slots=True)
class Account:
    """One entry of the ``accounts`` block."""

    name: str
    users: tuple[User, ...] = ()
    exports: tuple[Export, ...] = ()
    imports: tuple[Import, ...] = ()
    mappings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class TLSOptions:
    """A ``tls`` block (client port, cluster, websocket or HTTPS monitoring)."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    verify: bool = False
    verify_and_map: bool = False
    verify_cert_and_check_known_urls: bool = False
    insecure: bool = False
    timeout: float = DEFAULT_TLS_TIMEOUT
    #: ``False`` (upgrade after INFO), ``True`` (TLS first), or a fallback delay in seconds.
    handshake_first: bool | float = False
    cipher_suites: tuple[str, ...] = ()
    curve_preferences: tuple[str, ...] = ()
    min_version: str = ""
    pinned_certs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RoutePermissions:
    """``cluster.permissions``: what a route may import and export."""

    import_: SubjectPermission | None = None
    export: SubjectPermission | None = None


@dataclass(frozen=True, slots=True)
class ClusterOptions:
    """The ``cluster`` block and the ``--cluster*``/``--routes`` flags.

    A ``port`` of 0 means clustering is off; ``-1`` picks a free port.
    """

    name: str = ""
    host: str = DEFAULT_HOST
    port: int = 0
    advertise: str = ""
    no_advertise: bool = False
    routes: tuple[str, ...] = ()
    connect_retries: int = 0
    connect_backoff: bool = False
    username: str = ""
    password: str = ""
    auth_timeout: float = DEFAULT_AUTH_TIMEOUT
    tls: TLSOptions | None = None
    permissions: RoutePermissions | None = None
    ping_interval: float = 0.0
    ping_max: int = 0
    write_deadline: float = 0.0

    @property
    def enabled(self) -> bool:
        """Whether a route listener is configured."""
        return self.port != 0


@dataclass(frozen=True, slots=True)
class WebsocketOptions:
    """The ``websocket`` block. A ``port`` of 0 means WebSocket is off."""

    host: str = DEFAULT_HOST
    port: int = 0
    advertise: str = ""
    no_tls: bool = False
    tls: TLSOptions | None = None
    same_origin: bool = False
    allowed_origins: tuple[str, ...] = ()
    handshake_timeout: float = 2.0
    compression: bool = False
    authorization: Authorization | None = None
    no_auth_user: str = ""
    jwt_cookie: str = ""
    user_cookie: str = ""
    pass_cookie: str = ""
    token_cookie: str = ""


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Everything a server is configured with.

    Durations are seconds as floats. A port of ``-1`` means "pick a free port"; an
    ``http_port`` of ``0`` means monitoring is off.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    server_name: str = ""
    client_advertise: str = ""
    server_tags: tuple[str, ...] = ()

    http_host: str = ""
    http_port: int = 0
    https_port: int = 0
    http_base_path: str = ""

    max_payload: int = DEFAULT_MAX_PAYLOAD
    max_pending: int = DEFAULT_MAX_PENDING
    max_control_line: int = DEFAULT_MAX_CONTROL_LINE
    #: Negative means "refuse every client" (a config file's ``max_connections: 0``).
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: 0 means unlimited.
    max_subscriptions: int = 0
    max_sub_tokens: int = 0
    ping_interval: float = 120.0
    ping_max: int = 2
    write_deadline: float = 10.0
    auth_timeout: float = DEFAULT_AUTH_TIMEOUT
    no_header_support: bool = False
    max_closed_clients: int = 10_000
    disable_sublist_cache: bool = False
    no_fast_producer_stall: bool = False
    connect_error_reports: int = 3600
    reconnect_error_reports: int = 1

    lame_duck_duration: float = 120.0
    lame_duck_grace_period: float = 10.0

    debug: bool = False
    trace: bool = False
    trace_verbose: bool = False
    trace_headers: bool = False
    max_traced_msg_len: int = 0
    logtime: bool = True
    logtime_utc: bool = False
    log_file: str = ""
    #: Rotate the log file when it reaches this many bytes (0: never).
    log_size_limit: int = 0
    #: Rotated log files to keep (0: all).
    log_max_num: int = 0
    #: ``json`` writes one JSON object per log line (an addition of pynats).
    log_format: LogFormat = "text"
    syslog: bool = False
    remote_syslog: str = ""
    pid_file: str = ""
    ports_file_dir: str = ""
    config_file: str = ""

    authorization: Authorization = field(default_factory=Authorization)
    no_auth_user: str = ""
    accounts: tuple[Account, ...] = ()
    system_account: str = ""
    no_system_account: bool = False
    mappings: tuple[tuple[str, str], ...] = ()
    #: Operator mode (decentralized auth): the operator JWTs (read from the files named).
    operators: tuple[str, ...] = ()
    #: Operator public keys trusted instead of operator JWTs.
    trusted_keys: tuple[str, ...] = ()
    #: The account resolver, normalized: ``MEMORY``, ``URL(<url>)``, ``FULL(<dir>)``...
    resolver: str = ""
    #: ``(account public key, account JWT)`` pairs for the memory resolver.
    resolver_preload: tuple[tuple[str, str], ...] = ()
    #: Only users of these accounts may connect (empty: any account).
    resolver_pinned_accounts: tuple[str, ...] = ()

    tls: TLSOptions | None = None
    allow_non_tls: bool = False
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    websocket: WebsocketOptions = field(default_factory=WebsocketOptions)

    #: Accepted for compatibility; JetStream is out of scope, so it is never advertised.
    jetstream: bool = False
    store_dir: str = ""

    @property
    def operator_mode(self) -> bool:
        """Whether clients authenticate with JWTs (operators or trusted keys configured)."""
        return bool(self.operators or self.trusted_keys)
