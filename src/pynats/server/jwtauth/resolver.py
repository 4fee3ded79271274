"""Operator mode's trust: who may sign accounts, and where account JWTs come from.

Theory of operation
-------------------
:class:`Trust` holds the trusted operators (decoded operator JWTs) and the keys that may
sign account JWTs: each operator's own key (unless it asks for strict signing key usage)
and its signing keys, or the ``trusted_keys`` given instead of operator JWTs.

:class:`MemoryResolver` is the ``MEMORY`` account resolver: the account JWTs of
``resolver_preload``, by account public key. :class:`Directory` is what nats-server
calls registered accounts: an account is looked up the first time a user of it logs in
(or at start-up, for the system account), its JWT fetched from the resolver and
verified (``verifyAccountClaims``: it decodes, its issuer is trusted, it is valid now,
it is the account asked for); from then on the verified claims are reused. An account
whose JWT has expired since is fetched again, and kept (expired) when that fails.

Lookups record nats-server's log lines as :class:`~pynats.server.jwtauth.notes.Note`
values (``Account [A...] fetch took 1.5µs``, ``Account fetch failed: account missing``,
``Updating account claims: A.../name``) and raise :class:`LookupFailed` with the error
text nats-server reports to the client's debug log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pynats import nkeys
from pynats.nkeys import Prefix
from pynats.server.gotext import go_duration
from pynats.server.jwtauth.checks import account_issues, self_signed_warning
from pynats.server.jwtauth.claims import AccountClaims, JwtError, OperatorClaims, decode_account
from pynats.server.jwtauth.notes import Notes

#: nats-server's errors for an account that cannot be used.
ACCOUNT_MISSING = "account missing"
ACCOUNT_VALIDATION = "account validation failed"
INVALID_ACCOUNT_KEY = "will only fetch valid account keys"


class LookupFailed(Exception):
    """An account that cannot be looked up; the message is nats-server's error."""


@dataclass(frozen=True, slots=True)
class Trust:
    """The operators and keys trusted to sign account JWTs."""

    operators: tuple[OperatorClaims, ...] = ()
    keys: frozenset[str] = frozenset()
    #: Signing keys of operators with ``strict_signing_key_usage``: accounts they sign
    #: may not sign users with their own key.
    strict: frozenset[str] = frozenset()

    @classmethod
    def build(cls, operators: Iterable[OperatorClaims], trusted_keys: Iterable[str] = ()
              ) -> Trust:
        """The trust of these operators (or, without operators, of ``trusted_keys``)."""
        ops = tuple(operators)
        keys = set(trusted_keys)
        strict: set[str] = set()
        for op in ops:
            if not op.strict_signing_key_usage:
                keys.add(op.subject)
            else:
                strict.update(op.signing_keys)
            keys.update(op.signing_keys)
        return cls(ops, frozenset(keys), frozenset(strict))

    def trusts(self, issuer: str) -> bool:
        """Whether ``issuer`` may sign account JWTs (``isTrustedIssuer``)."""
        return issuer in self.keys


class MemoryResolver:
    """The ``MEMORY`` resolver: account JWTs by account public key (the preloads).

    Args:
        preload: ``(account public key, account JWT)`` pairs.
    """

    def __init__(self, preload: Iterable[tuple[str, str]] = ()):
        self._jwts = dict(preload)

    def fetch(self, name: str) -> str:
        """The JWT stored for ``name``.

        Raises:
            LookupFailed: ``name`` is not an account key, or has no JWT.
        """
        if not nkeys.is_valid_public_key(name, Prefix.ACCOUNT):
            raise LookupFailed(INVALID_ACCOUNT_KEY)
        found = self._jwts.get(name)
        if found is None:
            raise LookupFailed(ACCOUNT_MISSING)
        return found


@dataclass(slots=True)
class Registered:
    """An account looked up and verified: its claims and when they were taken."""

    claims: AccountClaims
    updated: float

    def expired(self, now: float) -> bool:
        """Whether the account JWT has expired (``exp`` at or before ``now``)."""
        return 0 < self.claims.expires <= now


