"""Configuration reload (SIGHUP), as nats-server's ``Reload()`` does it.

Theory of operation
-------------------
:func:`reload` re-reads the configuration file the server started with, lays the same
command-line flags over it (flags still win), validates the result, and compares it
field by field with the options in force (:func:`diff`). If any changed field is not
reloadable, the whole reload is refused with nats-server's message
``config reload not supported for <Field>: old=<v>, new=<v>`` and nothing changes.
Otherwise the new :class:`ServerOptions` is swapped in and each change is applied to
what is already running (:func:`apply`):

* logging options go to the logger first, which opens its new sinks before closing the
  old ones: a log file that cannot be opened fails the reload, and nothing changes;
* ``max_payload`` and ``max_control_line`` change the limits of every open
  connection's parser (new clients get them from INFO as usual);
* ``max_connections`` below the current count closes the newest clients with
  ``maximum connections exceeded``;
* ``ping_interval`` re-arms every client's ping timer;
* ``pid_file`` and ``ports_file_dir`` rewrite the files;
* ``tls`` rebuilds the client port's TLS context (``on_tls_reload``): clients that
  connect from then on get the new certificates and settings;
* authorization, accounts and routes are handed to hooks (``on_auth_reload``,
  ``on_routes_reload``, ``on_cluster_reload`` for route permissions and
  ``no_advertise``) the server may define (authorization after the changes are
  logged, as nats-server does); options that nothing reads live are
  simply in force for the next reader, because everything reads ``server.options``.

Each change is logged ``Reloaded: <option> = <value>``, then ``Reloaded server
configuration (<digest>)``. In operator mode nats-server reloads accounts every time:
every reload logs ``authorization users`` and ``accounts`` and re-checks the clients'
JWTs against the new options. ``resolver_preload`` is never compared (an unexported
field in nats-server): a change is not logged, but the accounts reloaded take it in.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynats.errors import ConfigError
from pynats.server.config.load import load_file, merge, validate
from pynats.server.config.options import ClusterOptions, ServerOptions
from pynats.server.config.values import format_duration
from pynats.server.logsinks import LogSetupError

if TYPE_CHECKING:
    from pynats.server.server import Server

#: Top-level fields that may change on reload (SERVER.md section 5). ``no_auth_user``
#: is not one of them: nats-server 2.x refuses the reload when it changes.
RELOADABLE = frozenset({
    "client_advertise", "server_tags", "max_payload", "max_control_line", "max_connections",
    "ping_interval", "ping_max", "write_deadline", "auth_timeout", "no_fast_producer_stall",
    "connect_error_reports", "reconnect_error_reports", "debug", "trace", "trace_verbose",
    "trace_headers", "max_traced_msg_len", "logtime", "logtime_utc", "log_file",
    "log_size_limit", "log_max_num", "log_format", "syslog", "remote_syslog", "pid_file",
    "ports_file_dir", "authorization", "accounts", "system_account",
    "mappings", "tls",
})
#: Fields nats-server does not compare on reload (unexported there): never a change.
NOT_COMPARED = frozenset({"config_file", "resolver_preload"})
#: What nats-server logs on every reload in operator mode (it always reloads accounts).
OPERATOR_NOTICES = ("authorization users", "accounts", "accounts")
#: ``cluster`` fields that may change on reload; any other cluster change is refused.
CLUSTER_RELOADABLE = frozenset({"routes", "permissions", "ping_interval", "ping_max",
                                "write_deadline", "no_advertise"})
_LOGGING = frozenset({"debug", "trace", "trace_verbose", "trace_headers", "logtime",
                      "logtime_utc", "log_file", "log_size_limit", "log_max_num",
                      "log_format", "syslog", "remote_syslog", "max_traced_msg_len"})
_DURATIONS = frozenset({"ping_interval", "write_deadline", "lame_duck_duration",
                        "lame_duck_grace_period"})
#: nats-server's Go field names, for the "not supported" message.
_GO_NAMES = {
    "host": "Host", "port": "Port", "server_name": "ServerName", "http_host": "HTTPHost",
    "http_port": "HTTPPort", "https_port": "HTTPSPort", "http_base_path": "HTTPBasePath",
    "max_pending": "MaxPending", "max_subscriptions": "MaxSubs",
    "max_sub_tokens": "MaxSubTokens", "no_header_support": "NoHeaderSupport",
    "max_closed_clients": "MaxClosedClients", "disable_sublist_cache": "NoSublistCache",
    "lame_duck_duration": "LameDuckDuration", "lame_duck_grace_period": "LameDuckGracePeriod",
    "jetstream": "JetStream", "store_dir": "StoreDir", "websocket": "Websocket",
    "trusted_keys": "TrustedKeys", "operators": "TrustedOperators",
    "resolver": "AccountResolver", "allow_non_tls": "AllowNonTLS",
    "no_system_account": "NoSystemAccount",
}


@dataclass(frozen=True)
class Change:
    """One option whose value differs between the running and the reloaded config."""

    name: str
    old: Any
    new: Any

    @property
    def reloadable(self) -> bool:
        """Whether nats-server would apply this change without a restart."""
        if self.name.startswith("cluster."):
            return self.name.removeprefix("cluster.") in CLUSTER_RELOADABLE
        return self.name in RELOADABLE

    def refusal(self) -> str:
        """nats-server's message when the change cannot be applied live."""
        duration = self.name in _DURATIONS
        return (f"config reload not supported for {_go_name(self.name)}: "
                f"old={_show(self.old, duration=duration)}, "
                f"new={_show(self.new, duration=duration)}")

    def logged(self) -> str:
        """The ``Reloaded: ...`` line for an applied change."""
        if self.name in ("authorization", "accounts"):
            return "authorization users" if self.name == "authorization" else "accounts"
        if self.name == "auth_timeout":
            return f"authorization timeout = {_show(self.new)}"
        if self.name == "tls":
            return f"tls = {'enabled' if self.new is not None else 'disabled'}"
        return f"{self.name} = {_show(self.new, duration=self.name in _DURATIONS)}"


