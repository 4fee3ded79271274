"""Service imports: requests published in one account, answered in another.

Theory of operation
-------------------
Account B imports a service from account A: what B's clients publish on the import's
local subject is delivered in A, on the exported subject (``transform.py`` maps one onto
the other), with a ``Nats-Request-Info`` header naming the requester (nats-server's
``ClientInfo``: ``acc`` and ``rtt``, and everything about the client when the import
``share``\\ s it). B's own subscribers on the subject get the message as usual.

A request's reply subject is B's and means nothing in A, so A's responders see a fresh
one instead: ``_R_.<6 characters of A>.<6 random characters>``. A's :class:`Responses`
remembers where each goes (B's router and the original reply). When anyone in A
publishes on such a subject the message is also delivered in B on the original reply:
once for a ``Singleton`` export (the mapping is dropped with the first answer), as
often as it comes for ``Stream`` and ``Chunked`` until the export's
``response_threshold`` passes. Mappings nobody answered expire after that threshold too;
they are swept at most once a second, when new ones are opened.

Everything here runs inside one publish on the server's loop: no timers, no tasks.
"""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from pynats.server.transform import ImportTransform

if TYPE_CHECKING:
    from pynats.server.router import Router

#: The first token of every response subject.
RESPONSE_PREFIX: Final = b"_R_."
#: The request header that describes the requester (nats-server's ``ClientInfoHdr``).
REQUEST_INFO: Final = b"Nats-Request-Info"
_ALPHABET: Final = (string.digits + string.ascii_letters).encode()
_SWEEP_EVERY: Final = 1.0


class Requester(Protocol):
    """The client a request comes from, as the request header describes it."""

    def client_info(self, share: bool) -> dict[str, object]:
        """nats-server's ``ClientInfo`` of the client (all of it when ``share``)."""
        ...


@dataclass(frozen=True, slots=True)
class ServiceImport:
    """One service import, seen from the importing account's router.

    Attributes:
        transform: The local pattern and how a match maps onto the exported subject.
        exporter: The exporting account's router.
        singleton: The export answers each request once (``response_type: Singleton``).
        threshold: Seconds a response mapping lives (the export's ``response_threshold``).
        share: Put the requester's full details in the request header.
    """

    transform: ImportTransform
    exporter: Router
    singleton: bool = True
    threshold: float = 120.0
    share: bool = False

    @property
    def subject(self) -> bytes:
        """The local pattern (so imports can live in a SubjectIndex)."""
        return self.transform.local

    @property
    def queue(self) -> bytes:
        return b""


@dataclass(slots=True)
class Pending:
    """Where the answers to one response subject go."""

    target: Router
    reply: bytes
    singleton: bool
    expires: float


class Responses:
    """The open response subjects of one exporting account.

    Args:
        clock: Monotonic seconds (the server's, so tests can move time).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.prefix = RESPONSE_PREFIX + _random_token() + b"."
        self.pending: dict[bytes, Pending] = {}
        self._swept = clock()

    def open(self, target: Router, reply: bytes, service: ServiceImport) -> bytes:
        """A new response subject whose answers go to ``reply`` in ``target``."""
        now = self._clock()
        if now - self._swept >= _SWEEP_EVERY:
            self._sweep(now)
        subject = self.prefix + _random_token()
        while subject in self.pending:
            subject = self.prefix + _random_token()
        self.pending[subject] = Pending(target, reply, service.singleton,
                                        now + service.threshold)
        return subject

    def cancel(self, subject: bytes) -> None:
        """Forget ``subject`` (its request reached nobody)."""
        self.pending.pop(subject, None)

    def take(self, subject: bytes) -> Pending | None:
        """The mapping an answer on ``subject`` follows (a singleton's is used up)."""
        found = self.pending.get(subject)
        if found is None:
            return None
        expired = found.expires <= self._clock()
        if found.singleton or expired:
            del self.pending[subject]
        return None if expired else found

    def _sweep(self, now: float) -> None:
        self._swept = now
        expired = [subject for subject, one in self.pending.items() if one.expires <= now]
        for subject in expired:
            del self.pending[subject]


def request_headers(headers: bytes, requester: Requester, share: bool) -> bytes:
    """``headers`` (a header block, or ``b""``) with ``Nats-Request-Info`` added last."""
    info = json.dumps(requester.client_info(share), separators=(",", ":")).encode()
    line = REQUEST_INFO + b": " + info + b"\r\n\r\n"
    if not headers:
        return b"NATS/1.0\r\n" + line
    return headers[:-2] + line


def split_hframed(hframed: bytes) -> tuple[bytes, bytes]:
    """The header block and payload of ``<hdr> <total>\\r\\n<headers><payload>\\r\\n``."""
    eol = hframed.index(b"\n")
    size = int(hframed[:hframed.index(b" ")])
    return hframed[eol + 1:eol + 1 + size], hframed[eol + 1 + size:-2]


def framed_payload(framed: bytes) -> bytes:
    """The payload of ``<size>\\r\\n<payload>\\r\\n``."""
    return framed[framed.index(b"\n") + 1:-2]


def hframe(headers: bytes, payload: bytes) -> bytes:
    """``<hdr> <total>\\r\\n<headers><payload>\\r\\n``, as HPUB frames a message."""
    return b"%d %d\r\n%s%s\r\n" % (len(headers), len(headers) + len(payload), headers,
                                   payload)


def _random_token() -> bytes:
    return bytes(random.choices(_ALPHABET, k=6))


__all__ = ["REQUEST_INFO", "RESPONSE_PREFIX", "Pending", "Requester", "Responses",
           "ServiceImport", "framed_payload", "hframe", "request_headers", "split_hframed"]
