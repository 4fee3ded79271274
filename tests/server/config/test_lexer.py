"""The configuration lexer: tokens, their positions, and nats-server's lexer errors.

Positions follow nats-server (checked against ``nats-server -t``): a token's column is
counted in bytes from the ``\\n`` that started its line, so it is 0-based on line 1 and
1-based on later lines.
"""

from __future__ import annotations

import pytest

from pynats.server.config.lexer import (
    Lexer,
    Token,
    TokenKind,
    byte_length,
    go_lower,
    is_go_space,
    tokenize,
)

K = TokenKind


def tokens(text: str) -> list[Token]:
    """All tokens except comments."""
    return [t for t in tokenize(text) if t.kind not in (K.COMMENT_START, K.TEXT)]


def shapes(text: str) -> list[tuple[TokenKind, str]]:
    return [(t.kind, t.value) for t in tokens(text)]


def place(token: Token) -> tuple[int, int]:
    return token.line, token.col


def error_of(text: str) -> Token:
    last = list(tokenize(text))[-1]
    assert last.kind is K.ERROR, last
    return last


# -- keys and separators --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["foo = 1", "foo: 1", "foo 1", "foo=1", "foo:1", "foo  \t : 1"])
def test_three_key_value_separators(text: str) -> None:
    assert shapes(text) == [(K.KEY, "foo"), (K.INTEGER, "1"), (K.EOF, "")]


def test_quoted_keys_keep_spaces_and_case() -> None:
    assert shapes("\"Dq Key\" = 1\n'sq' 2") == [
        (K.KEY, "Dq Key"),
        (K.INTEGER, "1"),
        (K.KEY, "sq"),
        (K.INTEGER, "2"),
        (K.EOF, ""),
    ]


def test_key_positions_match_nats_server() -> None:
    # nats-server -t reports "1:0", "2:1" and "2:3" for these keys.
    assert place(tokens("foo: 1")[0]) == (1, 0)
    assert place(tokens("port: 4222\nfoo: 1")[2]) == (2, 1)
    assert place(tokens('\n  bar: "x"')[0]) == (2, 3)


def test_value_positions() -> None:
    key, value, _ = tokens("ping_interval: 60")
    assert (key.line, key.col, value.line, value.col) == (1, 0, 1, 15)
    assert tokens("x = [1, 2.5 ]")[2:4] == [
        Token(K.INTEGER, "1", 1, 5),
        Token(K.FLOAT, "2.5", 1, 8),
    ]


def test_columns_count_bytes_not_characters() -> None:
    assert tokens("\u00e9\u00e9 = 1; zz = 2")[2].col == 10


def test_escapes_shift_the_column_like_nats_server() -> None:
    # The value is two characters long but spans four in the source.
    assert place(tokens('a = "\\t\\t"; zz = 2')[2]) == (1, 12)


def test_crlf_line_endings() -> None:
    assert [(t.kind, t.line, t.col) for t in tokens("a: 1\r\nb: 2\r\n")] == [
        (K.KEY, 1, 0),
        (K.INTEGER, 1, 3),
        (K.KEY, 2, 1),
        (K.INTEGER, 2, 4),
        (K.EOF, 3, 1),
    ]


# -- strings --------------------------------------------------------------------------------------


def test_double_quoted_escapes() -> None:
    text = 'x = "t\\tn\\nr\\rq\\"b\\\\h\\x41u\\xc3\\xa9"'
    assert tokens(text)[1].value == 't\tn\nr\rq"b\\hAu\u00e9'


def test_hex_escape_of_a_lone_byte_is_a_surrogate_escape() -> None:
    assert tokens('x = "\\xff"')[1].value == "\udcff"


def test_single_quoted_strings_are_raw() -> None:
    assert tokens("x = 'a\\tb $c'")[1] == Token(K.STRING, "a\\tb $c", 1, 5)


def test_dollar_inside_quotes_is_literal() -> None:
    assert shapes('x = "$HOME"')[1] == (K.STRING, "$HOME")


def test_unquoted_string_ends_at_terminators() -> None:
    assert shapes("a = x;b = y,c = z}\nd = [e,f]") == [
        (K.KEY, "a"),
        (K.STRING, "x"),
        (K.KEY, "b"),
        (K.STRING, "y"),
        (K.KEY, "c"),
        (K.STRING, "z"),
        (K.KEY, "d"),
        (K.ARRAY_START, ""),
        (K.STRING, "e"),
        (K.STRING, "f"),
        (K.ARRAY_END, ""),
        (K.EOF, ""),
    ]


