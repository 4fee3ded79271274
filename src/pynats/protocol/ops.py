"""Typed records for every NATS wire operation.

Hot-path operations (``Pub``, ``HPub``, ``Msg``, ``HMsg``) are ``NamedTuple`` because
they are the cheapest records to build; the rest are too, for uniformity. Subjects,
reply subjects and sids stay ``bytes``: the server never needs them as text on the hot
path, and they go back onto the wire as they came.

Client to server: Connect, Pub, HPub, Sub, Unsub, Ping, Pong (and Info, Ok, Err, which a
server tolerates). Server to client: Info, Msg, HMsg, Ping, Pong, Ok, Err. Server to
server (routes, CLUSTER.md section 5): RSub (``RS+``, and ``LS+`` without its origin),
RUnsub (``RS-``, ``LS-``), Ignored (``A+``/``A-``), RMsg, and Connect, Info, Ping, Pong,
Ok, Err; routed messages reach a parser sink as arguments, like ``PUB``.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Connect(NamedTuple):
    """``CONNECT <json>``: the decoded JSON object, unknown keys included."""

    options: dict[str, Any]


class Info(NamedTuple):
    """``INFO <json>``: the decoded JSON object."""

    info: dict[str, Any]


class Pub(NamedTuple):
    """``PUB <subject> [reply] <size>`` and its payload. ``reply`` is ``b""`` if absent."""

    subject: bytes
    reply: bytes
    payload: bytes


class HPub(NamedTuple):
    """``HPUB <subject> [reply] <hdr size> <total size>``: header block and payload."""

    subject: bytes
    reply: bytes
    headers: bytes
    payload: bytes


class Sub(NamedTuple):
    """``SUB <subject> [queue] <sid>``. ``queue`` is ``b""`` for a plain subscription."""

    subject: bytes
    queue: bytes
    sid: bytes


class Unsub(NamedTuple):
    """``UNSUB <sid> [max]``. ``max_msgs`` is ``None`` when absent or not a number."""

    sid: bytes
    max_msgs: int | None


class Msg(NamedTuple):
    """``MSG <subject> <sid> [reply] <size>`` and its payload."""

    subject: bytes
    sid: bytes
    reply: bytes
    payload: bytes


class HMsg(NamedTuple):
    """``HMSG <subject> <sid> [reply] <hdr size> <total size>``."""

    subject: bytes
    sid: bytes
    reply: bytes
    headers: bytes
    payload: bytes


class RSub(NamedTuple):
    """``RS+ <account> <subject> [<queue> <weight>]``: a peer's interest.

    ``queue`` is ``b""`` for plain interest; ``weight`` is the peer's member count of a
    queue group (1 for plain interest).
    """

    account: bytes
    subject: bytes
    queue: bytes
    weight: int


class RUnsub(NamedTuple):
    """``RS- <account> <subject> [<queue>]``: a peer lost all interest in a key."""

    account: bytes
    subject: bytes
    queue: bytes


class RMsg(NamedTuple):
    """``RMSG``/``HMSG`` on a route, as a record (``headers`` is None without them)."""

    account: bytes
    subject: bytes
    reply: bytes
    queues: tuple[bytes, ...]
    headers: bytes | None
    payload: bytes


class Ignored(NamedTuple):
    """An operation a route accepts and ignores (``A+``/``A-``, gateway only)."""

    verb: bytes


class Ping(NamedTuple):
    """``PING``."""


class Pong(NamedTuple):
    """``PONG``."""


class Ok(NamedTuple):
    """``+OK``."""


class Err(NamedTuple):
    """``-ERR '<text>'``: ``text`` without the quotes."""

    text: str


PING = Ping()
PONG = Pong()
OK = Ok()

Op = (Connect | Info | Pub | HPub | Sub | Unsub | Msg | HMsg | Ping | Pong | Ok | Err | RSub
      | RUnsub | RMsg | Ignored)

__all__ = [
    "OK",
    "PING",
    "PONG",
    "Connect",
    "Err",
    "HMsg",
    "HPub",
    "Ignored",
    "Info",
    "Msg",
    "Ok",
    "Op",
    "Ping",
    "Pong",
    "Pub",
    "RMsg",
    "RSub",
    "RUnsub",
    "Sub",
    "Unsub",
]
