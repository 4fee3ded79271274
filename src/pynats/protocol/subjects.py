"""Subject syntax (PROTOCOL.md section 6.1) and a reference matcher.

Subjects are dot-separated tokens; ``*`` matches one token and ``>`` one or more trailing
tokens, each only as a whole token. :func:`matches` is the obviously-correct oracle that
the subscription index is tested against; the server never calls it on the hot path.
"""

from __future__ import annotations

from typing import Final

PWC: Final = b"*"
FWC: Final = b">"


def is_valid_subscription(subject: bytes) -> bool:
    """A subscription subject: no empty token and nothing after a ``>`` token."""
    if not subject:
        return False
    tokens = subject.split(b".")
    for i, token in enumerate(tokens):
        if not token:
            return False
        if token == FWC and i != len(tokens) - 1:
            return False
    return True


def is_valid_literal(subject: bytes) -> bool:
    """A publish subject for pedantic mode: no empty token and no wildcard token."""
    if not subject:
        return False
    return all(token and token not in (PWC, FWC) for token in subject.split(b"."))


def matches(pattern: bytes, subject: bytes) -> bool:
    """Whether a publish to ``subject`` reaches a subscription on ``pattern``."""
    pt = pattern.split(b".")
    st = subject.split(b".")
    for i, token in enumerate(pt):
        if token == FWC and i == len(pt) - 1:
            return len(st) > i
        if i >= len(st):
            return False
        if token != PWC and token != st[i]:
            return False
    return len(pt) == len(st)


__all__ = [
    "FWC",
    "PWC",
    "is_valid_literal",
    "is_valid_subscription",
    "matches",
]
