"""The received message, shared by the asyncio and the blocking client.

Theory of operation
-------------------
A :class:`Msg` is built once per delivered message on the read path, so it is a plain
slotted object and does as little as it can: the subject is decoded, the payload is the
slice the parser produced, and the header block is kept as bytes and parsed only when
``headers`` is first read (most consumers never look). ``respond`` publishes through the
client that received the message, whichever front end that is (anything with a
``publish`` method, :class:`Publisher`).
"""

from __future__ import annotations

from typing import Protocol

from pynats.errors import ConnectionClosedError, InvalidSubjectError
from pynats.protocol.headers import (
    NO_RESPONDERS,
    HeaderInput,
    Headers,
    parse_headers,
    status_of,
)


class Publisher(Protocol):
    """What a message needs from its client to respond."""

    def publish(self, subject: str, payload: bytes = b"", reply: str | None = None,
                headers: Headers | HeaderInput | None = None) -> None:
        """Publish ``payload`` to ``subject``."""


class Msg:
    """A message received on a subscription or as a reply.

    Args:
        subject: the subject it was published to.
        reply: its reply subject, empty when none.
        data: the payload.
        raw_headers: the header block as received (empty when none).
        client: the client it arrived on, used by :meth:`respond`.
        sid: the subscription id it arrived for.
        headers: headers to attach directly (for messages built by hand).

    Attributes:
        subject: the subject it was published to.
        reply: its reply subject ("" when there is none).
        data: the payload.
        sid: the subscription id it arrived for.
    """

    __slots__ = ("_client", "_headers", "_raw_headers", "data", "reply", "sid", "subject")

    def __init__(self, subject: str, reply: str = "", data: bytes = b"",
                 raw_headers: bytes = b"", client: Publisher | None = None, sid: int = 0,
                 headers: Headers | None = None):
        self.subject = subject
        self.reply = reply
        self.data = data
        self._raw_headers = raw_headers
        self._headers = headers
        self._client = client
        self.sid = sid

    @property
    def headers(self) -> Headers | None:
        """The headers, parsed on first access; ``None`` when the message has none.

        Raises:
            HeaderError: the header block is malformed.
        """
        if self._headers is None and self._raw_headers:
            self._headers = parse_headers(self._raw_headers)
        return self._headers

    @property
    def status(self) -> int | None:
        """The status code of the header block (``503`` for no responders), if any."""
        if self._headers is not None:
            return self._headers.status
        return status_of(self._raw_headers) if self._raw_headers else None

    @property
    def is_no_responders(self) -> bool:
        """Whether this is the server's "no responders" status message."""
        return not self.data and self.status == NO_RESPONDERS

    @property
    def size(self) -> int:
        """Payload plus header bytes, as counted against pending limits."""
        return len(self.data) + len(self._raw_headers)

    def respond(self, data: bytes = b"", headers: Headers | HeaderInput | None = None) -> None:
        """Publish a reply to this message's reply subject (buffered, not awaited).

        Args:
            data: the reply payload.
            headers: optional reply headers.

        Raises:
            InvalidSubjectError: the message has no reply subject.
            ConnectionClosedError: the message is not bound to a client.
        """
        if not self.reply:
            raise InvalidSubjectError(f"message on {self.subject!r} has no reply subject")
        if self._client is None:
            raise ConnectionClosedError("message is not bound to a client")
        self._client.publish(self.reply, data, headers=headers)

    def __repr__(self) -> str:
        reply = f", reply={self.reply!r}" if self.reply else ""
        hdr = f", headers={len(self._raw_headers)}B" if self._raw_headers else ""
        shown = self.data if len(self.data) <= 32 else self.data[:32] + b"..."
        return f"<Msg subject={self.subject!r}{reply} data={shown!r}{hdr}>"


__all__ = ["Msg", "Publisher"]
