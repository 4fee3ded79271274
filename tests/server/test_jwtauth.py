"""The pure parts of operator mode: JWT decoding, validity checks, the login decision.

No server here: the claims decoder against JWTs made with :func:`pynats.nkeys.encode_jwt`
and the version 1 JWTs of the configuration corpus (written by the Go library), the
checks against fixed clocks, and :func:`jwt_login` against a directory built from
options, with the log lines it records.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import time
from pathlib import Path

import pytest

from operator_support import account_jwt, key, operator_jwt, scope, user_jwt
from pynats import nkeys
from pynats.nkeys import Prefix
from pynats.server.config.options import ServerOptions
from pynats.server.jwtauth import checks
from pynats.server.jwtauth.claims import (
    JwtError,
    JwtPermissions,
    Permission,
    ResponseLimit,
    UserLimits,
    decode_account,
    decode_operator,
    decode_user,
)
from pynats.server.jwtauth.config import parse_decorated_jwt, resolver_kind
from pynats.server.jwtauth.login import JwtRequest, JwtUser
from pynats.server.jwtauth.mode import OperatorMode

CORPUS = Path(__file__).parent / "config" / "corpus"
OPERATOR = key(Prefix.OPERATOR)
ACCOUNT = key(Prefix.ACCOUNT)
USER = key(Prefix.USER)


def b64(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# -- decoding ----------------------------------------------------------------------------


def test_decodes_what_it_signs() -> None:
    user = decode_user(user_jwt(USER, ACCOUNT, name="u", pub={"allow": ["a"]},
                                resp={"max": 2, "ttl": 5_000_000_000}))
    assert (user.subject, user.issuer, user.name, user.version) == (
        USER.public_key, ACCOUNT.public_key, "u", 2)
    assert user.permissions.pub == Permission(("a",), ())
    assert user.permissions.resp == ResponseLimit(2, 5.0)
    assert user.limits.subs == -1
    account = decode_account(account_jwt(ACCOUNT, "acc", OPERATOR, signing_keys=[USER]))
    assert account.limits.conn == -1 and USER.public_key in account.signing_keys
    op = decode_operator(operator_jwt(OPERATOR, system_account=ACCOUNT.public_key))
    assert op.system_account == ACCOUNT.public_key


def test_version_1_jwts_of_the_go_library_decode() -> None:
    text = (CORPUS / "operator_inline.conf").read_text()
    token = re.search(r'operator = "(eyJ[^"]+)"', text)
    assert token is not None
    op = decode_operator(token.group(1))
    assert op.version == 1 and op.kind == "operator" and len(op.signing_keys) == 3
    preload = (CORPUS / "resolver_preload.conf").read_text()
    accounts = re.findall(r'(A[A-Z2-7]{55})\s*:\s*"(eyJ[^"]+)"', preload)
    assert accounts
    for name, jwt in accounts:
        assert decode_account(jwt).subject == name


@pytest.mark.parametrize(("mangle", "message"), [
    (lambda t: t.rsplit(".", 1)[0], "expected 3 chunks"),
    (lambda t: b64({"typ": "JWT", "alg": "none"}) + t[t.index("."):],
     'unexpected "none" algorithm'),
    (lambda t: b64({"typ": "JOSE", "alg": "ed25519-nkey"}) + t[t.index("."):],
     'not supported type "JOSE"'),
    (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),
     "claim failed V2 signature verification"),
    (lambda t: t.split(".")[0] + ".!!." + t.split(".")[2], "illegal base64 data at input byte 0"),
])
def test_malformed_user_jwts(mangle: object, message: str) -> None:
    token = user_jwt(USER, ACCOUNT)
    assert callable(mangle)
    with pytest.raises(JwtError, match=re.escape(message)):
        decode_user(mangle(token))


def test_kind_version_and_issuer_are_checked() -> None:
    with pytest.raises(JwtError, match="not user claim"):
        decode_user(account_jwt(ACCOUNT, "a", OPERATOR))
    with pytest.raises(JwtError, match="newer version"):
        decode_user(user_jwt(USER, ACCOUNT, version=3))
    with pytest.raises(JwtError, match="received 0"):
        decode_user(nkeys.encode_jwt({"sub": USER.public_key, "nats": {"type": "user"}},
                                     ACCOUNT))
    with pytest.raises(JwtError, match=re.escape("expected prefixes - [account]")):
        decode_user(user_jwt(USER, OPERATOR))


def test_fields_are_read_as_go_reads_them() -> None:
    claims = {"sub": USER.public_key, "NATS": {"Type": "user", "VERSION": 2, "Subs": 3}}
    assert decode_user(nkeys.encode_jwt(claims, ACCOUNT)).limits.subs == 3
    with pytest.raises(JwtError, match="cannot unmarshal string"):
        decode_user(user_jwt(USER, ACCOUNT, top={"exp": "soon"}))
    src = decode_user(user_jwt(USER, ACCOUNT, src="10.0.0.0/8, 192.168.1.0/24"))
    assert src.limits.src == ("10.0.0.0/8", "192.168.1.0/24")


def test_decorated_operator_file() -> None:
    token = operator_jwt(OPERATOR)
    text = f"-----BEGIN NATS OPERATOR JWT-----\n{token}\n------END NATS OPERATOR JWT------\n"
    assert parse_decorated_jwt(text) == token
    assert parse_decorated_jwt(token) == token


@pytest.mark.parametrize(("text", "kind"), [
    ("MEMORY", "MEMORY"), ("mem", "MEMORY"), ("URL(http://mem.example/)", "MEMORY"),
    ('URL("http://h:1/jwt/")', "URL(http://h:1/jwt/)"), ("URL", "URL()"), ("bogus", None),
])
def test_resolver_strings(text: str, kind: str | None) -> None:
    assert resolver_kind(text) == kind


# -- checks --------------------------------------------------------------------------------


def test_time_checks_use_whole_seconds() -> None:
    claims = decode_user(user_jwt(USER, ACCOUNT, top={"exp": 100, "nbf": 50}))
    assert checks.time_issues(claims, 100) == []
    assert checks.time_issues(claims, 101) == ["claim is expired"]
    assert checks.time_issues(claims, 49) == ["claim is not yet valid"]


def test_subject_and_network_checks() -> None:
    assert checks.subject_issues("a..b") == ['subject "a..b" cannot contain consecutive `.`']
    assert checks.subject_issues(".a") == ['subject ".a" cannot start or end with a `.`']
    perms = JwtPermissions(pub=Permission(("a q",)), sub=Permission(("a q",)))
    assert checks.permission_issues(perms) == [
        'Permission Subject "a q" is not allowed to contain queue']
    assert checks.limit_issues(UserLimits(src=("10.0.0.1",))) == [
        'invalid cidr "10.0.0.1" in user src limits']
    assert checks.src_allows(("127.0.0.0/8",), "127.0.0.1")
    assert not checks.src_allows(("10.0.0.0/8",), "127.0.0.1")
    assert checks.src_allows((), "anything")


def test_connect_window() -> None:
    noon = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)
    day = UserLimits(times=(("09:00:00", "17:00:00"),), locale="UTC")
    allowed, left = checks.connect_window(day, noon)
    assert allowed and left == 5 * 3600
    night = UserLimits(times=(("22:00:00", "06:00:00"),), locale="UTC")
    assert checks.connect_window(night, noon) == (False, 0.0)
    assert checks.connect_window(UserLimits(), noon) == (True, 0.0)


def test_templates_fill_in_names_and_tags() -> None:
    user = decode_user(user_jwt(USER, ACCOUNT, name="bob", tags=["team:red", "team:blue"]))
    account = decode_account(account_jwt(ACCOUNT, "acc", OPERATOR))
    template = JwtPermissions(pub=Permission(("in.{{name()}}.>", "t.{{tag(team)}}")),
                              sub=Permission(("{{account-name()}}.*",), ("x.{{nope()}}",)))
    with pytest.raises(ValueError, match="generated invalid subject"):
        checks.expand_template(template, user, account)
    template = JwtPermissions(pub=Permission(("in.{{name()}}.>", "t.{{tag(team)}}")),
                              sub=Permission(("{{account-name()}}.*", "{{tag(none)}}")))
    done = checks.expand_template(template, user, account)
    assert done.pub.allow == ("in.bob.>", "t.red", "t.blue")
    assert done.sub.allow == ("acc.*",)


def test_response_permission_becomes_allow_responses() -> None:
    perms = checks.to_permissions(JwtPermissions(resp=ResponseLimit(3, 2.5)))
    assert perms is not None and perms.publish is None
    assert perms.allow_responses is not None
    assert (perms.allow_responses.max_msgs, perms.allow_responses.expires) == (3, 2.5)
    assert checks.to_permissions(JwtPermissions()) is None


# -- the login decision ----------------------------------------------------------------------


class Fixture:
    """An operator mode over a memory resolver, with a nonce and a clock."""

    def __init__(self, **account: object) -> None:
        self.now = float(int(time.time()))
        self.signer = key(Prefix.ACCOUNT)
        preload = ((ACCOUNT.public_key, account_jwt(
            ACCOUNT, "acc", OPERATOR, signing_keys=[self.signer, scope(
                key(Prefix.ACCOUNT), {"pub": {"allow": ["s"]}})], **account)),)
        options = ServerOptions(operators=(operator_jwt(OPERATOR),), resolver="MEMORY",
                                resolver_preload=preload, max_payload=1024)
        self.mode = OperatorMode(options, clock=lambda: self.now)

    def login(self, jwt: str, signer: nkeys.KeyPair | None = USER, clients: int = 0,
              host: str = "127.0.0.1") -> tuple[JwtUser | None, list[str]]:
        sig = signer.sign_nonce("n0nce") if signer is not None else ""
        verdict = self.mode.login(JwtRequest(jwt, sig, "n0nce", host), lambda _: clients)
        return verdict.user, [note.text for note in verdict.notes]


def test_login_records_nats_server_lines() -> None:
    world = Fixture()
    user, lines = world.login(user_jwt(USER, ACCOUNT))
    assert user is not None
    assert lines[0].startswith(f"Account [{ACCOUNT.public_key}] fetch took ")
    assert lines[1] == f"Updating account claims: {ACCOUNT.public_key}/acc"
    assert lines[2].startswith(f'Authenticated JWT: Client "{USER.public_key}"')
    user, lines = world.login(user_jwt(USER, ACCOUNT))  # registered: no second fetch
    assert len(lines) == 1


@pytest.mark.parametrize(("revoked_at", "issued_at", "refused"), [
    (100, 100, True), (100, 99, True), (100, 101, False),
])
def test_revocation_covers_jwts_issued_at_or_before(revoked_at: int, issued_at: int,
                                                    refused: bool) -> None:
    world = Fixture(revocations={USER.public_key: revoked_at})
    user, lines = world.login(user_jwt(USER, ACCOUNT, top={"iat": issued_at}))
    assert (user is None) is refused
    assert ("User authentication revoked" in lines) is refused


def test_revoking_everyone() -> None:
    world = Fixture(revocations={"*": int(time.time()) + 10})
    assert world.login(user_jwt(USER, ACCOUNT))[0] is None


def test_limits_are_the_smallest_of_user_account_and_server() -> None:
    world = Fixture(limits={"subs": 5, "payload": -1, "conn": 2})
    user, lines = world.login(user_jwt(USER, ACCOUNT, limits={"subs": 9, "payload": 4096}))
    assert user is not None
    assert (user.max_subs, user.max_payload) == (5, 1024)
    assert "Max Payload set to 1024 from server overrides account or user config" in lines
    refused, lines = world.login(user_jwt(USER, ACCOUNT), clients=2)
    assert refused is None and lines[-1] == "maximum account active connections exceeded"


def test_expiry_counts_whole_seconds() -> None:
    world = Fixture()
    user, _ = world.login(user_jwt(USER, ACCOUNT, top={"exp": int(world.now) + 30}))
    assert user is not None
    assert user.user_expiry(world.now + 0.7) == 30
    assert user.account_expiry(world.now) is None


def test_signing_keys_and_scopes() -> None:
    world = Fixture()
    signed = user_jwt(USER, world.signer, issuer_account=ACCOUNT.public_key)
    user, _ = world.login(signed)
    assert user is not None and user.signing_key == world.signer.public_key
    assert world.login(user_jwt(USER, world.signer))[1][-1] == (
        "Account JWT lookup error: account missing")


def test_bearer_and_signature() -> None:
    world = Fixture()
    assert world.login(user_jwt(USER, ACCOUNT, bearer_token=True), signer=None)[0] is not None
    assert world.login(user_jwt(USER, ACCOUNT), signer=None)[1][-1] == "Signature missing"
    assert world.login(user_jwt(USER, ACCOUNT), signer=key(Prefix.USER))[1][-1] == (
        "Signature not verified")
    strict = Fixture(limits={"disallow_bearer": True, "conn": -1, "subs": -1, "payload": -1})
    assert strict.login(user_jwt(USER, ACCOUNT, bearer_token=True), signer=None)[1][-1] == (
        "Account does not allow bearer token")


def test_expired_account_is_refused_once_registered() -> None:
    world = Fixture(exp=int(time.time()) + 5)
    assert world.login(user_jwt(USER, ACCOUNT))[0] is not None
    world.now += 10
    user, lines = world.login(user_jwt(USER, ACCOUNT))
    assert user is None and lines[-1] == "Account JWT has expired"
