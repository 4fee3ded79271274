"""NUIDs: short unique ids for inboxes, as nats.go's ``nuid`` package makes them.

Theory of operation
-------------------
A NUID is 22 base-62 characters: a 12-character random prefix and a 10-character
sequence. The sequence starts at a random value and grows by a random step, so ids are
cheap (no system randomness per id) and hard to guess; when it overflows a new random
prefix is drawn. Pure: the random source is injectable for tests.
"""

from __future__ import annotations

import random
import secrets
from typing import Final

DIGITS: Final = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE: Final = 62
PREFIX_LEN: Final = 12
SEQ_LEN: Final = 10
MAX_SEQ: Final = BASE**SEQ_LEN
MIN_INC: Final = 33
MAX_INC: Final = 333
TOTAL_LEN: Final = PREFIX_LEN + SEQ_LEN


class Nuid:
    """A generator of unique 22-character ids.

    Args:
        rng: source of the sequence start and steps (default: a fresh ``random.Random``).
    """

    def __init__(self, rng: random.Random | None = None):
        self._rng = rng if rng is not None else random.Random(secrets.randbits(64))
        self._prefix = b""
        self._seq = 0
        self._inc = 0
        self._reset()

    def _reset(self) -> None:
        self._prefix = bytes(DIGITS[self._rng.randrange(BASE)] for _ in range(PREFIX_LEN))
        self._seq = self._rng.randrange(MAX_SEQ)
        self._inc = self._rng.randrange(MIN_INC, MAX_INC)

    def next(self) -> bytes:
        """The next id, as ASCII bytes."""
        self._seq += self._inc
        if self._seq >= MAX_SEQ:
            self._reset()
        seq = self._seq
        out = bytearray(SEQ_LEN)
        for i in range(SEQ_LEN - 1, -1, -1):
            seq, digit = divmod(seq, BASE)
            out[i] = DIGITS[digit]
        return self._prefix + bytes(out)

    def next_str(self) -> str:
        """The next id, as text."""
        return self.next().decode("ascii")


__all__ = ["Nuid"]
