"""Property tests: whatever the input, the parser returns a tree or raises ConfigSyntaxError.

Inputs are arbitrary text, arbitrary bytes, text over the format's own punctuation, and
valid configurations (the corpus and the recorded snippets) with random edits. Parsing
happens with a file name inside an empty temporary directory, so that an ``include``
produced by chance finds nothing to read.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynats.server.config.lexer import TokenKind, tokenize
from pynats.server.config.parser import ConfigSyntaxError, Node, digest_of_tree, parse_text

from .test_parser import SNIPPETS

CORPUS = Path(__file__).parent / "corpus"
BASES = [p.read_text(encoding="utf-8") for p in sorted(CORPUS.rglob("*.conf"))]
BASES += [text for _, text, _ in SNIPPETS]
EMPTY_DIR = tempfile.TemporaryDirectory(prefix="pynats-conf-")  # removed at exit
FILENAME = str(Path(EMPTY_DIR.name) / "fuzz.conf")

PIECES = [
    *"{}[]()=:;,#/\\\"'$ \t\n\r-.0123456789kKmMbBiIeExX",
    "\x00",
    "\u00e9",
    "\u00a0",
    "\udcff",
    "//",
    "\n)\n",
    "include ",
    "true",
    "$2a$",
    "2016-05-04T18:53:41Z",
    "\\x4",
]
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(text: str) -> None:
    """The one property: a tree (that can be hashed) or a located syntax error."""
    last = list(tokenize(text))[-1]
    assert last.kind in (TokenKind.EOF, TokenKind.ERROR)
    try:
        root = parse_text(text, FILENAME)
    except ConfigSyntaxError as err:
        assert err.message
        assert str(err)
        return
    assert isinstance(root, Node)
    assert isinstance(root.value, dict)
    assert digest_of_tree(root).startswith("sha256:")


@SETTINGS
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check(text)


@SETTINGS
@given(st.binary())
def test_arbitrary_bytes(data: bytes) -> None:
    check(data.decode("utf-8", "surrogateescape"))


@SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_punctuation_soup(text: str) -> None:
    check(text)
    check("x = " + text)


edits = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.floats(min_value=0, max_value=1, exclude_max=True),
        st.sampled_from(PIECES),
    ),
    min_size=1,
    max_size=4,
)


def mutate(text: str, changes: list[tuple[str, float, str]]) -> str:
    for operation, where, piece in changes:
        at = int(where * (len(text) + 1))
        if operation == "insert":
            text = text[:at] + piece + text[at:]
        elif operation == "delete":
            text = text[:at] + text[at + len(piece) :]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
    return text


@SETTINGS
@given(st.sampled_from(BASES), edits)
def test_mutated_valid_configs(base: str, changes: list[tuple[str, float, str]]) -> None:
    check(mutate(base, changes))


def test_arbitrary_surrogates_are_accepted() -> None:
    check('x = "\ud800"\ny = \udc80\n')
