"""The login of a client that presents a user JWT, step by step as nats-server checks it.

Theory of operation
-------------------
:func:`jwt_login` is the JWT branch of nats-server's
``processClientOrLeafAuthentication``; the first failing step refuses the client, and
each step records the debug line nats-server writes for it:

1. a user JWT was sent and decodes (nats-server 2.15 reports a JWT that does not
   decode as ``Authentication requires a user JWT``, like a missing one);
2. it is valid now (``User JWT no longer valid: &{Issues:[claim is expired]}``);
3. its connection types allow a standard client;
4. its account (``issuer_account`` when a signing key issued it, else ``iss``) is
   pinned (with ``resolver_pinned_accounts``), looks up, and is trusted;
5. its issuer is the account or one of the account's signing keys; a scoped signing
   key's user carries no permissions or limits of its own and gets the key's template;
6. the account has not expired and allows bearer tokens if this is one;
7. ``sig`` is the user key's signature of the INFO nonce (not for bearer tokens);
8. the user is not revoked (``revocations``: issued at or before the time listed for
   its key, or for ``*``);
9. the client's address is in ``src`` and the clock in ``times`` (errors, not debug).

A login then gets its permissions (its own, else the account's
``default_permissions``), its limits (the smaller of the user's, the account's and the
server's ``max_payload``/``max_subscriptions``; ``-1`` is unlimited, so a JWT without
limits allows no subscription) and the account's connection limit is checked against
the clients already in the account. The result is a :class:`JwtVerdict`: the
:class:`JwtUser` (or None) and the log lines, in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import NoReturn

from pynats import nkeys
from pynats.server.config.options import Permissions
from pynats.server.gotext import go_quote
from pynats.server.jwtauth.checks import (
    connect_window,
    expand_template,
    src_allows,
    to_permissions,
    user_issues,
)
from pynats.server.jwtauth.claims import (
    NO_LIMIT,
    AccountClaims,
    JwtError,
    JwtPermissions,
    UserClaims,
    UserLimits,
    decode_user,
)
from pynats.server.jwtauth.notes import Note, Notes
from pynats.server.jwtauth.resolver import Directory, LookupFailed

#: The connection types a JWT may list (``allowed_connection_types``).
CONNECTION_TYPES = frozenset({"STANDARD", "WEBSOCKET", "LEAFNODE", "LEAFNODE_WS", "MQTT",
                              "MQTT_WS", "IN_PROCESS"})
#: nats-server's error for an account at its connection limit.
TOO_MANY_ACCOUNT_CONNECTIONS = "maximum account active connections exceeded"


@dataclass(frozen=True, slots=True)
class JwtRequest:
    """What a JWT login is decided on.

    Attributes:
        jwt: CONNECT ``jwt``.
        sig: CONNECT ``sig``.
        nonce: The nonce of this connection's INFO.
        host: The client's address (for ``src``).
        conn_type: The kind of connection (``STANDARD`` on the client port).
    """

    jwt: str
    sig: str
    nonce: str
    host: str
    conn_type: str = "STANDARD"


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The server's own limits (``max_payload``, ``max_subscriptions``; 0 unlimited)."""

    max_payload: int = 0
    max_subscriptions: int = 0


@dataclass(frozen=True, slots=True)
class JwtUser:
    """A user logged in by JWT."""

    claims: UserClaims
    account: AccountClaims
    permissions: Permissions | None
    #: The key that signed the user JWT when it is a signing key ("" for the account).
    signing_key: str
    #: Subscriptions and payload bytes allowed (``-1``: no limit).
    max_subs: int
    max_payload: int
    #: Seconds left in the ``times`` window at login (0: no window).
    valid_for: float = 0.0

    @property
    def public_key(self) -> str:
        """The user's public key (the JWT's ``sub``)."""
        return self.claims.subject

    @property
    def account_name(self) -> str:
        """The account's public key: the client's account name."""
        return self.account.subject

    def user_expiry(self, now: float) -> float | None:
        """Seconds until the user's login ends (``setExpiration``); None if never.

        Whole seconds, as nats-server counts from ``exp`` and the Unix second of now.
        """
        if not self.claims.expires:
            return self.valid_for or None
        left = float(max(self.claims.expires - int(now), 0))
        return self.valid_for if self.valid_for and self.valid_for < left else left

    def account_expiry(self, now: float) -> float | None:
        """Seconds until the account JWT expires; None if it does not."""
        if not self.account.expires:
            return None
        return float(max(self.account.expires - int(now), 0))


