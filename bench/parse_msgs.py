"""Micro-benchmark of the client-role parser: nanoseconds per ``MSG``.

Usage: ``python bench/parse_msgs.py [--msgs 10000] [--rounds 30] [--baseline FILE]``

Theory of operation
-------------------
Each case is one buffer of ``--msgs`` server ``MSG`` operations, built once:

* ``same-line``: a stream to one subscription, every control line identical (16 B);
* ``varying-size``: the same subject and sid, payload sizes cycling 0..31 B;
* ``with-reply``: replies to requests, a different reply subject on every line;
* ``headers``: ``HMSG`` with a small header block (the generic path, for reference).

A case is parsed whole (one ``parse`` call) and again in 64 KiB reads (as from a socket),
into a sink whose methods do nothing, by a fresh ``Parser(Role.CLIENT)`` each round. The
best of ``--rounds`` rounds is reported, since noise on a shared machine only ever adds
time. ``--baseline FILE`` loads another version of ``parser.py`` (e.g. a copy taken
before a change) and times it in the same rounds, interleaved, so both see the same
machine; the table then shows both and the speed-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from pynats.protocol import parser as current_parser

READ_SIZE = 64 * 1024


class NullSink:
    """A parser sink that ignores everything (the cost measured is the parser's)."""

    def on_msg(self, subject: bytes, sid: bytes, reply: bytes, payload: bytes) -> None:
        """Ignore a MSG."""

    def on_hmsg(self, subject: bytes, sid: bytes, reply: bytes, headers: bytes,
                payload: bytes) -> None:
        """Ignore an HMSG."""

    def on_op(self, op: object) -> None:
        """Ignore anything else."""

    def on_pub(self, *args: object) -> None:
        """Never called in the client role."""

    def on_hpub(self, *args: object) -> None:
        """Never called in the client role."""


def build_cases(msgs: int) -> dict[str, bytes]:
    """The input buffers, by case name, each holding ``msgs`` operations."""
    headers = b"NATS/1.0\r\nA: b\r\n\r\n"
    return {
        "same-line": (b"MSG bench.subject 1 16\r\n" + b"x" * 16 + b"\r\n") * msgs,
        "varying-size": b"".join(
            b"MSG bench.subject 1 %d\r\n%s\r\n" % (i % 32, b"x" * (i % 32)) for i in range(msgs)
        ),
        "with-reply": b"".join(
            b"MSG svc.echo 7 _INBOX.Zq3xK9aB.%d 16\r\n%s\r\n" % (i, b"x" * 16)
            for i in range(msgs)
        ),
        "headers": (
            b"HMSG bench.subject 1 %d %d\r\n%s%s\r\n"
            % (len(headers), len(headers) + 16, headers, b"x" * 16)
        ) * msgs,
    }


def split_reads(data: bytes, size: int = READ_SIZE) -> list[bytes]:
    """``data`` cut into reads of ``size`` bytes (the last one shorter)."""
    return [data[i : i + size] for i in range(0, len(data), size)]


def time_once(module: ModuleType, pieces: Sequence[bytes]) -> float:
    """Seconds one fresh client parser takes to parse ``pieces`` in order."""
    parser = module.Parser(module.Role.CLIENT, 64 * 1024)
    sink: Any = NullSink()
    parse: Callable[[bytes, Any], None] = parser.parse
    start = time.perf_counter()
    for piece in pieces:
        parse(piece, sink)
    return time.perf_counter() - start


def load_parser(path: Path) -> ModuleType:
    """Import another version of ``parser.py`` under a private name."""
    spec = importlib.util.spec_from_file_location("_baseline_parser", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(modules: dict[str, ModuleType], cases: dict[str, bytes],
            rounds: int) -> dict[tuple[str, str, str], float]:
    """Best seconds per (case, feeding, parser version); versions interleaved per round."""
    best: dict[tuple[str, str, str], float] = {}
    for case, data in cases.items():
        feeds = {"whole": [data], "64KiB": split_reads(data)}
        for _ in range(rounds):
            for feed, pieces in feeds.items():
                for name, module in modules.items():
                    key = (case, feed, name)
                    best[key] = min(best.get(key, float("inf")), time_once(module, pieces))
    return best


def render(best: dict[tuple[str, str, str], float], msgs: int, names: list[str]) -> str:
    """A table of ns per message, and the speed-up over the baseline if there is one."""
    header = ["case", "feed", *[f"{n} ns/msg" for n in names]]
    if len(names) == 2:
        header.append("speed-up")
    rows = [header]
    for case, feed in dict.fromkeys((c, f) for c, f, _ in best):
        cells = [best[case, feed, n] / msgs * 1e9 for n in names]
        row = [case, feed, *[f"{c:,.0f}" for c in cells]]
        if len(names) == 2:
            row.append(f"{cells[0] / cells[1]:.2f}x")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--msgs", type=int, default=10_000, help="operations per buffer")
    parser.add_argument("--rounds", type=int, default=30, help="rounds; the best is kept")
    parser.add_argument("--baseline", type=Path, help="another parser.py to compare with")
    args = parser.parse_args(argv)
    modules: dict[str, ModuleType] = {}
    if args.baseline:
        modules["baseline"] = load_parser(args.baseline)
    modules["current"] = current_parser
    best = measure(modules, build_cases(args.msgs), args.rounds)
    print(render(best, args.msgs, list(modules)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
