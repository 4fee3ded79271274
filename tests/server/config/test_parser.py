"""The configuration parser: values, variables, includes, positions, errors and the digest.

Expected values marked "recorded" were produced by ``nats-server -t`` (v2.15.1); the
``interop`` tests at the end re-check every recorded value against the installed binary.
Most value checks go through a "sink": ``x = VALUE`` followed by ``port = $x`` and
``port = 4222`` makes ``x`` a used variable, so nats-server accepts any VALUE and prints
the digest of the whole tree, including it.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path

import pytest

from pynats.errors import ConfigError
from pynats.server.config.parser import (
    MAX_DEPTH,
    ConfigSyntaxError,
    Node,
    Pos,
    digest,
    digest_of_tree,
    parse_file,
    parse_text,
    plain,
)

from .reference import Job, Verdict, needs_reference, run_many

SINK = "\nport = $x\nport = 4222\n"


def value_of(text: str) -> object:
    """The plain value of ``x`` in ``x = text``."""
    tree = plain(parse_text("x = " + text + "\n"))
    assert isinstance(tree, dict)
    return tree["x"]


def error_of(text: str, filename: str = "") -> ConfigSyntaxError:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_text(text, filename)
    return caught.value


def sha(json_text: str) -> str:
    return "sha256:" + hashlib.sha256(json_text.encode()).hexdigest()


# -- public types ---------------------------------------------------------------------------------


def test_pos_str() -> None:
    assert str(Pos("a.conf", 2, 1)) == "a.conf:2:1"


def test_syntax_error_is_a_config_error_and_prefixes_the_file() -> None:
    err = ConfigSyntaxError("boom", Pos("a.conf", 3, 4))
    assert isinstance(err, ConfigError)
    assert (str(err), err.message) == ("a.conf:3:4: boom", "boom")
    assert str(ConfigSyntaxError("boom", Pos("", 3, 4))) == "boom"
    assert str(ConfigSyntaxError("boom")) == "boom"


def test_tree_shape() -> None:
    root = parse_text("Port: 4222\nauth { user: a }\nlist: [1, two ]\n", "s.conf")
    assert isinstance(root, Node)
    assert isinstance(root.value, dict)
    assert list(root.value) == ["Port", "auth", "list"]  # case kept, file order
    assert plain(root) == {"Port": 4222, "auth": {"user": "a"}, "list": [1, "two"]}


# -- scalars --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4222", 4222),
        ("-12", -12),
        ("0012", 12),
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ('"quoted"', "quoted"),
        ("'single'", "single"),
        ("bare", "bare"),
        ("nats://h:4222", "nats://h:4222"),
        ("127.0.0.1:4222", "127.0.0.1:4222"),
        ("3secret", "3secret"),
        ('"2m"', "2m"),
        ("10s", "10s"),
        ("1h30m", "1h30m"),
        ("500ms", "500ms"),
        ("1e5", "1e5"),
    ],
)
def test_scalars(text: str, value: object) -> None:
    assert value_of(text) == value
    assert type(value_of(text)) is type(value)


@pytest.mark.parametrize(
    ("suffix", "factor"),
    [
        ("k", 1000),
        ("kb", 1024),
        ("ki", 1024),
        ("kib", 1024),
        ("m", 1000**2),
        ("mb", 1024**2),
        ("mi", 1024**2),
        ("mib", 1024**2),
        ("g", 1000**3),
        ("gb", 1024**3),
        ("gi", 1024**3),
        ("gib", 1024**3),
        ("t", 1000**4),
        ("tb", 1024**4),
        ("ti", 1024**4),
        ("tib", 1024**4),
        ("p", 1000**5),
        ("pb", 1024**5),
        ("pi", 1024**5),
        ("pib", 1024**5),
        ("e", 1000**6),
        ("eb", 1024**6),
        ("ei", 1024**6),
        ("eib", 1024**6),
    ],
)
def test_size_suffixes(suffix: str, factor: int) -> None:
    assert value_of("3" + suffix) == 3 * factor
    assert value_of("3" + suffix.upper()) == 3 * factor
    assert value_of("-3" + suffix) == -3 * factor


def test_1mb_and_1m_differ() -> None:
    assert (value_of("1MB"), value_of("1M")) == (1048576, 1000000)


def test_unquoted_duration_with_size_letter_is_an_integer() -> None:
    # As in nats-server: "2m" unquoted is two million, which is why durations are quoted.
    assert value_of("2m") == 2_000_000


def test_size_overflow_wraps_like_go_int64() -> None:
    assert value_of("9223372036854775807k") == -1000


def test_integer_out_of_range() -> None:
    assert error_of("x = 99999999999999999999").message == (
        "integer '99999999999999999999' is out of the range"
    )


def test_thousands_of_digits() -> None:
    # Python's int() has a digit limit; Go has none but the int64 range.
    assert value_of("0" * 5000 + "12") == 12
    err = error_of("x = " + "9" * 5000, "n.conf")
    assert err.message.endswith("' is out of the range")
    assert err.pos == Pos("n.conf", 1, 4)


def test_float_out_of_range_and_underflow() -> None:
    assert error_of("x = 1" + "0" * 400 + ".0").message.endswith("' is out of the range")
    assert value_of("0." + "0" * 400 + "1") == 0.0


@pytest.mark.parametrize("word", ["true", "TRUE", "yes", "Yes", "on", "ON"])
def test_true_spellings(word: str) -> None:
    assert value_of(word) is True


@pytest.mark.parametrize("word", ["false", "False", "no", "NO", "off", "Off"])
def test_false_spellings(word: str) -> None:
    assert value_of(word) is False


def test_quoted_booleans_are_strings() -> None:
    assert value_of('"true"') == "true"


def test_datetime_is_utc() -> None:
    assert value_of("2016-05-04T18:53:41Z") == datetime.datetime(
        2016, 5, 4, 18, 53, 41, tzinfo=datetime.UTC
    )


def test_invalid_datetime() -> None:
    assert error_of("x = 2016-02-30T00:00:00Z").message == (
        "expected Zulu formatted DateTime, but got '2016-02-30T00:00:00Z'"
    )


def test_strings_with_escapes_and_raw_strings() -> None:
    assert value_of('"a\\tb\\n\\"q\\" \\\\ \\x41\\xc3\\xa9"') == 'a\tb\n"q" \\ A\u00e9'
    assert value_of("'a\\tb'") == "a\\tb"


def test_block_string() -> None:
    assert value_of("(\nline one\n  line ) two\n)\n") == "\nline one\n  line ) two\n"


# -- maps, arrays, keys ---------------------------------------------------------------------------


def test_nested_maps_and_arrays() -> None:
    text = "a { b: { c: [1, [2, 3 ], {d: e} ] } }\nf = {}\ng = []\n"
    assert plain(parse_text(text)) == {
        "a": {"b": {"c": [1, [2, 3], {"d": "e"}]}},
        "f": {},
        "g": [],
    }


def test_map_without_separator_and_value_terminators() -> None:
    text = "a { x = 1; y: 2, z 3\n w: 4 }\nb: 5; c: 6, d: 7\n"
    assert plain(parse_text(text)) == {
        "a": {"x": 1, "y": 2, "z": 3, "w": 4},
        "b": 5,
        "c": 6,
        "d": 7,
    }


def test_arrays_separated_by_newlines_and_commas() -> None:
    assert value_of("[\n  a\n  b, c\n  # comment\n  d // comment\n]") == ["a", "b", "c", "d"]


def test_repeated_key_later_wins() -> None:
    root = parse_text("port: 1\nport: 2\n")
    assert plain(root) == {"port": 2}
    assert isinstance(root.value, dict)
    assert root.value["port"].key_pos == Pos("", 2, 1)


def test_keys_keep_case() -> None:
    assert plain(parse_text("PORT: 1\nport: 2\n")) == {"PORT": 1, "port": 2}


def test_json_style_file() -> None:
    text = '{\n  "port": 4222,\n  "cluster": {"name": "c1", "routes": ["nats://a:6222"]}\n}\n'
    assert plain(parse_text(text)) == {
        "port": 4222,
        "cluster": {"name": "c1", "routes": ["nats://a:6222"]},
    }


def test_unknown_size_suffix_drops_the_value_and_leaves_its_key_pending() -> None:
    # nats-server quirk: "1kbb" yields no value, so the map that closes next takes "x".
    assert plain(parse_text("a = 1kbb\nb = 2\n")) == {"b": 2}
    assert plain(parse_text("a { x = 1kbb }\n")) == {"x": {}}


# -- variables ------------------------------------------------------------------------------------


def test_variable_lookup_innermost_first() -> None:
    text = "a = 1\nb { a = 2, c = $a }\nd = $a\n"
    assert plain(parse_text(text)) == {"a": 1, "b": {"a": 2, "c": 2}, "d": 1}


def test_variable_from_enclosing_map() -> None:
    assert plain(parse_text("a = 1\nb { c { d = $a } }\n")) == {"a": 1, "b": {"c": {"d": 1}}}


def test_used_variable_flags() -> None:
    root = parse_text("pw = secret\nunused = 1\nauth { p2 = x, user = $p2, password = $pw }\n")
    assert isinstance(root.value, dict)
    flags = {key: node.used_variable for key, node in root.value.items()}
    assert flags == {"pw": True, "unused": False, "auth": False}
    auth = root.value["auth"].value
    assert isinstance(auth, dict)
    assert {key: node.used_variable for key, node in auth.items()} == {
        "p2": True,
        "user": False,
        "password": False,
    }


def test_variable_can_hold_a_map() -> None:
    root = parse_text("perms = {publish: [a, b ]}\nuser = {permissions: $perms}\n")
    assert plain(root) == {
        "perms": {"publish": ["a", "b"]},
        "user": {"permissions": {"publish": ["a", "b"]}},
    }


def test_unknown_variable() -> None:
    err = error_of("a = 1\nport = $nope\n", "v.conf")
    assert err.message == "variable reference for 'nope' on line 2 can not be found"
    assert err.pos == Pos("v.conf", 2, 9)  # the name, just after "$"


def test_dollar_inside_quotes_is_literal() -> None:
    assert value_of('"$HOME"') == "$HOME"
    assert value_of("'$HOME'") == "$HOME"


def test_bcrypt_hash_is_not_a_variable() -> None:
    hashed = "$2a$11$dZM98SpGeI7dCFFGSpt.JObQcix8YHml4TBUZoge9R1uxnMIln5ly"
    assert value_of(hashed) == hashed


def test_environment_fallback_is_parsed_as_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNATS_T_PORT", "4222")
    monkeypatch.setenv("PYNATS_T_NAME", '"4222"')
    monkeypatch.setenv("PYNATS_T_MAP", "{a: [1, x ]}")
    text = "port = $PYNATS_T_PORT\nname = $PYNATS_T_NAME\nm = $PYNATS_T_MAP\n"
    assert plain(parse_text(text)) == {"port": 4222, "name": "4222", "m": {"a": [1, "x"]}}


def test_file_variables_shadow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNATS_T_A", "5")
    assert plain(parse_text("PYNATS_T_A = 1\nb = $PYNATS_T_A\n"))["b"] == 1  # type: ignore[index]


def test_environment_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNATS_T_A", "$PYNATS_T_B")
    monkeypatch.setenv("PYNATS_T_B", "7")
    assert plain(parse_text("x = $PYNATS_T_A\n")) == {"x": 7}


def test_environment_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNATS_T_A", "$PYNATS_T_B")
    monkeypatch.setenv("PYNATS_T_B", "$PYNATS_T_A")
    assert error_of("port: $PYNATS_T_A").message == (
        "variable reference for 'PYNATS_T_A' on line 1 could not be parsed: "
        "variable reference for 'PYNATS_T_B' on line 1 could not be parsed: "
        "variable reference for 'PYNATS_T_A' on line 1 could not be parsed: "
        "variable reference cycle for 'PYNATS_T_A'"
    )


def test_environment_value_that_does_not_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNATS_T_A", "4222 5")
    assert error_of("port: $PYNATS_T_A").message == (
        "variable reference for 'PYNATS_T_A' on line 1 could not be parsed: Parse error on "
        "line 1: 'Expected a top-level value to end with a new line, comment or EOF, but got "
        "'5' instead.'"
    )


def test_environment_value_without_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNATS_T_A", "1kbb")
    assert error_of("port: $PYNATS_T_A").message == (
        "variable reference for 'PYNATS_T_A' on line 1 can not be found"
    )


def test_environment_values_take_the_reference_position(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYNATS_T_A", "{a: [1 ]}")
    root = parse_text("\n  x = $PYNATS_T_A\n", "e.conf")
    assert isinstance(root.value, dict)
    inner = root.value["x"].value
    assert isinstance(inner, dict)
    assert inner["a"].pos == inner["a"].key_pos == Pos("e.conf", 2, 8)


# -- includes -------------------------------------------------------------------------------------


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    (tmp_path / "sub").mkdir()
    (tmp_path / "main.conf").write_text(
        "port = 4222\ninclude sub/users.conf\nauth {\n  include './sub/auth.conf'\n}\n"
        "password = $pw\n"
    )
    (tmp_path / "sub" / "users.conf").write_text('\n  users = [a, b ]\n  include "pw.conf"\n')
    (tmp_path / "sub" / "pw.conf").write_text("pw = s3cret\n")
    (tmp_path / "sub" / "auth.conf").write_text("timeout: 2\n")
    return tmp_path


def test_include_is_relative_to_the_including_file(conf_dir: Path) -> None:
    root = parse_file(conf_dir / "main.conf")
    assert plain(root) == {
        "port": 4222,
        "users": ["a", "b"],
        "pw": "s3cret",
        "auth": {"timeout": 2},
        "password": "s3cret",
    }


def test_included_positions_name_the_included_file(
    conf_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(conf_dir)
    root = parse_file("main.conf")
    assert isinstance(root.value, dict)
    assert root.value["port"].key_pos == Pos("main.conf", 1, 0)
    assert root.value["users"].key_pos == Pos("sub/users.conf", 2, 3)
    assert root.value["pw"].key_pos == Pos("sub/pw.conf", 1, 0)
    assert root.value["pw"].used_variable
    auth = root.value["auth"].value
    assert isinstance(auth, dict)
    assert auth["timeout"].key_pos == Pos("sub/auth.conf", 1, 0)


def test_included_file_cannot_see_the_includers_variables(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text("port: $x\n")
    (tmp_path / "t.conf").write_text("x = 1\ninclude inc.conf\n")
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_file(tmp_path / "t.conf")
    assert caught.value.message == (
        "error parsing include file 'inc.conf', variable reference for 'x' on line 1 "
        "can not be found"
    )


def test_missing_include(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    err = error_of("a = 1\ninclude nope.conf\n", "t.conf")
    assert err.message == (
        "error parsing include file 'nope.conf', open nope.conf: no such file or directory"
    )
    assert err.pos == Pos("t.conf", 2, 9)


def test_include_of_a_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "t.conf").write_text("include d\n")
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_file(tmp_path / "t.conf")
    assert caught.value.message == (
        f"error parsing include file 'd', read {tmp_path}/d: is a directory"
    )


def test_include_error_inside_included_file(tmp_path: Path) -> None:
    (tmp_path / "bad.conf").write_text("x = [1,,2]\n")
    (tmp_path / "t.conf").write_text("include bad.conf\n")
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_file(tmp_path / "t.conf")
    assert caught.value.message == (
        "error parsing include file 'bad.conf', Parse error on line 1: "
        "'Unexpected array value terminator ','.'"
    )


def test_include_cycle_is_reported(tmp_path: Path) -> None:
    # nats-server overflows its stack here; we report the cycle instead.
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("include a.conf\n")
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_file(tmp_path / "a.conf")
    assert caught.value.message.startswith(
        "error parsing include file 'b.conf', error parsing include file 'a.conf', include cycle"
    )


def test_absolute_include_path_is_joined_like_go(tmp_path: Path) -> None:
    # Go's filepath.Join keeps the including directory even for "/x.conf".
    (tmp_path / "x.conf").write_text("port: 1\n")
    (tmp_path / "t.conf").write_text("include /x.conf\n")
    assert plain(parse_file(tmp_path / "t.conf")) == {"port": 1}


def test_missing_file() -> None:
    with pytest.raises(ConfigSyntaxError) as caught:
        parse_file("/nonexistent/dir/x.conf")
    assert caught.value.message == "open /nonexistent/dir/x.conf: no such file or directory"
    assert caught.value.pos is None


# -- positions ------------------------------------------------------------------------------------

# Recorded: nats-server -t reports each unknown top-level field at its key position.
POSITIONS: list[tuple[str, str, list[str]]] = [
    ("first_line", "foo: 1\n", ['t.conf:1:0: unknown field "foo"']),
    ("second_line", "port: 4222\nfoo: 1\n", ['t.conf:2:1: unknown field "foo"']),
    ("indented", '\n  bar: "x"\n', ['t.conf:2:3: unknown field "bar"']),
    (
        "quoted_keys",
        "\"dq key\" = 1\n 'sq' 2\n",
        ['t.conf:1:1: unknown field "dq key"', 't.conf:2:3: unknown field "sq"'],
    ),
    (
        "after_block",
        "a = (\nline\n)\nzz: 1\n",
        ['t.conf:1:0: unknown field "a"', 't.conf:4:1: unknown field "zz"'],
    ),
    (
        "after_escapes",
        'a = "\\t\\t"; zz = 2\n',
        ['t.conf:1:0: unknown field "a"', 't.conf:1:12: unknown field "zz"'],
    ),
    (
        "multibyte",
        "\u00e9\u00e9 = 1; zz = 2\n",
        ['t.conf:1:0: unknown field "\u00e9\u00e9"', 't.conf:1:10: unknown field "zz"'],
    ),
    ("tabs", "\t\tzz = 1\n", ['t.conf:1:2: unknown field "zz"']),
    ("crlf", "port: 4222\r\nzz: 1\r\n", ['t.conf:2:1: unknown field "zz"']),
    (
        "json_block",
        '{\n  "zz": 1,\n  "yy": [1, 2 ]\n}\n',
        ['t.conf:2:4: unknown field "zz"', 't.conf:3:4: unknown field "yy"'],
    ),
]

KNOWN_OPTIONS = {"port"}


def unknown_fields(text: str) -> list[str]:
    root = parse_text(text, "t.conf")
    assert isinstance(root.value, dict)
    return sorted(
        f'{node.key_pos}: unknown field "{key}"'
        for key, node in root.value.items()
        if key not in KNOWN_OPTIONS and not node.used_variable
    )


@pytest.mark.parametrize(("ident", "text", "lines"), POSITIONS, ids=[p[0] for p in POSITIONS])
def test_key_positions(ident: str, text: str, lines: list[str]) -> None:
    assert unknown_fields(text) == lines


def test_value_positions() -> None:
    # Recorded with "trusted: [...]", which nats-server reports element by element.
    text = 'trusted: ["abc", 1, true, 2.5,\n  {a:1}, [1 ], 2016-05-04T18:53:41Z, -7 ]\n'
    root = parse_text(text, "t.conf")
    assert isinstance(root.value, dict)
    elements = root.value["trusted"].value
    assert isinstance(elements, list)
    assert [str(node.pos) for node in elements] == [
        "t.conf:1:11",
        "t.conf:1:17",
        "t.conf:1:20",
        "t.conf:1:26",
        "t.conf:2:8",  # a map's position is just after its "}"
        "t.conf:2:14",
        "t.conf:2:16",
        "t.conf:2:38",
    ]
    assert all(node.key_pos is None for node in elements)


def test_map_entry_has_key_and_value_positions() -> None:
    root = parse_text("\nping_interval: 60\n", "f.conf")
    assert isinstance(root.value, dict)
    node = root.value["ping_interval"]
    assert (node.key_pos, node.pos) == (Pos("f.conf", 2, 1), Pos("f.conf", 2, 16))


def test_error_positions() -> None:
    assert error_of("a = 1\nb = [1,,2]\n", "e.conf").pos == Pos("e.conf", 2, 9)
    assert str(error_of("a = .5", "e.conf")) == (
        "e.conf:1:5: Parse error on line 1: 'Floats must start with a digit'"
    )


# -- limits ---------------------------------------------------------------------------------------


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    err = error_of("x = " + "[" * 10_000)
    assert err.message == f"nesting deeper than {MAX_DEPTH} levels"
    assert err.pos is not None


def test_deep_nesting_through_variables_is_an_error() -> None:
    lines = ["v0 = 1"] + [f"v{i} = [$v{i - 1} ]" for i in range(1, MAX_DEPTH + 5)]
    assert error_of("\n".join(lines)).message == f"nesting deeper than {MAX_DEPTH} levels"


def test_exponential_expansion_is_an_error() -> None:
    lines = ["v0 = [1, 1, 1, 1, 1, 1, 1, 1 ]"]
    lines += [f"v{i} = [" + ", ".join([f"$v{i - 1}"] * 8) + " ]" for i in range(1, 12)]
    assert error_of("\n".join(lines)).message.startswith("more than ")


def test_nesting_within_the_limit_is_fine() -> None:
    depth = MAX_DEPTH - 1
    assert plain(parse_text("x = " + "[" * depth + "]" * depth + "\n")) is not None


# -- digest ---------------------------------------------------------------------------------------


def test_digest_is_sha256_of_go_json(tmp_path: Path) -> None:
    path = tmp_path / "d.conf"
    path.write_text('b = 1.5\na = "<&>"\nc = [true, 2016-05-04T18:53:41Z, 1e21x]\nd = 1e-7x\n')
    expected = '{"a":"\\u003c\\u0026\\u003e","b":1.5,"c":[true,"2016-05-04T18:53:41Z","1e21x"],'
    expected += '"d":"1e-7x"}\n'
    assert digest(path) == sha(expected)
    assert digest_of_tree(parse_file(path)) == digest(path)


@pytest.mark.parametrize(
    ("value", "json_number"),
    [
        ("0.000001", "0.000001"),
        ("0.0000001", "1e-7"),
        ("0.00000000001234", "1.234e-11"),
        ("123456789012345678901.0", "123456789012345680000"),
        ("1234567890123456789012.0", "1.2345678901234568e+21"),
        ("-0.0", "-0"),
        ("100.0", "100"),
        ("0.1", "0.1"),
        ("-2.5", "-2.5"),
    ],
)
def test_digest_float_format(value: str, json_number: str) -> None:
    assert digest_of_tree(parse_text(f"x = {value}\n")) == sha(f'{{"x":{json_number}}}\n')


def test_digest_string_escapes() -> None:
    root = parse_text('x = "\\x01\\x08\\x0c\\x1f\\x7f\u2028\\xff\\t"\n')
    assert digest_of_tree(root) == sha('{"x":"\\u0001\\b\\f\\u001f\x7f\\u2028\ufffd\\t"}\n')


def test_digest_sorts_keys_by_utf8_bytes() -> None:
    root = parse_text('"\uff21" = 1\n"\U0001f600" = 2\nB = 3\na = 4\n')
    assert digest_of_tree(root) == sha('{"B":3,"a":4,"\uff21":1,"\U0001f600":2}\n')


def test_digest_keeps_used_variables() -> None:
    # nats-server 2.15 hashes the whole tree, variable definitions included.
    assert digest_of_tree(parse_text("a = 1\nport: $a\n")) == sha('{"a":1,"port":1}\n')


# -- recorded snippets ----------------------------------------------------------------------------

# (id, file text, what `nats-server -t` printed: the digest, or its message). Recorded.
SNIPPETS: list[tuple[str, str, str]] = [
    (
        "plain",
        "port: 4222\n",
        "sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e",
    ),
    (
        "json_style",
        '{\n  "port": 4222,\n  "server_name": "n1",\n  "max_payload": 1048576\n}\n',
        "sha256:7b495755a6dafeede693384028ea68c359ca019a0a9c42fae5bac8e7ec401f94",
    ),
    (
        "separators",
        "port = 4222; x = 1, y = 2\nport = $x\nport = $y\nport 4222\n",
        "sha256:19c4b70b985c6bf738a8931641a01a2532398f3c8ebf4fb936e1771420e14e91",
    ),
    (
        "repeated_key",
        "port: 1\nport: 4222\n",
        "sha256:797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e",
    ),
    (
        "comments",
        "# c1\n// c2\nport = 4222 # c3\nx = [ # c4\n  1 // c5\n  2 # c6\n]\n"
        "y = $x; port = $y; port 4222\n",
        "sha256:eaaa5254b044a52378894ca5ea3b87b3f4e871a88ca76d93f21b4364d61ec68e",
    ),
    (
        "block_string",
        "x = (\n-----BEGIN CERT-----\nMIIB\n)\nport = $x\nport = 4222\n",
        "sha256:ff85698b8a5ddd086eedaf6b5abf774ef7b1611c4e5495f8f436ed478ad3fa40",
    ),
    (
        "block_paren_inside",
        "x = (\nabc)\n  ) x\n)\nport = $x\nport = 4222\n",
        "sha256:41a5191350777480df1f167cf41ac1af1945b7cedb356ad43d5c29b7c0ddd768",
    ),
    (
        "dq_escapes",
        'x = "tab\\tnl\\ncr\\rq\\"bs\\\\hex\\x41\\xc3\\xa9"\nport = $x\nport = 4222\n',
        "sha256:547b1ede64f30483114a5d005f006e77447368981e219bc8d5244ea4f522a1b6",
    ),
    (
        "sq_raw",
        "x = 'raw \\t $y'\nport = $x\nport = 4222\n",
        "sha256:3253dbe00db17f2b21a1ba37bd9f5ef2757fd6b35cb55e74348210ce39602389",
    ),
    (
        "json_escaping",
        'x = "<a & b>\\x01\\x7f\\xff\u2028"\nport = $x\nport = 4222\n',
        "sha256:95afb9c7cad651040382c5e3ab56199dc3f044de5de7220eee551f283dced1db",
    ),
    (
        "floats",
        "x = [1.5, -0.0, 0.000001, 0.0000001, 1e21, 123456789012345678901.0, 12"
        "34567890123456789012.0, 100.0, 0.1]\n"
        "port = $x\nport = 4222\n",
        "sha256:9d8c8d9009cf25db1c097e422e72354632e8122ceaf676ede640c506086baa36",
    ),
    (
        "key_order",
        'x = {b: 1, a: 2, B: 3, "\u00e9": 4, "z z": 5, "\uff21": 6, "\U0001f600": 7}'
        "\nport = $x\nport = 4222\n",
        "sha256:a13a8bf634ede13de6864ce09857ae66ab9fb0ffeeceef875959d443f8a9de6f",
    ),
    (
        "booleans",
        "x = [true, TRUE, yes, Yes, on, ON, false, no, NO, off, Off]\nport = $x\nport = 4222\n",
        "sha256:f094782f6ca453fd0e47d44f510632da0fc1fd64165bdbec6402d3967dde43cc",
    ),
    (
        "suffixes",
        "x = [1k, 1K, 1kb, 1KB, 1ki, 1kib, 1m, 1mb, 1mi, 1mib, 1g, 1gb, 1gi, 1g"
        "ib, 1t, 1tb, 1ti, 1tib, 1p, 1pb, 1pi, 1pib, 1e, 1eb, 1ei, 1eib, -2k, 1MiB ]\n"
        "port = $x\nport = 4222\n",
        "sha256:408e56c38f6b01d28300fa44c9327142a68b36312342aa1dac5d0785f9538871",
    ),
    (
        "int64_wrap",
        "x = 9223372036854775807k\nport = $x\nport = 4222\n",
        "sha256:b2390bea0c23b0d5390e4534fae4934df5479bd2335295f4a0b0dee02349b6a8",
    ),
    (
        "number_like_strings",
        'x = [2016-05-04T18:53:41Z, 3secret, 1.2.3.4:4222, 1e5, 2m, "2m", 500ms, 1h30m, 10s ]\n'
        "port = $x\nport = 4222\n",
        "sha256:086eb3d5f4ea2faf1f6665ab86502e77d062099035887a0b110f5fc853c49407",
    ),
    (
        "variables_scoped",
        "a = 1\nb { a = 2, c = $a }\nd = $a\nx = [$b, $d]\nport = $x\nport = 4222\n",
        "sha256:36b9f041117e1770b787ed69e60c81a48b54fa94309e642594871f42c9ab04ab",
    ),
    (
        "bcrypt",
        'pw = $2a$11$abc/def.ghi\nx = [$pw, "$pw", "$2a$"]\nport = $x\nport = 4222\n',
        "sha256:3a6ee2f30b15313f929d026d03587f91e41d7fa76252dea43621510c52493d58",
    ),
    (
        "dollar_quoted",
        'x = "$HOME"\nport = $x\nport = 4222\n',
        "sha256:8c68773c457d814f9dadcf2c95ded8cb0cd3ca400d549ba10f6642cf6fc52f4b",
    ),
    (
        "nested",
        "x = {a { b { c: [ { d: [] } ] } } }\nport = $x\nport = 4222\n",
        "sha256:09e8ce55716fe29ac3195a28849f9ac0d5d150ed72720f699d4722a6c72fd727",
    ),
    (
        "crlf",
        "x = [1,\r\n 2 ]\r\nport = $x\r\nport = 4222\r\n",
        "sha256:339e1fd9d34058f0abe7dbef53594c5cd6b819ab5a949d62029d33d3d77cf5ed",
    ),
    (
        "utf8_key_col",
        "\u00e9l\u00e8ve = 1\nport = $\u00e9l\u00e8ve\nport = 4222\n",
        "sha256:a663f85f9939b90667b12145c10f721dcd871c17cbbb3a2dc5a055fe74da9de7",
    ),
    (
        "invalid_utf8",
        'x = "\udcff\udcfe ok"\nport = $x\nport = 4222\n',
        "sha256:9b7db11f8ba925cd3c6c01a28643d2973d03922745ac06b273c4b1a61fdd7b46",
    ),
    (
        "bom",
        "\ufeffb = 1\nport = $\ufeffb\nport = 4222\n",
        "sha256:9a8e575cd46a52f3e156a24abb3767871c389eb53908f6279bfb5e654ab38162",
    ),
    (
        "empty_array_map",
        "x = [[], {}, [ ], { }]\nport = $x\nport = 4222\n",
        "sha256:385cae1d82b7ca8f8822432c6085ec4ba4245618e1f832554a6b372eaf5e7acb",
    ),
    (
        "unknown_suffix_key_quirk",
        "a { x = 1kbb }\ny = $x\nport = $y\nport = 4222\n",
        "sha256:00539357a500b86b9fb1ac3f5060fddfcbb5ee92b59485d833668fb5dd95c9b5",
    ),
    (
        "err_map_terminator",
        "port = 4222\nfoo { x: 1 x",
        'Parse error on line 2: \'Expected a map value terminator "," or a map '
        "terminator \"}\", but got 'x' instead.'",
    ),
    (
        "err_array_close_after_digit",
        "x = [1, 2]\n",
        'Parse error on line 2: \'Expected an array value terminator "," or an array '
        "terminator \"]\", but got '\x00' instead.'",
    ),
    (
        "err_escape",
        'x = "\\q"',
        "Parse error on line 1: 'Invalid escape character 'q'. Only the following "
        "escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.'",
    ),
    (
        "err_hex",
        'x = "\\xzz"\n',
        "Parse error on line 1: 'Expected two hexadecimal digits after '\\x', but got 'zz''",
    ),
    (
        "err_unterminated_dq",
        'x = "abc',
        "Parse error on line 1: 'Unexpected EOF.'",
    ),
    (
        "err_unterminated_sq",
        "x = 'abc",
        "Parse error on line 1: 'Unexpected EOF.'",
    ),
    (
        "err_map_key_eof",
        "a { b",
        "Parse error on line 1: 'Unexpected EOF processing map key.'",
    ),
    (
        "err_map_dq_key_eof",
        'a { "b',
        "Parse error on line 1: 'Unexpected EOF processing double quoted map key.'",
    ),
    (
        "err_array_comma",
        "x = [1,,2]",
        "Parse error on line 1: 'Unexpected array value terminator ','.'",
    ),
    (
        "err_float_dot",
        "x = .5",
        "Parse error on line 1: 'Floats must start with a digit'",
    ),
    (
        "err_neg",
        "x = -x",
        "Parse error on line 1: 'Expected a digit but got 'x'.'",
    ),
    (
        "err_float_digit",
        "x = 1.x",
        "Parse error on line 1: 'Floats must have a digit after the '.', but got 'x' instead.'",
    ),
    (
        "err_date_range",
        "x = 2016-13-04T18:53:41Z",
        "expected Zulu formatted DateTime, but got '2016-13-04T18:53:41Z'",
    ),
    (
        "err_date_shape",
        "x = 2016-05-04X18:53:41Z",
        "Parse error on line 1: 'Expected 'T' in ISO8601 datetime, but found 'X' instead.'",
    ),
    (
        "err_date_year",
        "x = 1-2",
        "Parse error on line 1: 'All ISO8601 dates must be in full Zulu form.'",
    ),
    (
        "err_int_range",
        "x = 99999999999999999999",
        "integer '99999999999999999999' is out of the range",
    ),
    (
        "err_float_range",
        "x = 100000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000.0",
        "float "
        "'100000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000000000000000000000"
        "0000000000000000000000000000000000000000000000000000.0' "
        "is out of the range",
    ),
    (
        "err_block_eof",
        "x = (\nabc",
        "Parse error on line 2: 'Unexpected EOF processing block.'",
    ),
    (
        "err_include_array",
        "include [a]",
        "Parse error on line 1: 'Expected include value but found start of an array'",
    ),
    (
        "err_include_newline",
        "include \n",
        "Parse error on line 2: 'Expected include value but found new line'",
    ),
    (
        "err_include_missing",
        "include nope.conf",
        "error parsing include file 'nope.conf', open nope.conf: no such file or directory",
    ),
    (
        "err_var_missing",
        "x = $nope",
        "variable reference for 'nope' on line 1 can not be found",
    ),
    (
        "err_key_separator",
        "= 1",
        "Parse error on line 1: 'Unexpected key separator '=''",
    ),
    (
        "err_map_key_separator",
        "a { = 1 }",
        "Parse error on line 1: 'Unexpected key separator '='.'",
    ),
    (
        "err_dangling_key",
        "port = 4222\nbar",
        "config is invalid (t.conf:2:4)",
    ),
    (
        "err_block_level",
        "{ port = 4222 ",
        "Parse error on line 1: 'Expected a block-level value to end with a new line, "
        "comment or EOF, but got '\x00' instead.'",
    ),
    (
        "err_top_value_end",
        "x = 1 2",
        "Parse error on line 1: 'Expected a top-level value to end with a new line, "
        "comment or EOF, but got '2' instead.'",
    ),
    (
        "err_value_newline",
        "x = \n",
        "Parse error on line 2: 'Expected value but found new line'",
    ),
    (
        "err_nul_is_eof",
        "port: 42\x0022",
        "config is invalid (t.conf:1:11)",
    ),
    (
        "err_dq_eof_after_escape",
        'x = "\\t',
        "config is invalid (t.conf:1:6)",
    ),
]


def ours(text: str, directory: Path) -> str:
    path = directory / "t.conf"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    old = Path.cwd()
    os.chdir(directory)
    try:
        return digest("t.conf")
    except ConfigSyntaxError as err:
        return err.message
    finally:
        os.chdir(old)


@pytest.mark.parametrize(("ident", "text", "expected"), SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_recorded_snippet(ident: str, text: str, expected: str, tmp_path: Path) -> None:
    assert ours(text, tmp_path) == expected


# -- against the installed reference binary -------------------------------------------------------


@pytest.fixture(scope="module")
def reference_verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Verdict]:
    jobs: list[Job] = []
    names: list[str] = []
    for ident, text, _ in SNIPPETS:
        directory = tmp_path_factory.mktemp("snippet")
        (directory / "t.conf").write_bytes(text.encode("utf-8", "surrogateescape"))
        jobs.append(Job(directory, "t.conf"))
        names.append("snippet:" + ident)
    for ident, text, _ in POSITIONS:
        directory = tmp_path_factory.mktemp("position")
        (directory / "t.conf").write_text(text, encoding="utf-8")
        jobs.append(Job(directory, "t.conf"))
        names.append("position:" + ident)
    return dict(zip(names, run_many(jobs), strict=True))


@needs_reference
@pytest.mark.interop
@pytest.mark.parametrize(("ident", "text", "expected"), SNIPPETS, ids=[s[0] for s in SNIPPETS])
def test_snippet_matches_reference(
    ident: str, text: str, expected: str, reference_verdicts: dict[str, Verdict]
) -> None:
    verdict = reference_verdicts["snippet:" + ident]
    assert (verdict.digest or verdict.message) == expected


@needs_reference
@pytest.mark.interop
@pytest.mark.parametrize(("ident", "text", "lines"), POSITIONS, ids=[p[0] for p in POSITIONS])
def test_positions_match_reference(
    ident: str, text: str, lines: list[str], reference_verdicts: dict[str, Verdict]
) -> None:
    assert sorted(reference_verdicts["position:" + ident].lines) == lines


@needs_reference
@pytest.mark.interop
@pytest.mark.parametrize(
    ("environ", "text"),
    [
        ({"PYNATS_T_A": "4222"}, "port: $PYNATS_T_A\n"),
        ({"PYNATS_T_A": '"s"'}, "x: $PYNATS_T_A" + SINK),
        ({"PYNATS_T_A": "{a: 1, b: [1, 2 ]}"}, "x: $PYNATS_T_A" + SINK),
        ({"PYNATS_T_A": "$PYNATS_T_B", "PYNATS_T_B": "4222"}, "port: $PYNATS_T_A\n"),
        ({"PYNATS_T_A": "$PYNATS_T_A"}, "port: $PYNATS_T_A\n"),
        ({"PYNATS_T_A": "[1,"}, "port: $PYNATS_T_A\n"),
        ({"PYNATS_T_A": "1kbb"}, "port: $PYNATS_T_A\n"),
        ({"PYNATS_T_A": "5"}, "PYNATS_T_A = 4222\nport: $PYNATS_T_A\n"),
    ],
)
def test_environment_matches_reference(
    environ: dict[str, str], text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "t.conf").write_text(text)
    [verdict] = run_many([Job(tmp_path, "t.conf", environ)])
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    mine = ours(text, tmp_path)
    assert mine == (verdict.digest or verdict.message)
