"""NATS JWT claims (operator, account, user), decoded as the ``nats-io/jwt`` v2 library does.

Theory of operation
-------------------
A NATS JWT is ``header.claims.signature``, each part base64 URL-safe without padding
(line breaks inside are skipped, as Go's decoder does). :func:`decode` checks, in the Go
library's order (``jwt.Decode``):

1. three chunks; a header whose ``typ`` is ``JWT`` (any case) and whose ``alg`` is
   ``ed25519`` or ``ed25519-nkey`` (any case; ``none`` and everything else refused);
2. the claims: a JSON object. Version 1 claims carry a top-level ``type``; version 2
   ones carry ``nats.type`` and ``nats.version`` (a version above 2, or a known kind
   without a version, is refused). The kind must be the one asked for;
3. the signature, by the ``iss`` key: version 2 signs ``header.claims``, version 1
   only the claims chunk;
4. the issuer's role: a user JWT is issued by an account key, an account JWT by an
   operator (or an account), an operator JWT by an operator key.

Only then are the typed claims built (:class:`UserClaims`, :class:`AccountClaims`,
:class:`OperatorClaims`), each with the fields the server uses. Version 1 documents
keep some fields at the top level (``issuer_account``, ``tags``): they are read from
where version 1 puts them. JSON keys match as Go's decoder matches struct fields: the
exact spelling first, else case-insensitively; a value of the wrong JSON type fails the
decode, ``null`` leaves the zero value.

Nothing here checks time or trust: :mod:`pynats.server.jwtauth.checks` validates the
claims (expiry, subjects...), :mod:`pynats.server.jwtauth.resolver` decides whom to
trust. Failures raise :class:`JwtError` with a message close to the Go library's (the
only place nats-server prints it is an operator JWT that fails to load).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from pynats import nkeys
from pynats.nkeys import Prefix

#: The JWT kinds a NATS server reads.
USER: Final = "user"
ACCOUNT: Final = "account"
OPERATOR: Final = "operator"
#: The highest claims version the library reads.
LIB_VERSION: Final = 2
#: ``-1`` in a limit means "no limit".
NO_LIMIT: Final = -1

_ALGORITHMS: Final = ("ed25519", "ed25519-nkey")
_ISSUERS: Final = {USER: (Prefix.ACCOUNT,), ACCOUNT: (Prefix.ACCOUNT, Prefix.OPERATOR),
                   OPERATOR: (Prefix.OPERATOR,)}
_KNOWN_KINDS: Final = frozenset({USER, ACCOUNT, OPERATOR, "activation", "authorization"})
_GO_JSON: Final = {bool: "bool", int: "number", float: "number", str: "string",
                   list: "array", dict: "object"}

T = TypeVar("T")


class JwtError(Exception):
    """A JWT that does not decode; the message follows the Go library's."""


# -- typed claims -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Permission:
    """One direction of JWT permissions: ``allow`` and ``deny`` subject lists."""

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        """Neither list has an entry (nats-server then sets no permission)."""
        return not self.allow and not self.deny


@dataclass(frozen=True, slots=True)
class ResponseLimit:
    """``resp``: answers allowed to received requests (``ttl`` in seconds)."""

    max_msgs: int = 0
    ttl: float = 0.0


@dataclass(frozen=True, slots=True)
class JwtPermissions:
    """``pub``, ``sub`` and ``resp`` of a user JWT or an account's default permissions."""

    pub: Permission = field(default_factory=Permission)
    sub: Permission = field(default_factory=Permission)
    resp: ResponseLimit | None = None

    @property
    def empty(self) -> bool:
        """No permission at all (nats-server then applies the account's defaults)."""
        return self.pub.empty and self.sub.empty and self.resp is None


@dataclass(frozen=True, slots=True)
class UserLimits:
    """A user's (or a scoped signing key template's) limits; ``-1`` is unlimited."""

    subs: int = 0
    data: int = 0
    payload: int = 0
    src: tuple[str, ...] = ()
    times: tuple[tuple[str, str], ...] = ()
    locale: str = ""

    @property
    def empty(self) -> bool:
        """Every limit zero and no ``src``/``times`` (what a scoped user must have)."""
        return self == UserLimits()


