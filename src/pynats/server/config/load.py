"""From a configuration file (and the command line) to frozen :class:`ServerOptions`.

Theory of operation
-------------------
Third stage of the configuration pipeline (STYLE.md 2a.6): ``parser.py`` turns the file
into a tree of located :class:`~pynats.server.config.parser.Node` values; this module
maps the tree's top-level keys onto :class:`ServerOptions` (blocks are delegated to
``blocks.py``), then :func:`merge` lays the command-line flags over it (flags win, as in
nats-server's ``MergeOptions``) and :func:`validate` applies the start-up checks of
nats-server's ``validateOptions``.

Every problem is collected rather than raised at once, so one run reports every
mistake in the file, each with ``file:line:col`` and the key. Errors stop the server
before anything starts (:class:`ConfigFileError`); warnings (a bare integer given for a
duration...) are printed and the server goes on, except under ``-t``, where nats-server
treats them as failures. Keys of features pynats does not implement (``jetstream``,
``leafnodes``, ``gateway``, ``mqtt``) load with one log warning each
(:attr:`LoadedConfig.notices`); unknown top-level keys are errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pynats.errors import ConfigError
from pynats.server.config import blocks, operator
from pynats.server.config.options import (
    DEFAULT_AUTH_TIMEOUT,
    DEFAULT_HOST,
    ServerOptions,
    TLSOptions,
)
from pynats.server.config.parser import Node, digest_of_tree, parse_file
from pynats.server.config.values import (
    Problems,
    duration_or_seconds,
    duration_string,
    format_duration,
    parse_listen,
    want_bool,
    want_int,
    want_map,
    want_str,
    want_strings,
)
from pynats.server.jwtauth.config import check_resolution, check_trusted_operators
from pynats.server.log import go_quote
from pynats.server.tls import server_context

#: Largest ``max_payload`` / ``max_control_line`` nats-server accepts (int32).
MAX_INT32 = (1 << 31) - 1
#: Shortest lame duck duration nats-server accepts, in seconds.
MIN_LAME_DUCK_DURATION = 30.0

#: The log warning for each feature pynats accepts in a file but does not implement.
UNSUPPORTED = {
    "jetstream": "JetStream is not supported by this server, ignoring",
    "leafnodes": "Leafnodes are not supported by this server, ignoring the leafnodes block",
    "gateway": "Gateways are not supported by this server, ignoring the gateway block",
    "mqtt": "MQTT is not supported by this server, ignoring the mqtt block",
}
_UNSUPPORTED_ALIASES = {"leaf": "leafnodes"}
#: The log warning for subject mappings (parsed and checked, but not applied yet).
MAPPINGS_NOTICE = "Subject mappings are not supported by this server, ignoring them"

#: Keys nats-server accepts that change nothing in pynats.
IGNORED = frozenset({
    "prof_port", "ocsp", "ocsp_cache", "default_js_domain", "resolver_tls",
    "proxies", "feature_flags", "server_metadata",
    "write_timeout", "proxy_protocol", "max_closed_clients_ttl", "auth_callout",
})

Reader = Callable[[Node], object]

#: Top-level keys that set one field from one value: key -> (field, reader).
SIMPLE: dict[str, tuple[str, Reader]] = {
    "client_advertise": ("client_advertise", want_str),
    "port": ("port", want_int),
    "server_name": ("server_name", want_str),
    "host": ("host", want_str),
    "net": ("host", want_str),
    "debug": ("debug", want_bool),
    "trace": ("trace", want_bool),
    "trace_headers": ("trace_headers", want_bool),
    "logtime": ("logtime", want_bool),
    "logtime_utc": ("logtime_utc", want_bool),
    "disable_sublist_cache": ("disable_sublist_cache", want_bool),
    "no_sublist_cache": ("disable_sublist_cache", want_bool),
    "http_port": ("http_port", want_int),
    "monitor_port": ("http_port", want_int),
    "https_port": ("https_port", want_int),
    "http_base_path": ("http_base_path", want_str),
    "logfile": ("log_file", want_str),
    "log_file": ("log_file", want_str),
    "logfile_size_limit": ("log_size_limit", want_int),
    "log_size_limit": ("log_size_limit", want_int),
    "logfile_max_num": ("log_max_num", want_int),
    "log_max_num": ("log_max_num", want_int),
    "syslog": ("syslog", want_bool),
    "remote_syslog": ("remote_syslog", want_str),
    "pidfile": ("pid_file", want_str),
    "pid_file": ("pid_file", want_str),
    "ports_file_dir": ("ports_file_dir", want_str),
    "max_pending": ("max_pending", want_int),
    "max_traced_msg_len": ("max_traced_msg_len", want_int),
    "max_subscriptions": ("max_subscriptions", want_int),
    "max_subs": ("max_subscriptions", want_int),
    "ping_max": ("ping_max", want_int),
    "allow_non_tls": ("allow_non_tls", want_bool),
    "no_auth_user": ("no_auth_user", want_str),
    "no_system_account": ("no_system_account", want_bool),
    "no_system": ("no_system_account", want_bool),
    "no_sys_acc": ("no_system_account", want_bool),
    "no_header_support": ("no_header_support", want_bool),
    "connect_error_reports": ("connect_error_reports", want_int),
    "reconnect_error_reports": ("reconnect_error_reports", want_int),
    "max_closed_clients": ("max_closed_clients", want_int),
    "no_fast_producer_stall": ("no_fast_producer_stall", want_bool),
    "system_account": ("system_account", want_str),
    "system": ("system_account", want_str),
    "store_dir": ("store_dir", want_str),
    "storedir": ("store_dir", want_str),
    "server_tags": ("server_tags", want_strings),
}
_OPERATOR_KEYS = frozenset({"operator", "operators", "roots", "root", "root_operators",
                            "root_operator"})


class ConfigFileError(ConfigError):
    """A configuration file that cannot be used; lists every problem found.

    ``str()`` is what nats-server prints after ``nats-server: ``: the warnings, then the
    errors, one per line.
    """

    def __init__(self, errors: Iterable[str], warnings: Iterable[str] = ()):
        self.errors = tuple(errors)
        self.warnings = tuple(warnings)
        super().__init__("\n".join((*self.warnings, *self.errors)))


@dataclass(frozen=True)
class LoadedConfig:
    """A configuration file turned into options.

    Attributes:
        options: The file's options over the defaults (flags not yet merged).
        digest: ``sha256:<hex>``, as nats-server shows for the file.
        warnings: Located warnings, printed to stderr at start-up as nats-server does.
        notices: Warnings for the server log (features accepted but not implemented).
    """

    options: ServerOptions
    digest: str
    warnings: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()


def load_file(path: str) -> LoadedConfig:
    """Parse ``path`` and map it onto :class:`ServerOptions`.

    Raises:
        ConfigError: a syntax error (``ConfigSyntaxError``) or a file whose keys are
            wrong (:class:`ConfigFileError`, with every problem found).
    """
    tree = parse_file(path)
    options, problems, notices = options_from_tree(tree)
    if problems.errors:
        raise ConfigFileError(problems.errors, problems.warnings)
    options = dataclasses.replace(options, config_file=path)
    return LoadedConfig(options, digest_of_tree(tree), tuple(problems.warnings), notices)


def options_from_tree(tree: Node) -> tuple[ServerOptions, Problems, tuple[str, ...]]:
    """Map a parsed file onto options; returns them, the problems and the log notices."""
    problems = Problems()
    fields: dict[str, Any] = {}
    notices: list[str] = []
    for key, value in want_map(tree).items():
        problems.guard(_top_level, key, value, fields, problems, notices)
    if fields.get("operators") and not problems.errors:
        operator.apply_implied(fields)
    options = _default_auth_timeout(ServerOptions(**fields), "auth_timeout" in fields)
    _check_names(tree, options, problems)
    if options.mappings or any(account.mappings for account in options.accounts):
        notices.append(MAPPINGS_NOTICE)
    return options, problems, tuple(dict.fromkeys(notices))


def _default_auth_timeout(options: ServerOptions, given: bool) -> ServerOptions:
    """With TLS, an auth timeout not given is the TLS timeout plus one second."""
    if given or options.tls is None:
        return options
    return dataclasses.replace(options, auth_timeout=options.tls.timeout + 1.0)


def _top_level(key: str, value: Node, fields: dict[str, Any], problems: Problems,
               notices: list[str]) -> None:
    name = key.lower()
    if name in SIMPLE:
        field, read = SIMPLE[name]
        fields[field] = read(value)
    elif name in _SPECIAL:
        _SPECIAL[name](name, value, fields, problems)
    elif _UNSUPPORTED_ALIASES.get(name, name) in UNSUPPORTED:
        _unsupported(_UNSUPPORTED_ALIASES.get(name, name), value, fields, notices)
    elif name in _OPERATOR_KEYS:
        operator.operators(name, value, fields, problems)
    elif name not in IGNORED:
        problems.unknown(key, value)


def _unsupported(name: str, value: Node, fields: dict[str, Any], notices: list[str]) -> None:
    if name == "jetstream":
        enabled = value.value if isinstance(value.value, bool) else True
        if isinstance(value.value, str):
            enabled = value.value.lower() not in ("disabled", "false", "off", "no")
        if not enabled:
            return
        fields["jetstream"] = True
    notices.append(UNSUPPORTED[name])


# -- keys that need more than one read ----------------------------------------------------

Special = Callable[[str, Node, dict[str, Any], Problems], None]


def _listen(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    try:
        host, port = parse_listen(value)
    except ValueError as exc:
        problems.error(value, str(exc))
        return
    port_field = {"listen": "port", "http": "http_port", "https": "https_port"}[name]
    host_field = "host" if name == "listen" else "http_host"
    fields[host_field] = host
    fields[port_field] = port


def _int32(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    number = want_int(value)
    if number > MAX_INT32:
        problems.error(value, f"{name} value is too big")
        return
    fields[name] = number


def _max_connections(name: str, value: Node, fields: dict[str, Any],
                     problems: Problems) -> None:
    number = want_int(value)
    fields["max_connections"] = -1 if number == 0 else number


def _max_sub_tokens(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    number = want_int(value)
    if number > 255:
        problems.error(value, f"{name} value is too big")
    elif number <= 0:
        problems.error(value, f"{name} value can not be negative")
    else:
        fields["max_sub_tokens"] = number


def _duration(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    fields[name] = duration_or_seconds(name, value, problems)


def _lame_duck(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    seconds = duration_string(name, value, problems)
    if seconds is None:
        return
    if name == "lame_duck_duration" and seconds < MIN_LAME_DUCK_DURATION:
        problems.error(value, f"invalid lame_duck_duration of {format_duration(seconds)}, "
                              "minimum is 30 seconds")
    elif name == "lame_duck_grace_period" and seconds < 0:
        problems.error(value, "invalid lame_duck_grace_period, needs to be positive")
    else:
        fields[name] = seconds


def _trace_verbose(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    fields["trace_verbose"] = fields["trace"] = want_bool(value)


def _log_format(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    text = want_str(value).lower()
    if text not in ("text", "json"):
        problems.error(value, f"invalid log_format {go_quote(text)}, expected text or json")
        return
    fields["log_format"] = text


def _authorization(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    auth = blocks.parse_authorization(value, problems)
    fields["authorization"] = auth
    # As nats-server's baseline options: an absent or zero timeout means the default one
    # (which depends on TLS, see _default_auth_timeout).
    timeout_given = isinstance(value.value, dict) and any(
        key.lower() == "timeout" for key in value.value)
    if timeout_given and auth.timeout:
        fields["auth_timeout"] = auth.timeout


def _accounts(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    fields["accounts"] = blocks.parse_accounts(value, problems)


def _mappings(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    fields["mappings"] = blocks.parse_mappings(value, problems)


def _tls(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    fields["tls"] = blocks.parse_tls(value, problems)


def _cluster(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    fields["cluster"] = blocks.parse_cluster(value, problems)


def _websocket(name: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    fields["websocket"] = blocks.parse_websocket(value, problems)


_SPECIAL: dict[str, Special] = {
    "listen": _listen, "http": _listen, "https": _listen,
    "max_payload": _int32, "max_control_line": _int32,
    "max_connections": _max_connections, "max_conn": _max_connections,
    "max_sub_tokens": _max_sub_tokens, "max_subscription_tokens": _max_sub_tokens,
    "ping_interval": _duration, "write_deadline": _duration,
    "lame_duck_duration": _lame_duck, "lame_duck_grace_period": _lame_duck,
    "trace_verbose": _trace_verbose, "log_format": _log_format,
    "authorization": _authorization, "accounts": _accounts,
    "mappings": _mappings, "maps": _mappings, "tls": _tls, "cluster": _cluster,
    "websocket": _websocket, "ws": _websocket,
    "resolver_preload": operator.resolver_preload, "resolver": operator.resolver,
    "account_resolver": operator.resolver, "accounts_resolver": operator.resolver,
    "trusted": operator.trusted_keys, "trusted_keys": operator.trusted_keys,
    "resolver_pinned_accounts": operator.pinned_accounts,
}


def _check_names(tree: Node, options: ServerOptions, problems: Problems) -> None:
    """Names with spaces are refused at the key's position (``validateOptions``)."""
    top = {key.lower(): value for key, value in want_map(tree).items()}
    if " " in options.server_name and "server_name" in top:
        problems.error(top["server_name"], "server name cannot contain spaces")
    cluster = top.get("cluster")
    if " " in options.cluster.name and cluster is not None and isinstance(cluster.value, dict):
        named = {k.lower(): v for k, v in cluster.value.items()}
        problems.error(named.get("name", cluster), "cluster name cannot contain spaces")


