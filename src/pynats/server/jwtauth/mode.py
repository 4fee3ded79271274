"""Operator mode as one object: built from the options, asked to log clients in.

Theory of operation
-------------------
The :class:`~pynats.server.auth.Authenticator` of a server in operator mode holds one
:class:`OperatorMode`. It owns the account :class:`~pynats.server.jwtauth.resolver.Directory`
(the system account is looked up at once, as nats-server does at start-up; its failure
was reported by the start-up checks already) and decides each JWT login with
:func:`~pynats.server.jwtauth.login.jwt_login`. It also gives the lines nats-server logs
at start-up in operator mode: the ``Trusted Operators`` block and the problems of the
preloaded account JWTs.
"""

from __future__ import annotations

import contextlib
import datetime
import time
from collections.abc import Callable

from pynats.server.config.options import ServerOptions
from pynats.server.gotext import go_quote
from pynats.server.jwtauth.claims import OperatorClaims
from pynats.server.jwtauth.config import directory
from pynats.server.jwtauth.login import JwtRequest, JwtVerdict, ServerLimits, jwt_login
from pynats.server.jwtauth.notes import Notes
from pynats.server.jwtauth.resolver import LookupFailed, Registered, preload_notices


class OperatorMode:
    """The operator mode of one set of options.

    Args:
        options: The server options (``operators``, ``trusted_keys``, ``resolver_*``,
            ``system_account``, the limits).
        clock: Wall-clock seconds.
    """

    def __init__(self, options: ServerOptions, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.directory = directory(options)
        self.directory.clock = clock
        self.limits = ServerLimits(options.max_payload, options.max_subscriptions)
        pinned = set(options.resolver_pinned_accounts)
        self.system_account = "" if options.no_system_account else options.system_account
        if pinned and self.system_account:
            pinned.add(self.system_account)  # the operator's system account always may
        self.pinned = frozenset(pinned)
        self._preload = dict(options.resolver_preload)
        if self.system_account:  # a failure was refused before start-up already
            with contextlib.suppress(LookupFailed):
                self.directory.lookup(self.system_account, Notes())

    @property
    def operators(self) -> tuple[OperatorClaims, ...]:
        """The trusted operators' claims (none with ``trusted_keys`` only)."""
        return self.directory.trust.operators

    def login(self, request: JwtRequest, clients_in: Callable[[str], int]) -> JwtVerdict:
        """Decide a JWT login (:func:`~pynats.server.jwtauth.login.jwt_login`)."""
        return jwt_login(self.directory, request, limits=self.limits, clients_in=clients_in,
                         pinned=self.pinned, clock=self.clock)

    def account(self, name: str) -> Registered | None:
        """An account already looked up (None if it was not)."""
        return self.directory.accounts.get(name)

    def startup_notices(self) -> list[tuple[str, str]]:
        """``(level, line)`` nats-server logs at start-up: operators, preload problems."""
        lines: list[tuple[str, str]] = []
        if self.operators:
            lines.append(("notice", "Trusted Operators"))
        for op in self.operators:
            lines += [("notice", f"  System  : {go_quote(op.audience)}"),
                      ("notice", f"  Operator: {go_quote(op.name)}"),
                      ("notice", f"  Issued  : {_go_time(op.issued_at)}"),
                      ("notice", "  Expires : " + (_go_time(op.expires) if op.expires
                                                     else "Never"))]
        if self.operators and not self.system_account:
            lines.append(("warn", "Trusted Operators should utilize a System Account"))
        return lines + preload_notices(self._preload, int(self.clock()))


def _go_time(unix: int) -> str:
    """Go's ``time.Unix(unix, 0).String()`` in the local zone."""
    moment = datetime.datetime.fromtimestamp(unix).astimezone()
    return f"{moment:%Y-%m-%d %H:%M:%S %z} {moment.tzname()}"


__all__ = ["OperatorMode"]
