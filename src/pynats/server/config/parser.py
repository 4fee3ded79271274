"""Parser for the NATS configuration format: tokens to a generic tree, as nats-server 2.x.

Theory of operation
-------------------
This is the middle of the three configuration steps (text, generic tree, typed options).
Tokens from :mod:`.lexer` are folded into nested dicts and lists with an explicit stack
of open containers, so nesting never recurses. Like ``conf/parse.go`` the parser keeps a
stack of pending keys; a value pops the newest key when it lands in a map. One quirk
follows from that and is kept: an integer with an unknown size suffix (``1kbb``) yields
no value, so its key stays on the stack and the *next* value stored in that map (even
the enclosing map itself, when it closes) takes that key.

``$name`` looks the name up in the open maps, innermost first, then in the environment.
An environment value is parsed as ``pk=<value>`` on its own (so ``"4222"`` becomes an
int); names being expanded are tracked so a cycle is reported, not followed. A map entry
whose value is referenced gets ``used_variable`` (nats-server then does not report it as
an unknown option). ``$2a$...`` is a bcrypt hash, not a reference.

``include path`` parses another file, whose path is joined Go-style to the directory of
the including file, and stores its top-level entries where the include appears; their
positions name the included file. nats-server has no include-cycle check (it overflows
its stack); we report one.

Every entry keeps two positions: ``key_pos`` is where nats-server reports problems with
an option ("file:line:col: unknown field"), ``pos`` is where its value token was. Columns
follow the lexer's rule (0-based on line 1, 1-based after); the value of a map or array
is positioned where nats-server puts it, just after its closing bracket.

The digest is SHA-256 over the JSON nats-server's Go ``encoding/json`` writes for the
tree (keys sorted by bytes, ``<>&`` and U+2028/9 escaped, invalid UTF-8 as U+FFFD, Go's
float format, a trailing newline). 2.15 no longer drops used variables before hashing.

Known differences from nats-server, all on inputs it mishandles: include cycles and
nesting deeper than :data:`MAX_DEPTH` (or trees over :data:`MAX_NODES` nodes once
variables are expanded) are errors here; a datetime in year 0000 is an error here (Python
has no year 0); values from the environment carry the position of the ``$reference``.
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pynats.errors import ConfigError
from pynats.server.config.lexer import Lexer, Token, TokenKind, go_lower

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "ConfigSyntaxError",
    "Node",
    "Pos",
    "digest",
    "digest_of_tree",
    "parse_file",
    "parse_text",
    "plain",
]

#: Deepest nesting of maps and arrays accepted (nats-server has no limit).
MAX_DEPTH = 128
#: Most values a tree may hold once variables are expanded (guards ``a=[$b,$b,...]``).
MAX_NODES = 2_000_000
#: Most files and environment values being parsed inside one another at once.
MAX_NESTING = 64

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_BCRYPT_PREFIX = "2a$"
_ENV_KEY = "pk"
_SIZE_MULTIPLIERS = {
    "": 1,
    "k": 1000,
    "kb": 1024,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1024**4,
    "ti": 1024**4,
    "tib": 1024**4,
    "p": 1000**5,
    "pb": 1024**5,
    "pi": 1024**5,
    "pib": 1024**5,
    "e": 1000**6,
    "eb": 1024**6,
    "ei": 1024**6,
    "eib": 1024**6,
}

Scalar = str | int | float | bool | datetime.datetime


@dataclass(frozen=True, slots=True)
class Pos:
    """A place in a configuration file, numbered as nats-server numbers it."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True, slots=True)
class Node:
    """One value of the tree, with where it came from.

    ``value`` is a scalar, ``list[Node]`` or ``dict[str, Node]`` (keys as written).
    ``key_pos`` is set for map entries; ``used_variable`` is True for a map entry that a
    ``$reference`` elsewhere used as a variable.
    """

    value: Scalar | list[Node] | dict[str, Node]
    pos: Pos
    key_pos: Pos | None = None
    used_variable: bool = False


