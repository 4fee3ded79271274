"""FaultTransport: a transport between a client's connection and its socket.

Theory of operation
-------------------
The server's :class:`~pynats.server.connection.Connection` talks to whatever is in its
``transport`` attribute (TLS puts its own transport there the same way). A
:class:`FaultTransport` passes everything through to the real one, except what a fault
asks it to withhold:

* paused reading: the socket is not read (``pause_reading``), and the server's own
  fast-producer stall can no longer resume it until the fault is lifted;
* held writes: what the server writes is kept here, and counted in
  ``get_write_buffer_size`` as bytes a socket could not send, so the server's slow
  consumer rules apply as to a client that stopped reading: past ``max_pending`` it is
  cut off, and past the high-water mark the connection is told to pause writing, which
  starts the write deadline. Releasing writes the held bytes out.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pynats.server.connection import WRITE_HIGH_WATER, Connection


class FaultTransport(asyncio.Transport):
    """Stands between a client's connection and its socket (see the module docstring).

    Args:
        inner: The connection's transport (the socket's, or TLS's).
        conn: The connection, told to pause and resume writing as a socket would.
    """

    def __init__(self, inner: asyncio.Transport, conn: Connection):
        super().__init__()
        self.inner = inner
        self.conn = conn
        self.reading_paused = False  # by the fault
        self._server_paused = False  # by the server's own stall
        self.holding = False
        self._held = bytearray()
        self._told_pause = False

    # -- the faults ------------------------------------------------------------------------
    def pause(self) -> None:
        self.reading_paused = True
        self.inner.pause_reading()

    def resume(self) -> None:
        self.reading_paused = False
        if not self._server_paused and not self.inner.is_closing():
            self.inner.resume_reading()

    def hold(self) -> None:
        self.holding = True

    def release(self) -> None:
        self.holding = False
        held, self._held = bytes(self._held), bytearray()
        if held and not self.inner.is_closing():
            self.inner.write(held)
        if self._told_pause:
            self._told_pause = False
            self.conn.resume_writing()

    # -- asyncio.Transport -------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.holding:
            self.inner.write(data)
            return
        self._held += data
        if len(self._held) > WRITE_HIGH_WATER and not self._told_pause:
            self._told_pause = True
            self.conn.pause_writing()

    def get_write_buffer_size(self) -> int:
        return self.inner.get_write_buffer_size() + len(self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.inner.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.inner.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._server_paused = True
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self._server_paused = False
        if not self.reading_paused:
            self.inner.resume_reading()

    def is_reading(self) -> bool:
        return self.inner.is_reading()

    def close(self) -> None:
        self._held.clear()
        self.inner.close()

    def abort(self) -> None:
        self._held.clear()
        self.inner.abort()

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.inner.get_extra_info(name, default)

    def can_write_eof(self) -> bool:
        return self.inner.can_write_eof()

    def write_eof(self) -> None:
        self.inner.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.inner.get_protocol()


__all__ = ["FaultTransport"]
