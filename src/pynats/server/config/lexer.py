"""Lexer for the NATS configuration format ("NATS conf"), as nats-server 2.x reads it.

Theory of operation
-------------------
The lexer is a state machine, one method per state. A state reads characters with
``_next``/``_backup``/``_peek``, may queue tokens, and returns the state to run next
(``None`` stops the machine after an EOF or error token). States that lex a value do not
know where they are; whoever starts them pushes the state to resume afterwards, and the
value state pops it when done. That stack is what lets one set of value states serve
top-level entries, map entries and array elements.

Everything nats-server users can observe is reproduced, quirks included, because the
typed-options layer and the config digest depend on it:

* which token each input becomes (``[1, 2]`` is a lex error in 2.15: a digit run that is
  followed by ``]`` turns into an unquoted string that swallows the bracket);
* the error texts, word for word;
* line and column numbers. A token's column is computed from *byte* offsets as
  ``end - line_anchor - len(value)``, where the line anchor is the offset of the ``\\n``
  that started the line (0 on the first line). So columns are 0-based on line 1 and
  1-based after it, and escapes or block strings shift them; we do the same arithmetic.

A NUL character behaves like end of input (nats-server uses rune 0 as its EOF marker).
Input is a ``str``; bytes that were not valid UTF-8 are expected as ``surrogateescape``
characters (``\\udc80``-``\\udcff``), each standing for one byte, which is how Go sees them.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "EOF_CHAR",
    "Lexer",
    "Token",
    "TokenKind",
    "byte_length",
    "go_lower",
    "go_text",
    "is_go_space",
    "tokenize",
]

#: The character that ends input, whether it is really the end or a literal NUL.
EOF_CHAR = "\x00"

_KEY_SEPARATORS = "=:"
_SIZE_SUFFIXES = "kKmMgGtTpPeE"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_BOOL_WORDS = frozenset({"true", "false", "yes", "no", "on", "off"})
_DATE_SHAPE = "00-00T00:00:00Z"  # after "YYYY-"; "0" stands for any digit
#: Characters besides blanks, line ends and EOF that end a number (a size suffix too).
_NUMBER_ENDS = "};,"
#: Characters besides blanks, line ends and EOF that end an unquoted string.
_UNQUOTED_ENDS = ";,]}"
_INCLUDE_ENDS = ";}"

# Go's unicode.IsSpace: Latin-1 spaces plus the Unicode White_Space property. Python's
# str.isspace() also accepts U+001C..U+001F, which Go does not.
_GO_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

_GO_SPACE_CLASS = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"

# Runs of characters that a state would consume one by one without doing anything else;
# skipping them in one step is only a speed-up (see Lexer._skip).
_PLAIN_UNQUOTED = re.compile(r"[^\\\n\r \t\x00;,\]}']+")
_PLAIN_DQ = re.compile(r'[^\\"\x00]+')
_PLAIN_SQ = re.compile(r"[^'\x00]+")
_PLAIN_COMMENT = re.compile(r"[^\n\r\x00]+")
_PLAIN_KEY = re.compile(f"[^=:\\x00{_GO_SPACE_CLASS}]+")
_PLAIN_BLOCK = re.compile(r"[^)\x00]+")


class TokenKind(enum.Enum):
    """What a token is. Comments are tokens too (the parser skips them)."""

    ERROR = "error"
    EOF = "eof"
    KEY = "key"
    TEXT = "text"
    STRING = "string"
    BOOL = "bool"
    INTEGER = "integer"
    FLOAT = "float"
    DATETIME = "datetime"
    ARRAY_START = "array_start"
    ARRAY_END = "array_end"
    MAP_START = "map_start"
    MAP_END = "map_end"
    COMMENT_START = "comment_start"
    VARIABLE = "variable"
    INCLUDE = "include"


@dataclass(frozen=True, slots=True)
class Token:
    """One lexed item.

    ``value`` is the token's text: a key's name, a string after escapes, a number as
    written (``"1MB"``), a variable's name without ``$``, an include path, or for ERROR
    the message. ``line`` is 1-based; ``col`` is nats-server's column (module docstring).
    """

    kind: TokenKind
    value: str
    line: int
    col: int


class _State(Protocol):
    def __call__(self) -> _State | None: ...


def is_go_space(char: str) -> bool:
    """Go's ``unicode.IsSpace`` for one character."""
    return char in _GO_SPACES