@dataclass(frozen=True, slots=True)
class UserScope:
    """A scoped signing key: users it signs get ``template`` instead of their own."""

    key: str
    role: str = ""
    permissions: JwtPermissions = field(default_factory=JwtPermissions)
    limits: UserLimits = field(default_factory=UserLimits)
    bearer_token: bool = False
    allowed_connection_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Claims:
    """What every NATS JWT has (``ClaimsData`` plus the generic fields)."""

    token: str = ""
    kind: str = ""
    version: int = 0
    subject: str = ""
    issuer: str = ""
    name: str = ""
    jti: str = ""
    audience: str = ""
    issued_at: int = 0
    expires: int = 0
    not_before: int = 0
    tags: tuple[str, ...] = ()
    #: The decoded claims object, as sent (``/accountz`` shows it).
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class UserClaims(Claims):
    """A user JWT: identity, permissions, limits."""

    permissions: JwtPermissions = field(default_factory=JwtPermissions)
    limits: UserLimits = field(default_factory=UserLimits)
    bearer_token: bool = False
    issuer_account: str = ""
    allowed_connection_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AccountLimits:
    """The limits the operator set on an account; ``-1`` is unlimited."""

    subs: int = 0
    data: int = 0
    payload: int = 0
    imports: int = 0
    exports: int = 0
    wildcards: bool = False
    disallow_bearer: bool = False
    conn: int = 0
    leaf: int = 0
    #: Any JetStream or tier limit set (only for the self-signed warning).
    has_other: bool = False

    @property
    def empty(self) -> bool:
        """No limit set at all (the Go library's ``IsEmpty``)."""
        return self == AccountLimits()


@dataclass(frozen=True, slots=True)
class AccountClaims(Claims):
    """An account JWT: limits, signing keys, revocations, default permissions."""

    limits: AccountLimits = field(default_factory=AccountLimits)
    #: Signing key -> its scope (``None`` for a plain signing key).
    signing_keys: Mapping[str, UserScope | None] = field(default_factory=dict)
    #: User public key (or ``*``) -> Unix time; JWTs issued at or before it are revoked.
    revocations: Mapping[str, int] = field(default_factory=dict)
    default_permissions: JwtPermissions = field(default_factory=JwtPermissions)


@dataclass(frozen=True, slots=True)
class OperatorClaims(Claims):
    """An operator JWT: its signing keys, system account and account server."""

    signing_keys: tuple[str, ...] = ()
    system_account: str = ""
    account_server_url: str = ""
    assert_server_version: str = ""
    strict_signing_key_usage: bool = False


# -- decoding -----------------------------------------------------------------------------

def decode_user(token: str) -> UserClaims:
    """A user JWT's claims (signature checked, not trust nor time).

    Raises:
        JwtError: not a valid NATS user JWT.
    """
    data, version = _verified(token, USER)
    nats = _object(data, "nats")
    carrier = data if version == 1 else nats
    if version == 1 and _get(nats, "max", int, NO_LIMIT) != NO_LIMIT:
        raise JwtError("jwtV1 user: deprecated Max/Times in jwtV2")
    return UserClaims(
        **_base(token, USER, version, data),
        permissions=_permissions(nats), limits=_user_limits(nats),
        bearer_token=_get(nats, "bearer_token", bool, False),
        issuer_account=_get(carrier, "issuer_account", str, ""),
        allowed_connection_types=_strings(nats, "allowed_connection_types"))


def decode_account(token: str) -> AccountClaims:
    """An account JWT's claims (signature checked, not trust nor time).

    Raises:
        JwtError: not a valid NATS account JWT.
    """
    data, version = _verified(token, ACCOUNT)
    nats = _object(data, "nats")
    return AccountClaims(
        **_base(token, ACCOUNT, version, data),
        limits=_account_limits(_object(nats, "limits")),
        signing_keys=_signing_keys(nats, version),
        revocations=_revocations(nats),
        default_permissions=_permissions(_object(nats, "default_permissions")))


def decode_operator(token: str) -> OperatorClaims:
    """An operator JWT's claims (self-signed: its signature is checked).

    Raises:
        JwtError: not a valid NATS operator JWT.
    """
    data, version = _verified(token, OPERATOR)
    nats = _object(data, "nats")
    return OperatorClaims(
        **_base(token, OPERATOR, version, data),
        signing_keys=_strings(nats, "signing_keys"),
        system_account=_get(nats, "system_account", str, ""),
        account_server_url=_get(nats, "account_server_url", str, ""),
        assert_server_version=_get(nats, "assert_server_version", str, ""),
        strict_signing_key_usage=_get(nats, "strict_signing_key_usage", bool, False))