#: What nats-server logs for a changed field of the ``authorization`` block.
_AUTH_FIELD_NOTICES = {"username": "authorization username",
                       "password": "authorization password", "token": "authorization token"}


def notices(changes: list[Change]) -> list[str]:
    """The ``Reloaded: ...`` lines for ``changes``, in nats-server's order.

    Any authorization change is announced as nats-server does: ``authorization users``
    and ``accounts`` first, then the single user, password, token or timeout changed.
    """
    names = {change.name for change in changes}
    lines: list[str] = []
    for change in changes:
        if change.name in ("auth_timeout", "authorization", "accounts") and names & {
                "auth_timeout", "authorization"}:
            if change.name == "authorization":
                lines.extend(_auth_notices(changes))
        else:
            lines.append(change.logged())
    if "authorization" not in names and "auth_timeout" in names:
        lines.extend(_auth_notices(changes))
    return lines


def _auth_notices(changes: list[Change]) -> list[str]:
    lines = ["authorization users", "accounts"]
    for change in changes:
        if change.name == "authorization":
            lines.extend(notice for field, notice in _AUTH_FIELD_NOTICES.items()
                         if getattr(change.old, field) != getattr(change.new, field))
    lines.extend(change.logged() for change in changes if change.name == "auth_timeout")
    return lines


def diff(old: ServerOptions, new: ServerOptions) -> list[Change]:
    """The fields that differ, in declaration order; ``cluster`` compared per field."""
    changes: list[Change] = []
    for field in dataclasses.fields(ServerOptions):
        name = field.name
        before, after = getattr(old, name), getattr(new, name)
        if before == after or name in NOT_COMPARED:
            continue
        if name == "cluster":
            changes.extend(_cluster_diff(before, after))
        else:
            changes.append(Change(name, before, after))
    return changes


def _cluster_diff(old: ClusterOptions, new: ClusterOptions) -> Iterable[Change]:
    for field in dataclasses.fields(ClusterOptions):
        before, after = getattr(old, field.name), getattr(new, field.name)
        if before != after:
            yield Change(f"cluster.{field.name}", before, after)


