"""Protocol errors: a peer sent bytes that break the NATS protocol.

Each error carries what the server does about it, as nats-server does
(PROTOCOL.md section 13): the ``-ERR`` text to send first, or ``None`` for a silent
close, and the close reason shown in ``/connz``. The parser raises these and nothing
else; the connection turns one into ``-ERR`` plus a close.
"""

from __future__ import annotations

from pynats.errors import PynatsError

UNKNOWN_OP = "Unknown Protocol Operation"
MAX_PAYLOAD = "Maximum Payload Violation"
MAX_CONTROL_LINE = "maximum control line exceeded"


class ProtocolError(PynatsError):
    """The peer broke the protocol; the connection must be closed.

    Attributes:
        err: the ``-ERR`` text to send before closing, or ``None`` to close silently.
        reason: the close reason, one of nats-server's ``ClosedState`` strings.
    """

    def __init__(self, detail: str, err: str | None, reason: str):
        super().__init__(detail)
        self.err = err
        self.reason = reason


class UnknownOperation(ProtocolError):
    """An unexpected byte where an operation, or the end of a payload, should be."""

    def __init__(self, detail: str = "unknown protocol operation"):
        super().__init__(detail, UNKNOWN_OP, "Protocol Violation")


class MalformedArguments(ProtocolError):
    """Wrong argument count or a bad size: nats-server closes without ``-ERR``."""

    def __init__(self, detail: str):
        super().__init__(detail, None, "Protocol Violation")


class HeadersNotSupported(ProtocolError):
    """HPUB on a connection that did not negotiate headers: closed without ``-ERR``."""

    def __init__(self) -> None:
        super().__init__("HPUB without headers negotiated", None, "Message Header Violation")


class MaxPayloadExceeded(ProtocolError):
    """A message larger than ``max_payload``."""

    def __init__(self, size: int, limit: int):
        super().__init__(
            f"maximum payload exceeded: {size} vs {limit}", MAX_PAYLOAD,
            "Maximum Message Payload Exceeded",
        )


class MaxControlLineExceeded(ProtocolError):
    """A control line whose arguments are longer than ``max_control_line``."""

    def __init__(self, size: int, limit: int):
        super().__init__(
            f"maximum control line exceeded: {size} vs {limit}", MAX_CONTROL_LINE,
            "Maximum Control Line Exceeded",
        )


class PeerError(ProtocolError):
    """The peer sent ``-ERR``; on the server side the connection is closed silently."""

    def __init__(self, text: str):
        super().__init__(text, None, "Protocol Violation")
        self.text = text


__all__ = [
    "MAX_CONTROL_LINE",
    "MAX_PAYLOAD",
    "UNKNOWN_OP",
    "HeadersNotSupported",
    "MalformedArguments",
    "MaxControlLineExceeded",
    "MaxPayloadExceeded",
    "PeerError",
    "ProtocolError",
    "UnknownOperation",
]
