"""NKEY authentication on the client port: the INFO nonce, CONNECT ``nkey``/``sig``.

Every wire test runs against pynats and the real nats-server from the same
configuration file: raw sockets for INFO and the exact ``-ERR`` bytes, nats-py
(``nkeys_seed_str`` / ``nkeys_seed``) for what an application sees. The unit tests at
the end check the pure decision in ``pynats.server.auth``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import nats
import pytest
from nats.errors import Error as NatsError

from auth_support import (
    KINDS,
    ConfServer,
    Serve,
    connect_json,
    info_of,
    login,
    received,
    refused,
    shared_servers,
)
from harness import RawClient
from pynats import nkeys
from pynats.server.auth import Authenticator, Credentials, new_nonce, nkey_signature_problem
from pynats.server.config.options import (
    Account,
    Authorization,
    Permissions,
    ServerOptions,
    SubjectPermission,
    User,
)

VIOLATION = b"-ERR 'Authorization Violation'\r\n"
#: Fixed key pairs (seeds of fixed bytes), so that failures are reproducible.
LIMITED = nkeys.KeyPair(nkeys.encode_seed(nkeys.Prefix.USER, bytes(range(32))))
FREE = nkeys.KeyPair(nkeys.encode_seed(nkeys.Prefix.USER, bytes(range(32, 64))))
STRANGER = nkeys.KeyPair(nkeys.encode_seed(nkeys.Prefix.USER, bytes(range(64, 96))))
ACCOUNT_USER = nkeys.KeyPair(nkeys.encode_seed(nkeys.Prefix.USER, bytes(range(96, 128))))

LIMITED_ENTRY = (f'{{nkey: {LIMITED.public_key}, '
                 'permissions: {publish: "allowed.>", subscribe: "allowed.>"}}')
FREE_ENTRY = f"{{nkey: {FREE.public_key}}}"
ALICE_ENTRY = "{user: alice, password: s3cret}"


def users_conf(*entries: str) -> str:
    """An authorization block with these ``users`` entries (and a short auth timeout)."""
    lines = "".join(f"    {entry}\n" for entry in entries)
    return f"authorization {{\n  timeout: 0.5\n  users: [\n{lines}  ]\n}}\n"


NKEY_CONF = users_conf(LIMITED_ENTRY, FREE_ENTRY, ALICE_ENTRY)
USERS_ONLY_CONF = "authorization { users: [{user: alice, password: s3cret}] }\n"
ACCOUNT_NKEY_CONF = f"accounts {{ A: {{ users: [{{nkey: {ACCOUNT_USER.public_key}}}] }} }}\n"


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)



@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """``serve(kind, conf, *args)``: a running server shared by the module's tests."""
    yield from shared_servers(tmp_path_factory, "nkey")


@pytest.fixture
def nkey_server(kind: str, serve: Serve) -> Iterator[ConfServer]:
    with serve(kind, NKEY_CONF) as server:
        yield server


def _nonce(client: RawClient) -> str:
    nonce = info_of(client)["nonce"]
    assert isinstance(nonce, str)
    return nonce


def _std_b64(sig: bytes) -> str:
    return base64.b64encode(sig).decode()


def nkey_login(port: int, pair: nkeys.KeyPair, **fields: object) -> RawClient:
    """A raw client logged in as ``pair`` (raw URL-safe signature, as nats.go sends)."""
    client = RawClient(port)
    sig = pair.sign_nonce(_nonce(client))
    client.send(connect_json(nkey=pair.public_key, sig=sig, **fields))
    client.expect(b"PONG\r\n")
    return client


def nkey_refused(port: int, nkey: str, sign: Callable[[str], object]) -> bytes:
    """What the server sends after CONNECT with ``nkey`` and ``sign(nonce)`` as ``sig``."""
    with RawClient(port) as client:
        sig = sign(_nonce(client))
        fields = {"nkey": nkey} if sig is None else {"nkey": nkey, "sig": sig}
        client.send(connect_json(**fields))
        return client.read_until_closed()