class ConfigSyntaxError(ConfigError):
    """The configuration text or file could not be turned into a tree.

    ``message`` is nats-server's own text for the problem; ``pos`` is where it is, when
    known. ``str()`` prefixes the position when it names a file.
    """

    def __init__(self, message: str, pos: Pos | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos

    def __str__(self) -> str:
        if self.pos is not None and self.pos.file:
            return f"{self.pos}: {self.message}"
        return self.message


# -- the tree while it is being built -------------------------------------------------------------


class _Item:
    """A value under construction: mutable, and shared when a variable refers to it."""

    __slots__ = ("height", "key_pos", "pos", "size", "used", "value")

    def __init__(self, value: _Value, pos: Pos, height: int = 0, size: int = 1) -> None:
        self.value = value
        self.pos = pos
        self.key_pos: Pos | None = None
        self.used = False
        self.height = height  # nesting levels below this value
        self.size = size  # values in this subtree, counted with repetitions


_Value = Scalar | list[_Item] | dict[str, _Item]
_Context = list[_Item] | dict[str, _Item]


@dataclass
class _Session:
    """State shared by a parse and the parses it starts (includes, environment values)."""

    environ: Mapping[str, str]
    expanding: set[str] = field(default_factory=set)
    files: list[str] = field(default_factory=list)
    nesting: int = 0


class _Parser:
    """Folds one text's tokens into a map; one instance per file or environment value."""

    def __init__(self, text: str, path: str, session: _Session, pedantic: bool = True) -> None:
        self._lexer = Lexer(text)
        self._path = path
        self._dir = _go_dir(path)
        self._session = session
        # nats-server parses files "with checks" and environment values without; the
        # difference that shows is which definitions get marked as used variables.
        self._pedantic = pedantic
        self._root: dict[str, _Item] = {}
        self._contexts: list[_Context] = [self._root]
        self._keys: list[tuple[str, Pos]] = []

    def run(self) -> dict[str, _Item]:
        previous: Token | None = None
        while True:
            token = self._lexer.next_token()
            if token.kind is TokenKind.EOF:
                self._check_dangling_key(previous, token)
                self._check_size(token)
                return self._root
            previous = token
            self._process(token)

    def _check_dangling_key(self, previous: Token | None, eof: Token) -> None:
        if previous is not None and previous.kind is TokenKind.KEY and previous.value != "}":
            raise ConfigSyntaxError(
                f"config is invalid ({self._path}:{eof.line}:{eof.col})", self._at(eof)
            )

    def _check_size(self, eof: Token) -> None:
        if sum(item.size for item in self._root.values()) > MAX_NODES:
            raise ConfigSyntaxError(f"more than {MAX_NODES} values", self._at(eof))

    def _at(self, token: Token) -> Pos:
        return Pos(self._path, token.line, token.col)

    # -- one token --------------------------------------------------------------------------------

    def _process(self, token: Token) -> None:
        kind = token.kind
        if kind is TokenKind.ERROR:
            raise ConfigSyntaxError(
                f"Parse error on line {token.line}: '{token.value}'", self._at(token)
            )
        if kind is TokenKind.KEY:
            self._keys.append((token.value, self._at(token)))
        elif kind in (TokenKind.MAP_START, TokenKind.ARRAY_START):
            self._open(token)
        elif kind in (TokenKind.MAP_END, TokenKind.ARRAY_END):
            self._close(token)
        elif kind is TokenKind.VARIABLE:
            self._store(self._resolve(token))
        elif kind is TokenKind.INCLUDE:
            self._include(token)
        elif kind not in (TokenKind.COMMENT_START, TokenKind.TEXT):
            self._store_scalar(token)

    def _store_scalar(self, token: Token) -> None:
        try:
            value = _scalar(token)
        except ConfigSyntaxError as err:
            raise ConfigSyntaxError(err.message, self._at(token)) from None
        if value is not None:  # None: an integer whose suffix nats-server ignores
            self._store(_Item(value, self._at(token)))

    def _open(self, token: Token) -> None:
        if len(self._contexts) > MAX_DEPTH:
            raise ConfigSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", self._at(token))
        self._contexts.append({} if token.kind is TokenKind.MAP_START else [])

    def _close(self, token: Token) -> None:
        if len(self._contexts) < 2:
            raise ConfigSyntaxError("unbalanced closing bracket", self._at(token))
        container = self._contexts.pop()
        children = container.values() if isinstance(container, dict) else container
        height = 1 + max((child.height for child in children), default=0)
        size = 1 + sum(child.size for child in children)
        self._store(_Item(container, self._at(token), height, size))

    def _store(self, item: _Item) -> None:
        if len(self._contexts) + item.height > MAX_DEPTH + 1:
            raise ConfigSyntaxError(f"nesting deeper than {MAX_DEPTH} levels", item.pos)
        if item.size > MAX_NODES:
            raise ConfigSyntaxError(f"more than {MAX_NODES} values", item.pos)
        context = self._contexts[-1]
        if isinstance(context, list):
            context.append(item)
            return
        if not self._keys:
            raise ConfigSyntaxError("value without a key", item.pos)
        key, key_pos = self._keys.pop()
        item.key_pos = key_pos
        context[key] = item

    # -- variables --------------------------------------------------------------------------------

    def _resolve(self, token: Token) -> _Item:
        name = token.value
        pos = self._at(token)
        if name.startswith(_BCRYPT_PREFIX):
            return _Item("$" + name, pos)
        for context in reversed(self._contexts):
            if isinstance(context, dict) and name in context:
                definition = context[name]
                if self._pedantic:
                    definition.used = True
                return _Item(definition.value, pos, definition.height, definition.size)
        found: _Item | None = None
        if name in self._session.environ:
            try:
                found = self._from_environment(name, pos)
            except ConfigSyntaxError as err:
                raise ConfigSyntaxError(
                    f"variable reference for '{name}' on line {token.line} could not be parsed: "
                    f"{err.message}",
                    pos,
                ) from None
        if found is None:
            raise ConfigSyntaxError(
                f"variable reference for '{name}' on line {token.line} can not be found", pos
            )
        return found

    def _from_environment(self, name: str, pos: Pos) -> _Item | None:
        session = self._session
        if name in session.expanding:
            raise ConfigSyntaxError(f"variable reference cycle for '{name}'", pos)
        text = f"{_ENV_KEY}={session.environ[name]}"
        session.expanding.add(name)
        try:
            parsed = _nested_parse(session, text, "", pedantic=False)
        finally:
            session.expanding.discard(name)
        found = parsed.get(_ENV_KEY)
        if found is None:
            return None  # e.g. "1kbb": nats-server drops the value, so nothing is found
        _relocate(found.value, pos)
        return _Item(found.value, pos, found.height, found.size)

    # -- include ----------------------------------------------------------------------------------

    def _include(self, token: Token) -> None:
        path = _go_join(self._dir, token.value)
        try:
            entries = self._parse_included(path)
        except ConfigSyntaxError as err:
            raise ConfigSyntaxError(
                f"error parsing include file '{token.value}', {err.message}", self._at(token)
            ) from None
        for key, item in entries.items():
            self._keys.append((key, item.key_pos or item.pos))
            self._store(item)

    def _parse_included(self, path: str) -> dict[str, _Item]:
        try:
            text = _read_config(path)
        except ConfigSyntaxError as err:
            if self._pedantic:
                raise
            raise ConfigSyntaxError(f"error opening config file: {err.message}") from None
        real = os.path.realpath(path)
        if real in self._session.files:
            raise ConfigSyntaxError(f"include cycle: {path} includes itself")
        self._session.files.append(real)
        try:
            return _nested_parse(self._session, text, path, pedantic=self._pedantic)
        finally:
            self._session.files.pop()


def _nested_parse(session: _Session, text: str, path: str, pedantic: bool) -> dict[str, _Item]:
    if session.nesting >= MAX_NESTING:
        raise ConfigSyntaxError(f"includes and variables nested more than {MAX_NESTING} deep")
    session.nesting += 1
    try:
        return _Parser(text, path, session, pedantic).run()
    finally:
        session.nesting -= 1


def _relocate(value: _Value, pos: Pos) -> None:
    """Give every part of an environment value the position of its reference."""
    pending = [value]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, dict | list) or id(current) in seen:
            continue
        seen.add(id(current))
        children = list(current.values()) if isinstance(current, dict) else current
        for child in children:
            child.pos = pos
            if isinstance(current, dict):
                child.key_pos = pos
            pending.append(child.value)


