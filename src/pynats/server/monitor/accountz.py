"""``/accountz`` and ``/accstatz``: the accounts of the server.

Theory of operation
-------------------
nats-server always has the global account ``$G`` and, unless ``no_system_account`` is
set, a system account (``$SYS`` or the configured ``system_account``), plus the
accounts of the ``accounts`` block. :func:`account_names` lists them from the options.

In operator mode the accounts are those in use: ``$G``, the system account (named by
its public key; ``$SYS``, not reported as the system account, when none is configured)
and every account a JWT user has logged in to (:func:`server_accounts`); their detail
adds the account JWT, its issuer, the name it gives and its decoded claims.

A client belongs to the account it was bound to at login (``$G`` without one);
:func:`account_of` reads a session's ``account`` attribute (a name, or an object with a
``name``). ``/accountz?acc=NAME`` details one account: its
connections and subscriptions, the configured exports, imports and mappings (in
nats-server's JSON shapes), and the statistics of its subscription index. The service
imports nats-server adds to every account for its own system services
(``$SYS.REQ.USER.INFO`` ...) are not shown: pynats does not serve them.

``/accstatz`` gives per-account traffic. Traffic of closed clients is kept as one server
total, so it is attributed to ``$G``; named accounts count their open clients only.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from pynats.server.monitor.formats import (
    JSONObject,
    QueryError,
    Traffic,
    go_number,
    parse_bool,
    rfc3339,
    to_ns,
)
from pynats.server.sublist import IndexStats

if TYPE_CHECKING:
    from pynats.server.config.options import Account, Export, Import, ServerOptions
    from pynats.server.jwtauth.claims import AccountClaims
    from pynats.server.server import Server
    from pynats.server.sessions.client import ClientSession

#: The account every client belongs to when no other is configured.
GLOBAL_ACCOUNT: Final = "$G"
#: The system account nats-server creates unless another is named or it is disabled.
SYSTEM_ACCOUNT: Final = "$SYS"

_EMPTY_STATS: Final = IndexStats(0, 0, 0, 0, 0, 0, 0, 0)


def system_account_name(options: ServerOptions) -> str:
    """The system account's name, or "" with ``no_system_account``.

    In operator mode only a configured system account (a public key) is reported.
    """
    if options.no_system_account or (options.operator_mode and not options.system_account):
        return ""
    return options.system_account or SYSTEM_ACCOUNT


def account_names(options: ServerOptions) -> list[str]:
    """Every account: the system account, ``$G``, then the configured ones."""
    names = [system_account_name(options), GLOBAL_ACCOUNT]
    names += [account.name for account in options.accounts]
    return [name for name in dict.fromkeys(names) if name]


def server_accounts(server: Server) -> list[str]:
    """The accounts a server has now: configured ones, or in operator mode those in use."""
    if server.options.operator_mode:
        return list(server.accounts)
    return account_names(server.options)


def account_of(session: ClientSession) -> str:
    """The name of the account a client belongs to (``$G`` unless set)."""
    account: Any = getattr(session, "account", None)
    if isinstance(account, str):
        return account or GLOBAL_ACCOUNT
    return str(getattr(account, "name", "") or GLOBAL_ACCOUNT)


def account_sessions(sessions: Iterable[ClientSession], name: str) -> list[ClientSession]:
    """The sessions of one account."""
    return [session for session in sessions if account_of(session) == name]


def index_stats(server: Server, name: str = GLOBAL_ACCOUNT) -> IndexStats:
    """The subscription-index statistics of an account (empty for an unknown one).

    Peer servers' interest (the account's ``remote`` index) counts as subscriptions,
    inserts and removes, as route subscriptions live in nats-server's one sublist.
    """
    account = server.accounts.get(name)
    if account is None:
        return _EMPTY_STATS
    local = account.index.stats(extra_hits=account.router.cache_hits)
    remote = account.remote
    return replace(local, num_subscriptions=local.num_subscriptions + remote.count,
                               num_inserts=local.num_inserts + remote.inserts,
                               num_removes=local.num_removes + remote.removes)


def sublist_stats(stats: IndexStats) -> JSONObject:
    """Index statistics as nats-server's ``SublistStats`` JSON."""
    return {
        "num_subscriptions": stats.num_subscriptions,
        "num_cache": stats.num_cache,
        "num_inserts": stats.num_inserts,
        "num_removes": stats.num_removes,
        "num_matches": stats.num_matches,
        "cache_hit_rate": go_number(stats.cache_hit_rate),
        "max_fanout": stats.max_fanout,
        "avg_fanout": go_number(stats.avg_fanout),
    }