def _is_blank(char: str) -> bool:
    return char in " \t"


def _is_line_end(char: str) -> bool:
    return char in "\n\r"


def _is_digit(char: str) -> bool:
    # Go's unicode.IsDigit is "category Nd", which is what str.isdecimal() tests.
    return char.isdecimal()


def go_lower(text: str) -> str:
    """Lower-case ``text`` one character at a time, like Go's ``strings.ToLower``."""
    if text.isascii():
        return text.lower()
    out = []
    for char in text:
        low = "i" if char == "\u0130" else char.lower()
        out.append(low if len(low) == 1 else char)
    return "".join(out)


def byte_length(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes (surrogate escapes count one byte each)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogateescape"))


def go_text(text: str) -> str:
    """``text`` as the bytes Go would see: UTF-8, lone surrogates standing for bytes."""
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate outside U+DC80..U+DCFF
        data = text.encode("utf-8", "surrogatepass")
    return data.decode("utf-8", "surrogateescape")


def _rejoin(text: str) -> str:
    """Let bytes produced by ``\\xHH`` escapes combine into characters, as in Go."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "surrogateescape")


def _shown(char: str) -> str:
    """How nats-server prints a character inside an error message."""
    if char == "\n":
        return "\\n"
    if "\udc80" <= char <= "\udcff":
        return "\ufffd"  # Go decodes an invalid byte as the replacement character
    return char


def _byte_offsets(text: str) -> list[int]:
    offsets = [0] * (len(text) + 1)
    total = 0
    for index, char in enumerate(text):
        offsets[index] = total
        code = ord(char)
        if code < 0x80 or 0xDC80 <= code <= 0xDCFF:
            total += 1
        elif code < 0x800:
            total += 2
        elif code < 0x10000:
            total += 3
        else:
            total += 4
    offsets[len(text)] = total
    return offsets


class Lexer:
    """Turns configuration text into tokens, on demand.

    Call :meth:`next_token` until it returns an EOF or ERROR token; after that it keeps
    returning that last token.
    """

    def __init__(self, text: str) -> None:
        text = go_text(text)
        self._text = text
        self._end = len(text)
        self._offsets = None if text.isascii() else _byte_offsets(text)
        self._start = 0  # start of the pending token
        self._pos = 0
        self._width = 0  # characters consumed by the last _next (0 at end of input)
        self._line = 1
        self._line_anchor = 0  # offset of the "\n" that began the current line
        self._token_anchor = 0  # line anchor when the pending token began
        self._resume: list[_State] = []
        self._parts: list[str] = []  # pieces of a string that had escapes
        self._string_state: _State = self._unquoted_string
        self._state: _State | None = self._top
        self._openers = self._make_openers()
        self._queue: deque[Token] = deque()
        self._last: Token | None = None

    # -- driving ----------------------------------------------------------------------------------

    def next_token(self) -> Token:
        """Run states until a token is ready and return it."""
        while not self._queue:
            if self._state is None:
                assert self._last is not None
                return self._last
            self._state = self._state()
        token = self._queue.popleft()
        if token.kind in (TokenKind.EOF, TokenKind.ERROR):
            self._last = token
            self._queue.clear()
            self._state = None
        return token

    # -- character primitives ---------------------------------------------------------------------

    def _next(self) -> str:
        if self._pos >= self._end:
            self._width = 0
            return EOF_CHAR
        char = self._text[self._pos]
        if char == "\n":
            self._line += 1
            self._line_anchor = self._pos
        self._width = 1
        self._pos += 1
        return char

    def _backup(self) -> None:
        self._pos -= self._width
        if self._pos < self._end and self._text[self._pos] == "\n":
            self._line -= 1

    def _skip(self, plain: re.Pattern[str]) -> None:
        """Consume a run of ``plain`` characters at once, exactly as ``_next`` would."""
        match = plain.match(self._text, self._pos)
        if match is None:
            return
        end = match.end()
        newlines = self._text.count("\n", self._pos, end)
        if newlines:
            self._line += newlines
            self._line_anchor = self._text.rfind("\n", self._pos, end)
        self._pos = end
        self._width = 1

    def _peek(self) -> str:
        char = self._next()
        self._backup()
        return char

    def _ignore(self) -> None:
        self._start = self._pos
        self._token_anchor = self._line_anchor

    def _offset(self, index: int) -> int:
        return index if self._offsets is None else self._offsets[index]

    # -- emitting ---------------------------------------------------------------------------------

    def _emit(self, kind: TokenKind) -> None:
        value = "".join(self._parts) + self._text[self._start : self._pos]
        self._queue_token(kind, value)

    def _emit_string(self) -> None:
        value = "".join(self._parts) + self._text[self._start : self._pos]
        self._parts = []
        self._queue_token(TokenKind.STRING, value)

    def _queue_token(self, kind: TokenKind, value: str) -> None:
        value = _rejoin(value)
        col = self._offset(self._pos) - self._offset(self._token_anchor) - byte_length(value)
        self._queue.append(Token(kind, value, self._line, col))
        self._start = self._pos
        self._token_anchor = self._line_anchor

    def _error(self, message: str) -> None:
        col = self._offset(self._pos) - self._offset(self._line_anchor)
        self._queue.append(Token(TokenKind.ERROR, message, self._line, col))

    def _eof_or_error(self) -> None:
        """End of input is fine unless something was left half-read."""
        if self._pos > self._start:
            self._error("Unexpected EOF.")
        else:
            self._emit(TokenKind.EOF)

    def _push(self, state: _State) -> None:
        self._resume.append(state)

    def _pop(self) -> _State | None:
        if not self._resume:
            self._error("BUG in lexer: no states to pop.")
            return None
        return self._resume.pop()

    # -- top level --------------------------------------------------------------------------------

    def _top(self) -> _State | None:
        char = self._next()
        if is_go_space(char):
            self._ignore()
            return self._top
        if char == "{":
            self._push(self._top)
            self._ignore()
            return self._block_start
        if char == "#" or (char == "/" and self._slash_comment()):
            self._push(self._top)
            return self._comment_start
        if char in ("/", EOF_CHAR):
            self._eof_or_error()
            return None
        self._backup()
        self._push(self._top_value_end)
        return self._key_start

    def _slash_comment(self) -> bool:
        """After a "/": True if a second "/" follows (consumed), else nothing consumed."""
        if self._next() == "/":
            return True
        self._backup()
        return False

    def _top_value_end(self) -> _State | None:
        char = self._next()
        if char == "#" or (char == "/" and self._slash_comment()):
            self._push(self._top)
            return self._comment_start
        if char == "/" or _is_blank(char):
            return self._top_value_end
        if _is_line_end(char) or char in (EOF_CHAR, ";", ",", "}"):
            self._ignore()
            return self._top
        self._error(
            "Expected a top-level value to end with a new line, comment or EOF, "
            f"but got '{_shown(char)}' instead."
        )
        return None

    # A "{" at top level opens a block whose entries are top-level entries (JSON style).

    def _block_start(self) -> _State | None:
        char = self._next()
        if is_go_space(char):
            self._ignore()
            return self._block_start
        if char == "{":
            self._push(self._block_end)
            self._ignore()
            return self._block_start
        if char == "}":
            self._ignore()
            return self._pop()
        if char == "#" or (char == "/" and self._slash_comment()):
            self._push(self._block_start)
            return self._comment_start
        if char in ("/", EOF_CHAR):
            self._eof_or_error()
            return None
        self._backup()
        self._push(self._block_value_end)
        return self._key_start

    def _block_value_end(self) -> _State | None:
        char = self._next()
        if char == "#" or (char == "/" and self._slash_comment()):
            self._push(self._block_value_end)
            return self._comment_start
        if char == "/" or _is_blank(char):
            return self._block_value_end
        if _is_line_end(char) or char in (";", ","):
            self._ignore()
            return self._block_start
        if char == "}":
            self._backup()
            return self._block_end
        self._error(
            "Expected a block-level value to end with a new line, comment or EOF, "
            f"but got '{_shown(char)}' instead."
        )
        return None

    def _block_end(self) -> _State | None:
        char = self._next()
        if char == "#" or (char == "/" and self._slash_comment()):
            self._push(self._block_start)
            return self._comment_start
        if char == "/" or _is_line_end(char) or _is_blank(char):
            return self._block_end
        if char in (";", ","):
            self._ignore()
            return self._block_start
        if char == "}":
            self._ignore()
            return self._pop()
        self._error(f"Expected a block-level to end with a '}}', but got '{_shown(char)}' instead.")
        return None

    # -- keys (top level and blocks) --------------------------------------------------------------

    def _key_start(self) -> _State | None:
        char = self._peek()
        if char in _KEY_SEPARATORS:
            self._error(f"Unexpected key separator '{char}'")
            return None
        if is_go_space(char):
            self._next()
            self._ignore()
            return self._key_start
        if char in "\"'":
            self._next()
            self._ignore()
            return self._dq_key if char == '"' else self._sq_key
        self._ignore()
        self._next()
        return self._bare_key

    def _dq_key(self) -> _State | None:
        return self._quoted_key('"', self._dq_key)

    def _sq_key(self) -> _State | None:
        return self._quoted_key("'", self._sq_key)

    def _quoted_key(self, quote: str, again: _State) -> _State | None:
        char = self._peek()
        if char == quote:
            self._emit(TokenKind.KEY)
            self._next()
            self._ignore()
            return self._key_end
        if char == EOF_CHAR:
            self._eof_or_error()
            return None
        self._next()
        return again

    def _bare_key(self) -> _State | None:
        self._skip(_PLAIN_KEY)
        char = self._peek()
        if is_go_space(char):
            return self._key_or_include(self._key_end, None)
        if char in _KEY_SEPARATORS or char == EOF_CHAR:
            self._emit(TokenKind.KEY)
            return self._key_end
        self._next()
        return self._bare_key

    def _key_or_include(self, after_key: _State, after_include: _State | None) -> _State:
        """A bare key followed by a space may be the ``include`` keyword."""
        if go_lower(self._text[self._start : self._pos]) == "include":
            self._ignore()
            if after_include is not None:
                self._push(after_include)
            return self._include_start
        self._emit(TokenKind.KEY)
        return after_key

    def _key_end(self) -> _State | None:
        char = self._next()
        if is_go_space(char):
            self._ignore()
            return self._key_end
        if char in _KEY_SEPARATORS:
            self._ignore()
            return self._value
        if char == EOF_CHAR:
            self._emit(TokenKind.EOF)
            return None
        self._backup()
        return self._value

    # -- include ----------------------------------------------------------------------------------

    def _include_start(self) -> _State | None:
        if _is_blank(self._next()):
            self._ignore()
            return self._include_start
        self._backup()
        return self._include_value

    def _include_value(self) -> _State | None:
        char = self._next()
        if char in "\"'":
            self._ignore()
            return self._include_dq if char == '"' else self._include_sq
        problem = _include_problem(char)
        if problem:
            self._error(f"Expected include value but found {problem}")
            return None
        self._backup()
        return self._include_bare

    def _include_dq(self) -> _State | None:
        return self._include_quoted('"', self._include_dq, "double quoted")

    def _include_sq(self) -> _State | None:
        return self._include_quoted("'", self._include_sq, "quoted")

    def _include_quoted(self, quote: str, again: _State, what: str) -> _State | None:
        char = self._next()
        if char == quote:
            self._backup()
            self._emit(TokenKind.INCLUDE)
            self._next()
            self._ignore()
            return self._pop()
        if char == EOF_CHAR:
            self._error(f"Unexpected EOF in {what} include")
            return None
        return again

    def _include_bare(self) -> _State | None:
        char = self._next()
        if _is_line_end(char) or _is_blank(char) or char == EOF_CHAR or char in _INCLUDE_ENDS:
            self._backup()
            self._emit(TokenKind.INCLUDE)
            return self._pop()
        if char == "'":
            self._backup()
            self._emit(TokenKind.INCLUDE)
            self._next()
            self._ignore()
            return self._pop()
        return self._include_bare

    # -- values -----------------------------------------------------------------------------------

    def _value(self) -> _State | None:
        char = self._next()
        if _is_blank(char):
            self._ignore()
            return self._value
        opener = self._openers.get(char)
        if opener is not None:
            return opener()
        if _is_digit(char):
            self._backup()
            return self._number_start
        if char == ".":
            self._error("Floats must start with a digit")
            return None
        if _is_line_end(char):
            self._error("Expected value but found new line")
            return None
        self._backup()
        self._string_state = self._unquoted_string
        return self._unquoted_string

    def _make_openers(self) -> dict[str, _State]:
        return {
            "[": self._open_array,
            "{": self._open_map,
            "'": self._open_sq_string,
            '"': self._open_dq_string,
            "-": self._negative_number_start,
            "(": self._open_block,
        }

    def _open_array(self) -> _State | None:
        self._ignore()
        self._emit(TokenKind.ARRAY_START)
        return self._array_value

    def _open_map(self) -> _State | None:
        self._ignore()
        self._emit(TokenKind.MAP_START)
        return self._map_key_start

    def _open_sq_string(self) -> _State | None:
        self._ignore()
        return self._sq_string

    def _open_dq_string(self) -> _State | None:
        self._ignore()
        self._string_state = self._dq_string
        return self._dq_string

    def _open_block(self) -> _State | None:
        self._ignore()
        return self._block_string

    # -- arrays -----------------------------------------------------------------------------------

    def _array_value(self) -> _State | None:
        char = self._next()
        if is_go_space(char):
            self._ignore()
            return self._array_value
        if char == "#" or (char == "/" and self._slash_comment()):
            self._push(self._array_value)
            return self._comment_start
        if char in ("/", ","):
            self._error("Unexpected array value terminator ','.")
            return None
        if char == "]":
            return self._array_end
        self._backup()
        self._push(self._array_value_end)
        return self._value

    def _array_value_end(self) -> _State | None:
        char = self._next()
        if _is_blank(char):
            self._ignore()
            return self._array_value_end
        if char == "#" or (char == "/" and self._slash_comment()):
            self._push(self._array_value_end)
            return self._comment_start
        if char in ("/", ",") or _is_line_end(char):
            self._ignore()
            return self._array_value
        if char == "]":
            return self._array_end
        self._error(
            'Expected an array value terminator "," or an array terminator "]", '
            f"but got '{_shown(char)}' instead."
        )
        return None

    def _array_end(self) -> _State | None:
        self._ignore()
        self._emit(TokenKind.ARRAY_END)
        return self._pop()

    # -- maps -------------------------------------------------------------------------------------

    def _map_key_start(self) -> _State | None:
        char = self._peek()
        if char in _KEY_SEPARATORS:
            self._error(f"Unexpected key separator '{char}'.")
            return None
        if char == "]":
            self._error("Unexpected array end ']' processing map.")
            return None
        if is_go_space(char) or char == "}":
            self._next()
            self._ignore()
            return self._map_key_start if char != "}" else self._map_end
        if char == "#":
            self._next()
            self._push(self._map_key_start)
            return self._comment_start
        if char == "/":
            self._next()
            if self._slash_comment():
                self._push(self._map_key_start)
                return self._comment_start
        elif char in "\"'":
            self._next()
            self._ignore()
            return self._map_dq_key if char == '"' else self._map_sq_key
        elif char == EOF_CHAR:
            self._error("Unexpected EOF processing map.")
            return None
        self._ignore()
        self._next()
        return self._map_bare_key

    def _map_sq_key(self) -> _State | None:
        return self._map_quoted_key("'", self._map_sq_key, "quoted")

    def _map_dq_key(self) -> _State | None:
        return self._map_quoted_key('"', self._map_dq_key, "double quoted")

    def _map_quoted_key(self, quote: str, again: _State, what: str) -> _State | None:
        char = self._peek()
        if char == EOF_CHAR:
            self._error(f"Unexpected EOF processing {what} map key.")
            return None
        if char == quote:
            self._emit(TokenKind.KEY)
            self._next()
            self._ignore()
            return self._map_key_end
        self._next()
        return again

    def _map_bare_key(self) -> _State | None:
        self._skip(_PLAIN_KEY)
        char = self._peek()
        if char == EOF_CHAR:
            self._error("Unexpected EOF processing map key.")
            return None
        if is_go_space(char):
            return self._key_or_include(self._map_key_end, self._map_value_end)
        if char in _KEY_SEPARATORS:
            self._emit(TokenKind.KEY)
            return self._map_key_end
        self._next()
        return self._map_bare_key

    def _map_key_end(self) -> _State | None:
        char = self._next()
        if is_go_space(char):
            self._ignore()
            return self._map_key_end
        if char in _KEY_SEPARATORS:
            self._ignore()
            return self._map_value
        self._backup()
        return self._map_value

    def _map_value(self) -> _State | None:
        char = self._next()
        if is_go_space(char):
            self._ignore()
            return self._map_value
        if char == ",":
            self._error('Unexpected map value terminator ",".')
            return None
        if char == "}":
            self._ignore()
            return self._map_end
        self._backup()
        self._push(self._map_value_end)
        return self._value

    def _map_value_end(self) -> _State | None:
        char = self._next()
        if _is_blank(char):
            self._ignore()
            return self._map_value_end
        if char == "#" or (char == "/" and self._slash_comment()):
            self._push(self._map_value_end)
            return self._comment_start
        if char in ("/", ";", ",") or _is_line_end(char):
            self._ignore()
            return self._map_key_start
        if char == "}":
            self._ignore()
            return self._map_end
        self._error(
            'Expected a map value terminator "," or a map terminator "}", '
            f"but got '{_shown(char)}' instead."
        )
        return None

    def _map_end(self) -> _State | None:
        self._ignore()
        self._emit(TokenKind.MAP_END)
        return self._pop()

    # -- strings ----------------------------------------------------------------------------------

    def _sq_string(self) -> _State | None:
        self._skip(_PLAIN_SQ)
        char = self._next()
        if char == "'":
            self._backup()
            self._emit(TokenKind.STRING)
            self._next()
            self._ignore()
            return self._pop()
        if char == EOF_CHAR:
            self._eof_or_error()
            return None
        return self._sq_string

    def _dq_string(self) -> _State | None:
        self._skip(_PLAIN_DQ)
        char = self._next()
        if char == "\\":
            self._take_pending_part()
            return self._string_escape
        if char == '"':
            self._backup()
            self._emit_string()
            self._next()
            self._ignore()
            return self._pop()
        if char == EOF_CHAR:
            self._eof_or_error()
            return None
        return self._dq_string

    def _unquoted_string(self) -> _State | None:
        self._skip(_PLAIN_UNQUOTED)
        char = self._next()
        if char == "\\":
            self._take_pending_part()
            return self._string_escape
        if _is_line_end(char) or _is_blank(char) or char == EOF_CHAR or char in _UNQUOTED_ENDS:
            self._backup()
            self._emit_unquoted()
            return self._pop()
        if char == "'":
            self._backup()
            self._emit_string()
            self._next()
            self._ignore()
            return self._pop()
        return self._unquoted_string

    def _emit_unquoted(self) -> None:
        if self._parts:
            self._emit_string()
        elif go_lower(self._text[self._start : self._pos]) in _BOOL_WORDS:
            self._emit(TokenKind.BOOL)
        elif self._start < self._end and self._text[self._start] == "$":
            self._start += 1
            self._emit(TokenKind.VARIABLE)
        else:
            self._emit_string()

    def _take_pending_part(self) -> None:
        """Keep the text read so far (minus the backslash) as a piece of the string."""
        self._parts.append(self._text[self._start : self._pos - 1])
        self._start = self._pos

    def _add_part(self, piece: str) -> _State:
        self._parts.append(piece)
        self._start = self._pos
        return self._string_state

    def _string_escape(self) -> _State | None:
        char = self._next()
        if char == "x":
            return self._hex_escape
        replacement = {"t": "\t", "n": "\n", "r": "\r", '"': '"', "\\": "\\"}.get(char)
        if replacement is not None:
            return self._add_part(replacement)
        self._error(
            f"Invalid escape character '{_shown(char)}'. Only the following escape characters "
            'are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.'
        )
        return None

    def _hex_escape(self) -> _State | None:
        for _ in range(2):
            if _is_line_end(self._next()):
                self._error("Expected two hexadecimal digits after '\\x', but hit end of line")
                return None
        # nats-server looks at the last two *bytes*, whatever the characters were.
        raw = self._text[max(0, self._pos - 2) : self._pos].encode("utf-8", "surrogateescape")
        raw = raw[-2:]
        text = raw.decode("utf-8", "surrogateescape")
        if len(raw) == 2 and set(text) <= _HEX_DIGITS:
            value = int(text, 16)
            return self._add_part(chr(value) if value < 0x80 else chr(0xDC00 + value))
        self._error(f"Expected two hexadecimal digits after '\\x', but got '{text}'")
        return None

    def _block_string(self) -> _State | None:
        """Text between "(" and a ")" alone on its line, kept raw."""
        self._skip(_PLAIN_BLOCK)
        char = self._next()
        if char == EOF_CHAR:
            self._error("Unexpected EOF processing block.")
            return None
        if char != ")":
            return self._block_string
        self._backup()
        self._backup()
        if self._next() != "\n":
            self._next()
            return self._block_string
        self._next()
        if self._next() in ("\n", EOF_CHAR):
            # nats-server steps back twice by the width of that last character, which is
            # zero at the very end of input: then the value keeps the "\n)".
            self._backup()
            self._backup()
            self._emit(TokenKind.STRING)
            self._next()
            self._ignore()
            return self._pop()
        self._backup()
        return self._block_string

    # -- numbers, dates, addresses ----------------------------------------------------------------

    def _number_start(self) -> _State | None:
        char = self._next()
        if not _is_digit(char):
            self._error_not_digit(char)
            return None
        return self._number

    def _error_not_digit(self, char: str) -> None:
        if char == ".":
            self._error("Floats must start with a digit, not '.'.")
        else:
            self._error(f"Expected a digit but got '{_shown(char)}'.")

    def _number(self) -> _State | None:
        char = self._next()
        if char == "-":
            if byte_length(self._text[self._start : self._pos]) != 5:
                self._error("All ISO8601 dates must be in full Zulu form.")
                return None
            return self._date_after_year
        if _is_digit(char):
            return self._number
        if char == ".":
            return self._float_start
        if char in _SIZE_SUFFIXES:
            return self._size_suffix
        if not _ends_number(char):
            # Not a number after all (e.g. "3secret"): the character read stays in the
            # string, even a "]" that was meant to close an array.
            self._string_state = self._unquoted_string
            return self._unquoted_string
        self._backup()
        self._emit(TokenKind.INTEGER)
        return self._pop()

    def _size_suffix(self) -> _State | None:
        char = self._next()
        if char in "bBiI":
            return self._size_suffix
        self._backup()
        if _ends_number(char):
            self._emit(TokenKind.INTEGER)
            return self._pop()
        self._string_state = self._unquoted_string
        return self._unquoted_string

    def _date_after_year(self) -> _State | None:
        for expected in _DATE_SHAPE:
            char = self._next()
            if expected == "0" and not _is_digit(char):
                self._error(
                    f"Expected digit in ISO8601 datetime, but found '{_shown(char)}' instead."
                )
                return None
            if expected != "0" and char != expected:
                self._error(
                    f"Expected '{expected}' in ISO8601 datetime, "
                    f"but found '{_shown(char)}' instead."
                )
                return None
        self._emit(TokenKind.DATETIME)
        return self._pop()

    def _negative_number_start(self) -> _State | None:
        char = self._next()
        if not _is_digit(char):
            self._error_not_digit(char)
            return None
        return self._negative_number

    def _negative_number(self) -> _State | None:
        char = self._next()
        if _is_digit(char):
            return self._negative_number
        if char == ".":
            return self._float_start
        if char in _SIZE_SUFFIXES:
            return self._size_suffix
        self._backup()
        self._emit(TokenKind.INTEGER)
        return self._pop()

    def _float_start(self) -> _State | None:
        char = self._next()
        if not _is_digit(char):
            self._error(
                f"Floats must have a digit after the '.', but got '{_shown(char)}' instead."
            )
            return None
        return self._float

    def _float(self) -> _State | None:
        char = self._next()
        if _is_digit(char):
            return self._float
        if char == ".":
            return self._ip_address  # "1.2.3": an address, kept as a string
        self._backup()
        self._emit(TokenKind.FLOAT)
        return self._pop()

    def _ip_address(self) -> _State | None:
        char = self._next()
        if _is_digit(char) or char in ".:-":
            return self._ip_address
        self._backup()
        self._emit(TokenKind.STRING)
        return self._pop()

    # -- comments ---------------------------------------------------------------------------------

    def _comment_start(self) -> _State | None:
        self._ignore()
        self._emit(TokenKind.COMMENT_START)
        return self._comment

    def _comment(self) -> _State | None:
        self._skip(_PLAIN_COMMENT)
        char = self._peek()
        if _is_line_end(char) or char == EOF_CHAR:
            self._emit(TokenKind.TEXT)
            return self._pop()
        self._next()
        return self._comment


def _ends_number(char: str) -> bool:
    return _is_line_end(char) or _is_blank(char) or char == EOF_CHAR or char in _NUMBER_ENDS


def _include_problem(char: str) -> str:
    """What an include path may not start with, in nats-server's words ("" if fine)."""
    if char == "[":
        return "start of an array"
    if char == "{":
        return "start of a map"
    if char == "(":
        return "start of a block"
    if _is_digit(char) or char == "-":
        return "start of a number"
    if char == "\\":
        return "escape sequence"
    if _is_line_end(char):
        return "new line"
    return ""


def tokenize(text: str) -> Iterator[Token]:
    """Yield every token of ``text``, ending with the EOF or ERROR token."""
    lexer = Lexer(text)
    while True:
        token = lexer.next_token()
        yield token
        if token.kind in (TokenKind.EOF, TokenKind.ERROR):
            return
