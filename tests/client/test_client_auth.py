"""Credentials and TLS, against servers started with a configuration file.

Authentication and TLS run against both servers (an ``authorization`` or ``tls`` block
works on both).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from clienttools import TIMEOUT

from harness import ServerProcess
from pynats.client import connect
from pynats.errors import AuthorizationError, NoServersError
from tls_support import self_signed


def conf_server(kind: str, path: Path, text: str) -> ServerProcess:
    path.write_text(text)
    return ServerProcess(kind, ["-c", str(path)])


@pytest.fixture
def user_server(kind: str, tmp_path: Path) -> Iterator[ServerProcess]:
    block = 'authorization { user: alice, password: "s3cret" }\n'
    with conf_server(kind, tmp_path / "user.conf", block) as srv:
        yield srv


@pytest.fixture
def token_server(kind: str, tmp_path: Path) -> Iterator[ServerProcess]:
    with conf_server(kind, tmp_path / "token.conf", 'authorization { token: "t0ken" }\n') as srv:
        yield srv


async def test_user_password(user_server: ServerProcess) -> None:
    async with await connect(user_server.url, user="alice", password="s3cret") as client:
        assert client.server_info.auth_required
        sub = client.subscribe("auth.ok")
        client.publish("auth.ok", b"in")
        assert (await sub.next_msg(TIMEOUT)).data == b"in"
    url = f"nats://alice:s3cret@127.0.0.1:{user_server.port}"
    async with await connect(url) as client:  # credentials carried by the URL
        await client.flush()


@pytest.mark.parametrize("creds", [
    {"user": "alice", "password": "wrong"},
    {"user": "mallory", "password": "s3cret"},
    {},
])
async def test_user_password_refused(user_server: ServerProcess, creds: dict[str, str]) -> None:
    with pytest.raises(AuthorizationError, match=r"(?i)authorization violation"):
        await connect(user_server.url, connect_timeout=3.0, **creds)


async def test_token(token_server: ServerProcess) -> None:
    async with await connect(token_server.url, token="t0ken") as client:
        await client.flush()
    async with await connect(f"nats://t0ken@127.0.0.1:{token_server.port}") as client:
        await client.flush()
    with pytest.raises(AuthorizationError):
        await connect(token_server.url, token="nope", connect_timeout=3.0)


# -- TLS ----------------------------------------------------------------------------------


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost."""
    pair = self_signed(directory)
    return pair.cert, pair.key


def tls_server(kind: str, tmp_path: Path, extra: str = "") -> ServerProcess:
    cert, key = make_cert(tmp_path)
    block = f'tls {{\n  cert_file: "{cert}"\n  key_file: "{key}"\n  {extra}\n}}\n'
    return conf_server(kind, tmp_path / "tls.conf", block)


def client_context(tmp_path: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))


async def test_tls_upgrade_after_info(kind: str, tmp_path: Path) -> None:
    with tls_server(kind, tmp_path) as srv:
        async with await connect(srv.url, tls=client_context(tmp_path)) as client:
            assert client.server_info.tls_required
            sub = client.subscribe("tls")
            client.publish("tls", b"secret")
            assert (await sub.next_msg(TIMEOUT)).data == b"secret"
        # Without our CA the default context refuses the self-signed certificate.
        with pytest.raises(NoServersError) as err:
            await connect(srv.url, connect_timeout=3.0)
        assert isinstance(err.value.errors[0][1], ssl.SSLError)


async def test_tls_handshake_first(kind: str, tmp_path: Path) -> None:
    with tls_server(kind, tmp_path, "handshake_first: true") as srv:
        async with await connect(srv.url, tls=client_context(tmp_path),
                                 tls_handshake_first=True) as client:
            assert client.server_info.tls_required
            assert await client.rtt() < 1.0