class Directory:
    """The accounts looked up so far, by public key (nats-server's registered accounts).

    Args:
        trust: Who may sign account JWTs.
        resolver: Where account JWTs come from.
        clock: Wall-clock seconds (tests move it).
    """

    def __init__(self, trust: Trust, resolver: MemoryResolver,
                 clock: Callable[[], float] = time.time):
        self.trust = trust
        self.resolver = resolver
        self.clock = clock
        self.accounts: dict[str, Registered] = {}

    def lookup(self, name: str, notes: Notes) -> Registered:
        """The account ``name``, looked up and verified on first use.

        Raises:
            LookupFailed: with nats-server's reason.
        """
        found = self.accounts.get(name)
        if found is not None:
            if found.expired(self.clock()):
                notes.debug(f"Requested account [{name}] has expired", client=False)
                self._refresh(name, found)
            return found
        claims = self.fetch(name, notes)
        notes.debug(f"Updating account claims: {name}/{claims.name}", client=False)
        registered = Registered(claims, self.clock())
        self.accounts[name] = registered
        return registered

    def fetch(self, name: str, notes: Notes) -> AccountClaims:
        """Fetch and verify ``name``'s JWT (``fetchAccountClaims``), registering nothing.

        Raises:
            LookupFailed: with nats-server's reason.
        """
        started = time.perf_counter()
        try:
            token = self.resolver.fetch(name)
        except LookupFailed as exc:
            self._took(name, started, notes)
            notes.warn(f"Account fetch failed: {exc}", client=False)
            raise
        self._took(name, started, notes)
        claims = self.verify(token)
        if claims.subject != name:
            raise LookupFailed(ACCOUNT_VALIDATION)
        return claims

    def verify(self, token: str) -> AccountClaims:
        """An account JWT that decodes, is signed by a trusted key and is valid now.

        Raises:
            LookupFailed: the decode error, or ``account validation failed``.
        """
        try:
            claims = decode_account(token)
        except JwtError as exc:
            raise LookupFailed(str(exc)) from None
        if not self.trust.trusts(claims.issuer) or account_issues(claims, int(self.clock())):
            raise LookupFailed(ACCOUNT_VALIDATION)
        return claims

    def strict(self, account: AccountClaims) -> bool:
        """Whether ``account``'s own key may not sign users (strict signing keys)."""
        return account.issuer in self.trust.strict

    def _refresh(self, name: str, found: Registered) -> None:
        try:
            claims = self.fetch(name, Notes())
        except LookupFailed:
            return
        found.claims, found.updated = claims, self.clock()

    @staticmethod
    def _took(name: str, started: float, notes: Notes) -> None:
        elapsed = round((time.perf_counter() - started) * 1e9)
        notes.debug(f"Account [{name}] fetch took {go_duration(max(elapsed, 1))}",
                    client=False)


def preload_notices(preload: Mapping[str, str], now: int) -> list[tuple[str, str]]:
    """nats-server's start-up report on the preloaded account JWTs (``level, text``).

    A JWT that does not decode is an error; one with problems (expired...) a warning
    followed by each problem.
    """
    lines: list[tuple[str, str]] = []
    for name, token in preload.items():
        try:
            claims = decode_account(token)
        except JwtError:
            lines.append(("error", f"Preloaded account [{name}] not valid"))
            continue
        issues = account_issues(claims, now)
        if issues:
            lines.append(("warn", f"Account [{name}] has validation issues:"))
            lines += [("warn", f"  - {issue}") for issue in (*issues,
                                                             *self_signed_warning(claims))]
    return lines


__all__ = [
    "ACCOUNT_MISSING", "ACCOUNT_VALIDATION", "INVALID_ACCOUNT_KEY", "Directory",
    "LookupFailed", "MemoryResolver", "Registered", "Trust", "preload_notices",
]