# -- INFO --------------------------------------------------------------------------------


def test_info_carries_a_fresh_nonce(nkey_server: ConfServer) -> None:
    nonces = set()
    for _ in range(3):
        with RawClient(nkey_server.port) as client:
            info = info_of(client)
            nonce = _nonce(client)
            assert re.fullmatch(r"[A-Za-z0-9_-]{15}", nonce)  # 11 bytes, raw URL base64
            keys = list(info)
            assert keys.index("nonce") == keys.index("client_ip") + 1
            assert info["auth_required"] is True
            nonces.add(nonce)
    assert len(nonces) == 3


@pytest.mark.parametrize(("conf", "has_nonce"), [
    (USERS_ONLY_CONF, False), ("max_payload: 1000\n", False), (ACCOUNT_NKEY_CONF, True),
], ids=["users", "open", "account_nkey"])
def test_nonce_only_when_nkey_users_are_configured(kind: str, serve: Serve, conf: str,
                                                   has_nonce: bool) -> None:
    with serve(kind, conf) as server, RawClient(server.port) as client:
        assert ("nonce" in info_of(client)) is has_nonce


def test_info_after_connect_has_no_nonce(nkey_server: ConfServer) -> None:
    with nkey_login(nkey_server.port, FREE, protocol=1) as client:
        line = client.read_line()
        while line == b"PING\r\n":
            line = client.read_line()
        assert line.startswith(b"INFO ")
        info = json.loads(line[5:])
        assert info["connect_info"] is True and "nonce" not in info


# -- CONNECT -----------------------------------------------------------------------------


def test_raw_url_signature_logs_in(nkey_server: ConfServer) -> None:
    nkey_login(nkey_server.port, FREE).close()


def test_standard_padded_signature_logs_in(nkey_server: ConfServer) -> None:
    client = RawClient(nkey_server.port)
    sig = _std_b64(FREE.sign(_nonce(client).encode()))
    client.send(connect_json(nkey=FREE.public_key, sig=sig))
    client.expect(b"PONG\r\n")
    client.close()


@pytest.mark.parametrize(("nkey", "sign"), [
    (FREE.public_key, lambda nonce: FREE.sign_nonce(nonce + "x")),  # another nonce
    (FREE.public_key, lambda nonce: STRANGER.sign_nonce(nonce)),  # another key
    (FREE.public_key, lambda nonce: None),  # no sig
    (FREE.public_key, lambda nonce: ""),
    (FREE.public_key, lambda nonce: "not base64!"),
    (FREE.public_key, lambda nonce: "AAAA"),  # base64, but not a signature
    (STRANGER.public_key, lambda nonce: STRANGER.sign_nonce(nonce)),  # not configured
    ("UABC", lambda nonce: FREE.sign_nonce(nonce)),
], ids=["other_nonce", "other_key", "no_sig", "empty_sig", "not_base64", "short_sig",
        "unknown_nkey", "bad_nkey"])
def test_bad_nkey_logins_are_refused(nkey_server: ConfServer, nkey: str,
                                     sign: Callable[[str], object]) -> None:
    assert nkey_refused(nkey_server.port, nkey, sign) == VIOLATION


def test_nkey_takes_precedence_over_a_password(nkey_server: ConfServer) -> None:
    """A client that sends an nkey is judged as an nkey user, even with good user/pass."""
    with RawClient(nkey_server.port) as client:
        client.send(connect_json(nkey=FREE.public_key, user="alice", **{"pass": "s3cret"}))
        assert client.read_until_closed() == VIOLATION


def test_password_users_still_log_in(nkey_server: ConfServer) -> None:
    login(nkey_server.port, user="alice", **{"pass": "s3cret"}).close()
    assert refused(nkey_server.port, user="alice", **{"pass": "x"}) == VIOLATION
    assert refused(nkey_server.port) == VIOLATION