def client_traffic(server: Server, name: str | None = None) -> Traffic:
    """Client traffic totals, of every client or of one account's clients.

    Args:
        server: The server.
        name: An account; None for every client. Closed clients count for ``$G``.

    Returns:
        ``in_*`` count what clients published, ``out_*`` what they were delivered.
    """
    stats = server.stats
    closed = name is None or name == GLOBAL_ACCOUNT
    totals = [stats.closed_in_msgs, stats.closed_in_bytes, stats.closed_out_msgs,
              stats.closed_out_bytes] if closed else [0, 0, 0, 0]
    for session in server.clients.values():
        if name is None or account_of(session) == name:
            totals[0] += session.in_msgs
            totals[1] += session.in_bytes
            totals[2] += session.out_msgs
            totals[3] += session.out_bytes
    return Traffic(*totals)


# -- /accountz ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountzQuery:
    """The options of one ``/accountz`` request: ``acc`` asks for one account's detail."""

    account: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> AccountzQuery:
        """Decode query parameters (nothing here can be malformed)."""
        return cls(account=params.get("acc", ""))


def accountz(server: Server, query: AccountzQuery | None = None, *,
             now_ns: int | None = None) -> JSONObject:
    """The accounts, or one account's detail, as nats-server's ``/accountz``.

    Args:
        server: The server.
        query: Decoded query parameters (defaults when None).
        now_ns: The current time in nanoseconds since the epoch; now when None.

    Returns:
        ``{server_id, now, system_account?, accounts}`` or, with ``acc``,
        ``{server_id, now, system_account?, account_detail}``.

    Raises:
        QueryError: ``acc`` names no account (``Account X does not exist``).
    """
    q = query or AccountzQuery()
    now_ns = time.time_ns() if now_ns is None else now_ns
    result: JSONObject = {"server_id": server.server_id, "now": rfc3339(now_ns)}
    system = system_account_name(server.options)
    if system:
        result["system_account"] = system
    names = server_accounts(server)
    if not q.account:
        result["accounts"] = names
    elif q.account in names:
        result["account_detail"] = account_detail(server, q.account)
    else:
        raise QueryError(f"Account {q.account} does not exist")
    return result


def account_detail(server: Server, name: str) -> JSONObject:
    """One account as nats-server's ``AccountInfo``, keys in its order."""
    opts = server.options
    sessions = account_sessions(server.clients.values(), name)
    configured = _configured(opts, name)
    claims = account_claims(server, name)
    updated = server.config_load_time
    runtime = server.accounts.get(name)
    if claims is not None and runtime is not None and runtime.updated:
        updated = runtime.updated
    detail: JSONObject = {"account_name": name, "update_time": rfc3339(to_ns(updated))}
    if name == system_account_name(opts):
        detail["is_system"] = True
    expired = claims is not None and 0 < claims.expires <= time.time()
    detail.update({
        "expired": expired, "complete": True, "jetstream_enabled": False,
        "leafnode_connections": 0, "client_connections": len(sessions),
        "subscriptions": sum(len(session.subs) for session in sessions),
    })
    mappings = configured.mappings if configured is not None else ()
    if name == GLOBAL_ACCOUNT:
        mappings = opts.mappings
    if mappings:
        detail["mappings"] = {src: [{"subject": dst, "weight": 100}] for src, dst in mappings}
    if configured is not None and configured.exports:
        detail["exports"] = [_export(export) for export in configured.exports]
    if configured is not None and configured.imports:
        detail["imports"] = [_import(imported) for imported in configured.imports]
    if claims is not None:
        detail.update(jwt=claims.token, issuer_key=claims.issuer, name_tag=claims.name,
                      decoded_jwt=dict(claims.raw))
    else:
        detail["name_tag"] = name
    detail["sublist_stats"] = sublist_stats(index_stats(server, name))
    return detail