@dataclass(frozen=True, slots=True)
class JwtVerdict:
    """The outcome of a JWT login: the user (None when refused) and the log lines."""

    user: JwtUser | None
    notes: tuple[Note, ...]
    #: Refused because the account is at its connection limit (not an auth violation).
    account_full: bool = False


class _Refused(Exception):
    """A step refused the login (its log line is already recorded)."""


def jwt_login(directory: Directory, request: JwtRequest, *, limits: ServerLimits,
              clients_in: Callable[[str], int], pinned: Collection[str] = (),
              clock: Callable[[], float] = time.time) -> JwtVerdict:
    """Decide a JWT login (see the module docstring for the steps).

    Args:
        directory: The accounts and their resolver.
        request: The client's JWT, signature and context.
        limits: The server's own limits.
        clients_in: How many clients an account (by public key) has now.
        pinned: ``resolver_pinned_accounts`` (empty: any account).
        clock: Wall-clock seconds.
    """
    notes = Notes()
    try:
        user = _login(directory, request, notes, limits, pinned, clock)
    except _Refused:
        return JwtVerdict(None, tuple(notes.items))
    account = user.account_name
    conn = user.account.limits.conn
    if conn != NO_LIMIT and clients_in(account) >= conn:
        notes.error(TOO_MANY_ACCOUNT_CONNECTIONS)
        return JwtVerdict(None, tuple(notes.items), account_full=True)
    notes.debug(_authenticated(user))
    return JwtVerdict(user, tuple(notes.items))


def _login(directory: Directory, request: JwtRequest, notes: Notes, limits: ServerLimits,
           pinned: Collection[str], clock: Callable[[], float]) -> JwtUser:
    claims = _decoded(request.jwt, notes, int(clock()))
    _check_connection_type(claims.allowed_connection_types, request.conn_type, notes)
    issuer = claims.issuer_account or claims.issuer
    if pinned and issuer not in pinned:
        _refuse(notes, f"Account {issuer} not listed as operator pinned account")
    try:
        registered = directory.lookup(issuer, notes)
    except LookupFailed as exc:
        _refuse(notes, f"Account JWT lookup error: {exc}")
    account = registered.claims
    if not directory.trust.trusts(account.issuer):
        _refuse(notes, "Account JWT not signed by trusted operator")
    perms, user_limits, bearer = _scoped(claims, account, directory.strict(account), notes)
    if registered.expired(clock()):
        _refuse(notes, "Account JWT has expired")
    if bearer and account.limits.disallow_bearer:
        _refuse(notes, "Account does not allow bearer token")
    if not bearer:
        _check_signature(claims.subject, request, notes)
    if _revoked(account, claims):
        _refuse(notes, "User authentication revoked")
    valid_for = _check_where_and_when(user_limits, request.host, notes)
    max_subs, max_payload = _limits(user_limits, account, limits, notes)
    permissions = to_permissions(perms) or to_permissions(account.default_permissions)
    signing_key = claims.issuer if claims.issuer_account else ""
    return JwtUser(claims, account, permissions, signing_key, max_subs, max_payload,
                   valid_for)


def _refuse(notes: Notes, text: str, level: str = "debug") -> NoReturn:
    (notes.error if level == "error" else notes.debug)(text)
    raise _Refused


def _decoded(token: str, notes: Notes, now: int) -> UserClaims:
    if not token:
        _refuse(notes, "Authentication requires a user JWT")
    try:
        claims = decode_user(token)
    except JwtError:
        _refuse(notes, "Authentication requires a user JWT")
    issues = user_issues(claims, now)
    if issues:
        _refuse(notes, f"User JWT no longer valid: &{{Issues:[{' '.join(issues)}]}}")
    return claims


def _check_connection_type(types: tuple[str, ...], conn_type: str, notes: Notes) -> None:
    """``allowed_connection_types``: unknown ones are ignored unless all are unknown."""
    wanted = [kind.upper() for kind in types]
    allowed = {kind for kind in wanted if kind in CONNECTION_TYPES}
    unknown = [kind for kind in wanted if kind not in CONNECTION_TYPES]
    if unknown:
        notes.debug("invalid connection types [" + " ".join(map(go_quote, unknown)) + "]")
        if not allowed:
            raise _Refused
    if allowed and conn_type not in allowed:
        _refuse(notes, "Connection type not allowed")


