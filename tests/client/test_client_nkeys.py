"""NKEY and ``.creds`` (JWT) authentication, from the asyncio and the blocking client.

*nkey users* run against both servers, each started from the same configuration file
(``authorization { users: [{nkey: U...}] }``): the client signs the INFO nonce with its
seed and sends ``nkey`` + ``sig``.

*Creds files* need a server in operator mode: the operator, account and user JWTs are
made here with :func:`pynats.nkeys.encode_jwt` and the account JWT is preloaded into a
``resolver: MEMORY``; they run against both servers too.

The unit tests at the end check the pure part (what goes into CONNECT) and the option
checks, with no server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clienttools import TIMEOUT

import pynats.sync
from harness import ServerProcess
from pynats import nkeys
from pynats.client import ConnectOptions, connect
from pynats.client.core import ServerInfo, connect_options
from pynats.client.credentials import Credentials, load_credentials, sign_challenge
from pynats.client.pool import parse_url
from pynats.errors import AuthorizationError, ConfigError
from pynats.nkeys import KeyPair, Prefix, encode_seed

#: Fixed key pairs (seeds of fixed bytes), so that failures are reproducible.
USER = KeyPair(encode_seed(Prefix.USER, bytes(range(32))))
STRANGER = KeyPair(encode_seed(Prefix.USER, bytes(range(32, 64))))
OPERATOR = KeyPair(encode_seed(Prefix.OPERATOR, bytes(range(64, 96))))
ACCOUNT = KeyPair(encode_seed(Prefix.ACCOUNT, bytes(range(96, 128))))
SYSTEM = KeyPair(encode_seed(Prefix.ACCOUNT, bytes(range(128, 160))))
UNKNOWN_ACCOUNT = KeyPair(encode_seed(Prefix.ACCOUNT, bytes(range(160, 192))))

def conf_server(kind: str, path: Path, text: str) -> ServerProcess:
    path.write_text(text)
    return ServerProcess(kind, ["-c", str(path)])


@pytest.fixture
def nkey_server(kind: str, tmp_path: Path) -> Iterator[ServerProcess]:
    text = f"authorization {{ users: [{{nkey: {USER.public_key}}}] }}\n"
    with conf_server(kind, tmp_path / "nkey.conf", text) as srv:
        yield srv


# -- nkey users (both servers) ---------------------------------------------------------------


async def test_nkey_asyncio(nkey_server: ServerProcess) -> None:
    async with await connect(nkey_server.url, nkey_seed=USER.seed) as client:
        assert client.server_info.auth_required and client.server_info.nonce
        sub = client.subscribe("nk.a")
        client.publish("nk.a", b"signed")
        assert (await sub.next_msg(TIMEOUT)).data == b"signed"


def test_nkey_blocking(nkey_server: ServerProcess) -> None:
    with pynats.sync.connect(nkey_server.url, nkey_seed=USER.seed) as client:
        assert client.server_info.nonce
        sub = client.subscribe("nk.s")
        client.publish("nk.s", b"signed")
        assert sub.next_msg(TIMEOUT).data == b"signed"


@pytest.mark.parametrize("creds", [{"nkey_seed": STRANGER.seed}, {}],
                         ids=["unknown-key", "no-key"])
async def test_nkey_refused_asyncio(nkey_server: ServerProcess, creds: dict[str, str]) -> None:
    with pytest.raises(AuthorizationError, match=r"(?i)authorization violation"):
        await connect(nkey_server.url, connect_timeout=3.0, **creds)


@pytest.mark.parametrize("creds", [{"nkey_seed": STRANGER.seed}, {}],
                         ids=["unknown-key", "no-key"])
def test_nkey_refused_blocking(nkey_server: ServerProcess, creds: dict[str, str]) -> None:
    with pytest.raises(AuthorizationError, match=r"(?i)authorization violation"):
        pynats.sync.connect(nkey_server.url, connect_timeout=3.0, **creds)


# -- creds files (operator mode, both servers) -----------------------------------------------


def _claims(subject: KeyPair, name: str, nats: dict[str, Any]) -> dict[str, Any]:
    return {"jti": f"{name.upper()}{int(time.time())}", "iat": int(time.time()),
            "name": name, "sub": subject.public_key, "nats": nats}


_UNLIMITED = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
              "wildcards": True, "conn": -1, "leaf": -1}


def account_jwt(account: KeyPair, name: str) -> str:
    nats = {"limits": _UNLIMITED, "default_permissions": {"pub": {}, "sub": {}},
            "type": "account", "version": 2}
    return nkeys.encode_jwt(_claims(account, name, nats), OPERATOR)


def user_jwt(user: KeyPair, account: KeyPair) -> str:
    nats = {"pub": {}, "sub": {}, "subs": -1, "data": -1, "payload": -1, "type": "user",
            "version": 2}
    return nkeys.encode_jwt(_claims(user, "user", nats), account)


def operator_conf() -> str:
    nats = {"type": "operator", "version": 2, "system_account": SYSTEM.public_key}
    operator = nkeys.encode_jwt(_claims(OPERATOR, "op", nats), OPERATOR)
    return (f"operator: {operator}\nsystem_account: {SYSTEM.public_key}\n"
            f"resolver: MEMORY\nresolver_preload: {{\n"
            f"  {ACCOUNT.public_key}: {account_jwt(ACCOUNT, 'app')}\n"
            f"  {SYSTEM.public_key}: {account_jwt(SYSTEM, 'SYS')}\n}}\n")


def creds_file(path: Path, jwt: str, seed: str) -> Path:
    path.write_text(f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
                    "************************* IMPORTANT *************************\n"
                    "NKEY Seed printed below can be used to sign and prove identity.\n\n"
                    f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n")
    return path


@pytest.fixture
def operator_server(kind: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with conf_server(kind, tmp_path / "operator.conf", operator_conf()) as srv:
        yield srv


async def test_creds_asyncio(operator_server: ServerProcess, tmp_path: Path) -> None:
    creds = creds_file(tmp_path / "user.creds", user_jwt(USER, ACCOUNT), USER.seed)
    async with await connect(operator_server.url, creds_file=creds) as client:
        assert client.server_info.nonce
        sub = client.subscribe("jwt.a")
        client.publish("jwt.a", b"with jwt")
        assert (await sub.next_msg(TIMEOUT)).data == b"with jwt"


def test_creds_blocking(operator_server: ServerProcess, tmp_path: Path) -> None:
    creds = creds_file(tmp_path / "user.creds", user_jwt(USER, ACCOUNT), USER.seed)
    with pynats.sync.connect(operator_server.url, creds_file=str(creds)) as client:
        sub = client.subscribe("jwt.s")
        client.publish("jwt.s", b"with jwt")
        assert sub.next_msg(TIMEOUT).data == b"with jwt"


@pytest.mark.parametrize("case", ["seed-not-the-jwt-user", "unknown-account"])
def test_creds_refused(operator_server: ServerProcess, tmp_path: Path, case: str) -> None:
    if case == "seed-not-the-jwt-user":
        creds = creds_file(tmp_path / "u.creds", user_jwt(USER, ACCOUNT), STRANGER.seed)
    else:
        creds = creds_file(tmp_path / "u.creds", user_jwt(USER, UNKNOWN_ACCOUNT), USER.seed)
    with pytest.raises(AuthorizationError, match=r"(?i)authorization violation"):
        pynats.sync.connect(operator_server.url, creds_file=creds, connect_timeout=3.0)


# -- the pure part: CONNECT fields and option checks -----------------------------------------


def test_sign_challenge_verifies() -> None:
    fields = sign_challenge(USER.seed, "n0nce")
    assert fields["nkey"] == USER.public_key and "jwt" not in fields
    sig = nkeys.decode_signature(fields["sig"])
    assert sig is not None and nkeys.verify(USER.public_key, b"n0nce", sig)
    assert sign_challenge(USER.seed, None) == {"nkey": USER.public_key}  # nothing to sign
    with_jwt = sign_challenge(USER.seed, "n0nce", jwt="a.b.c")
    assert with_jwt == {"jwt": "a.b.c", "sig": fields["sig"]}


def test_connect_options_carry_the_answer() -> None:
    auth = Credentials(seed=USER.seed).connect_fields("xyz")
    obj = connect_options(ConnectOptions(), ServerInfo(nonce="xyz"), parse_url("h"), False,
                          auth)
    assert obj["nkey"] == USER.public_key and obj["sig"] == auth["sig"]
    json.dumps(obj)
    assert Credentials().connect_fields("xyz") == {}


def test_creds_file_is_read_at_every_handshake(tmp_path: Path) -> None:
    path = creds_file(tmp_path / "rotating.creds", user_jwt(USER, ACCOUNT), USER.seed)
    creds = load_credentials(ConnectOptions(creds_file=path))
    first = creds.connect_fields("n")
    creds_file(path, user_jwt(STRANGER, ACCOUNT), STRANGER.seed)  # rotated on disk
    second = creds.connect_fields("n")
    assert nkeys.decode_jwt(first["jwt"])[1]["sub"] == USER.public_key
    assert nkeys.decode_jwt(second["jwt"])[1]["sub"] == STRANGER.public_key
    sig = nkeys.decode_signature(second["sig"])
    assert sig is not None and nkeys.verify(STRANGER.public_key, b"n", sig)


def test_bad_nkey_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nkey_seed"):
        ConnectOptions(nkey_seed="SUAEXAMPLE")
    with pytest.raises(ConfigError, match="not both"):
        ConnectOptions(nkey_seed=USER.seed, creds_file="x.creds")
    with pytest.raises(ConfigError, match="creds_file"):
        pynats.sync.connect("nats://127.0.0.1:1", creds_file=tmp_path / "missing.creds")
    (tmp_path / "noseed.creds").write_text("just a jwt\n")
    with pytest.raises(ConfigError, match="creds_file"):
        load_credentials(ConnectOptions(creds_file=tmp_path / "noseed.creds"))
