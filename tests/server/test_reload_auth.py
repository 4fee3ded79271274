"""Authorization changed by a configuration reload (SIGHUP), against both servers.

Each test starts a server from a file, connects clients, rewrites the file and sends
SIGHUP; :meth:`ConfServer.reload` returns once the reload is logged as done (never a
sleep), and by then connected clients have been re-checked. The expectations are the
reference's, including its quirks (see ``test_single_user_clients_are_closed``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import AuthorizationError

from auth_support import KINDS, ConfServer, login, messages, received, refused, until_pong
from harness import RawClient

VIOLATION = b"-ERR 'Authorization Violation'\r\n"

USERS = """
authorization {{
  users: [
    {{user: alice, password: a, permissions: {alice}}}
    {{user: bob, password: b}}
    {{user: carol, password: {carol}}}
  ]
}}
"""
ALICE = '{publish: "foo.>", subscribe: "foo.>"}'


def users_conf(alice: str = ALICE, carol: str = "c", bob: bool = True) -> str:
    text = USERS.format(alice=alice, carol=carol)
    return text if bob else text.replace("    {user: bob, password: b}\n", "")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def serve(kind: str, tmp_path: Path, text: str) -> ConfServer:
    return ConfServer(kind, tmp_path / "server.conf", text)


@pytest.fixture
def server(kind: str, tmp_path: Path) -> Iterator[ConfServer]:
    with serve(kind, tmp_path, users_conf()) as running:
        yield running


def as_user(server: ConfServer, name: str, password: str) -> RawClient:
    return login(server.port, user=name, **{"pass": password})


def assert_open(client: RawClient) -> None:
    client.send(b"PING\r\n")
    assert until_pong(client) == b"PONG\r\n"


# -- who stays connected ----------------------------------------------------------------


def test_password_change(server: ConfServer) -> None:
    with as_user(server, "carol", "c") as carol, as_user(server, "alice", "a") as alice:
        lines = server.reload(users_conf(carol="c2"))
        assert carol.read_until_closed() == VIOLATION
        assert_open(alice)
    assert ("ERR", '"$G/user:carol" - authentication error - User "carol"') in messages(lines)
    assert ("DBG", '"$G/user:carol" - Client connection closed: Authentication Failure'
            ) in messages(lines)
    assert refused(server.port, user="carol", **{"pass": "c"}) == VIOLATION
    as_user(server, "carol", "c2").close()


def test_removed_user_is_closed_without_an_error(server: ConfServer) -> None:
    with as_user(server, "bob", "b") as bob, as_user(server, "alice", "a") as alice:
        lines = server.reload(users_conf(bob=False))
        assert bob.read_until_closed() == b""
        assert_open(alice)
    assert ("DBG", '"$G/user:bob" - Client connection closed: Client Closed') in messages(lines)
    assert refused(server.port, user="bob", **{"pass": "b"}) == VIOLATION


def test_single_user_clients_are_closed_on_any_auth_change(kind: str, tmp_path: Path) -> None:
    """nats-server finds no user "alice" in its (empty) users map: closed, no error."""
    with serve(kind, tmp_path, "authorization { user: alice, password: a }\n") as server:
        with as_user(server, "alice", "a") as alice:
            server.reload("authorization { user: alice, password: a, timeout: 3 }\n")
            assert alice.read_until_closed() == b""
        as_user(server, "alice", "a").close()


def test_token_change(kind: str, tmp_path: Path) -> None:
    with serve(kind, tmp_path, "authorization { token: t1 }\n") as server:
        with login(server.port, auth_token="t1") as client:
            lines = server.reload("authorization { token: t2 }\n")
            assert client.read_until_closed() == VIOLATION
        login(server.port, auth_token="t2").close()
    assert ("ERR", '"$G/token" - authentication error - Token "[REDACTED]"') in messages(lines)


def test_auth_added_to_an_open_server(kind: str, tmp_path: Path) -> None:
    with serve(kind, tmp_path, "max_payload: 1000\n") as server:
        anonymous, raw = login(server.port), RawClient(server.port)
        bob = login(server.port, user="bob", **{"pass": "b"})
        server.reload(users_conf())
        assert anonymous.read_until_closed() == VIOLATION
        assert raw.read_until_closed() == VIOLATION  # had not sent CONNECT yet
        assert_open(bob)  # its credentials happen to be valid now
        for client in (anonymous, raw, bob):
            client.close()


def test_no_auth_user_cannot_change(kind: str, tmp_path: Path) -> None:
    text = users_conf() + "no_auth_user: bob\n"
    with serve(kind, tmp_path, text) as server, login(server.port) as bob:
        lines = server.reload(users_conf() + "no_auth_user: carol\n")
        assert any("config reload not supported for NoAuthUser: old=bob, new=carol" in line
                   for line in lines)
        assert_open(bob)


# -- permissions ------------------------------------------------------------------------


def test_permissions_change(server: ConfServer) -> None:
    new_alice = '{publish: {allow: "foo.>", deny: "foo.z"}, subscribe: ["foo.x", "foo.q g1"]}'
    with as_user(server, "alice", "a") as alice, as_user(server, "bob", "b") as bob:
        alice.send(b"SUB foo.x 1\r\nSUB foo.y 2\r\nSUB foo.q g2 3\r\nSUB foo.q g1 4\r\n"
                   b"PUB foo.z 0\r\n\r\nPING\r\n")
        alice.expect(b"PONG\r\n")
        lines = server.reload(users_conf(alice=new_alice))
        assert received(alice, 0.3) == (
            b"-ERR 'Permissions Violation for Subscription to \"foo.y\" (sid \"2\")'\r\n"
            b"-ERR 'Permissions Violation for Subscription to \"foo.q\" using queue \"g2\" "
            b"(sid \"3\")'\r\n")
        alice.send(b"PUB foo.z 0\r\n\r\nPUB foo.x 0\r\n\r\nPING\r\n")
        assert until_pong(alice) == (
            b"-ERR 'Permissions Violation for Publish to \"foo.z\"'\r\n"
            b"MSG foo.x 1 0\r\n\r\nPONG\r\n")
        bob.send(b"PUB foo.y 1\r\ny\r\nPUB foo.q 1\r\nq\r\nPING\r\n")  # foo.y: no longer
        bob.expect(b"PONG\r\n")
        alice.send(b"PING\r\n")
        assert until_pong(alice) == b"MSG foo.q 4 1\r\nq\r\nPONG\r\n"
    assert [m for m in messages(lines) if m[0] == "INF" and m[1].startswith("Removed")] == [
        ("INF", 'Removed sub "foo.y" (sid "2") for User "alice" - not authorized'),
        ("INF", 'Removed sub "foo.q" using queue "g2" (sid "3") for User "alice" - '
                "not authorized"),
    ]


def test_permissions_given_and_taken_away(server: ConfServer) -> None:
    with as_user(server, "bob", "b") as bob:
        bob.send(b"PUB anything 0\r\n\r\nPING\r\n")
        bob.expect(b"PONG\r\n")
        given = users_conf().replace("{user: bob, password: b}",
                                     '{user: bob, password: b, permissions: {publish: "x"}}')
        server.reload(given)
        bob.send(b"PUB anything 0\r\n\r\nPUB x 0\r\n\r\nPING\r\n")
        assert until_pong(bob) == (
            b"-ERR 'Permissions Violation for Publish to \"anything\"'\r\nPONG\r\n")
        server.reload(users_conf())
        bob.send(b"PUB anything 0\r\n\r\nPING\r\n")
        assert until_pong(bob) == b"PONG\r\n"


def test_reload_notices(server: ConfServer) -> None:
    lines = server.reload(users_conf(carol="c2").replace(
        "authorization {", "authorization {\n  timeout: 3"))
    notices = [text for level, text in messages(lines) if text.startswith("Reloaded")]
    assert notices[:3] == ["Reloaded: authorization users", "Reloaded: accounts",
                           "Reloaded: authorization timeout = 3"]
    assert notices[-1].startswith("Reloaded server configuration (sha256:")


@pytest.mark.parametrize(("before", "after", "notice"), [
    ("authorization { user: u, password: p }", "authorization { user: u, password: q }",
     "Reloaded: authorization password"),
    ("authorization { user: u, password: p }", "authorization { user: v, password: p }",
     "Reloaded: authorization username"),
    ("authorization { token: a }", "authorization { token: b }",
     "Reloaded: authorization token"),
])
def test_single_field_notices(kind: str, tmp_path: Path, before: str, after: str,
                              notice: str) -> None:
    with serve(kind, tmp_path, before + "\n") as server:
        lines = server.reload(after + "\n")
    notices = [text for _, text in messages(lines) if text.startswith("Reloaded:")]
    assert notices == ["Reloaded: authorization users", "Reloaded: accounts", notice]


# -- nats-py ----------------------------------------------------------------------------


def test_natspy_client_is_disconnected_when_its_password_changes(server: ConfServer) -> None:
    async def scenario() -> None:
        errors: list[Exception] = []
        closed = asyncio.Event()

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        async def on_closed() -> None:
            closed.set()

        nc = await nats.connect(f"nats://carol:c@127.0.0.1:{server.port}",
                                error_cb=on_error, closed_cb=on_closed, allow_reconnect=False)
        await nc.flush()
        await asyncio.to_thread(server.reload, users_conf(carol="c2"))
        await asyncio.wait_for(closed.wait(), 5)
        assert nc.is_closed and not errors
        assert isinstance(nc.last_error, AuthorizationError)  # from 'Authorization Violation'

    asyncio.run(scenario())
