"""Authentication on the client port: users, tokens, bcrypt, no_auth_user, the timer.

The wire tests run the same expectations against pynats and the real nats-server, from
the same configuration file (raw sockets for the exact ``-ERR`` bytes, nats-py for what
an application sees). The unit tests at the end check the pure decision logic
(``pynats.server.auth``) without a server.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator

import nats
import pytest
from nats.errors import Error as NatsError

from auth_support import (
    KINDS,
    ConfServer,
    Serve,
    bcrypt_hash,
    connect_json,
    info_of,
    login,
    received,
    refused,
    shared_servers,
    until_pong,
)
from harness import RawClient, ServerProcess
from pynats.server.auth import Authenticator, Credentials, compare_secret, is_bcrypt
from pynats.server.config.load import merge
from pynats.server.config.options import Account, Authorization, ServerOptions, User
from pynats.server.flags import parse_args

VIOLATION = b"-ERR 'Authorization Violation'\r\n"
TIMEOUT = b"-ERR 'Authentication Timeout'\r\n"
HASHED = bcrypt_hash("hashed-pw")
HASHED_TOKEN = bcrypt_hash("hashed-token", prefix=b"2b")

USERS_CONF = f"""
authorization {{
  timeout: 0.5
  users: [
    {{user: alice, password: s3cret}}
    {{user: bob, password: "{HASHED}"}}
    {{user: web, password: w, allowed_connection_types: ["WEBSOCKET"]}}
  ]
}}
"""
SINGLE_CONF = "authorization { user: alice, password: s3cret, timeout: 0.5 }\n"
TOKEN_CONF = "authorization { token: t0ken, timeout: 0.5 }\n"
NO_AUTH_CONF = """
authorization {
  timeout: 0.5
  users: [
    {user: guest, password: g, permissions: {publish: "public.>"}}
    {user: alice, password: s3cret}
  ]
}
no_auth_user: guest
"""


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)



@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """``serve(kind, conf, *args)``: a running server, shared by the module's tests.

    Nothing here changes a server (only connection-scoped state), so one process per
    kind and configuration serves every test that asks for it.
    """
    yield from shared_servers(tmp_path_factory, "auth")


@pytest.fixture
def users(kind: str, serve: Serve) -> Iterator[ConfServer]:
    with serve(kind, USERS_CONF) as server:
        yield server


# -- INFO --------------------------------------------------------------------------------


@pytest.mark.parametrize(("conf", "required"), [
    (SINGLE_CONF, True), (TOKEN_CONF, True), (USERS_CONF, True),
    (NO_AUTH_CONF, False), ("max_payload: 1000\n", False),
], ids=["single", "token", "users", "no_auth_user", "open"])
def test_info_says_auth_required_only_when_configured(kind: str, serve: Serve, conf: str,
                                                     required: bool) -> None:
    with serve(kind, conf) as server, RawClient(server.port) as client:
        info = info_of(client)
        assert info.get("auth_required", False) is required
        keys = list(info)
        if required:  # in nats-server's place: after headers, before max_payload
            assert keys.index("auth_required") == keys.index("headers") + 1


# -- single user, token ------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "ok"), [
    ({"user": "alice", "pass": "s3cret"}, True),
    ({"user": "alice", "pass": "wrong"}, False),
    ({"user": "bob", "pass": "s3cret"}, False),
    ({"pass": "s3cret"}, False),
    ({"auth_token": "s3cret"}, False),
    ({}, False),
])
def test_single_user(kind: str, serve: Serve, fields: dict[str, str], ok: bool) -> None:
    with serve(kind, SINGLE_CONF) as server:
        if ok:
            login(server.port, **fields).close()
        else:
            assert refused(server.port, **fields) == VIOLATION


@pytest.mark.parametrize(("fields", "ok"), [
    ({"auth_token": "t0ken"}, True),
    ({"auth_token": "t0ken", "user": "x", "pass": "y"}, True),
    ({"auth_token": "other"}, False),
    ({"user": "t0ken", "pass": "t0ken"}, False),
    ({}, False),
])
def test_token(kind: str, serve: Serve, fields: dict[str, str], ok: bool) -> None:
    with serve(kind, TOKEN_CONF) as server:
        if ok:
            login(server.port, **fields).close()
        else:
            assert refused(server.port, **fields) == VIOLATION


def test_bcrypt_token(kind: str, serve: Serve) -> None:
    with serve(kind, f'authorization {{ token: "{HASHED_TOKEN}" }}\n') as server:
        login(server.port, auth_token="hashed-token").close()
        assert refused(server.port, auth_token="wrong") == VIOLATION
        assert refused(server.port, auth_token=HASHED_TOKEN) == VIOLATION  # not the hash


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2x$", "$2y$"])
def test_every_bcrypt_prefix_is_accepted(kind: str, serve: Serve, prefix: str) -> None:
    hashed = prefix + bcrypt_hash("pw")[4:]
    with serve(kind, f'authorization {{ user: u, password: "{hashed}" }}\n') as server:
        login(server.port, user="u", **{"pass": "pw"}).close()
        assert refused(server.port, user="u", **{"pass": "pW"}) == VIOLATION


# -- users list --------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "ok"), [
    ({"user": "alice", "pass": "s3cret"}, True),
    ({"user": "bob", "pass": "hashed-pw"}, True),
    ({"user": "bob", "pass": HASHED}, False),
    ({"user": "alice", "pass": "hashed-pw"}, False),
    ({"user": "carol", "pass": "s3cret"}, False),
    ({"user": "web", "pass": "w"}, False),  # only allowed over websocket
    ({"pass": "s3cret"}, False),
    ({}, False),
    ({"user": "alice", "pass": "s3cret", "account": "A"}, False),
])
def test_users_list(users: ConfServer, fields: dict[str, str], ok: bool) -> None:
    if ok:
        login(users.port, **fields).close()
    else:
        assert refused(users.port, **fields) == VIOLATION


def test_users_of_accounts_authenticate(kind: str, serve: Serve) -> None:
    conf = "accounts { A: { users: [ {user: a, password: pa} ] } }\n"
    with serve(kind, conf) as server:
        login(server.port, user="a", **{"pass": "pa"}).close()
        assert refused(server.port, user="a", **{"pass": "x"}) == VIOLATION
        assert refused(server.port) == VIOLATION


@pytest.mark.parametrize("first", [b"PING\r\n", b"SUB foo 1\r\n", b"PUB foo 0\r\n\r\n",
                                   b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"])
def test_first_operation_must_be_connect(users: ConfServer, first: bytes) -> None:
    with RawClient(users.port) as client:
        client.send(first)
        assert client.read_until_closed() == VIOLATION


def test_operations_after_a_refused_connect_are_ignored(users: ConfServer) -> None:
    with RawClient(users.port) as client:
        client.send(connect_json(user="alice", **{"pass": "x"}) + b"SUB foo 1\r\nPING\r\n")
        assert client.read_until_closed() == VIOLATION


def test_second_connect_authenticates_again(users: ConfServer) -> None:
    with login(users.port, user="alice", **{"pass": "s3cret"}) as client:
        client.send(connect_json(user="bob", **{"pass": "hashed-pw"}))
        client.expect(b"PONG\r\n")
        client.send(connect_json(user="bob", **{"pass": "nope"}))
        assert client.read_until_closed() == VIOLATION


# -- no_auth_user --------------------------------------------------------------------------


def test_no_auth_user(kind: str, serve: Serve) -> None:
    with serve(kind, NO_AUTH_CONF) as server:
        with login(server.port) as guest:  # no credentials: guest, with guest's permissions
            guest.send(b"PUB private 0\r\n\r\nPUB public.x 0\r\n\r\nPING\r\n")
            assert guest.read_line() == b"-ERR 'Permissions Violation for Publish to " \
                                        b"\"private\"'\r\n"
            guest.expect(b"PONG\r\n")
        with login(server.port, user="alice", **{"pass": "s3cret"}) as alice:
            alice.send(b"PUB private 0\r\n\r\nPING\r\n")
            alice.expect(b"PONG\r\n")
        assert refused(server.port, user="alice", **{"pass": "x"}) == VIOLATION
        assert refused(server.port, auth_token="x") == VIOLATION


def test_no_auth_user_lets_a_first_operation_in(kind: str, serve: Serve) -> None:
    with serve(kind, NO_AUTH_CONF) as server, RawClient(server.port) as client:
        client.send(b"SUB public.x 1\r\nPUB private 0\r\n\r\nPING\r\n")
        assert until_pong(client) == (
            b"+OK\r\n-ERR 'Permissions Violation for Publish to \"private\"'\r\nPONG\r\n")


def test_no_auth_user_with_a_bcrypt_password_never_matches(kind: str, serve: Serve) -> None:
    """nats-server compares the stored hash with itself through bcrypt, which fails."""
    conf = (f'authorization {{ users: [{{user: a, password: "{HASHED}"}}] }}\n'
            "no_auth_user: a\n")
    with serve(kind, conf) as server:
        assert refused(server.port) == VIOLATION
        login(server.port, user="a", **{"pass": "hashed-pw"}).close()


# -- the auth timer ------------------------------------------------------------------------


@pytest.mark.parametrize("conf", [USERS_CONF, TOKEN_CONF, NO_AUTH_CONF],
                         ids=["users", "token", "no_auth_user"])
def test_silent_client_times_out(kind: str, serve: Serve, conf: str) -> None:
    with serve(kind, conf) as server, RawClient(server.port) as client:
        assert client.read_until_closed(timeout=3) == TIMEOUT
        server.wait_for("Client connection closed: Authentication Timeout")
        assert ("DBG", "Authentication Timeout") in server.messages()


def test_connect_stops_the_timer(users: ConfServer) -> None:
    with login(users.port, user="alice", **{"pass": "s3cret"}) as client:
        assert received(client, 0.8) == b""  # past the 0.5 s timeout, still open
        client.ping_pong()


def test_no_timer_without_auth(kind: str, serve: Serve) -> None:
    with serve(kind, "authorization { timeout: 0.5 }\n") as server, RawClient(server.port) as c:
        assert received(c, 0.8) == b""  # a timeout, but nothing to authenticate
        c.ping_pong()


# -- logs and monitoring -------------------------------------------------------------------


def test_logs_match_reference(serve: Serve) -> None:
    seen = []
    for kind in KINDS:
        with serve(kind, USERS_CONF + "# a server of its own\n") as server:
            mark = len(server.server.lines)
            refused(server.port, user="alice", **{"pass": "x"})
            refused(server.port, auth_token="tok")
            refused(server.port)
            with RawClient(server.port) as client:
                client.send(b"PING\r\n")
                client.read_until_closed()
            with login(server.port, user="alice", **{"pass": "s3cret"}, lang="go") as ok:
                ok.send(b"SUB foo 1\r\nPUB _GR_.x 0\r\n\r\nPING\r\n")
                received(ok, 0.3)
            server.wait_for("Client connection closed: Client Closed", mark)
            seen.append([m for m in server.messages(mark) if m[0] in ("ERR", "WRN")
                         or "closed" in m[1] or "Timeout" in m[1]])
    ours, reference = seen
    assert ours == reference
    assert ('ERR', 'authentication error - User "alice"') in ours
    assert ('ERR', 'authentication error - Token "[REDACTED]"') in ours
    assert ('ERR', 'authentication error') in ours
    assert ('ERR', '"go" - "$G/user:alice" - Publish Violation - Subject "_GR_.x"') in ours
    assert ('DBG', 'Client connection closed: Authentication Failure') in ours


@pytest.mark.parametrize(("conf", "warned"), [
    (SINGLE_CONF, True), (TOKEN_CONF, False), (USERS_CONF, True),
    (f'authorization {{ users: [{{user: b, password: "{HASHED}"}}] }}\n', False),
], ids=["single", "token", "users", "bcrypt"])
def test_plaintext_password_warning(kind: str, serve: Serve, conf: str,
                                    warned: bool) -> None:
    with serve(kind, conf) as server:
        warning = ("WRN", "Plaintext passwords detected, use nkeys or bcrypt")
        assert (warning in server.messages()) is warned


def _connz(server: ServerProcess, query: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{server.http_port}/connz?{query}"
    with urllib.request.urlopen(url, timeout=5) as response:
        conns: list[dict[str, object]] = json.loads(response.read())["connections"]
    return conns


def test_connz_shows_authorized_user(serve: Serve) -> None:
    seen = []
    for kind in KINDS:
        with serve(kind, NO_AUTH_CONF, "-m", "-1") as server:
            refused(server.port, user="alice", **{"pass": "x"})
            with login(server.port, user="alice", **{"pass": "s3cret"}), login(server.port):
                conns = _connz(server.server, "state=all&auth=true")
            seen.append([(c.get("reason"), c.get("authorized_user")) for c in conns])
            url = f"http://127.0.0.1:{server.server.http_port}/varz"
            with urllib.request.urlopen(url, timeout=5) as response:
                varz = json.loads(response.read())
            # The server's own view: required, although no_auth_user clears it in INFO.
            assert (varz["auth_required"], varz["auth_timeout"]) == (True, 0.5)
    assert seen[0] == seen[1] == [
        ("Authentication Failure", "alice"), (None, "alice"), (None, "guest")]


# -- command-line flags ------------------------------------------------------------------


@pytest.mark.parametrize(("args", "good", "bad"), [
    (["--user", "u", "--pass", "p"], {"user": "u", "pass": "p"}, {"user": "u", "pass": "x"}),
    (["--auth", "tok"], {"auth_token": "tok"}, {"auth_token": "x"}),
])
def test_auth_flags(kind: str, args: list[str], good: dict[str, str],
                    bad: dict[str, str]) -> None:
    with ServerProcess(kind, args) as server:
        with RawClient(server.port) as client:
            assert info_of(client)["auth_required"] is True
        login(server.port, **good).close()
        assert refused(server.port, **bad) == VIOLATION


def test_flags_override_the_file(kind: str, serve: Serve) -> None:
    conf = "authorization { user: fileuser, password: filepass, timeout: 0.5 }\n"
    with serve(kind, conf, "--pass", "flagpass") as server:
        login(server.port, user="fileuser", **{"pass": "flagpass"}).close()
        assert refused(server.port, user="fileuser", **{"pass": "filepass"}) == VIOLATION
        with RawClient(server.port) as silent:  # the file's timeout is kept
            assert silent.read_until_closed(timeout=3) == TIMEOUT


def test_auth_flags_parse_into_the_authorization_block() -> None:
    cmd = parse_args(["--user", "u", "--pass=p", "--auth", "t", "-p", "5"])
    assert cmd.options.authorization == Authorization(username="u", password="p", token="t")
    assert cmd.explicit == {"authorization.username", "authorization.password",
                            "authorization.token", "port"}
    file_options = ServerOptions(authorization=Authorization(username="f", password="fp",
                                                             timeout=5.0))
    merged = merge(file_options, parse_args(["--pass", "p"]).options,
                   parse_args(["--pass", "p"]).explicit)
    assert merged.authorization == Authorization(username="f", password="p", timeout=5.0)


# -- nats-py -----------------------------------------------------------------------------


def test_natspy_user_password_and_token(kind: str, serve: Serve) -> None:
    async def scenario(port: int) -> None:
        url = f"nats://127.0.0.1:{port}"
        nc = await nats.connect(url, user="alice", password="s3cret", allow_reconnect=False)
        sub = await nc.subscribe("greet")
        await nc.publish("greet", b"hi")
        assert (await sub.next_msg(timeout=5)).data == b"hi"
        await nc.close()
        with pytest.raises(NatsError, match="Authorization Violation"):
            await nats.connect(url, user="alice", password="nope", allow_reconnect=False,
                               max_reconnect_attempts=0)
        nc = await nats.connect(f"nats://bob:hashed-pw@127.0.0.1:{port}",
                                allow_reconnect=False)
        assert nc.is_connected
        await nc.close()

    with serve(kind, USERS_CONF) as server:
        asyncio.run(scenario(server.port))


def test_natspy_token(kind: str, serve: Serve) -> None:
    async def scenario(port: int) -> None:
        url = f"nats://127.0.0.1:{port}"
        nc = await nats.connect(url, token="t0ken", allow_reconnect=False)
        await nc.flush()
        await nc.close()
        with pytest.raises(NatsError, match="Authorization Violation"):
            await nats.connect(url, token="bad", allow_reconnect=False)

    with serve(kind, TOKEN_CONF) as server:
        asyncio.run(scenario(server.port))


# -- the decision logic, without a server ------------------------------------------------


def test_is_bcrypt() -> None:
    assert is_bcrypt(HASHED) and is_bcrypt("$2y$10$x") and is_bcrypt("$2x$04$")
    assert not is_bcrypt("$2c$10$x") and not is_bcrypt("$2a$1$x") and not is_bcrypt("pw")
    assert not is_bcrypt(" $2a$10$x")


def test_compare_secret() -> None:
    assert compare_secret("pw", "pw") and not compare_secret("pw", "pW")
    assert not compare_secret("pw", "") and compare_secret("", "")
    assert compare_secret(HASHED, "hashed-pw") and not compare_secret(HASHED, "x")
    assert compare_secret(HASHED, "hashed-pw")  # the second time from the cache
    assert not compare_secret("$2a$04$not-a-real-hash", "x")
    long_hash = bcrypt_hash("p" * 72)
    assert compare_secret(long_hash, "p" * 80)  # bcrypt reads 72 bytes, as Go's does


def _auth(**fields: object) -> Authenticator:
    return Authenticator(ServerOptions(**fields))  # type: ignore[arg-type]


def test_authenticator_order_and_fallbacks() -> None:
    open_server = _auth()
    assert not open_server.required
    login_ = open_server.authenticate(Credentials(user="anyone"))
    assert login_ is not None and login_.permissions is None

    both = _auth(authorization=Authorization(username="u", password="p", token="t"))
    assert both.authenticate(Credentials(token="t")) is not None  # the token wins
    assert both.authenticate(Credentials(user="u", password="p")) is None

    users = _auth(authorization=Authorization(users=(User("a", "pa"),)),
                  accounts=(Account("A", users=(User("b", "pb", account="A"),)),))
    found = users.authenticate(Credentials(user="b", password="pb"))
    assert found is not None and found.user.account == "A"
    assert users.authenticate(Credentials(user="b", password="pa")) is None
    assert users.authenticate(Credentials(nkey="UABC")) is None  # nkeys: later work


def test_authenticator_no_auth_user() -> None:
    auth = _auth(authorization=Authorization(users=(User("a", "pa"), User("g", "pg"))),
                 no_auth_user="g")
    assert auth.required and not auth.info_required
    login_ = auth.login_without_connect()
    assert login_ is not None and login_.credentials == Credentials(user="g", password="pg")
    assert auth.authenticate(Credentials()) == login_
    assert auth.authenticate(Credentials(token="x")) is None
    assert _auth(authorization=Authorization(token="t")).login_without_connect() is None


def test_user_is_gone() -> None:
    auth = _auth(authorization=Authorization(users=(User("a", "pa"),)))
    assert not auth.user_is_gone(Credentials(user="a"), "")
    assert auth.user_is_gone(Credentials(user="a"), "A")  # moved account
    assert auth.user_is_gone(Credentials(user="z"), "")
    assert not auth.user_is_gone(Credentials(token="t"), "")
    single = _auth(authorization=Authorization(username="a", password="pa"))
    assert single.user_is_gone(Credentials(user="a"), "")  # as nats-server: no users map


def test_credentials_labels() -> None:
    assert Credentials(user="a", token="t").label() == "user:a"
    assert Credentials(nkey="UX", user="a").who() == 'Nkey "UX"'
    assert Credentials(token="t").who() == 'Token "[REDACTED]"'
    assert Credentials(token="t").shown_user() == "[REDACTED]"
    assert Credentials().who() == "" and Credentials().label() == ""
