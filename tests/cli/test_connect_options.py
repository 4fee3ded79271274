"""The connection flags every command shares: credentials and TLS, each against a
pynats-server that demands them (a right one gets in, a wrong one is a clean error)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clitools import assert_clean_error, run

import operator_support as op
from harness import ServerProcess
from pynats.nkeys import Prefix
from tls_support import make_pki


def _server(tmp_path: Path, conf: str) -> ServerProcess:
    path = tmp_path / "server.conf"
    path.write_text(conf)
    return ServerProcess("pynats", ["-c", str(path)]).start()


@pytest.fixture
def server_with(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def test_user_and_password(env: dict[str, str], tmp_path: Path,
                           server_with: list[ServerProcess]) -> None:
    server = _server(tmp_path, "authorization { user: cli, password: s3cret }\n")
    server_with.append(server)
    ok = run(env, "-s", server.url, "--user", "cli", "--password", "s3cret", "pub", "x", "1")
    assert ok.returncode == 0, ok.stderr
    wrong = run(env, "-s", server.url, "--user", "cli", "--password", "nope", "pub", "x", "1")
    assert "Authorization Violation" in assert_clean_error(wrong)


def test_token(env: dict[str, str], tmp_path: Path, server_with: list[ServerProcess]) -> None:
    server = _server(tmp_path, "authorization { token: t0ken }\n")
    server_with.append(server)
    assert run(env, "-s", server.url, "--token", "t0ken", "pub", "x", "1").returncode == 0
    assert "Authorization Violation" in assert_clean_error(
        run(env, "-s", server.url, "--token", "other", "pub", "x", "1"))


def test_nkey_seed_file(env: dict[str, str], tmp_path: Path,
                        server_with: list[ServerProcess]) -> None:
    user = op.key(Prefix.USER)
    server = _server(tmp_path, f"authorization {{ users: [{{nkey: {user.public_key}}}] }}\n")
    server_with.append(server)
    seed = tmp_path / "user.nk"
    seed.write_text(user.seed + "\n")
    assert run(env, "-s", server.url, "--nkey", str(seed), "pub", "x", "1").returncode == 0
    stranger = tmp_path / "stranger.nk"
    stranger.write_text(op.key(Prefix.USER).seed + "\n")
    assert "Authorization Violation" in assert_clean_error(
        run(env, "-s", server.url, "--nkey", str(stranger), "pub", "x", "1"))


def test_creds_file(env: dict[str, str], tmp_path: Path,
                    server_with: list[ServerProcess]) -> None:
    operator, account, system = (op.key(Prefix.OPERATOR), op.key(Prefix.ACCOUNT),
                                 op.key(Prefix.ACCOUNT))
    conf = op.server_conf(op.operator_jwt(operator, system_account=system.public_key),
                          {account.public_key: op.account_jwt(account, "app", operator),
                           system.public_key: op.account_jwt(system, "SYS", operator)},
                          system.public_key)
    server = _server(tmp_path, conf)
    server_with.append(server)
    user = op.key(Prefix.USER)
    creds = op.creds_file(tmp_path / "user.creds", op.user_jwt(user, account), user.seed)
    result = run(env, "-s", server.url, "--creds", str(creds), "pub", "x", "1")
    assert result.returncode == 0, result.stderr
    forged = op.key(Prefix.USER)  # a JWT for one key, signed with another's seed
    bad = op.creds_file(tmp_path / "bad.creds", op.user_jwt(user, account), forged.seed)
    assert "Authorization Violation" in assert_clean_error(
        run(env, "-s", server.url, "--creds", str(bad), "pub", "x", "1"))


def test_tls_with_client_certificate(env: dict[str, str], tmp_path: Path,
                                     server_with: list[ServerProcess]) -> None:
    pki = make_pki(tmp_path)
    server = _server(tmp_path, f'tls {{ cert_file: "{pki.server.cert}", key_file: '
                               f'"{pki.server.key}", ca_file: "{pki.ca}", verify: true }}\n')
    server_with.append(server)
    url = f"tls://127.0.0.1:{server.port}"
    result = run(env, "-s", url, "--tlsca", str(pki.ca), "--tlscert", str(pki.alice.cert),
                 "--tlskey", str(pki.alice.key), "pub", "x", "1")
    assert result.returncode == 0, result.stderr
    no_cert = run(env, "-s", url, "--tlsca", str(pki.ca), "pub", "x", "1")
    assert_clean_error(no_cert)
