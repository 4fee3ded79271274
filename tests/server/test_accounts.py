"""Accounts: subject isolation and stream imports, against pynats and nats-server.

Both servers run the same configuration file: accounts A (two users, exporting the
``a.>`` stream) and B (one user, importing it with prefix ``from_a``). Every expectation
is what nats-server does.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from auth_support import KINDS, ConfServer, Serve, login, received, shared_servers
from harness import RawClient

CONF = """
accounts {
  A: { users: [{user: a1, password: a1}, {user: a2, password: a2}],
       exports: [{stream: "a.>"}] }
  B: { users: [{user: b1, password: b1}],
       imports: [{stream: {account: A, subject: "a.>"}, prefix: "from_a"}] }
}
"""
#: What ``serve`` starts: the configuration above, with monitoring on a free port.
SERVER = (CONF, "-m", "-1")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One server per kind for the whole module (tests only change connections)."""
    yield from shared_servers(tmp_path_factory, "accounts")


def user(server: ConfServer, name: str) -> RawClient:
    """A client logged in as ``name`` (password = name), with headers and 503s."""
    return login(server.port, user=name, headers=True, no_responders=True, **{"pass": name})


def subscribed(client: RawClient, *subs: bytes) -> RawClient:
    client.send(b"".join(subs) + b"PING\r\n")
    client.expect(b"PONG\r\n")
    return client


def test_accounts_do_not_see_each_other(kind: str, serve: Serve) -> None:
    with serve(kind, *SERVER) as server, user(server, "a1") as a1, user(server, "a2") as a2, \
            user(server, "b1") as b1:
        subscribed(a2, b"SUB x.> 1\r\n")
        subscribed(b1, b"SUB x.> 1\r\n")
        a1.send(b"PUB x.y 2\r\nhi\r\n")
        assert received(a2) == b"MSG x.y 1 2\r\nhi\r\n"
        assert received(b1) == b""
        b1.send(b"PUB x.z 3\r\nbee\r\n")
        assert received(b1) == b"MSG x.z 1 3\r\nbee\r\n"
        assert received(a2) == b""


def test_queue_groups_are_per_account(kind: str, serve: Serve) -> None:
    with serve(kind, *SERVER) as server, user(server, "a1") as a1, user(server, "a2") as a2, \
            user(server, "b1") as b1:
        subscribed(a2, b"SUB q.s grp 1\r\n")
        subscribed(b1, b"SUB q.s grp 1\r\n")
        a1.send(b"PUB q.s 1\r\na\r\nPUB q.s 1\r\nb\r\n")
        b1.send(b"PUB q.s 1\r\nc\r\n")
        assert received(a2) == b"MSG q.s 1 1\r\na\r\nMSG q.s 1 1\r\nb\r\n"
        assert received(b1) == b"MSG q.s 1 1\r\nc\r\n"


def test_request_without_responders_in_own_account(kind: str, serve: Serve) -> None:
    with serve(kind, *SERVER) as server, user(server, "a2") as a2, user(server, "b1") as b1:
        subscribed(a2, b"SUB svc 1\r\n")
        subscribed(b1, b"SUB _INBOX.b 9\r\n")
        b1.send(b"PUB svc _INBOX.b 3\r\nreq\r\n")
        got = received(b1)
        assert got.startswith(b"HMSG _INBOX.b 9 ") and b"503" in got
        assert received(a2) == b""


def test_stream_import_with_prefix(kind: str, serve: Serve) -> None:
    with serve(kind, *SERVER) as server, user(server, "a1") as a1, user(server, "a2") as a2, \
            user(server, "b1") as b1:
        subscribed(a2, b"SUB a.> 1\r\n")
        subscribed(b1, b"SUB > 1\r\n")
        a1.send(b"PUB a.x r.1 2\r\nhi\r\nPUB other 2\r\nno\r\n")
        assert received(a2) == b"MSG a.x 1 r.1 2\r\nhi\r\n"
        assert received(b1) == b"MSG from_a.a.x 1 r.1 2\r\nhi\r\n"
        a1.send(b"HPUB a.h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
        assert received(b1) == b"HMSG from_a.a.h 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
        assert received(a2) == b"HMSG a.h 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
        b1.send(b"PUB a.x 2\r\nhi\r\n")  # imports go one way only
        assert received(a2) == b""


def test_connz_shows_the_account(serve: Serve) -> None:
    seen = []
    for kind in KINDS:
        with serve(kind, *SERVER) as server, user(server, "a1"), user(server, "b1"):
            seen.append((_connz(server, "auth=1"), _connz(server, "auth=1&acc=B")))
    assert seen[0] == seen[1] == ([("A", "a1"), ("B", "b1")], [("B", "b1")])


def test_info_names_the_remote_account(kind: str, serve: Serve) -> None:
    with serve(kind, *SERVER) as server, RawClient(server.port) as client:
        client.send(b'CONNECT {"protocol":1,"verbose":false,"user":"b1","pass":"b1"}\r\n'
                    b"PING\r\n")
        client.expect(b"PONG\r\n")
        line = client.read_line()
        assert line.startswith(b"INFO ")
        assert json.loads(line[5:])["remote_account"] == "B"


def _connz(server: ConfServer, query: str) -> list[tuple[object, object]]:
    url = f"http://127.0.0.1:{server.server.http_port}/connz?{query}"
    with urllib.request.urlopen(url, timeout=5) as response:
        conns = json.loads(response.read())["connections"]
    return [(conn.get("account"), conn.get("authorized_user")) for conn in conns]


def test_log_prefix_names_the_account(kind: str, serve: Serve) -> None:
    with serve(kind, *SERVER) as server:
        mark = len(server.server.lines)
        user(server, "a2").close()
        server.wait_for('"A/user:a2" - Client connection closed', mark)


def test_reload_closes_a_user_moved_to_another_account(
        kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("accounts-reload") / "server.conf"
    with ConfServer(kind, path, CONF) as server, user(server, "a1") as a1, \
            user(server, "a2") as a2:
        server.reload(CONF.replace("{user: a2, password: a2}", "").replace(
            "{user: b1, password: b1}", "{user: b1, password: b1}, {user: a2, password: a2}"))
        assert a2.read_until_closed() == b""
        a1.ping_pong()