def _verified(token: str, kind: str) -> tuple[dict[str, Any], int]:
    """The claims object and version of ``token``, checked as ``jwt.Decode`` does."""
    chunks = token.split(".")
    if len(chunks) != 3:
        raise JwtError("expected 3 chunks")
    _check_header(_json_object(_b64(chunks[0])))
    data = _json_object(_b64(chunks[1]))
    version, found = _identify(data)
    if version > LIB_VERSION:
        raise JwtError("JWT was generated by a newer version ")
    if found in _KNOWN_KINDS and version not in (1, 2):
        raise JwtError(f"library supports version {LIB_VERSION} or less - received {version}")
    sig = _b64(chunks[2])
    issuer = _get(data, "iss", str, "")
    whole = version > 1 and found in _KNOWN_KINDS  # version 1 signs the claims chunk only
    signed = token[:len(chunks[0]) + len(chunks[1]) + 1] if whole else chunks[1]
    if not nkeys.verify(issuer, signed.encode(), sig):
        raise JwtError(f"claim failed {'V2' if whole else 'V1'} signature verification")
    if found != kind:
        raise JwtError(f"not {kind} claim")
    if not any(nkeys.is_valid_public_key(issuer, prefix) for prefix in _ISSUERS[kind]):
        names = " ".join(prefix.name.lower() for prefix in _ISSUERS[kind])
        raise JwtError(f"unable to validate expected prefixes - [{names}]")
    return data, version


def _check_header(header: dict[str, Any]) -> None:
    kind = _get(header, "typ", str, "")
    alg = _get(header, "alg", str, "")
    if kind.upper() != "JWT":
        raise JwtError(f"not supported type {_quote(kind)}")
    if alg.lower() not in _ALGORITHMS:
        raise JwtError(f"unexpected {_quote(alg)} algorithm")


def _identify(data: dict[str, Any]) -> tuple[int, str]:
    """``(version, kind)``: a top-level ``type`` makes a version 1 document."""
    top = _get(data, "type", str, "")
    nats = _object(data, "nats")
    if top:
        return 1, top
    return _get(nats, "version", int, 0), _get(nats, "type", str, "")


def _base(token: str, kind: str, version: int, data: dict[str, Any]) -> dict[str, Any]:
    nats = _object(data, "nats")
    tags = _strings(data if version == 1 else nats, "tags")
    return {"token": token, "kind": kind, "version": version,
            "subject": _get(data, "sub", str, ""), "issuer": _get(data, "iss", str, ""),
            "name": _get(data, "name", str, ""), "jti": _get(data, "jti", str, ""),
            "audience": _get(data, "aud", str, ""), "issued_at": _get(data, "iat", int, 0),
            "expires": _get(data, "exp", int, 0), "not_before": _get(data, "nbf", int, 0),
            "tags": tags, "raw": data}


# -- parts ----------------------------------------------------------------------------------

def _permission(obj: Mapping[str, Any], key: str) -> Permission:
    part = _object(obj, key)
    return Permission(_strings(part, "allow"), _strings(part, "deny"))


def _permissions(obj: Mapping[str, Any]) -> JwtPermissions:
    resp = _get(obj, "resp", dict, None)
    limit = None if resp is None else ResponseLimit(
        _get(resp, "max", int, 0), _get(resp, "ttl", int, 0) / 1e9)
    return JwtPermissions(_permission(obj, "pub"), _permission(obj, "sub"), limit)


def _user_limits(obj: Mapping[str, Any], unset: int = 0) -> UserLimits:
    """A user's limits; ``unset`` stands for an absent count (a template's is ``-1``)."""
    times = []
    for item in _get(obj, "times", list, None) or ():
        if not isinstance(item, dict):
            raise _type_error("times", item, "TimeRange")
        times.append((_get(item, "start", str, ""), _get(item, "end", str, "")))
    return UserLimits(subs=_get(obj, "subs", int, unset), data=_get(obj, "data", int, unset),
                      payload=_get(obj, "payload", int, unset), src=_cidrs(obj),
                      times=tuple(times), locale=_get(obj, "times_location", str, ""))


