"""Operator mode (decentralized JWT auth) on the client port, against both servers.

One operator with a signing key, a system account and a few accounts (one with signing
keys, a scoped key and a revoked user; one signed by the operator's signing key; one
signed by an operator nobody trusts; one with connection limits) is generated for the
module; every test runs the same expectations against pynats and the real nats-server
started from the same file, with raw sockets for the exact bytes, nats-py for what an
application sees, and the debug log for nats-server's reason lines.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import nats
import pytest
from nats.errors import Error as NatsError

from auth_support import (
    KINDS,
    ConfServer,
    Serve,
    messages,
    received,
    shared_servers,
    until_pong,
)
from harness import RawClient
from operator_support import (
    account_jwt,
    creds_file,
    jwt_connect,
    jwt_login,
    jwt_refused,
    key,
    operator_jwt,
    scope,
    server_conf,
    user_jwt,
)
from pynats.nkeys import KeyPair, Prefix

VIOLATION = b"-ERR 'Authorization Violation'\r\n"
#: JWTs of the revoked user issued up to this many seconds after the module starts are revoked.
REVOKED_FOR = 600


@dataclass
class World:
    """Keys and the configuration of one operator and its accounts."""

    operator: KeyPair = field(default_factory=lambda: key(Prefix.OPERATOR))
    operator_signer: KeyPair = field(default_factory=lambda: key(Prefix.OPERATOR))
    stranger_operator: KeyPair = field(default_factory=lambda: key(Prefix.OPERATOR))
    system: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    app: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    app_signer: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    app_scoped: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    other: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    delegated: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    untrusted: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    limited: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    missing: KeyPair = field(default_factory=lambda: key(Prefix.ACCOUNT))
    user: KeyPair = field(default_factory=lambda: key(Prefix.USER))
    revoked: KeyPair = field(default_factory=lambda: key(Prefix.USER))
    conf: str = ""

    def __post_init__(self) -> None:
        template = {"pub": {"allow": ["scoped.{{name()}}.>"]},
                    "sub": {"allow": ["scoped.>"]}, "subs": -1, "data": -1, "payload": -1}
        now = int(time.time())
        op = self.operator
        preload = {
            self.system.public_key: account_jwt(self.system, "SYS", op),
            self.app.public_key: account_jwt(
                self.app, "app", op,
                signing_keys=[self.app_signer, scope(self.app_scoped, template)],
                revocations={self.revoked.public_key: now + REVOKED_FOR}),
            self.other.public_key: account_jwt(self.other, "other", op),
            self.delegated.public_key: account_jwt(self.delegated, "delegated",
                                                   self.operator_signer),
            self.untrusted.public_key: account_jwt(self.untrusted, "untrusted",
                                                   self.stranger_operator),
            self.limited.public_key: account_jwt(
                self.limited, "limited", op,
                limits={"subs": 1, "payload": 16, "conn": 1, "data": -1, "imports": -1,
                        "exports": -1, "leaf": -1}),
        }
        token = operator_jwt(op, signing_keys=[self.operator_signer],
                             system_account=self.system.public_key)
        self.conf = server_conf(token, preload, self.system.public_key,
                                extra="authorization { timeout: 1 }\n")

    def jwt(self, signer: KeyPair | None = None, user: KeyPair | None = None,
            **kwargs: Any) -> str:
        """A user JWT for ``user`` (default: the test user) signed by ``signer``."""
        return user_jwt(user or self.user, signer or self.app, **kwargs)


@pytest.fixture(scope="module")
def world() -> World:
    return World()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from shared_servers(tmp_path_factory, "operator")


@pytest.fixture
def server(kind: str, serve: Serve, world: World) -> Iterator[ConfServer]:
    with serve(kind, world.conf) as running:
        yield running


def debug_lines(server: ConfServer, start: int) -> list[str]:
    return [text for level, text in server.messages(start) if level in ("DBG", "ERR")]


# -- logging in ------------------------------------------------------------------------


def test_info_carries_a_nonce(server: ConfServer) -> None:
    with RawClient(server.port) as client:
        info = json.loads(client.info[5:])
    assert info["auth_required"] is True
    assert len(info["nonce"]) == 15


def test_valid_user_publishes_and_subscribes(server: ConfServer, world: World) -> None:
    mark = len(server.server.lines)
    with jwt_login(server.port, world.jwt(), world.user) as client:
        client.send(b"SUB jwt.demo 1\r\nPUB jwt.demo 5\r\nhello\r\nPING\r\n")
        assert until_pong(client) == b"MSG jwt.demo 1 5\r\nhello\r\nPONG\r\n"
    server.wait_for("Authenticated JWT", mark)
    authenticated = next(text for text in debug_lines(server, mark)
                         if text.startswith("Authenticated JWT"))
    assert authenticated.startswith(
        f'Authenticated JWT: Client "{world.user.public_key}" (claim-name: "user", '
        f'claim-tags: []) signed with "{world.app.public_key}" by Account '
        f'"{world.app.public_key}" (claim-name: "app", claim-tags: []) signed with '
        f'"{world.operator.public_key}" has mappings false accused 0x')


def test_log_prefix_names_account_and_user(server: ConfServer, world: World) -> None:
    mark = len(server.server.lines)
    with jwt_login(server.port, world.jwt(), world.user, name="tagged"):
        pass
    server.wait_for("Client connection closed", mark)
    label = f'"{world.app.public_key}/app/jwt:{world.user.public_key}"'
    closed = [line for line in server.server.lines[mark:] if "connection closed" in line]
    assert closed and f'"tagged" - {label} - Client connection closed' in closed[-1]


REFUSALS = {
    "no-jwt": ("", "Authentication requires a user JWT"),
    "garbage": ("garbage", "Authentication requires a user JWT"),
    "three-garbage-parts": ("a.b.c", "Authentication requires a user JWT"),
    "alg-none": ("alg-none", "Authentication requires a user JWT"),
    "tampered": ("tampered", "Authentication requires a user JWT"),
    "wrong-signature": ("wrong-sig", "Signature not verified"),
    "no-signature": ("no-sig", "Signature missing"),
    "signature-not-base64": ("bad-b64-sig", "Signature not valid base64"),
    "expired": ("expired", "User JWT no longer valid: &{Issues:[claim is expired]}"),
    "not-yet-valid": ("nbf", "User JWT no longer valid: &{Issues:[claim is not yet valid]}"),
    "unknown-account": ("unknown-account", "Account JWT lookup error: account missing"),
    "account-not-signed-by-operator": (
        "untrusted", "Account JWT lookup error: account validation failed"),
    "revoked": ("revoked", "User authentication revoked"),
    "signing-key-without-issuer-account": (
        "sk-no-issuer-account", "Account JWT lookup error: account missing"),
    "signer-not-a-signing-key": ("unknown-signer", "User JWT issuer is not known"),
    "scoped-user-with-own-permissions": (
        "scoped-with-perms",
        "User JWT is not valid: scoped users require no permissions or limits set"),
    "bad-permission-subject": (
        "bad-subject",
        'User JWT no longer valid: &{Issues:[subject "a..b" cannot contain consecutive `.`]}'),
    "not-a-user-jwt": ("account-jwt", "Authentication requires a user JWT"),
    "src-outside": ("src", "Bad src Ip 127.0.0.1"),
    "websocket-only": ("websocket", "Connection type not allowed"),
}


def refusal_case(world: World, case: str) -> tuple[str, KeyPair | None, dict[str, str]]:
    """``(jwt, signer of the nonce, extra CONNECT fields)`` for a refusal case."""
    good = world.jwt()
    stranger = key(Prefix.USER)
    now = int(time.time())
    header = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"none"}').decode().rstrip("=")
    cases: dict[str, tuple[str, KeyPair | None, dict[str, str]]] = {
        "": ("", world.user, {}),
        "garbage": ("garbage", world.user, {}),
        "a.b.c": ("a.b.c", world.user, {}),
        "alg-none": (f"{header}.{good.split('.')[1]}.", world.user, {}),
        "tampered": (good[:-6] + ("AAAAAA" if not good.endswith("AAAAAA") else "BBBBBB"),
                     world.user, {}),
        "wrong-sig": (good, stranger, {}),
        "no-sig": (good, None, {}),
        "bad-b64-sig": (good, None, {"sig": "!!not base64!!"}),
        "expired": (world.jwt(top={"exp": now - 10}), world.user, {}),
        "nbf": (world.jwt(top={"nbf": now + 3600}), world.user, {}),
        "unknown-account": (world.jwt(world.missing), world.user, {}),
        "untrusted": (world.jwt(world.untrusted), world.user, {}),
        "revoked": (world.jwt(user=world.revoked), world.revoked, {}),
        "sk-no-issuer-account": (world.jwt(world.app_signer), world.user, {}),
        "unknown-signer": (world.jwt(key(Prefix.ACCOUNT), issuer_account=world.app.public_key),
                           world.user, {}),
        "scoped-with-perms": (world.jwt(world.app_scoped, issuer_account=world.app.public_key),
                              world.user, {}),
        "bad-subject": (world.jwt(pub={"allow": ["a..b"]}), world.user, {}),
        "account-jwt": (account_jwt(world.app, "app", world.operator), world.user, {}),
        "src": (world.jwt(src=["10.0.0.0/8"]), world.user, {}),
        "websocket": (world.jwt(allowed_connection_types=["WEBSOCKET"]), world.user, {}),
    }
    return cases[case]


@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refused_with_authorization_violation(server: ConfServer, world: World,
                                              name: str) -> None:
    case, reason = REFUSALS[name]
    jwt, signer, fields = refusal_case(world, case)
    mark = len(server.server.lines)
    assert jwt_refused(server.port, jwt, signer, **fields) == VIOLATION
    server.wait_for("Client connection closed", mark)
    lines = debug_lines(server, mark)
    assert reason in lines, lines
    assert "authentication error" in lines
    assert lines.index(reason) < lines.index("authentication error")


def test_attacks_do_not_stop_the_server(server: ConfServer, world: World) -> None:
    """Garbage, a JWT with ``alg: none``, an oversized JWT: refused; others carry on."""
    with jwt_login(server.port, world.jwt(), world.user) as bystander:
        bystander.send(b"SUB still.here 1\r\nPING\r\n")
        bystander.expect(b"PONG\r\n")
        for name in ("garbage", "alg-none", "tampered"):
            jwt, signer, fields = refusal_case(world, REFUSALS[name][0])
            assert jwt_refused(server.port, jwt, signer, **fields) == VIOLATION
        huge = "eyJ" + "A" * 20000
        out = jwt_refused(server.port, huge, world.user)
        assert out == b"-ERR 'maximum control line exceeded'\r\n"
        with RawClient(server.port) as client:  # a JWT just under the limit, still garbage
            client.send(jwt_connect(client, "eyJ" + "A" * 3900, world.user))
            assert client.read_until_closed() == VIOLATION
        with jwt_login(server.port, world.jwt(), world.user) as publisher:
            publisher.send(b"PUB still.here 2\r\nok\r\nPING\r\n")
            publisher.expect(b"PONG\r\n")
        bystander.send(b"PING\r\n")
        assert until_pong(bystander) == b"MSG still.here 1 2\r\nok\r\nPONG\r\n"


def test_account_option_is_refused_naming_the_jwt_user(server: ConfServer,
                                                       world: World) -> None:
    mark = len(server.server.lines)
    assert jwt_refused(server.port, world.jwt(), world.user, account="x") == VIOLATION
    server.wait_for("Client connection closed", mark)
    assert f'authentication error - JWT User "{world.user.public_key}"' in debug_lines(
        server, mark)


def test_bearer_token_needs_no_signature(server: ConfServer, world: World) -> None:
    with RawClient(server.port) as client:
        client.send(jwt_connect(client, world.jwt(bearer_token=True), None))
        client.expect(b"PONG\r\n")


# -- signing keys ----------------------------------------------------------------------


def test_account_signing_key(server: ConfServer, world: World) -> None:
    jwt = world.jwt(world.app_signer, issuer_account=world.app.public_key)
    with jwt_login(server.port, jwt, world.user) as client:
        client.send(b"SUB sk 1\r\nPUB sk 1\r\nx\r\nPING\r\n")
        assert until_pong(client) == b"MSG sk 1 1\r\nx\r\nPONG\r\n"


def test_scoped_signing_key_applies_its_template(server: ConfServer, world: World) -> None:
    jwt = world.jwt(world.app_scoped, issuer_account=world.app.public_key, name="bob",
                    limits={})
    with jwt_login(server.port, jwt, world.user) as client:
        client.send(b"SUB scoped.> 1\r\nPUB scoped.bob.x 1\r\nx\r\nPUB scoped.eve.x 1\r\n"
                    b"y\r\nSUB other 2\r\nPING\r\n")
        assert until_pong(client) == (
            b"MSG scoped.bob.x 1 1\r\nx\r\n"
            b"-ERR 'Permissions Violation for Publish to \"scoped.eve.x\"'\r\n"
            b"-ERR 'Permissions Violation for Subscription to \"other\"'\r\nPONG\r\n")


def test_account_signed_by_operator_signing_key(server: ConfServer, world: World) -> None:
    with jwt_login(server.port, world.jwt(world.delegated), world.user) as client:
        client.send(b"SUB d 1\r\nPUB d 1\r\nx\r\nPING\r\n")
        assert until_pong(client) == b"MSG d 1 1\r\nx\r\nPONG\r\n"


def test_revocation_spares_jwts_issued_later(server: ConfServer, world: World) -> None:
    later = world.jwt(user=world.revoked, top={"iat": int(time.time()) + 2 * REVOKED_FOR})
    jwt_login(server.port, later, world.revoked).close()


# -- permissions -------------------------------------------------------------------------


def test_permissions_from_the_jwt(server: ConfServer, world: World) -> None:
    jwt = world.jwt(pub={"allow": ["orders.>"], "deny": ["orders.secret"]},
                    sub={"allow": ["orders.*", "_INBOX.>"], "deny": ["orders.hidden"]})
    with jwt_login(server.port, jwt, world.user) as client:
        client.send(b"SUB orders.new 1\r\nSUB orders.hidden 2\r\nSUB billing 3\r\n"
                    b"PUB orders.new 2\r\nok\r\nPUB orders.secret 1\r\nx\r\n"
                    b"PUB billing 1\r\nx\r\nPING\r\n")
        assert until_pong(client) == (
            b"-ERR 'Permissions Violation for Subscription to \"orders.hidden\"'\r\n"
            b"-ERR 'Permissions Violation for Subscription to \"billing\"'\r\n"
            b"MSG orders.new 1 2\r\nok\r\n"
            b"-ERR 'Permissions Violation for Publish to \"orders.secret\"'\r\n"
            b"-ERR 'Permissions Violation for Publish to \"billing\"'\r\nPONG\r\n")


def test_response_permission_from_the_jwt(server: ConfServer, world: World) -> None:
    responder_jwt = world.jwt(sub={"allow": ["svc"]}, resp={"max": 1, "ttl": 0})
    with jwt_login(server.port, world.jwt(), world.user) as requester, \
            jwt_login(server.port, responder_jwt, world.user) as responder:
        responder.send(b"SUB svc 1\r\nPING\r\n")
        responder.expect(b"PONG\r\n")
        requester.send(b"SUB reply.1 9\r\nPUB svc reply.1 1\r\nq\r\nPING\r\n")
        requester.expect(b"PONG\r\n")
        responder.send(b"PING\r\n")
        assert until_pong(responder) == b"MSG svc 1 reply.1 1\r\nq\r\nPONG\r\n"
        responder.send(b"PUB reply.1 1\r\na\r\nPUB reply.1 1\r\nb\r\nPUB svc 1\r\nc\r\nPING\r\n")
        assert until_pong(responder) == (
            b"-ERR 'Permissions Violation for Publish to \"reply.1\"'\r\n"
            b"-ERR 'Permissions Violation for Publish to \"svc\"'\r\nPONG\r\n")
        requester.send(b"PING\r\n")
        assert until_pong(requester) == b"MSG reply.1 9 1\r\na\r\nPONG\r\n"


def test_default_permissions_of_the_account(kind: str, serve: Serve, world: World) -> None:
    defaults = {"pub": {"allow": ["open.>"]}, "sub": {"allow": ["open.>"]}}
    account = key(Prefix.ACCOUNT)
    preload = {world.system.public_key: account_jwt(world.system, "SYS", world.operator),
               account.public_key: account_jwt(account, "defaults", world.operator,
                                               default_permissions=defaults)}
    conf = server_conf(operator_jwt(world.operator, system_account=world.system.public_key),
                       preload, world.system.public_key)
    with serve(kind, conf) as server, jwt_login(
            server.port, world.jwt(account), world.user) as client:
        client.send(b"SUB open.x 1\r\nPUB closed 1\r\nx\r\nPING\r\n")
        assert until_pong(client) == (
            b"-ERR 'Permissions Violation for Publish to \"closed\"'\r\nPONG\r\n")


# -- accounts ----------------------------------------------------------------------------


def test_accounts_are_isolated(server: ConfServer, world: World) -> None:
    with jwt_login(server.port, world.jwt(), world.user) as app, \
            jwt_login(server.port, world.jwt(world.other), world.user) as other:
        app.send(b"SUB iso 1\r\nPING\r\n")
        app.expect(b"PONG\r\n")
        other.send(b"SUB iso 1\r\nPUB iso 4\r\nmine\r\nPING\r\n")
        assert until_pong(other) == b"MSG iso 1 4\r\nmine\r\nPONG\r\n"
        assert received(app) == b""


def test_monitoring_shows_accounts_by_public_key(kind: str, serve: Serve, world: World) -> None:
    conf = world.conf + "http: 127.0.0.1:-1\n"
    with serve(kind, conf) as server, jwt_login(server.port, world.jwt(), world.user,
                                                 name="mon"):
        base = f"http://127.0.0.1:{server.server.http_port}"
        accountz = json.loads(urllib.request.urlopen(f"{base}/accountz").read())
        assert accountz["system_account"] == world.system.public_key
        assert {world.app.public_key, world.system.public_key, "$G"} <= set(
            accountz["accounts"])
        connz = json.loads(urllib.request.urlopen(f"{base}/connz?auth=1").read())
        conn = next(c for c in connz["connections"] if c.get("name") == "mon")
        assert conn["authorized_user"] == world.user.public_key
        assert conn["account"] == world.app.public_key
        assert conn["issuer_key"] == world.app.public_key
        assert conn["name_tag"] == "app"
        assert conn["jwt"].startswith("eyJ")
        detail = json.loads(urllib.request.urlopen(
            f"{base}/accountz?acc={world.app.public_key}").read())["account_detail"]
        assert detail["name_tag"] == "app"
        assert detail["issuer_key"] == world.operator.public_key
        assert detail["client_connections"] == 1


# -- limits and expiry ---------------------------------------------------------------------


def test_account_connection_limit(server: ConfServer, world: World) -> None:
    with jwt_login(server.port, world.jwt(world.limited), world.user):
        out = jwt_refused(server.port, world.jwt(world.limited), world.user)
        assert out == b"-ERR 'maximum account active connections exceeded'\r\n"


def test_subscription_and_payload_limits(server: ConfServer, world: World) -> None:
    jwt = world.jwt(world.other, limits={"subs": 2, "data": -1, "payload": 8})
    with jwt_login(server.port, jwt, world.user) as client:
        client.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPING\r\n")
        assert until_pong(client) == b"-ERR 'maximum subscriptions exceeded'\r\nPONG\r\n"
        client.send(b"PUB a 9\r\n123456789\r\n")
        assert client.read_until_closed() == b"-ERR 'Maximum Payload Violation'\r\n"


def test_jwt_without_subscription_limit_allows_none(server: ConfServer, world: World) -> None:
    """An absent ``subs`` is zero: nats-server refuses every SUB and closes the client."""
    with RawClient(server.port) as client:
        client.send(jwt_connect(client, world.jwt(limits={}), world.user))
        out = client.read_until_closed()
    assert sorted(out.splitlines()) == [b"-ERR 'maximum subscriptions exceeded'", b"PONG"]


def test_expired_user_is_disconnected(server: ConfServer, world: World) -> None:
    jwt = world.jwt(top={"exp": int(time.time()) + 2})
    with jwt_login(server.port, jwt, world.user) as client:
        client.send(b"SUB tick 1\r\nPING\r\n")
        client.expect(b"PONG\r\n")
        out = client.read_until_closed(timeout=6).replace(b"PING\r\n", b"")
    assert out == b"-ERR 'User Authentication Expired'\r\n"


# -- clients ---------------------------------------------------------------------------------


async def test_nats_py_with_creds(server: ConfServer, world: World, tmp_path: Any) -> None:
    creds = creds_file(tmp_path / "u.creds", world.jwt(), world.user.seed)
    nc = await nats.connect(f"nats://127.0.0.1:{server.port}", user_credentials=str(creds),
                            allow_reconnect=False, connect_timeout=3)
    try:
        sub = await nc.subscribe("natspy.jwt")
        await nc.publish("natspy.jwt", b"hi")
        assert (await sub.next_msg(timeout=3)).data == b"hi"
    finally:
        await nc.close()


async def test_nats_py_refused(server: ConfServer, world: World, tmp_path: Any) -> None:
    creds = creds_file(tmp_path / "u.creds", world.jwt(world.untrusted), world.user.seed)
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    with pytest.raises((NatsError, OSError)):
        await nats.connect(f"nats://127.0.0.1:{server.port}", user_credentials=str(creds),
                           allow_reconnect=False, connect_timeout=3, max_reconnect_attempts=0,
                           error_cb=on_error)
    assert any("authorization violation" in str(exc).lower() for exc in errors)


# -- reload ------------------------------------------------------------------------------


def test_reload_rechecks_and_keeps_valid_clients(server: ConfServer, world: World) -> None:
    # A ``user`` beside the JWT names no configured user: it must not look "gone".
    with jwt_login(server.port, world.jwt(), world.user, user="someone") as client:
        client.send(b"SUB kept 1\r\nPING\r\n")
        client.expect(b"PONG\r\n")
        notices = [text for level, text in messages(server.reload(world.conf))
                   if level == "INF" and text.startswith("Reloaded")]
        assert notices[:3] == ["Reloaded: authorization users", "Reloaded: accounts",
                               "Reloaded: accounts"]
        assert notices[3].startswith("Reloaded server configuration")
        client.send(b"PUB kept 1\r\nx\r\nPING\r\n")
        assert until_pong(client) == b"MSG kept 1 1\r\nx\r\nPONG\r\n"


def test_reload_reads_new_preloads(kind: str, serve: Serve, world: World) -> None:
    late = key(Prefix.ACCOUNT)
    op = operator_jwt(world.operator, system_account=world.system.public_key)
    preload = {world.system.public_key: account_jwt(world.system, "SYS", world.operator)}
    before = server_conf(op, preload, world.system.public_key, extra="# before\n")
    preload[late.public_key] = account_jwt(late, "late", world.operator)
    with serve(kind, before) as server:
        assert jwt_refused(server.port, world.jwt(late), world.user) == VIOLATION
        server.reload(server_conf(op, preload, world.system.public_key))
        jwt_login(server.port, world.jwt(late), world.user).close()


def test_expired_account_disconnects_its_users(kind: str, serve: Serve, world: World) -> None:
    brief = key(Prefix.ACCOUNT)
    preload = {world.system.public_key: account_jwt(world.system, "SYS", world.operator),
               brief.public_key: account_jwt(brief, "brief", world.operator,
                                             exp=int(time.time()) + 4)}
    conf = server_conf(operator_jwt(world.operator, system_account=world.system.public_key),
                       preload, world.system.public_key)
    with serve(kind, conf) as server, jwt_login(server.port, world.jwt(brief),
                                                world.user) as client:
        out = client.read_until_closed(timeout=8).replace(b"PING\r\n", b"")
    assert out == b"-ERR 'Account Authentication Expired'\r\n"
