"""TLS over a client connection's transport, run with memory BIOs.

Theory of operation
-------------------
nats-server decides how a TLS client starts by looking at its first bytes: with
``allow_non_tls`` a first byte of ``0x16`` (a TLS handshake record) means TLS, anything
else plaintext; with a ``handshake_first`` fallback delay, any bytes before the delay
mean a TLS-first client. Those bytes have already been read when the decision is made,
so the handshake must start from them. ``loop.start_tls`` cannot be handed bytes that
were already read, so the TLS layer here is built on :class:`ssl.SSLObject` and two
:class:`ssl.MemoryBIO`, the way asyncio's own ``SSLProtocol`` is, which also works the
same under uvloop.

Two stand-ins sit between the socket transport and the
:class:`~pynats.server.connection.Connection` (both are installed with the public
``transport.set_protocol``, so the connection's own ``data_received`` never changes and
plaintext clients keep the plain path):

* :class:`FirstBytes` holds the connection until its first bytes arrive or a delay
  passes, and hands them (or ``b""``) to a callback that picks TLS or plaintext.
* :class:`TLSTransport` is the protocol of the socket transport and the transport of the
  connection: ciphertext in, plaintext out to ``Connection.data_received`` (once per
  socket read); ``write`` encrypts and writes through. Until the handshake is done it
  only runs the handshake, bounded by ``timeout``; the outcome goes to ``on_done``
  (None, or the exception: :class:`ssl.SSLError`, :class:`HandshakeTimeout`,
  :class:`EOFError`). Flow control (``pause_writing``/``resume_writing`` from the socket,
  ``pause_reading``/``resume_reading`` to it) and write buffer sizes pass through, so
  the connection's slow-consumer accounting is unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any, Final

#: Bytes asked of the TLS layer per read.
READ_SIZE: Final = 65536


class HandshakeTimeout(TimeoutError):
    """The TLS handshake did not finish within ``timeout``."""


class FirstBytes(asyncio.Protocol):
    """Stands in for ``app`` until its first bytes arrive or ``wait`` seconds pass.

    Args:
        raw: The socket transport (this becomes its protocol).
        app: The connection, which gets EOF, loss and flow control meanwhile.
        wait: Seconds to wait.
        decide: Called once with the first bytes, or ``b""`` when the wait ran out.
    """

    def __init__(self, raw: asyncio.Transport, app: asyncio.Protocol, wait: float,
                 decide: Callable[[bytes], None]):
        self._app = app
        self._decide: Callable[[bytes], None] | None = decide
        self._timer = asyncio.get_running_loop().call_later(wait, self._fire, b"")
        raw.set_protocol(self)

    def data_received(self, data: bytes) -> None:
        self._fire(data)

    def eof_received(self) -> bool | None:
        self._cancel()
        return self._app.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self._app.connection_lost(exc)

    def pause_writing(self) -> None:
        self._app.pause_writing()

    def resume_writing(self) -> None:
        self._app.resume_writing()

    def _cancel(self) -> None:
        self._timer.cancel()
        self._decide = None

    def _fire(self, data: bytes) -> None:
        decide = self._decide
        self._cancel()
        if decide is not None:
            decide(data)


class TLSTransport(asyncio.Transport, asyncio.Protocol):
    """A server-side TLS session over ``raw``, serving ``app`` (see the module docstring).

    Args:
        raw: The socket transport (this becomes its protocol).
        app: The connection: gets plaintext, EOF, loss and flow control.
        context: The server's SSL context.
        timeout: Seconds the handshake may take (0: unbounded).
        on_done: Called once when the handshake ends: None on success, else the error.
    """

    def __init__(self, raw: asyncio.Transport, app: asyncio.Protocol, context: ssl.SSLContext,
                 timeout: float, on_done: Callable[[BaseException | None], None]):
        super().__init__()
        self._raw = raw
        self._app = app
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.sslobj = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._on_done: Callable[[BaseException | None], None] | None = on_done
        self._closed = False
        self._error: BaseException | None = None
        self._record_left = 0  # bytes until the end of the record being received
        self._header = b""  # a record header received in part
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(timeout, self._timed_out) if timeout > 0 else None
        raw.set_protocol(self)

    @property
    def handshaking(self) -> bool:
        """Whether the handshake has not ended yet."""
        return self._on_done is not None

    def feed(self, data: bytes) -> None:
        """Process bytes read before this layer was installed (``b""``: none)."""
        if data:
            self.data_received(data)

    # -- protocol side: the socket transport calls these ------------------------------------
    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        if self.handshaking:
            self._track_records(data)
            self._handshake()
            if self.handshaking or self._raw.is_closing():
                return
        self._read()

    def eof_received(self) -> bool | None:
        if self.handshaking:
            self._finish(self._eof())
            return None
        return self._app.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self.handshaking:
            self._finish(exc or self._eof())
        error = self._error
        self._app.connection_lost(exc if exc is not None or error is None else
                                  ConnectionError(str(error)))

    def pause_writing(self) -> None:
        self._app.pause_writing()

    def resume_writing(self) -> None:
        self._app.resume_writing()

    # -- handshake --------------------------------------------------------------------------
    def _handshake(self) -> None:
        try:
            self.sslobj.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except ssl.SSLError as exc:
            self._flush()
            self._finish(exc)
            return
        self._flush()
        self._finish(None)

    def _track_records(self, data: bytes) -> None:
        """Follow the TLS record framing, to tell a clean EOF from one inside a record."""
        pos = 0
        while pos < len(data):
            if self._record_left:
                step = min(self._record_left, len(data) - pos)
                self._record_left -= step
                pos += step
                continue
            need = 5 - len(self._header)
            self._header += data[pos:pos + need]
            pos += need
            if len(self._header) == 5:
                self._record_left = int.from_bytes(self._header[3:5], "big")
                self._header = b""

    def _eof(self) -> EOFError:
        """Go's words for the peer closing mid-handshake."""
        return EOFError("unexpected EOF" if self._record_left or self._header else "EOF")

    def _timed_out(self) -> None:
        self._timer = None
        if self.handshaking:
            self._finish(HandshakeTimeout("TLS handshake timeout"))

    def _finish(self, exc: BaseException | None) -> None:
        on_done, self._on_done = self._on_done, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if on_done is not None:
            on_done(exc)

    # -- records ----------------------------------------------------------------------------
    def _read(self) -> None:
        chunks: list[bytes] = []
        eof = False
        while True:
            try:
                chunk = self.sslobj.read(READ_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                eof = True
                break
            except ssl.SSLError as exc:
                self._error = exc
                self._flush()
                self._raw.abort()
                return
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        self._flush()
        if chunks:
            self._app.data_received(b"".join(chunks))
        if eof and not self._raw.is_closing() and self._app.eof_received() is not True:
            self._raw.close()

    def _flush(self) -> None:
        pending = self._outgoing.read()
        if pending and not self._raw.is_closing():
            self._raw.write(pending)

    # -- transport side: the connection calls these -----------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closed or self._raw.is_closing():
            return
        view = memoryview(data)
        try:
            while view:
                view = view[self.sslobj.write(view):]
        except ssl.SSLError as exc:
            self._error = exc
            self._raw.abort()
            return
        self._flush()

    def get_write_buffer_size(self) -> int:
        return self._raw.get_write_buffer_size() + self._outgoing.pending

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._raw.get_write_buffer_limits()

    def pause_reading(self) -> None:
        self._raw.pause_reading()

    def resume_reading(self) -> None:
        self._raw.resume_reading()

    def is_reading(self) -> bool:
        return self._raw.is_reading()

    def is_closing(self) -> bool:
        return self._closed or self._raw.is_closing()

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        """Send ``close_notify`` after what is queued, then close the socket."""
        if not self._closed and not self.handshaking:
            self._closed = True
            with contextlib.suppress(ssl.SSLError):
                self.sslobj.unwrap()
            self._flush()
        self._closed = True
        self._raw.close()

    def abort(self) -> None:
        self._closed = True
        self._raw.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self.sslobj
        return self._raw.get_extra_info(name, default)


__all__ = ["READ_SIZE", "FirstBytes", "HandshakeTimeout", "TLSTransport"]
