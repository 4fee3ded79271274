"""Encoders: one pure function per operation, returning the bytes for the wire.

The server always emits upper-case verbs, single spaces and ``\\r\\n``
(PROTOCOL.md section 0). ``INFO`` carries a space before its ``\\r\\n`` because
nats-server sends it that way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

PING: Final = b"PING\r\n"
PONG: Final = b"PONG\r\n"
OK: Final = b"+OK\r\n"


def _json(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def encode_info(info: Mapping[str, Any]) -> bytes:
    """``INFO {json} \\r\\n`` exactly as nats-server frames it."""
    return b"INFO " + _json(info) + b" \r\n"


def encode_connect(options: Mapping[str, Any]) -> bytes:
    return b"CONNECT " + _json(options) + b"\r\n"


def encode_err(text: str) -> bytes:
    """``-ERR '<text>'``; clients require the single quotes."""
    return b"-ERR '" + text.encode() + b"'\r\n"


def encode_pub(subject: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    if reply:
        return b"PUB %s %s %d\r\n%s\r\n" % (subject, reply, len(payload), payload)
    return b"PUB %s %d\r\n%s\r\n" % (subject, len(payload), payload)


def encode_hpub(subject: bytes, headers: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    total = len(headers) + len(payload)
    mid = b" " + reply if reply else b""
    return b"HPUB %s%s %d %d\r\n%s%s\r\n" % (subject, mid, len(headers), total, headers, payload)


def encode_sub(subject: bytes, sid: bytes, queue: bytes = b"") -> bytes:
    if queue:
        return b"SUB %s %s %s\r\n" % (subject, queue, sid)
    return b"SUB %s %s\r\n" % (subject, sid)


def encode_unsub(sid: bytes, max_msgs: int | None = None) -> bytes:
    if max_msgs is None:
        return b"UNSUB %s\r\n" % sid
    return b"UNSUB %s %d\r\n" % (sid, max_msgs)


def encode_msg(subject: bytes, sid: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    if reply:
        return b"MSG %s %s %s %d\r\n%s\r\n" % (subject, sid, reply, len(payload), payload)
    return b"MSG %s %s %d\r\n%s\r\n" % (subject, sid, len(payload), payload)


def encode_hmsg(
    subject: bytes, sid: bytes, headers: bytes, payload: bytes, reply: bytes = b""
) -> bytes:
    total = len(headers) + len(payload)
    mid = b" " + reply if reply else b""
    return b"HMSG %s %s%s %d %d\r\n%s%s\r\n" % (
        subject, sid, mid, len(headers), total, headers, payload,
    )


def no_responders_headers(subject: bytes) -> bytes:
    """The header block of the 503 status message nats-server sends (PROTOCOL.md 6.3)."""
    return b"NATS/1.0 503\r\nNats-Subject: " + subject + b"\r\n\r\n"




def encode_rs_plus(account: bytes, subject: bytes, queue: bytes = b"", weight: int = 0) -> bytes:
    """``RS+ <account> <subject> [<queue> <weight>]`` (route interest, CLUSTER.md 5.2)."""
    if queue:
        return b"RS+ %s %s %s %d\r\n" % (account, subject, queue, weight)
    return b"RS+ %s %s\r\n" % (account, subject)


def encode_rs_minus(account: bytes, subject: bytes, queue: bytes = b"") -> bytes:
    """``RS- <account> <subject> [<queue>]``."""
    if queue:
        return b"RS- %s %s %s\r\n" % (account, subject, queue)
    return b"RS- %s %s\r\n" % (account, subject)


def routed_head(verb: bytes, account: bytes, subject: bytes, reply: bytes,
                queues: list[bytes] | tuple[bytes, ...] = ()) -> bytes:
    """``RMSG``/``HMSG`` up to the sizes, with its trailing space (CLUSTER.md 6).

    The sizes and the payload follow as the publisher framed them.
    """
    head = b"%s %s %s " % (verb, account, subject)
    if queues:
        names = b" ".join(queues)
        return head + (b"+ %s %s " % (reply, names) if reply else b"| %s " % names)
    return head + reply + b" " if reply else head


__all__ = [
    "OK",
    "PING",
    "PONG",
    "encode_connect",
    "encode_err",
    "encode_hmsg",
    "encode_hpub",
    "encode_info",
    "encode_msg",
    "encode_pub",
    "encode_rs_minus",
    "encode_rs_plus",
    "encode_sub",
    "encode_unsub",
    "no_responders_headers",
    "routed_head",
]