def _scoped(claims: UserClaims, account: AccountClaims, strict: bool, notes: Notes) -> tuple[
        JwtPermissions, UserLimits, bool]:
    """The permissions, limits and bearer flag in force: the user's, or its scope's."""
    signers = dict(account.signing_keys)
    if not strict:
        signers.setdefault(account.subject, None)
    if claims.issuer not in signers:
        _refuse(notes, "User JWT issuer is not known")
    scope = signers[claims.issuer]
    if scope is None:
        return claims.permissions, claims.limits, claims.bearer_token
    if not _scope_free(claims):
        _refuse(notes, "User JWT is not valid: scoped users require no permissions or "
                       "limits set")
    try:
        perms = expand_template(scope.permissions, claims, account)
    except ValueError:
        _refuse(notes, "User JWT generated invalid permissions")
    return perms, scope.limits, scope.bearer_token


def _scope_free(claims: UserClaims) -> bool:
    """A scoped signer's user must set no permissions, limits or connection types."""
    return (claims.permissions.empty and claims.limits.empty and not claims.bearer_token
            and not claims.allowed_connection_types)


def _check_signature(subject: str, request: JwtRequest, notes: Notes) -> None:
    if not request.sig:
        _refuse(notes, "Signature missing")
    sig = nkeys.decode_signature(request.sig)
    if sig is None:
        _refuse(notes, "Signature not valid base64")
    try:
        nkeys.decode_public_key(subject)
    except nkeys.NkeyError as exc:
        _refuse(notes, f"User nkey not valid: nkeys: {exc}")
    if not nkeys.verify(subject, request.nonce.encode(), sig):
        _refuse(notes, "Signature not verified")


def _revoked(account: AccountClaims, claims: UserClaims) -> bool:
    """Listed for its key (or ``*``) at or after the time the JWT was issued."""
    revocations = account.revocations
    return any(key in revocations and revocations[key] >= claims.issued_at
               for key in (claims.subject, "*"))


def _check_where_and_when(limits: UserLimits, host: str, notes: Notes) -> float:
    if not src_allows(limits.src, host):
        _refuse(notes, f"Bad src Ip {host}", "error")
    allowed, valid_for = connect_window(limits)
    if not allowed:
        _refuse(notes, "Outside connect times", "error")
    return valid_for


def _limits(user: UserLimits, account: AccountClaims, server: ServerLimits,
            notes: Notes) -> tuple[int, int]:
    """``applyAccountLimits``: the smallest of user, account and server limits."""
    payload = _smaller(user.payload, account.limits.payload)
    subs = _smaller(user.subs, account.limits.subs)
    server_payload = server.max_payload or NO_LIMIT
    server_subs = server.max_subscriptions or NO_LIMIT
    capped = _smaller(payload, server_payload)
    if capped != payload and payload != NO_LIMIT:
        notes.error(f"Max Payload set to {server.max_payload} from server overrides account "
                    "or user config")
    capped_subs = _smaller(subs, server_subs)
    if capped_subs != subs and subs != NO_LIMIT:
        notes.error(f"Max Subscriptions set to {server.max_subscriptions} from server "
                    "overrides account or user config")
    return capped_subs, capped


def _smaller(value: int, limit: int) -> int:
    """nats-server's ``minLimit``: ``-1`` is no limit."""
    if value == NO_LIMIT:
        return limit
    if limit == NO_LIMIT:
        return value
    return min(value, limit)


def _authenticated(user: JwtUser) -> str:
    claims, account = user.claims, user.account
    return (f"Authenticated JWT: Client {go_quote(claims.subject)} (claim-name: "
            f"{go_quote(claims.name)}, claim-tags: {_tags(claims.tags)}) signed with "
            f"{go_quote(claims.issuer)} by Account {go_quote(account.subject)} (claim-name: "
            f"{go_quote(account.name)}, claim-tags: {_tags(account.tags)}) signed with "
            f"{go_quote(account.issuer)} has mappings false accused 0x{id(account):x}")


def _tags(tags: tuple[str, ...]) -> str:
    """Go's ``%q`` of a string slice: ``["a" "b"]``."""
    return "[" + " ".join(go_quote(tag) for tag in tags) + "]"


__all__ = [
    "CONNECTION_TYPES", "TOO_MANY_ACCOUNT_CONNECTIONS", "JwtRequest", "JwtUser",
    "JwtVerdict", "ServerLimits", "jwt_login",
]