def account_claims(server: Server, name: str) -> AccountClaims | None:
    """The JWT claims of account ``name`` in operator mode (None for others)."""
    runtime = server.accounts.get(name)
    if runtime is not None and runtime.claims is not None:
        return runtime.claims
    operator = server.auth.operator
    registered = operator.account(name) if operator is not None else None
    return registered.claims if registered is not None else None


def _configured(options: ServerOptions, name: str) -> Account | None:
    return next((account for account in options.accounts if account.name == name), None)


def _export(export: Export) -> JSONObject:
    shown: JSONObject = {"subject": export.subject, "type": export.kind}
    if export.kind == "service":
        shown["response_type"] = export.response_type
    if export.accounts:
        shown["approved_accounts"] = list(export.accounts)
    return shown


def _import(imported: Import) -> JSONObject:
    shown: JSONObject = {"subject": imported.subject, "account": imported.account}
    if imported.kind == "service":
        local = imported.to or imported.subject
        shown.update({"to": local, "local_subject": local})
    else:
        prefix = imported.prefix.rstrip(".")
        shown["local_subject"] = f"{prefix}.{imported.subject}" if prefix else imported.subject
    shown.update({"type": imported.kind, "invalid": False, "share": False, "tracking": False})
    return shown


# -- /accstatz ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccstatzQuery:
    """The options of one ``/accstatz`` request: ``unused`` lists idle accounts too."""

    unused: bool = False

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> AccstatzQuery:
        """Decode query parameters like nats-server's ``HandleAccountStatz``.

        Raises:
            QueryError: ``unused`` is not a Go boolean.
        """
        return cls(unused=parse_bool(params, "unused"))


def accstatz(server: Server, query: AccstatzQuery | None = None, *,
             now_ns: int | None = None) -> JSONObject:
    """Per-account statistics, as nats-server's ``/accstatz``.

    Accounts without a connection are listed only with ``unused``.

    Args:
        server: The server.
        query: Decoded query parameters (defaults when None).
        now_ns: The current time in nanoseconds since the epoch; now when None.

    Returns:
        ``{server_id, now, account_statz: [...]}``.
    """
    q = query or AccstatzQuery()
    now_ns = time.time_ns() if now_ns is None else now_ns
    stats = []
    for name in server_accounts(server):
        sessions = account_sessions(server.clients.values(), name)
        if sessions or q.unused:
            stats.append(_account_stat(server, name, sessions))
    return {"server_id": server.server_id, "now": rfc3339(now_ns), "account_statz": stats}


def _account_stat(server: Server, name: str, sessions: list[ClientSession]) -> JSONObject:
    totals = client_traffic(server, name)
    return {
        "acc": name, "name": name, "conns": len(sessions), "leafnodes": 0,
        "total_conns": len(sessions),
        "num_subscriptions": sum(len(session.subs) for session in sessions),
        "sent": _data_stats(totals.out_msgs, totals.out_bytes),
        "received": _data_stats(totals.in_msgs, totals.in_bytes),
        "slow_consumers": server.stats.slow_consumers if name == GLOBAL_ACCOUNT else 0,
    }


def _data_stats(msgs: int, size: int) -> JSONObject:
    none = {"msgs": 0, "bytes": 0}
    return {"msgs": msgs, "bytes": size, "gateways": dict(none), "routes": dict(none),
            "leafs": dict(none)}


__all__ = [
    "GLOBAL_ACCOUNT", "SYSTEM_ACCOUNT", "AccountzQuery", "AccstatzQuery", "account_claims",
    "account_detail", "account_names", "account_of", "account_sessions", "accountz",
    "accstatz", "client_traffic", "index_stats", "server_accounts", "sublist_stats",
    "system_account_name",
]