def test_account_nkey_user_logs_in(kind: str, serve: Serve) -> None:
    with serve(kind, ACCOUNT_NKEY_CONF) as server:
        nkey_login(server.port, ACCOUNT_USER).close()
        assert nkey_refused(server.port, FREE.public_key, FREE.sign_nonce) == VIOLATION


# -- permissions -------------------------------------------------------------------------


def test_nkey_user_permissions_apply(nkey_server: ConfServer) -> None:
    with nkey_login(nkey_server.port, LIMITED) as client:
        client.send(b"SUB allowed.x 1\r\nSUB denied.x 2\r\nPUB allowed.x 2\r\nhi\r\n"
                    b"PUB denied.x 2\r\nno\r\nPING\r\n")
        got = received(client, 0.5)
    assert b"MSG allowed.x 1 2\r\nhi\r\n" in got
    assert b"-ERR 'Permissions Violation for Subscription to \"denied.x\"'\r\n" in got
    assert b"-ERR 'Permissions Violation for Publish to \"denied.x\"'\r\n" in got


def test_nkey_user_without_permissions_is_free(nkey_server: ConfServer) -> None:
    with nkey_login(nkey_server.port, FREE) as client:
        client.send(b"SUB denied.x 1\r\nPUB denied.x 2\r\nok\r\nPING\r\n")
        got = received(client, 0.5)
    assert b"MSG denied.x 1 2\r\nok\r\n" in got and b"-ERR" not in got


# -- logs and monitoring -------------------------------------------------------------------


def test_logs_match_reference(serve: Serve) -> None:
    seen = []
    for kind in KINDS:
        with serve(kind, NKEY_CONF + "# a server of its own\n") as server:
            mark = len(server.server.lines)
            nkey_refused(server.port, FREE.public_key, lambda nonce: STRANGER.sign_nonce(nonce))
            nkey_refused(server.port, FREE.public_key, lambda nonce: None)
            nkey_refused(server.port, FREE.public_key, lambda nonce: "not base64!")
            nkey_refused(server.port, STRANGER.public_key, STRANGER.sign_nonce)
            with nkey_login(server.port, FREE):
                pass
            server.wait_for("Client connection closed: Client Closed", mark)
            seen.append([m for m in server.messages(mark)
                         if m[0] == "ERR" or "Signature" in m[1] or "closed" in m[1]])
    ours, reference = seen
    assert ours == reference
    who = f'authentication error - Nkey "{FREE.public_key}"'
    assert ours[:3] == [("DBG", "Signature not verified"), ("ERR", who),
                        ("DBG", "Client connection closed: Authentication Failure")]
    assert ("DBG", "Signature missing") in ours
    assert ("DBG", "Signature not valid base64") in ours
    assert ("ERR", f'authentication error - Nkey "{STRANGER.public_key}"') in ours
    assert ("DBG", f'"$G/nkey:{FREE.public_key}" - Client connection closed: Client Closed'
            ) in ours


def test_connz_shows_the_nkey(serve: Serve) -> None:
    seen = []
    for kind in KINDS:
        with serve(kind, NKEY_CONF, "-m", "-1") as server, nkey_login(server.port, FREE):
            url = f"http://127.0.0.1:{server.server.http_port}/connz?auth=true"
            with urllib.request.urlopen(url, timeout=5) as response:
                conns = json.loads(response.read())["connections"]
            seen.append([c.get("authorized_user") for c in conns])
    assert seen[0] == seen[1] == [FREE.public_key]


# -- reload ------------------------------------------------------------------------------


def test_reload_keeps_nkey_clients_and_applies_new_permissions(kind: str,
                                                               tmp_path: Path) -> None:
    """Reloaded, the nkey client is checked again (same nonce, same signature) and stays."""
    limited_free = f'{{nkey: {FREE.public_key}, permissions: {{publish: "x"}}}}'
    with ConfServer(kind, tmp_path / "n.conf", NKEY_CONF) as server:
        gone = nkey_login(server.port, LIMITED)
        with nkey_login(server.port, FREE) as client:
            server.reload(users_conf(limited_free, ALICE_ENTRY))
            client.send(b"PUB y 0\r\n\r\nPING\r\n")
            got = received(client, 0.5)
            assert got == b"-ERR 'Permissions Violation for Publish to \"y\"'\r\nPONG\r\n"
        assert gone.read_until_closed() == b""  # its user is gone: closed, no error
        gone.close()


