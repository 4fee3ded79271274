"""Unit tests for the load generator's stream counters: ``pytest bench/test_loadgen.py``."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import FrameReader, Job, MsgCounter, ProtocolError, make_counter

PING = b"PING\r\n"


def _stream(size: int, frames: int, pings: int, rng: random.Random) -> bytes:
    frame = b"MSG bench.pubsub 1 %d\r\n" % size + b"x" * size + b"\r\n"
    parts = [frame] * frames
    for _ in range(pings):
        parts.insert(rng.randrange(len(parts) + 1), PING)
    return b"".join(parts)


def _feed_in_pieces(
    counter: MsgCounter, data: bytes, rng: random.Random, max_piece: int
) -> tuple[int, int]:
    buf = bytearray(max_piece)
    total = pings = pos = 0
    while pos < len(data):
        n = min(rng.randint(1, max_piece), len(data) - pos)
        buf[:n] = data[pos : pos + n]
        found, seen = counter.feed(buf, n)
        total, pings, pos = total + found, pings + seen, pos + n
    return total, pings


@pytest.mark.parametrize("size", [0, 16, 1024])
@pytest.mark.parametrize("max_piece", [1, 7, 100, 5000, 200_000])
@pytest.mark.parametrize("pings", [0, 3])
def test_msg_counter_counts_every_frame(size: int, max_piece: int, pings: int) -> None:
    rng = random.Random(size * 1000 + max_piece + pings)
    frames = 3000 if max_piece > 10 else 200
    data = _stream(size, frames, pings, rng)
    job = Job(port=0, subject="bench.pubsub", size=size, duration=0, deadline=0)
    counter = make_counter(job)
    assert isinstance(counter, MsgCounter)
    assert _feed_in_pieces(counter, data, rng, max_piece) == (frames, pings)


def test_msg_counter_stays_in_step_on_clean_stream() -> None:
    rng = random.Random(1)
    data = _stream(16, 10_000, 0, rng)
    counter = MsgCounter(len(b"MSG bench.pubsub 1 16\r\n") + 18)
    assert _feed_in_pieces(counter, data, rng, 65536) == (10_000, 0)
    assert counter.next_event is not None


def test_frame_reader_checks_deliveries() -> None:
    reader = FrameReader((b"bench.x", b"1", b"xx"))
    assert reader.feed(b"MSG bench.x 1 2\r\nxx\r\nMSG bench.x 1 2\r\nx") == ([b""], 0)
    assert reader.feed(b"x\r\nPING\r\n") == ([b""], 1)
    for bad in (b"MSG bench.y 1 2\r\nxx\r\n", b"MSG bench.x 1 2\r\nxy\r\n", b"-ERR 'x'\r\n"):
        with pytest.raises(ProtocolError):
            FrameReader((b"bench.x", b"1", b"xx")).feed(bad)