# -- flags and validation -------------------------------------------------------------------

def merge(file_options: ServerOptions, flag_options: ServerOptions,
          explicit: Iterable[str]) -> ServerOptions:
    """The file's options with every field set on the command line taken from the flags.

    ``explicit`` names fields; a dotted name (``authorization.username``) is a field of
    a nested block, so ``--user`` replaces the file's user and keeps its other keys.
    """
    changes = {name: get_field(flag_options, name) for name in explicit}
    changes.pop("config_file", None)
    if "tls" in changes:
        tls = merge_tls(file_options.tls, flag_options.tls)
        changes["tls"] = tls
        # The file's auth timeout was set without TLS; with a file that set none
        # (the default value), TLS from the flags moves it as it would have.
        if tls is not None and file_options.tls is None and (
                file_options.auth_timeout == DEFAULT_AUTH_TIMEOUT):
            changes["auth_timeout"] = tls.timeout + 1.0
    return set_fields(file_options, changes)


def merge_tls(file_tls: TLSOptions | None, flag_tls: TLSOptions | None) -> TLSOptions | None:
    """The ``--tls*`` flags over the file's ``tls`` block (nats-server's ``overrideTLS``).

    ``--tls=false`` (``flag_tls`` None) turns TLS off. Otherwise the certificate, key,
    CA and verification come from the flags alone and the cipher, curve and version
    settings go back to their defaults, while the block's timeout, ``handshake_first``,
    pinned certificates and mapping stay.
    """
    if flag_tls is None:
        return None
    return dataclasses.replace(file_tls or TLSOptions(), cert_file=flag_tls.cert_file,
                               key_file=flag_tls.key_file, ca_file=flag_tls.ca_file,
                               verify=flag_tls.verify, cipher_suites=(),
                               curve_preferences=(), min_version="")