def test_unquoted_string_with_url() -> None:
    assert shapes("routes: nats-route://u:p@h:4245")[1] == (K.STRING, "nats-route://u:p@h:4245")


def test_block_string() -> None:
    value = tokens("x = (\n-----BEGIN-----\nabc)\n  ) x\n)\ny = 1")[1]
    assert value.kind is K.STRING
    assert value.value == "\n-----BEGIN-----\nabc)\n  ) x\n"


def test_block_string_ending_at_eof_keeps_closing_paren() -> None:
    # nats-server keeps "\n)" when the ")" is the very last character.
    assert tokens("x = (\nabc\n)")[1].value == "\nabc\n)"


# -- numbers, booleans, dates ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("1", K.INTEGER, "1"),
        ("-12", K.INTEGER, "-12"),
        ("1MB", K.INTEGER, "1MB"),
        ("1k", K.INTEGER, "1k"),
        ("1KiB", K.INTEGER, "1KiB"),
        ("1.5", K.FLOAT, "1.5"),
        ("-0.25", K.FLOAT, "-0.25"),
        ("2016-05-04T18:53:41Z", K.DATETIME, "2016-05-04T18:53:41Z"),
        ("127.0.0.1:4222", K.STRING, "127.0.0.1:4222"),
        ("3secret", K.STRING, "3secret"),
        ("1e5", K.STRING, "1e5"),
        ("500ms", K.STRING, "500ms"),
        ("2m", K.INTEGER, "2m"),
        ("true", K.BOOL, "true"),
        ("Off", K.BOOL, "Off"),
        ("YES", K.BOOL, "YES"),
        ("$var", K.VARIABLE, "var"),
        ("$2a$11$abc", K.VARIABLE, "2a$11$abc"),
    ],
)
def test_scalar_tokens(text: str, kind: TokenKind, value: str) -> None:
    assert shapes("x = " + text)[1] == (kind, value)


def test_digit_run_before_bracket_swallows_it() -> None:
    # nats-server 2.x: "2]" is an unquoted string, so the array is never closed.
    assert shapes("x = [1, 2]")[2:4] == [(K.INTEGER, "1"), (K.STRING, "2]")]
    assert shapes("x = [1k]")[2:4] == [(K.STRING, "1k"), (K.ARRAY_END, "")]


# -- structure ------------------------------------------------------------------------------------


def test_maps_and_arrays() -> None:
    assert [kind for kind, _ in shapes("a { b: [1, {c: 2}] }")] == [
        K.KEY,
        K.MAP_START,
        K.KEY,
        K.ARRAY_START,
        K.INTEGER,
        K.MAP_START,
        K.KEY,
        K.INTEGER,
        K.MAP_END,
        K.ARRAY_END,
        K.MAP_END,
        K.EOF,
    ]


def test_comments_both_styles() -> None:
    kinds = [(t.kind, t.value) for t in tokenize("# one\nx = 1 // two\n")]
    assert (K.TEXT, " one") in kinds
    assert (K.TEXT, " two") in kinds
    assert shapes("# one\nx = 1 // two\n") == [(K.KEY, "x"), (K.INTEGER, "1"), (K.EOF, "")]


def test_top_level_braces_json_style() -> None:
    assert shapes('{ "a": 1, "b": 2 }') == [
        (K.KEY, "a"),
        (K.INTEGER, "1"),
        (K.KEY, "b"),
        (K.INTEGER, "2"),
        (K.EOF, ""),
    ]


@pytest.mark.parametrize(
    "text", ["include ./a.conf", "include 'a.conf'", 'include "a.conf"', "INCLUDE a.conf"]
)
def test_include(text: str) -> None:
    path = shapes(text)[0][1]
    assert shapes(text)[0][0] is K.INCLUDE
    assert path.endswith("a.conf")


def test_include_inside_map() -> None:
    assert shapes("a { include b.conf\n c: 1 }")[1:3] == [(K.MAP_START, ""), (K.INCLUDE, "b.conf")]


def test_include_keyword_needs_a_space() -> None:
    assert shapes("include: 1")[0] == (K.KEY, "include")


