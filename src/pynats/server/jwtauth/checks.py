"""Validity of decoded NATS claims, and what a user JWT allows, as nats-server judges them.

Theory of operation
-------------------
:func:`user_issues` and :func:`account_issues` are the Go library's ``Validate``: a list
of problem descriptions, every one of them blocking for a login (nats-server validates
with time checks on: an expired or not-yet-valid JWT is refused like a malformed one).
They cover the claim times (``exp`` passed, ``nbf`` to come, in whole Unix seconds),
the subjects of permissions, the ``src`` networks and ``times`` windows of a user, the
``issuer_account`` key and the signing keys of an account. The account warning about
limits in a self-signed account is reported but not blocking.

The rest is what a valid user JWT means at login:

* :func:`src_allows`: the client's address must be in one of the ``src`` networks;
* :func:`connect_window`: inside one of the ``times`` windows (wall clock of
  ``times_location``), and for how long, for the expiry timer;
* :func:`expand_template`: a scoped signing key's permission template with
  ``{{name()}}``, ``{{subject()}}``, ``{{account-name()}}``, ``{{account-subject()}}``,
  ``{{tag(x)}}`` and ``{{account-tag(x)}}`` filled in;
* :func:`to_permissions`: JWT permissions as the configured permissions the session
  enforces (``resp`` with nats-server's defaults: no publish allow list means none).
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import re
import zoneinfo
from collections.abc import Iterable

from pynats import nkeys
from pynats.nkeys import Prefix
from pynats.protocol.subjects import is_valid_subscription
from pynats.server.config.options import Permissions, ResponsePermission, SubjectPermission
from pynats.server.gotext import go_quote
from pynats.server.jwtauth.claims import (
    AccountClaims,
    Claims,
    JwtPermissions,
    Permission,
    UserClaims,
    UserLimits,
)

_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2}):([0-9]{2})")
_TEMPLATE = re.compile(r"\{\{.*\}\}")
#: Most subjects one templated entry may expand to (nats-server's limit on the product).
MAX_TEMPLATE_EXPANSION = 4096


# -- Validate ---------------------------------------------------------------------------

def time_issues(claims: Claims, now: int) -> list[str]:
    """``claim is expired`` / ``claim is not yet valid`` (``now`` in Unix seconds)."""
    issues = []
    if claims.expires > 0 and now > claims.expires:
        issues.append("claim is expired")
    if claims.not_before > 0 and claims.not_before > now:
        issues.append("claim is not yet valid")
    return issues


def user_issues(claims: UserClaims, now: int) -> list[str]:
    """Everything that makes a user JWT invalid at ``now`` (``UserClaims.Validate``)."""
    issues = time_issues(claims, now)
    issues += permission_issues(claims.permissions)
    issues += limit_issues(claims.limits)
    if claims.issuer_account and not nkeys.is_valid_public_key(
            claims.issuer_account, Prefix.ACCOUNT):
        issues.append("account_id is not an account public key")
    return issues


def account_issues(claims: AccountClaims, now: int) -> list[str]:
    """Problems of an account JWT at ``now``; all blocking but the limits warning."""
    issues = time_issues(claims, now)
    issues += permission_issues(claims.default_permissions)
    for key, scope in claims.signing_keys.items():
        if scope is not None and not nkeys.is_valid_public_key(scope.key, Prefix.ACCOUNT):
            issues.append(f"{scope.key} is not an account public key")
        elif scope is None and not nkeys.is_valid_public_key(key, Prefix.ACCOUNT):
            issues.append(f"{_q(key)} is not a valid account signing key")
    return issues


def self_signed_warning(claims: AccountClaims) -> list[str]:
    """The non-blocking warning for operator limits in a self-signed account."""
    if nkeys.is_valid_public_key(claims.issuer, Prefix.ACCOUNT) and not claims.limits.empty:
        return ["self-signed account JWTs shouldn't contain operator limits"]
    return []


def permission_issues(perms: JwtPermissions) -> list[str]:
    """Malformed subjects in ``sub`` (queues allowed) and ``pub`` (no queues)."""
    issues: list[str] = []
    for entry in (*perms.sub.allow, *perms.sub.deny):
        issues += _entry_issues(entry, queue_ok=True)
    for entry in (*perms.pub.allow, *perms.pub.deny):
        issues += _entry_issues(entry, queue_ok=False)
    return issues


def _entry_issues(entry: str, queue_ok: bool) -> list[str]:
    parts = entry.split(" ")
    if len(parts) > 2:
        return [f'Permission Subject "{entry}" contains too many spaces']
    issues = [issue for part in parts for issue in subject_issues(part)]
    if len(parts) == 2 and not queue_ok:
        issues.append(f'Permission Subject "{entry}" is not allowed to contain queue')
    return issues


def subject_issues(subject: str) -> list[str]:
    """The Go library's ``Subject.Validate``."""
    if not subject:
        return ["subject cannot be empty"]
    issues = []
    if " " in subject:
        issues.append(f"subject {_q(subject)} cannot have spaces")
    if subject[0] == "." or subject[-1] == ".":
        issues.append(f"subject {_q(subject)} cannot start or end with a `.`")
    if ".." in subject:
        issues.append(f"subject {_q(subject)} cannot contain consecutive `.`")
    return issues


def limit_issues(limits: UserLimits) -> list[str]:
    """Bad ``src`` networks, ``times`` windows or ``times_location``."""
    issues = [f"invalid cidr {_q(cidr)} in user src limits" for cidr in limits.src
              if _network(cidr) is None]
    for start, end in limits.times:
        issues += _range_issues(start, end)
    if limits.locale and _zone(limits.locale) is None:
        issues.append(f"could not parse iana time zone by name: unknown time zone "
                      f"{limits.locale}")
    return issues