def check_flag_tls(tls: TLSOptions) -> None:
    """TLS set by flags needs a certificate and key that load (nats-server's messages).

    Raises:
        ConfigError: one is missing or the files cannot be used.
    """
    if not tls.cert_file:
        raise ConfigError("TLS Server certificate must be present and valid")
    if not tls.key_file:
        raise ConfigError("TLS Server private key must be present and valid")
    server_context(tls)


def get_field(options: ServerOptions, name: str) -> object:
    """The value of field ``name`` (dotted for nested blocks) of ``options``."""
    value: object = options
    for part in name.split("."):
        value = getattr(value, part)
    return value


def set_fields(options: ServerOptions, values: Mapping[str, object]) -> ServerOptions:
    """``options`` with ``values`` replaced; dotted names set fields of nested blocks.

    Example: ``set_fields(opts, {"port": 1, "authorization.token": "t"})``.
    """
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, object]] = {}
    for name, value in values.items():
        outer, dot, inner = name.partition(".")
        if dot:
            nested.setdefault(outer, {})[inner] = value
        else:
            top[name] = value
    for outer, fields in nested.items():
        top[outer] = dataclasses.replace(top.get(outer, getattr(options, outer)), **fields)
    return dataclasses.replace(options, **top)


def validate(options: ServerOptions) -> None:
    """nats-server's start-up checks (``validateOptions``); raises ConfigError."""
    if options.max_payload > options.max_pending:
        raise ConfigError(f"max_payload ({options.max_payload}) cannot be higher than "
                          f"max_pending ({options.max_pending})")
    if options.lame_duck_grace_period >= options.lame_duck_duration:
        raise ConfigError(
            f"lame duck grace period ({format_duration(options.lame_duck_grace_period)}) "
            "should be strictly lower than lame duck duration "
            f"({format_duration(options.lame_duck_duration)})")
    if " " in options.server_name:
        raise ConfigError("server name cannot contain spaces")
    if " " in options.cluster.name:
        raise ConfigError("cluster name cannot contain spaces")
    check_trusted_operators(options)
    ws = options.websocket
    if ws.port and ws.tls is None and not ws.no_tls:
        raise ConfigError("websocket requires TLS configuration")
    _validate_no_auth_user(options)
    check_resolution(options)