# -- scalars --------------------------------------------------------------------------------------


def _scalar(token: Token) -> Scalar | None:
    kind = token.kind
    text = token.value
    if kind is TokenKind.STRING:
        return text
    if kind is TokenKind.INTEGER:
        return _integer(text)
    if kind is TokenKind.FLOAT:
        return _float(text)
    if kind is TokenKind.BOOL:
        return _boolean(text)
    if kind is TokenKind.DATETIME:
        return _datetime(text)
    raise ConfigSyntaxError(f"unexpected token {kind.value}")


def _integer(text: str) -> int | None:
    """An integer with an optional size suffix; None when nats-server drops the value."""
    count = 0
    for char in text:
        if not (char.isdecimal() or char == "-"):
            break
        count += 1
    number, suffix = text[:count], text[count:]
    if not number.isascii() or not _is_go_int(number):
        raise ConfigSyntaxError(f"expected integer, but got '{text}'")
    # Python's int() refuses thousands of digits; Go reports anything that long as a range
    # error (leading zeros aside).
    if len(number.lstrip("-").lstrip("0")) > 19:
        raise ConfigSyntaxError(f"integer '{text}' is out of the range")
    value = int(number.replace("-", "", 1).lstrip("0") or "0") * (-1 if number[0] == "-" else 1)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ConfigSyntaxError(f"integer '{text}' is out of the range")
    multiplier = _SIZE_MULTIPLIERS.get(go_lower(suffix.strip()))
    if multiplier is None:
        return None
    return _wrap_int64(value * multiplier)


