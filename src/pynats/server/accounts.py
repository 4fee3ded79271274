"""Accounts: isolated subject spaces, and the stream imports that join them.

Theory of operation
-------------------
Every client belongs to one account. An :class:`Account` owns a subscription index, a
router over it and the delivery filter of its clients' deny lists, so a client bound to
account A (at CONNECT, from its user's ``account``) subscribes into A's index and
publishes through A's router: it can never reach another account's subscribers. The
server always has ``$G`` (clients without an account), the system account (``$SYS``
unless configured otherwise or disabled; empty, as pynats serves no system services)
and one account per entry of the ``accounts`` block.

Every router shares one ``dirty`` list (connections with output queued in the current
read batch), so whoever read the batch flushes every receiver once, whatever account
they are in.

Stream imports are wired on the exporting side: when account B imports ``subject`` from
A (and A exports a stream covering it to B), A's router gets a :class:`StreamBridge`
to B's router with B's prefix. A publish in A is delivered in A as usual, then once more
in B under ``<prefix>.<subject>`` for every bridge whose subject it matches. Only
routers with bridges take that path (see ``Router.set_bridges``); one hop only, so
import cycles cannot loop. Imports of subjects that are not exported to the importer
are ignored.

:func:`sync_accounts` (start-up and reload) keeps the Account objects of names that
still exist, so bound clients keep their index, adds new ones and rewires the bridges.

In operator mode accounts are not configured but looked up: the first JWT login of an
account registers it (:func:`bind_account`), named by its public key and tagged with
the name in its JWT, and it stays (reloads keep it) as in nats-server.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Final

from pynats.server.config.imports import exports_allow
from pynats.server.config.options import Export, Import, ServerOptions
from pynats.server.permissions import DeliveryFilter
from pynats.server.router import Router, StreamBridge
from pynats.server.services import ServiceImport
from pynats.server.sublist import SubjectIndex
from pynats.server.subscription import RemoteSubscription, Subscription
from pynats.server.transform import TransformError, compile_import

if TYPE_CHECKING:
    from pynats.server.connection import Connection
    from pynats.server.jwtauth.claims import AccountClaims

#: The account of clients that have none.
GLOBAL_ACCOUNT: Final = "$G"
#: The system account nats-server creates unless another is named or it is disabled.
SYSTEM_ACCOUNT: Final = "$SYS"


class Account:
    """One account at run time: its subscription indexes, router and delivery filter.

    ``index`` holds the subscriptions of this server's clients; ``remote`` the interest
    peer servers declared on routes (empty without clustering).

    Args:
        name: The account's name.
        dirty: The list of connections with pending output, shared by every router.
        cache: Whether the index caches match results.
    """

    def __init__(self, name: str, dirty: list[Connection], cache: bool = True):
        self.name = name
        self.index: SubjectIndex[Subscription] = SubjectIndex(cache=cache)
        self.remote: SubjectIndex[RemoteSubscription] = SubjectIndex(cache=cache)
        self.router = Router(self.index, dirty, remote=self.remote, account=name)
        self.delivery_filter = DeliveryFilter(self.index)
        #: The account JWT in operator mode (None for configured accounts).
        self.claims: AccountClaims | None = None
        #: When the claims were taken (wall clock), for ``/accountz``.
        self.updated = 0.0

    @property
    def name_tag(self) -> str:
        """The name in the account JWT ("" without one)."""
        return self.claims.name if self.claims is not None else ""

    @property
    def trace_label(self) -> str:
        """How log prefixes name the account: ``A.../name`` with a JWT name, else its name."""
        return f"{self.name}/{self.name_tag}" if self.name_tag else self.name

    def __repr__(self) -> str:
        return f"Account({self.name!r})"


def account_names(options: ServerOptions) -> list[str]:
    """Every account name: the system account (if any), ``$G``, then the configured."""
    system = "" if options.no_system_account else options.system_account or SYSTEM_ACCOUNT
    names = [system, GLOBAL_ACCOUNT, *(account.name for account in options.accounts)]
    return [name for name in dict.fromkeys(names) if name]


def sync_accounts(options: ServerOptions, current: dict[str, Account], dirty: list[Connection],
                  cache: bool = True) -> dict[str, Account]:
    """The accounts ``options`` configure, reusing those of ``current`` by name.

    The stream bridges of every account are rebuilt from the imports and exports.
    """
    accounts = {name: current.get(name) or Account(name, dirty, cache)
                for name in account_names(options)}
    if options.operator_mode:  # accounts looked up so far stay registered
        accounts.update((name, account) for name, account in current.items()
                        if account.claims is not None and name not in accounts)
    bridges: dict[str, list[StreamBridge]] = {name: [] for name in accounts}
    services: dict[str, list[ServiceImport]] = {name: [] for name in accounts}
    exports = {account.name: account.exports for account in options.accounts}
    for account in options.accounts:
        for imp in account.imports:
            export = _export_for(exports.get(imp.account, ()), imp, account.name)
            if export is None or imp.account not in accounts:
                continue
            if imp.kind == "stream":
                bridges[imp.account].append(_bridge(imp, accounts[account.name].router))
            else:
                service = _service(imp, export, accounts[imp.account].router)
                if service is not None:
                    services[account.name].append(service)
    exporters = {service.exporter for found in services.values() for service in found}
    for name, account_ in accounts.items():
        router = account_.router
        router.set_bridges(bridges[name])
        router.set_services(services[name], exported=router in exporters)
    return accounts


def bind_account(accounts: dict[str, Account], name: str, dirty: list[Connection],
                 claims: AccountClaims | None = None, cache: bool = True) -> Account:
    """The account ``name``, registered first if needed (operator mode's lookups).

    Args:
        accounts: The server's accounts, by name; a new one is added to it.
        name: The account's name (an account public key in operator mode).
        dirty: The shared list of connections with pending output.
        claims: The account's JWT claims, recorded on the account.
        cache: Whether a new account's index caches match results.
    """
    account = accounts.get(name)
    if account is None:
        account = accounts[name] = Account(name, dirty, cache)
    if claims is not None and account.claims is not claims:
        account.claims, account.updated = claims, time.time()
    return account


def _export_for(exports: Iterable[Export], imp: Import, importer: str) -> Export | None:
    """The first of ``exports`` that lets ``importer`` import ``imp``, if any."""
    return next((exp for exp in exports if exports_allow((exp,), imp, importer)), None)


def _service(imp: Import, export: Export, exporter: Router) -> ServiceImport | None:
    """The router's view of a service import (None if its subjects cannot be mapped)."""
    try:
        transform = compile_import(imp.to or imp.subject, imp.subject)
    except TransformError:  # refused when the configuration is loaded
        return None
    return ServiceImport(transform, exporter, export.response_type == "Singleton",
                         export.response_threshold, imp.share)


def _bridge(imp: Import, target: Router) -> StreamBridge:
    prefix = imp.prefix.encode()
    if prefix and not prefix.endswith(b"."):
        prefix += b"."
    return StreamBridge(imp.subject.encode(), prefix, target)


__all__ = ["GLOBAL_ACCOUNT", "SYSTEM_ACCOUNT", "Account", "account_names", "bind_account",
           "sync_accounts"]
