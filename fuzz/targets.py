"""Fuzz targets: one function per input surface, each checking one invariant.

Each ``check_*`` takes arbitrary bytes and raises ``AssertionError`` (or lets an
undocumented exception escape) when the invariant breaks; it returns normally for every
input the code handles as documented. The same functions are driven by atheris
(``fuzz/fuzz_*.py``, coverage-guided) and by hypothesis (``tests/reliability/
test_fuzz.py``, in the default test run), so a crash found by one is a test for both.

Invariants:

* client parser (``Role.SERVER``: what a client sends) and route parser
  (``Role.ROUTE``): only :class:`~pynats.protocol.errors.ProtocolError` escapes, and the
  operations handed over and the error raised are the same whether the input comes
  whole or split at arbitrary points (the first input byte seeds the split points and
  the limits);
* config: :func:`~pynats.server.config.parser.parse_text`, then the mapping onto
  options and nats-server's start-up validation raise only ``ConfigError`` (its
  subclasses included);
* HTTP monitor: :func:`~pynats.server.monitor.httpwire.parse_head` and everything the
  router reads from a request (path, query, parameters, ``clean_path``, keep-alive)
  raise only ``BadRequest``.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import unquote

from pynats.errors import ConfigError
from pynats.protocol.errors import ProtocolError
from pynats.protocol.parser import Parser, RecordSink, Role
from pynats.server.config import load
from pynats.server.config.parser import parse_text
from pynats.server.monitor.httpwire import BadRequest, clean_path, parse_head

#: Config inputs that would read files outside the input (hermetic fuzzing only).
_FILE_WORDS = ("include", "/dev", "/proc", "/sys")


def _run(role: Role, data: bytes, cuts: list[int], limits: tuple[int, int],
         headers: bool) -> tuple[list[Any], str | None]:
    parser = Parser(role, *limits, headers=headers)
    sink = RecordSink()
    prev = 0
    try:
        for cut in [*cuts, len(data)]:
            parser.parse(data[prev:cut], sink)
            prev = cut
    except ProtocolError as exc:
        return sink.ops, type(exc).__name__
    return sink.ops, None


def _parser_target(role: Role, data: bytes) -> None:
    if not data:
        return
    seed, body = data[0], data[1:]
    rng = random.Random(seed)
    limits = (rng.choice([0, 16, 64, 4096]), rng.choice([0, 8, 1024, 1 << 20]))
    headers = bool(seed & 1)
    whole = _run(role, body, [], limits, headers)
    cuts = sorted(rng.sample(range(len(body) + 1), min(len(body) + 1, rng.randint(1, 8))))
    split = _run(role, body, cuts, limits, headers)
    assert whole == split, (whole, split, cuts, limits)


def check_client_parser(data: bytes) -> None:
    """What a client sends, parsed by the server."""
    _parser_target(Role.SERVER, data)


def check_route_parser(data: bytes) -> None:
    """What a peer server sends on a route."""
    _parser_target(Role.ROUTE, data)


def check_config(data: bytes) -> None:
    """Configuration text: only ConfigError escapes, from parsing to validation."""
    text = data.decode("utf-8", "replace")
    if any(word in text for word in _FILE_WORDS):
        return
    try:
        tree = parse_text(text)
        options, problems, _ = load.options_from_tree(tree)
        if not problems.errors:
            load.validate(options)
    except ConfigError:
        pass


def check_http(data: bytes) -> None:
    """A monitoring request head: only BadRequest escapes, through routing decisions."""
    head = data.split(b"\r\n\r\n", 1)[0]
    lines = [line.rstrip(b"\r") for line in head.split(b"\n")]
    lines = [line for line in lines if line] or [b""]
    try:
        request = parse_head(lines)
        clean_path(unquote(request.raw_path))
        assert isinstance(request.query, str)
        request.params()
        assert isinstance(request.keep_alive, bool)
    except BadRequest:
        pass


TARGETS = {
    "client_parser": check_client_parser,
    "route_parser": check_route_parser,
    "config": check_config,
    "http": check_http,
}
