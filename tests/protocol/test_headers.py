"""The pure header block codec: parsing, building, the mapping type, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynats.errors import HeaderError
from pynats.protocol.headers import Headers, encode_headers, parse_headers, status_of


def test_minimal_block() -> None:
    assert encode_headers({}) == b"NATS/1.0\r\n\r\n"
    h = parse_headers(b"NATS/1.0\r\n\r\n")
    assert len(h) == 0 and h.status is None and h.description == ""


def test_no_responders_status_line() -> None:
    block = b"NATS/1.0 503\r\nNats-Subject: foo\r\n\r\n"
    h = parse_headers(block)
    assert h.status == 503 and h.description == ""
    assert h["nats-subject"] == "foo"
    assert status_of(block) == 503


def test_status_with_description() -> None:
    h = parse_headers(b"NATS/1.0 408 Request Timeout\r\n\r\n")
    assert (h.status, h.description) == (408, "Request Timeout")
    assert encode_headers(h) == b"NATS/1.0 408 Request Timeout\r\n\r\n"


def test_status_of_is_cheap_and_strict() -> None:
    assert status_of(b"NATS/1.0\r\n\r\n") is None
    assert status_of(b"NATS/1.0 5x3\r\n\r\n") is None
    assert status_of(b"HTTP/1.0 503\r\n\r\n") is None
    assert status_of(b"") is None


def test_multi_values_and_case_insensitivity() -> None:
    h = parse_headers(b"NATS/1.0\r\nX-Tag: a\r\nx-tag: b\r\nOther:  spaced  \r\n\r\n")
    assert h["X-TAG"] == "a"
    assert h.get_all("x-Tag") == ["a", "b"]
    assert h["other"] == "spaced"
    assert list(h) == ["X-Tag", "Other"]  # spelling as first seen, one per name
    assert len(h) == 2
    assert "X-TAG" in h and "missing" not in h and 3 not in h
    assert h.multi_items() == [("X-Tag", "a"), ("X-Tag", "b"), ("Other", "spaced")]


def test_mutation() -> None:
    h = Headers({"A": "1"})
    h.add("a", "2")
    assert h.get_all("A") == ["1", "2"]
    h["A"] = "3"
    assert h.get_all("a") == ["3"]
    del h["a"]
    assert "A" not in h and h.get_all("A") == []
    with pytest.raises(KeyError):
        h["A"]
    assert h.get("A", "dflt") == "dflt"


def test_constructors_and_equality() -> None:
    a = Headers({"K": ["1", "2"], "J": "x"})
    b = Headers([("k", "1"), ("K", "2"), ("j", "x")])
    assert a == b
    assert a == {"k": ["1", "2"], "J": "x"}
    assert a != Headers({"K": "1", "J": "x"})
    assert a != Headers({"K": ["1", "2"], "J": "x"}, status=503)
    c = a.copy()
    c.add("K", "3")
    assert a.get_all("K") == ["1", "2"]
    assert "K" in repr(a)


def test_encode_order_and_repeats() -> None:
    h = Headers([("B", "1"), ("A", "2"), ("b", "3")])
    assert encode_headers(h) == b"NATS/1.0\r\nB: 1\r\nB: 3\r\nA: 2\r\n\r\n"
    assert encode_headers({"K": ["x", "y"]}) == b"NATS/1.0\r\nK: x\r\nK: y\r\n\r\n"


@pytest.mark.parametrize("name", ["", "a b", "a:b", "a\tb", "é", "a\r\nb"])
def test_invalid_names_refused(name: str) -> None:
    with pytest.raises(HeaderError):
        encode_headers({name: "v"})


@pytest.mark.parametrize("value", ["a\r\nInjected: yes", "a\nb", "a\rb"])
def test_line_breaks_in_values_refused(value: str) -> None:
    with pytest.raises(HeaderError):
        encode_headers({"K": value})


def test_header_error_is_a_value_error() -> None:
    assert issubclass(HeaderError, ValueError)


@pytest.mark.parametrize("block", [
    b"HTTP/1.1\r\n\r\n",
    b"NATS/1.0\r\nno colon here\r\n\r\n",
    b"NATS/1.0\r\n: no name\r\n\r\n",
    b"NATS/1.0 50\r\n\r\n",
    b"NATS/1.0 abc\r\n\r\n",
])
def test_malformed_blocks_refused(block: bytes) -> None:
    with pytest.raises(HeaderError):
        parse_headers(block)


def test_invalid_status_code_refused() -> None:
    with pytest.raises(HeaderError):
        encode_headers(Headers(status=42))


_NAME = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                       blacklist_characters=":"), min_size=1, max_size=12)
_VALUE = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                        blacklist_characters="\r\n"), max_size=20).map(
    str.strip)


@given(st.lists(st.tuples(_NAME, _VALUE), max_size=8),
       st.one_of(st.none(), st.integers(100, 999)))
def test_round_trip(pairs: list[tuple[str, str]], status: int | None) -> None:
    h = Headers(pairs, status=status)
    back = parse_headers(encode_headers(h))
    assert back == h
    assert status_of(encode_headers(h)) == status