def _cidrs(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """``src``: an array of CIDRs, or one comma-separated string (lower-cased)."""
    value = _lookup(obj, "src")
    if isinstance(value, str):
        return tuple(dict.fromkeys(part.strip().lower() for part in value.split(",")
                                   if part.strip()))
    return _strings(obj, "src")


def _account_limits(obj: Mapping[str, Any]) -> AccountLimits:
    known = {"subs", "data", "payload", "imports", "exports", "wildcards", "disallow_bearer",
             "conn", "leaf"}
    other = any(key.lower() not in known and value not in (0, False, None, {})
                for key, value in obj.items())
    return AccountLimits(
        subs=_get(obj, "subs", int, 0), data=_get(obj, "data", int, 0),
        payload=_get(obj, "payload", int, 0), imports=_get(obj, "imports", int, 0),
        exports=_get(obj, "exports", int, 0), wildcards=_get(obj, "wildcards", bool, False),
        disallow_bearer=_get(obj, "disallow_bearer", bool, False),
        conn=_get(obj, "conn", int, 0), leaf=_get(obj, "leaf", int, 0), has_other=other)


def _signing_keys(nats: Mapping[str, Any], version: int) -> dict[str, UserScope | None]:
    keys: dict[str, UserScope | None] = {}
    for item in _get(nats, "signing_keys", list, None) or ():
        if isinstance(item, str):
            keys[item] = None
        elif isinstance(item, dict) and version > 1:
            scope = _scope(item)
            keys[scope.key] = scope
        else:
            raise _type_error("signing_keys", item, "string")
    return keys


def _scope(item: Mapping[str, Any]) -> UserScope:
    if _lookup(item, "kind") != "user_scope":
        raise JwtError(f"unknown signing key scope {_quote(str(_lookup(item, 'type') or ''))}")
    template = _object(item, "template")
    return UserScope(key=_get(item, "key", str, ""), role=_get(item, "role", str, ""),
                     permissions=_permissions(template),
                     limits=_user_limits(template, unset=NO_LIMIT),
                     bearer_token=_get(template, "bearer_token", bool, False),
                     allowed_connection_types=_strings(template, "allowed_connection_types"))


def _revocations(nats: Mapping[str, Any]) -> dict[str, int]:
    found = _get(nats, "revocations", dict, None) or {}
    revoked = {}
    for key, when in found.items():
        if isinstance(when, bool) or not isinstance(when, int):
            raise _type_error("revocations", when, "int64")
        revoked[key] = when
    return revoked


# -- JSON the way Go's decoder reads it ----------------------------------------------------

def _lookup(obj: Mapping[str, Any], key: str) -> Any:
    """``obj[key]``, else the first key equal to it case-insensitively, else None."""
    if key in obj:
        return obj[key]
    lowered = key.lower()
    return next((value for name, value in obj.items() if name.lower() == lowered), None)


def _get(obj: Mapping[str, Any], key: str, kind: type[T], default: T) -> T:
    """A field of ``kind`` (``null`` or absent: ``default``); another type fails."""
    value = _lookup(obj, key)
    if value is None:
        return default
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    raise _type_error(key, value, kind.__name__)


def _object(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = _get(obj, key, dict, {})
    return found


def _strings(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = _get(obj, key, list, None) or []
    if not all(isinstance(item, str) for item in items):
        raise _type_error(key, next(i for i in items if not isinstance(i, str)), "string")
    return tuple(items)


def _type_error(key: str, value: object, expected: str) -> JwtError:
    got = next((name for kind, name in _GO_JSON.items() if isinstance(value, kind)), "value")
    return JwtError(f"json: cannot unmarshal {got} into Go value of type {expected} "
                    f"(field {_quote(key)})")


def _b64(chunk: str) -> bytes:
    """Go's ``base64.RawURLEncoding.DecodeString`` (line breaks are skipped)."""
    text = chunk.replace("\r", "").replace("\n", "")
    for index, char in enumerate(text):
        if not (char.isascii() and (char.isalnum() or char in "-_")):
            raise JwtError(f"illegal base64 data at input byte {index}")
    if len(text) % 4 == 1:
        raise JwtError(f"illegal base64 data at input byte {len(text) - 1}")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise JwtError("invalid character in JSON input") from exc
    except json.JSONDecodeError as exc:
        raise JwtError(_go_json_error(exc)) from exc
    if not isinstance(value, dict):
        raise _type_error("", value, "claims")
    return value


def _go_json_error(exc: json.JSONDecodeError) -> str:
    """Go's ``encoding/json`` wording for the common syntax errors."""
    if exc.pos >= len(exc.doc.rstrip()):
        return "unexpected end of JSON input"
    return f"invalid character {_char(exc.doc[exc.pos])} looking for beginning of value"


def _char(char: str) -> str:
    return "'\\''" if char == "'" else f"'{char}'"


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


__all__ = [
    "ACCOUNT", "NO_LIMIT", "OPERATOR", "USER", "AccountClaims", "AccountLimits", "Claims",
    "JwtError", "JwtPermissions", "OperatorClaims", "Permission", "ResponseLimit",
    "UserClaims", "UserLimits", "UserScope", "decode_account", "decode_operator",
    "decode_user",
]
