"""Typed, frozen server options.

Configuration is built in three stages (STYLE.md 2a.6): text, then a generic tree, then
these frozen dataclasses. This module is the last stage: an inert value that the rest
of the server reads and never mutates. Command-line flags produce one of these with
:func:`dataclasses.replace` over the defaults (and, once the config-file issue lands,
over the file's options, so that flags override the file).

Defaults are nats-server 2.x's (``server/const.go``, ``setBaselineOptions``); see
SERVER.md section 3.1.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bytes of one message (headers and payload) a client may publish.
DEFAULT_MAX_PAYLOAD = 1024 * 1024
#: Bytes queued for one connection's socket before it is cut off as a slow consumer.
DEFAULT_MAX_PENDING = 64 * 1024 * 1024
#: Bytes of a control line's arguments. nats-server 2.x uses 4096 (the docs' 1024 is stale).
DEFAULT_MAX_CONTROL_LINE = 4096
DEFAULT_MAX_CONNECTIONS = 64 * 1024
DEFAULT_PORT = 4222
DEFAULT_HOST = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Everything a single-node server is configured with.

    Durations are seconds as floats. A port of ``-1`` means "pick a free port"; an
    ``http_port`` of ``0`` means monitoring is off.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    server_name: str = ""
    client_advertise: str = ""

    http_host: str = ""
    http_port: int = 0

    max_payload: int = DEFAULT_MAX_PAYLOAD
    max_pending: int = DEFAULT_MAX_PENDING
    max_control_line: int = DEFAULT_MAX_CONTROL_LINE
    #: Negative means "refuse every client" (a config file's ``max_connections: 0``).
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: 0 means unlimited.
    max_subscriptions: int = 0
    ping_interval: float = 120.0
    ping_max: int = 2
    write_deadline: float = 10.0
    auth_timeout: float = 2.0
    no_header_support: bool = False
    max_closed_clients: int = 10_000
    disable_sublist_cache: bool = False

    lame_duck_duration: float = 120.0
    lame_duck_grace_period: float = 10.0

    debug: bool = False
    trace: bool = False
    logtime: bool = True
    logtime_utc: bool = False
    log_file: str = ""
    pid_file: str = ""
    ports_file_dir: str = ""
    config_file: str = ""

    #: Accepted for compatibility; JetStream is out of scope, so it is never advertised.
    jetstream: bool = False
    store_dir: str = ""