def reload(server: Server) -> list[Change]:
    """Reload the server's configuration file; returns the changes applied.

    Raises:
        ConfigError: no file, a bad file, or a change that needs a restart; the
            running configuration is untouched.
    """
    path = server.options.config_file
    if not path:
        raise ConfigError("can only reload config when a file is provided using -c or "
                          "--config")
    loaded = load_file(path)
    flags, explicit = server.flag_overrides
    new = merge(loaded.options, flags, explicit)
    validate(new)
    changes = diff(server.options, new)
    refused = [change for change in changes if not change.reloadable]
    if refused:
        raise ConfigError(refused[0].refusal())
    if {change.name for change in changes} & _LOGGING:
        try:
            server.log.apply(new)
        except LogSetupError as exc:
            raise ConfigError(str(exc)) from None
    old = server.options
    server.options = new
    apply(server, old, changes)
    server.config_digest = loaded.digest
    server.config_load_time = time.time()
    lines = notices(changes)
    if new.operator_mode and "authorization users" not in lines:
        lines = [*OPERATOR_NOTICES, *lines]
    for line in lines:
        server.log.notice(f"Reloaded: {line}")
    apply_authorization(server, changes, always=new.operator_mode)  # after the notices
    server.log.notice(f"Reloaded server configuration ({loaded.digest})")
    return changes


def apply(server: Server, old: ServerOptions, changes: list[Change]) -> None:
    """Make the running server follow ``changes`` (``server.options`` is already new).

    Authorization is left to :func:`apply_authorization`, which nats-server runs after
    logging the changes.
    """
    names = {change.name for change in changes}
    opts = server.options
    if names & {"max_payload", "max_control_line"}:
        for session in list(server.clients.values()):
            session.conn.parser.max_payload = opts.max_payload
            session.conn.parser.max_control_line = opts.max_control_line
    if "max_connections" in names:
        _enforce_max_connections(server, opts.max_connections)
    if "ping_interval" in names:
        for session in list(server.clients.values()):
            session.rearm_ping()
    if "pid_file" in names or "ports_file_dir" in names:
        server.write_process_files(old)
    if "tls" in names:
        hook = getattr(server, "on_tls_reload", None)
        if hook is not None:
            hook()
    if "cluster.routes" in names:
        hook = getattr(server, "on_routes_reload", None)
        if hook is not None:
            hook(old.cluster.routes, opts.cluster.routes)
    if names & {"cluster.permissions", "cluster.no_advertise"}:
        hook = getattr(server, "on_cluster_reload", None)
        if hook is not None:
            hook()


def apply_authorization(server: Server, changes: list[Change], always: bool = False) -> None:
    """Re-check connected clients when authorization, accounts or auth_timeout changed.

    ``always``: in operator mode nats-server reloads accounts on every reload.
    """
    if always or {change.name for change in changes} & {"authorization", "accounts",
                                                        "auth_timeout"}:
        hook = getattr(server, "on_auth_reload", None)
        if hook is not None:
            hook()


def _enforce_max_connections(server: Server, limit: int) -> None:
    """Close the newest clients beyond ``limit`` (negative: every client)."""
    excess = len(server.clients) - max(limit, 0)
    if excess <= 0:
        return
    for cid in sorted(server.clients, reverse=True)[:excess]:
        session = server.clients[cid]
        server.log.error(f"{session.describe()}maximum connections exceeded")
        session.conn.close("Maximum Connections Exceeded", "maximum connections exceeded")


def _go_name(name: str) -> str:
    if name.startswith("cluster."):
        return "Cluster." + _camel(name.removeprefix("cluster."))
    return _GO_NAMES.get(name, _camel(name))


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _show(value: Any, *, duration: bool = False) -> str:
    """A value as Go's ``%v`` prints it (durations as ``30s``)."""
    if duration and isinstance(value, int | float):
        return format_duration(float(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return "[" + " ".join(_show(item) for item in value) + "]"
    return str(value)
