"""Helpers for WebSocket tests: servers with a ``websocket`` block, and a raw client.

:class:`RawWebSocket` speaks the WebSocket protocol with the ``websockets`` package's
sans-I/O client over a plain socket, so tests control every byte: the upgrade request,
frames split anywhere, unmasked or oversized frames.
"""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from harness import ServerProcess

WS_RE = re.compile(r"Listening for websocket clients on (wss?)://(\S+):(\d+)")
#: A valid upgrade request (the key and accept value of RFC 6455's example).
UPGRADE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n")


def start_ws(kind: str, tmp_path: Path, block: str = "no_tls: true", top: str = "",
             args: tuple[str, ...] = ()) -> tuple[ServerProcess, int]:
    """A server of ``kind`` with ``websocket { port: -1, <block> }``; its ws port."""
    conf = tmp_path / f"ws-{kind}.conf"
    conf.write_text(f"{top}\nwebsocket {{\n  port: -1\n  host: 127.0.0.1\n  {block}\n}}\n")
    server = ServerProcess(kind, ["-c", str(conf), *args]).start()
    for line in server.lines:
        if match := WS_RE.search(line):
            return server, int(match.group(3))
    server.stop()
    raise AssertionError("no websocket listener line:\n" + "\n".join(server.lines))


def http_exchange(port: int, request: bytes, timeout: float = 3.0) -> bytes:
    """Send ``request`` as is; everything until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(0.5 if out else deadline - time.monotonic())
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            out += data
    return out


def without_date(response: bytes) -> bytes:
    return re.sub(rb"Date: [^\r]+\r\n", b"", response)


class RawWebSocket:
    """A WebSocket client over a plain socket (``websockets``' sans-I/O client)."""

    def __init__(self, port: int, timeout: float = 5.0,
                 headers: dict[str, str] | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout
        self.ws = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/"), max_size=None)
        request = self.ws.connect()
        for name, value in (headers or {}).items():
            request.headers[name] = value
        self.ws.send_request(request)
        self._flush()
        self.text = b""
        self.closed: Frame | None = None
        while self.ws.handshake_exc is None and self.ws.state is State.CONNECTING:
            if not self._read():
                break
        assert self.ws.state is State.OPEN, self.ws.handshake_exc

    def _flush(self, split: bool = False) -> None:
        for chunk in self.ws.data_to_send():
            if split:
                for i in range(len(chunk)):
                    self.sock.sendall(chunk[i:i + 1])
            else:
                self.sock.sendall(chunk)

    def _read(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            data = b""
        if not data:
            self.ws.receive_eof()
            return False
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Frame) and event.opcode in (Opcode.BINARY, Opcode.TEXT,
                                                             Opcode.CONT):
                self.text += event.data
            elif isinstance(event, Frame) and event.opcode is Opcode.CLOSE:
                self.closed = event
        self._flush()
        return True

    def send(self, data: bytes, split: bool = False) -> None:
        """Send ``data`` in one binary frame (``split``: one byte per write)."""
        self.ws.send_binary(data)
        self._flush(split)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until(self, wanted: bytes) -> bytes:
        """Read until the NATS text received contains ``wanted``; return and reset it."""
        deadline = time.monotonic() + self.timeout
        while wanted not in self.text:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            if time.monotonic() > deadline or not self._read():
                raise AssertionError(f"no {wanted!r} in {self.text!r}")
        text, self.text = self.text, b""
        return text

    def until_closed(self) -> Frame | None:
        """Read until the server closes; the close frame it sent, if any."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            if not self._read():
                return self.closed
        raise AssertionError("the server did not close")

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawWebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["UPGRADE", "WS_RE", "RawWebSocket", "http_exchange", "start_ws", "without_date"]
