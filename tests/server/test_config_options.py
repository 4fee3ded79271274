"""The tree-to-options stage: what each key sets, merging with flags, validation.

The messages themselves are compared with nats-server in ``test_config_check.py``; here
the resulting :class:`ServerOptions` values are checked, and hypothesis makes sure that
no combination of known keys and values of any type escapes as anything but a
``ConfigError``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynats.errors import ConfigError
from pynats.server.config import load
from pynats.server.config.load import ConfigFileError, load_file, merge, resolve, validate
from pynats.server.config.options import (
    Authorization,
    ClusterOptions,
    Permissions,
    ResponsePermission,
    RoutePermissions,
    ServerOptions,
    SubjectPermission,
    TLSOptions,
    User,
)
from pynats.server.config.parser import parse_text
from pynats.server.config.values import format_duration, parse_duration
from pynats.server.flags import parse_args


def options(text: str) -> ServerOptions:
    opts, problems, _ = load.options_from_tree(parse_text(text, "t.conf"))
    assert problems.errors == [], problems.errors
    return opts


def test_core_keys() -> None:
    opts = options(
        'listen: "127.0.0.1:4333"\nserver_name: n1\nmax_payload: 2MB\nmax_pending: 100MB\n'
        'max_control_line: 1KB\nmax_connections: 100\nmax_subs: 5\nping_interval: "1m30s"\n'
        'ping_max: 3\nwrite_deadline: "500ms"\nno_header_support: true\n'
        'lame_duck_duration: "45s"\nlame_duck_grace_period: "5s"\nhttp: "127.0.0.1:8333"\n'
        "client_advertise: \"example.com:4222\"\nserver_tags: [a, b]\n")
    assert (opts.host, opts.port, opts.server_name) == ("127.0.0.1", 4333, "n1")
    assert (opts.max_payload, opts.max_pending, opts.max_control_line) == (
        2 * 1024 * 1024, 100 * 1024 * 1024, 1024)
    assert (opts.max_connections, opts.max_subscriptions) == (100, 5)
    assert (opts.ping_interval, opts.ping_max, opts.write_deadline) == (90.0, 3, 0.5)
    assert opts.no_header_support
    assert (opts.lame_duck_duration, opts.lame_duck_grace_period) == (45.0, 5.0)
    assert (opts.http_host, opts.http_port) == ("127.0.0.1", 8333)
    assert opts.client_advertise == "example.com:4222"
    assert opts.server_tags == ("a", "b")


def test_max_connections_zero_in_a_file_refuses_everyone() -> None:
    assert options("max_connections: 0\n").max_connections == -1


def test_logging_keys() -> None:
    opts = options("debug: true\ntrace_verbose: true\nlogtime: false\nlogtime_utc: true\n"
                   "log_file: /tmp/x.log\nlogfile_size_limit: 1MB\nlog_max_num: 3\n"
                   'syslog: true\nremote_syslog: "udp://127.0.0.1:514"\nlog_format: json\n')
    assert opts.debug and opts.trace and opts.trace_verbose and opts.logtime_utc
    assert not opts.logtime
    assert (opts.log_file, opts.log_size_limit, opts.log_max_num) == (
        "/tmp/x.log", 1024 * 1024, 3)
    assert opts.syslog and opts.remote_syslog == "udp://127.0.0.1:514"
    assert opts.log_format == "json"


def test_authorization_users_and_permissions() -> None:
    opts = options(
        "authorization {\n  users: [\n"
        '    {user: a, password: "$2a$11$abcdefghijklmnopqrstuv", permissions: {\n'
        '      publish: ["orders.>"], subscribe: {allow: ["_INBOX.>"], deny: "x"},\n'
        '      allow_responses: {max: 5, expires: "1m"}}}\n'
        "    {user: b, password: b}\n  ]\n  default_permissions: {publish: \"p.>\"}\n"
        "  timeout: 3\n}\nno_auth_user: b\n")
    publish = SubjectPermission(allow=("orders.>",))
    subscribe = SubjectPermission(allow=("_INBOX.>",), deny=("x",))
    first = User("a", "$2a$11$abcdefghijklmnopqrstuv",
                 permissions=Permissions(publish, subscribe, ResponsePermission(5, 60.0)))
    second = User("b", "b", permissions=Permissions(SubjectPermission(allow=("p.>",))))
    assert opts.authorization == Authorization(
        users=(first, second), timeout=3.0,
        default_permissions=Permissions(SubjectPermission(allow=("p.>",))))
    assert opts.auth_timeout == 3.0
    assert opts.no_auth_user == "b"
    validate(opts)


def test_single_user_and_token() -> None:
    assert options("authorization { user: u, password: p }").authorization == Authorization(
        username="u", password="p")
    assert options("authorization { token: s3cret }").authorization.token == "s3cret"


def test_accounts_block() -> None:
    opts = options(
        "accounts {\n  A: { users: [{user: a, password: a}], exports: [{stream: \"a.>\"},"
        ' {service: "svc", accounts: [B]}] }\n'
        '  B: { users: [{user: b, password: b}], imports: [{stream: {account: A, subject: '
        '"a.>"}, prefix: pre}, {service: {account: A, subject: svc}, to: local}] }\n}\n'
        "system_account: A\n")
    first, second = opts.accounts
    assert first.name == "A" and first.users[0].account == "A"
    assert [(e.kind, e.subject, e.accounts) for e in first.exports] == [
        ("stream", "a.>", ()), ("service", "svc", ("B",))]
    assert [(i.kind, i.account, i.subject, i.prefix, i.to) for i in second.imports] == [
        ("stream", "A", "a.>", "pre", ""), ("service", "A", "svc", "", "local")]
    assert opts.system_account == "A"


#: A certificate and key that load (the corpus's), for blocks whose files are checked.
CERTS = Path(__file__).parent / "config" / "corpus" / "configs" / "certs"
CERT, KEY = str(CERTS / "server-cert.pem"), str(CERTS / "server-key.pem")


def test_tls_and_cluster_blocks() -> None:
    opts = options(
        f'tls {{ cert_file: "{CERT}", key_file: "{KEY}", ca_file: "{CERT}", verify: true,'
        ' timeout: 1.5, handshake_first: true, min_version: "1.3" }\n'
        'cluster { name: c1, listen: "127.0.0.1:6333", routes: [nats-route://a:1, '
        'nats-route://b:2], authorization { user: r, password: s, timeout: 1 },'
        ' permissions { import: "a.>", export: { deny: "b.>" } }, no_advertise: true,'
        ' connect_retries: 4, pool_size: 3 }\n')
    assert opts.tls == TLSOptions(cert_file=CERT, key_file=KEY, ca_file=CERT,
                                  verify=True, timeout=1.5, handshake_first=True,
                                  min_version="1.3")
    assert opts.auth_timeout == 2.5  # no authorization timeout: the TLS timeout plus one
    assert opts.cluster == ClusterOptions(
        name="c1", host="127.0.0.1", port=6333,
        routes=("nats-route://a:1", "nats-route://b:2"), username="r", password="s",
        auth_timeout=1.0, no_advertise=True, connect_retries=4,
        permissions=RoutePermissions(SubjectPermission(allow=("a.>",)),
                                     SubjectPermission(deny=("b.>",))))


def test_websocket_block() -> None:
    opts = options('websocket { listen: "127.0.0.1:8080", no_tls: true, compression: true,'
                   ' allowed_origins: ["http://a"], handshake_timeout: "3s" }')
    ws = opts.websocket
    assert (ws.host, ws.port, ws.no_tls, ws.compression) == ("127.0.0.1", 8080, True, True)
    assert (ws.allowed_origins, ws.handshake_timeout) == (("http://a",), 3.0)


def test_unsupported_features_become_notices() -> None:
    _, problems, notices = load.options_from_tree(parse_text(
        "jetstream: true\nleafnodes { port: 7422 }\nleaf { port: 1 }\ngateway { name: g }\n"
        "mqtt { port: 1883 }\n", "t.conf"))
    assert problems.errors == []
    assert notices == tuple(load.UNSUPPORTED[k] for k in ("jetstream", "leafnodes",
                                                           "gateway", "mqtt"))


@pytest.mark.parametrize("text", ['mappings { "a.*": "b.$1" }\n',
                                  'accounts { A: { mappings: { "x": "y" } } }\n'])
def test_subject_mappings_become_a_notice(text: str) -> None:
    _, problems, notices = load.options_from_tree(parse_text(text, "t.conf"))
    assert problems.errors == [] and notices == (load.MAPPINGS_NOTICE,)


def test_jetstream_disabled_gives_no_notice() -> None:
    _, _, notices = load.options_from_tree(parse_text("jetstream: disabled\n", "t.conf"))
    assert notices == ()


def test_errors_are_all_collected(tmp_path: Path) -> None:
    path = tmp_path / "bad.conf"
    path.write_text('port: "x"\nbogus: 1\nmax_payload: true\n')
    with pytest.raises(ConfigFileError) as info:
        load_file(str(path))
    assert len(info.value.errors) == 3
    assert all(str(path) in error for error in info.value.errors)


def test_flags_override_file_fields_they_set(tmp_path: Path) -> None:
    path = tmp_path / "f.conf"
    path.write_text("port: 4333\nmax_payload: 2048\ndebug: true\n")
    cmd = parse_args(["-c", str(path), "-p", "5555", "-D=false"])
    opts, loaded = resolve(cmd.options, cmd.explicit)
    assert loaded is not None and loaded.digest.startswith("sha256:")
    assert (opts.port, opts.max_payload, opts.debug) == (5555, 2048, False)
    assert opts.config_file == str(path)
    assert merge(ServerOptions(port=1), ServerOptions(port=2), ()).port == 1


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1.5s", 1.5), ("-2s", -2.0),
    ("2h45m30.5s", 9930.5), ("100us", 1e-4), ("3µs", 3e-6), ("7ns", 7e-9),
])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "message"), [
    ("", 'time: invalid duration ""'),
    ("abc", 'time: invalid duration "abc"'),
    ("5", 'time: missing unit in duration "5"'),
    ("5x", 'time: unknown unit "x" in duration "5x"'),
    (".s", 'time: invalid duration ".s"'),
])
def test_go_duration_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (30, "30s"), (120, "2m0s"), (5400, "1h30m0s"), (0.5, "500ms"), (1.5, "1.5s"),
])
def test_go_duration_strings(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# -- no input escapes as anything but ConfigError ------------------------------------------

KEYS = sorted({*load.SIMPLE, *load._SPECIAL, "jetstream", "leafnodes", "operator", "bogus"})
SUBKEYS = ["user", "password", "token", "users", "permissions", "publish", "subscribe",
           "allow", "deny", "allow_responses", "max", "expires", "timeout", "name", "port",
           "listen", "routes", "authorization", "tls", "cert_file", "verify", "exports",
           "imports", "stream", "service", "account", "subject", "prefix", "to", "nkey",
           "handshake_first", "import", "export", "A", "$G"]
scalars = st.one_of(st.integers(-5, 5_000_000_000), st.booleans(),
                    st.sampled_from(['"x"', '"1s"', '"a.>"', '"127.0.0.1:4222"', "abc",
                                     '"-5s"', "1.5", "2MB", '"auto"', '"a..b"']))


def _render(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_render(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k}: {_render(v)}" for k, v in value.items()) + " }"
    return str(value)


values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(SUBKEYS), inner, max_size=4)), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), values, min_size=1, max_size=5))
def test_any_values_under_known_keys_raise_only_config_errors(config: dict[str, object]
                                                              ) -> None:
    text = "\n".join(f"{key}: {_render(value)}" for key, value in config.items()) + "\n"
    try:
        opts, _, _ = load.options_from_tree(parse_text(text, "fuzz.conf"))
        validate(opts)
    except ConfigError:
        pass
