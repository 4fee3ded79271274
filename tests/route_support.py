"""Helpers shared by the route tests: start a clustered node, check a message crosses,
and :class:`Peer`, a fake peer server on a raw socket that reads with the route parser.

Both work for pynats-server and nats-server alike (real processes, 127.0.0.1, random
ports); waits are bounded and end on a log line or on a delivered message.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

from harness import RawClient, ServerProcess
from pynats.protocol import ops
from pynats.protocol.parser import Parser, Role

ROUTE_RE = re.compile(r"Listening for route connections on (\S+):(\d+)")


def start_node(kind: str, tmp_path: Path, name: str, cluster: str,
               top: str = "") -> tuple[ServerProcess, int]:
    """A node named ``name`` with ``cluster`` inside its cluster block, ``top`` outside."""
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f"server_name: {name}\n{top}\ncluster {{ name: C, listen: 127.0.0.1:-1\n"
                    f"{cluster} }}\n")
    server = ServerProcess(kind, ["-c", str(conf)]).start()
    line = server.wait_for_log("Listening for route connections on", 10.0)
    match = ROUTE_RE.search(line or "")
    assert match is not None, server.lines
    return server, int(match.group(2))


def delivered_across(subscriber: ServerProcess, publisher: ServerProcess,
                     timeout: float = 10.0) -> bool:
    """Whether a message published on one node reaches a subscriber on the other."""
    with RawClient(subscriber.port) as sub, RawClient(publisher.port) as pub:
        sub.send(b'CONNECT {"verbose":false}\r\nSUB probe 1\r\n')
        sub.ping_pong()
        pub.send(b'CONNECT {"verbose":false}\r\n')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # interest takes a moment to cross the route
            pub.send(b"PUB probe 2\r\nhi\r\n")
            until_pong(pub)  # the server's own PING may come first on a slow run
            if b"MSG probe 1 2" in sub.read_available(0.1):
                return True
    return False


PEER_ID = "NPEERPEERPEERPEERPEERPEERPEERPEERPEERPEERPEERPEERPEERPEE"


class Peer:
    """A fake peer server on a route: sends raw bytes, receives parsed operations."""

    def __init__(self, port: int):
        self.raw = RawClient(port, read_info=False)
        self.parser = Parser(Role.ROUTE, 1 << 16)
        self.pending: list[ops.Op] = []
        first = self._next(5.0)
        assert isinstance(first, ops.Info), first
        self.info = first.info

    def send(self, data: bytes) -> None:
        self.raw.send(data)

    def register(self, server_id: str = PEER_ID, cluster: str = "C") -> None:
        connect = {"echo": True, "verbose": False, "pedantic": False, "tls_required": False,
                   "headers": True, "name": server_id, "cluster": cluster}
        info = {"server_id": server_id, "server_name": "peer", "version": "2.10.0", "proto": 1,
                "host": "127.0.0.1", "port": 1, "headers": True, "cluster": cluster}
        self.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n" +
                  b"INFO " + json.dumps(info).encode() + b"\r\n")

    def _next(self, timeout: float) -> ops.Op:
        deadline = time.monotonic() + timeout
        while not self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no operation from the server")
            self.raw.sock.settimeout(remaining)
            data = self.raw.sock.recv(65536)
            if not data:
                raise ConnectionError("route closed")
            self.pending.extend(self.parser.feed(data))
        return self.pending.pop(0)

    def next_op(self, timeout: float = 5.0) -> ops.Op:
        """The next operation that is not the reference's system traffic or a PING."""
        while True:
            op = self._next(timeout)
            if isinstance(op, ops.Ping):
                self.send(b"PONG\r\n")
            elif isinstance(op, ops.RSub | ops.RUnsub | ops.RMsg) and op.account == b"$SYS":
                continue
            elif not isinstance(op, ops.Pong | ops.Info):
                return op

    def expect(self, wanted: Callable[[ops.Op], bool], timeout: float = 5.0) -> ops.Op:
        op = self.next_op(timeout)
        assert wanted(op), op
        return op

    def sync(self) -> None:
        """PING/PONG: everything the server sent before it is read; kept for next_op."""
        self.send(b"PING\r\n")
        deadline = time.monotonic() + 5.0
        keep: list[ops.Op] = []
        while True:
            op = self._next(deadline - time.monotonic())
            if isinstance(op, ops.Pong):
                self.pending = keep + self.pending
                return
            keep.append(op)

    def close(self) -> None:
        self.raw.close()


def start(kind: str, tmp_path: Path, extra: str = "") -> tuple[ServerProcess, int]:
    conf = tmp_path / f"{kind}.conf"
    conf.write_text(f"cluster {{ name: C, listen: 127.0.0.1:-1\n{extra}\n}}\n")
    server = ServerProcess(kind, ["-c", str(conf)]).start()
    line = server.wait_for_log("Listening for route connections on", 10.0)
    assert line is not None, server.lines
    match = ROUTE_RE.search(line)
    assert match is not None
    return server, int(match.group(2))


def client(server: ServerProcess) -> RawClient:
    raw = RawClient(server.port)
    raw.send(b'CONNECT {"verbose":false,"headers":true}\r\n')
    raw.ping_pong()
    return raw


def until_pong(raw: RawClient) -> bytes:
    """Everything a client receives before the PONG to a PING sent now."""
    raw.send(b"PING\r\n")
    got = b""
    while not got.endswith(b"PONG\r\n"):
        got += raw.read_line()
    return got[: -len(b"PONG\r\n")]


__all__ = ["PEER_ID", "ROUTE_RE", "Peer", "client", "delivered_across", "start", "start_node",
           "until_pong"]