def _range_issues(start: str, end: str) -> list[str]:
    issues = []
    for value, which, label in ((start, "start", "a start"), (end, "end", "an end")):
        if not value:
            issues.append(f"time ranges {which} must contain {label}")
        elif _clock(value) is None:
            issues.append(f"{which} in time range is invalid {_q(value)}")
    return issues


# -- what a valid user JWT allows --------------------------------------------------------

def src_allows(src: Iterable[str], host: str) -> bool:
    """Whether ``host`` may connect: no ``src`` list, or inside one of its networks."""
    networks = list(src)
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for cidr in networks:
        network = _network(cidr)
        if network is None:
            return False
        if address in network:
            return True
    return False


def connect_window(limits: UserLimits, now: datetime.datetime | None = None) -> tuple[
        bool, float]:
    """Whether ``times`` allow connecting now, and seconds left (0 without ``times``).

    As nats-server's ``validateTimes``: a window whose start is after its end ends the
    next day; the first window that contains now decides.
    """
    if not limits.times:
        return True, 0.0
    zone = _zone(limits.locale) if limits.locale else None
    current = now or datetime.datetime.now(datetime.UTC)
    current = current.astimezone(zone) if zone is not None else current.astimezone()
    for start_text, end_text in limits.times:
        start, end = _clock(start_text), _clock(end_text)
        if start is None or end is None:
            return False, 0.0
        begins = current.replace(hour=start[0], minute=start[1], second=start[2],
                                 microsecond=0)
        ends = current.replace(hour=end[0], minute=end[1], second=end[2], microsecond=0)
        if start > end:
            ends += datetime.timedelta(days=1)
        if begins < current < ends:
            return True, (ends - current).total_seconds()
    return False, 0.0


def expand_template(template: JwtPermissions, user: UserClaims,
                    account: AccountClaims) -> JwtPermissions:
    """A scoped key's permissions with the user's and account's values filled in.

    Allow entries that expand to invalid subjects are dropped (and an allow list left
    empty becomes ``deny: [">"]``); deny entries must all expand.

    Raises:
        ValueError: a deny entry generated an invalid subject.
    """
    def one(perm: Permission) -> Permission:
        allow = _expand(perm.allow, user, account, strict=False)
        deny = _expand(perm.deny, user, account, strict=True)
        if perm.allow and not allow and ">" not in deny:
            deny = (*deny, ">")
        return Permission(allow, deny)

    return JwtPermissions(one(template.pub), one(template.sub), template.resp)


def _expand(entries: tuple[str, ...], user: UserClaims, account: AccountClaims,
            strict: bool) -> tuple[str, ...]:
    if not any(_TEMPLATE.fullmatch(token) for entry in entries for token in entry.split(".")):
        return entries
    out: list[str] = []
    for entry in entries:
        choices = [_token_values(token, user, account) for token in entry.split(".")]
        if any(not values for values in choices):
            choices = [["" if not values else values[0]] for values in choices]
        for combo in itertools.islice(itertools.product(*choices), MAX_TEMPLATE_EXPANSION):
            subject = ".".join(combo)
            if is_valid_subscription(subject.encode()) and " " not in subject:
                out.append(subject)
            elif strict:
                raise ValueError("generated invalid subject")
    return tuple(out)


def _token_values(token: str, user: UserClaims, account: AccountClaims) -> list[str]:
    """What one subject token stands for: itself, or a template's values."""
    if not _TEMPLATE.fullmatch(token):
        return [token]
    op = token[2:-2].lower()
    fixed = {"name()": user.name, "subject()": user.subject,
             "account-name()": account.name, "account-subject()": user.issuer_account}
    if op in fixed:
        return [fixed[op]]
    for prefix, tags in (("tag(", user.tags), ("account-tag(", account.tags)):
        if op.startswith(prefix) and op.endswith(")"):
            wanted = op[len(prefix):-1].lower() + ":"
            return [tag[len(wanted):] for tag in tags if tag.startswith(wanted)]
    return [" "]  # an unknown template makes the subject invalid on purpose


def to_permissions(perms: JwtPermissions) -> Permissions | None:
    """JWT permissions as the session enforces them (``None``: no restriction)."""
    if perms.empty:
        return None
    pub = None if perms.pub.empty else SubjectPermission(perms.pub.allow, perms.pub.deny)
    sub = None if perms.sub.empty else SubjectPermission(perms.sub.allow, perms.sub.deny)
    responses = None
    if perms.resp is not None:
        responses = ResponsePermission(perms.resp.max_msgs, perms.resp.ttl)
    return Permissions(publish=pub, subscribe=sub, allow_responses=responses)


# -- helpers ----------------------------------------------------------------------------------

def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """Go's ``net.ParseCIDR``: an address and a prefix length, host bits allowed."""
    if "/" not in cidr:
        return None
    try:
        return ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return None


def _clock(text: str) -> tuple[int, int, int] | None:
    """``15:04:05`` as Go parses it (one or two hour digits), or None."""
    match = _CLOCK.fullmatch(text)
    if match is None:
        return None
    hour, minute, second = (int(group) for group in match.groups())
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _zone(name: str) -> zoneinfo.ZoneInfo | None:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _q(text: str) -> str:
    return go_quote(text)


__all__ = [
    "MAX_TEMPLATE_EXPANSION", "account_issues", "connect_window", "expand_template",
    "limit_issues", "permission_issues", "self_signed_warning", "src_allows",
    "subject_issues", "time_issues", "to_permissions", "user_issues",
]