def _validate_no_auth_user(options: ServerOptions) -> None:
    name = options.no_auth_user
    if not name:
        return
    if options.operators:
        raise ConfigError("no_auth_user not compatible with Trusted Operator")
    users = [*options.authorization.users, *(u for a in options.accounts for u in a.users)]
    if not users:
        raise ConfigError(f"no_auth_user: {go_quote(name)} present, but users/nkeys are "
                          "not defined")
    if all(name not in (u.username, u.nkey) for u in users):
        raise ConfigError(f"no_auth_user: {go_quote(name)} not present as user or nkey in "
                          "authorization block or account configuration")


def resolve(flag_options: ServerOptions, explicit: Iterable[str],
            late_errors: Sequence[str] = ()) -> tuple[ServerOptions, LoadedConfig | None]:
    """The options to run with: the file (if any) under the flags, validated.

    Checks run in nats-server's order: the file, then the flag problems it reports only
    after the file (``late_errors``, e.g. a bad ``--cluster`` URL), the TLS flags,
    ``--routes`` without a cluster, and the start-up validation.

    Returns the options and the loaded file (``None`` without ``-c``).

    Raises:
        ConfigError: the file cannot be read or used, a flag is wrong, or validation
            failed.
    """
    given = frozenset(explicit)
    path = flag_options.config_file
    loaded = load_file(path) if path else None
    options = flag_options if loaded is None else merge(loaded.options, flag_options, given)
    if late_errors:
        raise ConfigError(late_errors[0])
    if "tls" in given and options.tls is not None:
        check_flag_tls(options.tls)
    check_flag_routes(options, given)
    if loaded is None:
        options = _default_auth_timeout(options, False)
    validate(options)
    return options, loaded


def check_flag_routes(options: ServerOptions, explicit: Collection[str]) -> None:
    """``--routes`` needs a cluster to solicit from (nats-server's check after the flags).

    nats-server refuses routes given on the command line when no ``--cluster`` URL was
    given (or it was empty) and the cluster has neither a port nor a host. A host the
    file did not set is the default one here, so a file's explicit ``host: 0.0.0.0``
    counts as none.

    Raises:
        ConfigError: ``solicited routes require cluster capabilities, e.g. --cluster``.
    """
    cluster = options.cluster
    if ("cluster.routes" in explicit and cluster.routes and "cluster.host" not in explicit
            and cluster.port == 0 and cluster.host == DEFAULT_HOST):
        raise ConfigError("solicited routes require cluster capabilities, e.g. --cluster")