def _is_go_int(text: str) -> bool:
    digits = text[1:] if text[:1] in ("-", "+") else text
    return digits.isdigit() and digits.isascii()


def _wrap_int64(value: int) -> int:
    """Go multiplies int64 values silently modulo 2**64."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value > _INT64_MAX else value


def _float(text: str) -> float:
    body = text[1:] if text.startswith("-") else text
    whole, _, fraction = body.partition(".")
    if not (whole + fraction).isascii() or not whole.isdigit() or not fraction.isdigit():
        raise ConfigSyntaxError(f"expected float, but got '{text}'")
    value = float(text)
    if math.isinf(value):
        raise ConfigSyntaxError(f"float '{text}' is out of the range")
    return value


def _boolean(text: str) -> bool:
    word = go_lower(text)
    if word in ("true", "yes", "on"):
        return True
    if word in ("false", "no", "off"):
        return False
    raise ConfigSyntaxError(f"expected boolean value, but got '{text}'")


def _datetime(text: str) -> datetime.datetime:
    try:
        if not text.isascii():
            raise ValueError(text)
        parsed = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
        if len(text) != 20:
            raise ValueError(text)
    except ValueError:
        raise ConfigSyntaxError(f"expected Zulu formatted DateTime, but got '{text}'") from None
    return parsed.replace(tzinfo=datetime.UTC)


# -- files and paths ------------------------------------------------------------------------------


def _go_clean(path: str) -> str:
    """Go's ``filepath.Clean`` on Unix."""
    if not path:
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def _go_dir(path: str) -> str:
    """Go's ``filepath.Dir``: "." for a bare file name or an empty path."""
    return _go_clean(path[: path.rfind("/") + 1])


def _go_join(*parts: str) -> str:
    """Go's ``filepath.Join``: an absolute later part does *not* restart the path."""
    kept = [part for part in parts if part]
    return _go_clean("/".join(kept)) if kept else ""


def _os_error_text(path: str, err: OSError | ValueError) -> str:
    """The text of Go's ``*PathError`` for a failed ``os.ReadFile``."""
    if isinstance(err, ValueError):
        return f"open {path}: invalid argument"
    code = err.errno or 0
    reason = os.strerror(code) if code else str(err)
    reason = reason[:1].lower() + reason[1:]
    operation = "read" if code == errno.EISDIR else "open"
    return f"{operation} {path}: {reason}"