# -- nats-py -------------------------------------------------------------------------------


def test_natspy_nkeys_seed(kind: str, serve: Serve, tmp_path: Path) -> None:
    seed_file = tmp_path / "user.nk"
    seed_file.write_text(FREE.seed + "\n")

    async def scenario(port: int) -> None:
        url = f"nats://127.0.0.1:{port}"
        nc = await nats.connect(url, nkeys_seed_str=LIMITED.seed, allow_reconnect=False)
        sub = await nc.subscribe("allowed.greet")
        await nc.publish("allowed.greet", b"hi")
        assert (await sub.next_msg(timeout=5)).data == b"hi"
        await nc.close()
        nc = await nats.connect(url, nkeys_seed=str(seed_file), allow_reconnect=False)
        await nc.flush()
        await nc.close()
        with pytest.raises(NatsError, match="Authorization Violation"):
            await nats.connect(url, nkeys_seed_str=STRANGER.seed, allow_reconnect=False)

    with serve(kind, NKEY_CONF) as server:
        asyncio.run(scenario(server.port))


# -- the decision logic, without a server ------------------------------------------------


def _signed(pair: nkeys.KeyPair, nonce: str = "n0nce") -> Credentials:
    return Credentials(nkey=pair.public_key, sig=pair.sign_nonce(nonce), nonce=nonce)


def test_authenticator_nkey_users() -> None:
    perms = Permissions(publish=SubjectPermission(allow=("a",)))
    auth = Authenticator(ServerOptions(
        authorization=Authorization(users=(User(nkey=FREE.public_key, permissions=perms),
                                           User("alice", "pw"))),
        accounts=(Account("A", users=(User(nkey=ACCOUNT_USER.public_key, account="A"),)),)))
    assert auth.required and auth.nonce_required
    found = auth.authenticate(_signed(FREE))
    assert found is not None and found.permissions == perms
    in_account = auth.authenticate(_signed(ACCOUNT_USER))
    assert in_account is not None and in_account.user.account == "A"
    assert auth.authenticate(_signed(STRANGER)) is None
    stale = Credentials(nkey=FREE.public_key, sig=FREE.sign_nonce("old"), nonce="new")
    assert auth.authenticate(stale) is None
    assert auth.authenticate(Credentials(user="alice", password="pw")) is not None
    assert not auth.user_is_gone(_signed(FREE), "")
    assert auth.user_is_gone(_signed(STRANGER), "")


def test_nkey_refusal_reasons() -> None:
    auth = Authenticator(ServerOptions(
        authorization=Authorization(users=(User(nkey=FREE.public_key),))))
    assert auth.nkey_refusal(_signed(FREE)) == ""
    assert auth.nkey_refusal(_signed(STRANGER)) == ""  # unknown keys: no detail
    assert auth.nkey_refusal(Credentials(nkey=FREE.public_key)) == "Signature missing"
    assert auth.nkey_refusal(Credentials(nkey=FREE.public_key, sig="a b")) == (
        "Signature not valid base64")
    wrong = Credentials(nkey=FREE.public_key, sig=FREE.sign_nonce("x"), nonce="y")
    assert auth.nkey_refusal(wrong) == "Signature not verified"
    assert nkey_signature_problem(Credentials(nkey="UABC", sig="AAAA")) == (
        "User nkey not valid")


def test_no_nonce_without_nkey_users() -> None:
    auth = Authenticator(ServerOptions(authorization=Authorization(users=(User("a", "b"),))))
    assert not auth.nonce_required
    assert auth.nkey_refusal(Credentials(nkey=FREE.public_key)) == ""


def test_new_nonce() -> None:
    nonces = {new_nonce() for _ in range(50)}
    assert len(nonces) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{15}", n) for n in nonces)