def test_nul_reads_as_end_of_input() -> None:
    # nats-server uses rune 0 as its EOF marker, so a NUL ends (or breaks) the input.
    assert shapes("a: 12\x0034")[:2] == [(K.KEY, "a"), (K.INTEGER, "12")]
    assert error_of("a: 1\n\x00b: 2").value == "Unexpected EOF."


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "port = 4222\nfoo { x: 1 x",
            2,
            'Expected a map value terminator "," or a map terminator "}", but got \'x\' instead.',
        ),
        (
            'x = "\\q"',
            1,
            "Invalid escape character 'q'. Only the following escape characters "
            'are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.',
        ),
        ('x = "\\xzz"', 1, "Expected two hexadecimal digits after '\\x', but got 'zz'"),
        ('x = "\\x4', 1, "Expected two hexadecimal digits after '\\x', but got 'x4'"),
        ('x = "abc', 1, "Unexpected EOF."),
        ("a { b", 1, "Unexpected EOF processing map key."),
        ('a { "b', 1, "Unexpected EOF processing double quoted map key."),
        ("a { 'b", 1, "Unexpected EOF processing quoted map key."),
        ("x = [1,,2]", 1, "Unexpected array value terminator ','."),
        ("x = .5", 1, "Floats must start with a digit"),
        ("x = -.5", 1, "Floats must start with a digit, not '.'."),
        ("x = -x", 1, "Expected a digit but got 'x'."),
        ("x = 1.x", 1, "Floats must have a digit after the '.', but got 'x' instead."),
        ("x = 1.\n", 2, "Floats must have a digit after the '.', but got '\\n' instead."),
        ("x = 2016-05-04X18:53:41Z", 1, "Expected 'T' in ISO8601 datetime, but found 'X' instead."),
        (
            "x = 2016-05-04T18:53:4Z",
            1,
            "Expected digit in ISO8601 datetime, but found 'Z' instead.",
        ),
        ("x = 1-2", 1, "All ISO8601 dates must be in full Zulu form."),
        ("x = (\nabc", 2, "Unexpected EOF processing block."),
        ("include [a]", 1, "Expected include value but found start of an array"),
        ("include {a}", 1, "Expected include value but found start of a map"),
        ("include (a)", 1, "Expected include value but found start of a block"),
        ("include 5", 1, "Expected include value but found start of a number"),
        ("include \\a", 1, "Expected include value but found escape sequence"),
        ("include \n", 2, "Expected include value but found new line"),
        ('include "x', 1, "Unexpected EOF in double quoted include"),
        ("include 'x", 1, "Unexpected EOF in quoted include"),
        ("= 1", 1, "Unexpected key separator '='"),
        ("a { = 1 }", 1, "Unexpected key separator '='."),
        ("a { ] }", 1, "Unexpected array end ']' processing map."),
        (
            "x = 1 2",
            1,
            "Expected a top-level value to end with a new line, comment or EOF, "
            "but got '2' instead.",
        ),
        ("x = \n", 2, "Expected value but found new line"),
        (
            "{ a = 1 ",
            1,
            "Expected a block-level value to end with a new line, comment or EOF, "
            "but got '\x00' instead.",
        ),
        ("{{ a = 1 } x }", 1, "Expected a block-level to end with a '}', but got 'x' instead."),
        (
            "x = [1, 2]",
            1,
            'Expected an array value terminator "," or an array terminator '
            "\"]\", but got '\x00' instead.",
        ),
    ],
)
def test_errors(text: str, line: int, message: str) -> None:
    error = error_of(text)
    assert (error.line, error.value) == (line, message)


def test_invalid_byte_is_shown_as_replacement_character() -> None:
    assert error_of("x = 1 \udcff").value.endswith("but got '\ufffd' instead.")


def test_error_is_sticky() -> None:
    lexer = Lexer("x = .5")
    first = [lexer.next_token() for _ in range(3)]
    assert first[1].kind is K.ERROR
    assert lexer.next_token() == first[1]


def test_eof_is_sticky() -> None:
    lexer = Lexer("")
    assert lexer.next_token() == lexer.next_token() == Token(K.EOF, "", 1, 0)


# -- helpers --------------------------------------------------------------------------------------


def test_go_space_excludes_python_only_separators() -> None:
    assert is_go_space("\u00a0") and is_go_space("\u3000")
    assert not is_go_space("\x1c")
    assert "\x1c".isspace()


def test_go_lower() -> None:
    assert go_lower("INCLUDE") == "include"
    assert go_lower("\u0130NCLUDE") == "include"


def test_byte_length() -> None:
    assert byte_length("a\u00e9\U0001f600\udcff") == 1 + 2 + 4 + 1