def _read_config(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (OSError, ValueError) as err:
        raise ConfigSyntaxError(_os_error_text(path, err)) from None
    return data.decode("utf-8", "surrogateescape")


# -- freezing -------------------------------------------------------------------------------------


_Memo = dict[int, list[Node] | dict[str, Node]]


def _freeze(item: _Item, memo: _Memo) -> Node:
    return Node(_freeze_value(item.value, memo), item.pos, item.key_pos, item.used)


def _freeze_value(value: _Value, memo: _Memo) -> Scalar | list[Node] | dict[str, Node]:
    if not isinstance(value, dict | list):
        return value
    known = memo.get(id(value))
    if known is not None:
        return known
    frozen: list[Node] | dict[str, Node]
    if isinstance(value, dict):
        frozen = {key: _freeze(child, memo) for key, child in value.items()}
    else:
        frozen = [_freeze(child, memo) for child in value]
    memo[id(value)] = frozen
    return frozen


def _root_node(entries: dict[str, _Item], path: str) -> Node:
    memo: _Memo = {}
    return Node({key: _freeze(item, memo) for key, item in entries.items()}, Pos(path, 1, 0))


# -- public API -----------------------------------------------------------------------------------


def parse_text(text: str, filename: str = "") -> Node:
    """Parse configuration ``text``; includes are relative to ``filename``'s directory.

    Returns the top-level map as a :class:`Node`. Raises :class:`ConfigSyntaxError` (and
    nothing else) when nats-server would refuse the text.
    """
    session = _Session(environ=os.environ)
    if filename:
        session.files.append(os.path.realpath(filename))
    entries = _Parser(text, filename, session).run()
    return _root_node(entries, filename)


def parse_file(path: str | os.PathLike[str]) -> Node:
    """Read and parse the configuration file at ``path``.

    Positions name the file as ``path`` was given. A file that cannot be read raises
    :class:`ConfigSyntaxError` with nats-server's message (``open x.conf: no such file or
    directory``).
    """
    name = os.fspath(path)
    return parse_text(_read_config(name), name)


def plain(node: Node) -> object:
    """The tree without positions: dicts, lists and scalars."""
    value = node.value
    if isinstance(value, dict):
        return {key: plain(child) for key, child in value.items()}
    if isinstance(value, list):
        return [plain(child) for child in value]
    return value


def digest_of_tree(root: Node) -> str:
    """``sha256:<hex>`` of a parsed tree, as nats-server computes its config digest."""
    encoded = _json(root.value) + "\n"
    return "sha256:" + hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def digest(path: str | os.PathLike[str]) -> str:
    """The digest nats-server prints for ``-t`` and "Using configuration file" lines."""
    return digest_of_tree(parse_file(path))


# -- Go's encoding/json ---------------------------------------------------------------------------

_JSON_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _json(value: Scalar | list[Node] | dict[str, Node]) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda key: key.encode("utf-8", "surrogateescape"))
        fields = (_json_string(key) + ":" + _json(value[key].value) for key in keys)
        return "{" + ",".join(fields) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(child.value) for child in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, datetime.datetime):
        return '"' + value.strftime("%Y-%m-%dT%H:%M:%SZ") + '"'
    return _json_string(value)


def _json_string(text: str) -> str:
    out = ['"']
    for char in text:
        escaped = _JSON_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            out.append("\ufffd")  # a byte that was not UTF-8
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _json_float(value: float) -> str:
    """Go's ``encoding/json`` float64 format (ES6 number-to-string)."""
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    if 1e-6 <= abs(value) < 1e21:
        return _fixed_shortest(value)
    mantissa, exponent = _shortest_scientific(repr(value))
    return f"{mantissa}e{exponent}"


def _fixed_shortest(value: float) -> str:
    """Shortest round-trip digits written without an exponent."""
    text = repr(value)
    if "e" in text or "E" in text:
        mantissa, exponent = _shortest_scientific(text)
        sign = "-" if mantissa.startswith("-") else ""
        digits = mantissa.lstrip("-").replace(".", "")
        point = int(exponent) + 1
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return sign + digits + "0" * (point - len(digits))
        return f"{sign}{digits[:point]}.{digits[point:]}"
    if text.endswith(".0"):
        return text[:-2]
    return text


def _shortest_scientific(text: str) -> tuple[str, str]:
    """Split Python's shortest repr into Go's ``d.ddd`` mantissa and signed exponent."""
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("-")
    if "e" in body:
        mantissa, exponent_text = body.split("e")
        exponent = int(exponent_text)
        whole, _, fraction = mantissa.partition(".")
        digits = whole + fraction
        exponent += len(whole) - 1
    else:
        whole, _, fraction = body.partition(".")
        digits = (whole + fraction).lstrip("0")
        stripped = len(whole + fraction) - len(digits)
        exponent = len(whole) - 1 - stripped
    digits = digits.rstrip("0") or "0"
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign_exp = "-" if exponent < 0 else "+"
    return sign + mantissa, f"{sign_exp}{abs(exponent):02d}".replace("-0", "-", 1)
