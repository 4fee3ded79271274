"""Helpers for client tests: callback recorders, bounded waits, scripted fake servers.

A :class:`FakeServer` is a plain asyncio listener on 127.0.0.1 port 0 that plays a
script per connection: stall, send garbage, do the NATS handshake and then misbehave.
It lets tests reproduce server faults that no real server produces on demand.
:class:`SyncEvents` records the blocking client's callbacks, which run on its own
callback thread, with ``threading.Event``s.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from pynats.client import Callbacks

#: Upper bound for anything a test awaits.
TIMEOUT = 5.0


async def wait(event: asyncio.Event, what: str, timeout: float = TIMEOUT) -> None:
    """Wait for ``event``; fail the test naming ``what`` when it does not come."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Events:
    """Records the client's lifecycle and error callbacks."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.error = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.reconnected = asyncio.Event()
        self.closed = asyncio.Event()
        self.discovered = asyncio.Event()
        self.lame_duck = asyncio.Event()
        self.counts: dict[str, int] = {}

    def _count(self, name: str, event: asyncio.Event) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1
        event.set()

    async def on_error(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.error.set()

    def on_disconnected(self) -> None:
        self._count("disconnected", self.disconnected)

    async def on_reconnected(self) -> None:
        self._count("reconnected", self.reconnected)

    def on_closed(self) -> None:
        self._count("closed", self.closed)

    def on_discovered(self) -> None:
        self._count("discovered", self.discovered)

    def on_lame_duck(self) -> None:
        self._count("lame_duck", self.lame_duck)

    def callbacks(self, **override: Any) -> Callbacks:
        cbs: dict[str, Any] = dict(
            error=self.on_error, disconnected=self.on_disconnected,
            reconnected=self.on_reconnected, closed=self.on_closed,
            discovered_server=self.on_discovered, lame_duck=self.on_lame_duck)
        cbs.update(override)
        return Callbacks(**cbs)

    def of_type(self, kind: type[BaseException]) -> list[BaseException]:
        return [e for e in self.errors if isinstance(e, kind)]


class SyncEvents:
    """Records the blocking client's lifecycle and error callbacks, and their threads."""

    NAMES = ("error", "disconnected", "reconnected", "closed", "discovered", "lame_duck")

    def __init__(self) -> None:
        self.errors: list[BaseException] = []
        self.events = {name: threading.Event() for name in self.NAMES}
        self.counts: dict[str, int] = {}
        self.threads: set[str] = set()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)

    def _record(self, name: str) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + 1
            self.threads.add(threading.current_thread().name)
            self._changed.notify_all()
        self.events[name].set()

    def on_error(self, exc: BaseException) -> None:
        with self._lock:
            self.errors.append(exc)
        self._record("error")

    def wait_until(self, predicate: Callable[[], bool], what: str,
                   timeout: float = TIMEOUT) -> None:
        """Wait until ``predicate()`` holds, re-checked after every callback."""
        with self._changed:
            if not self._changed.wait_for(predicate, timeout):
                raise AssertionError(f"timed out waiting for {what}")

    def callbacks(self, **override: Any) -> Callbacks:
        cbs: dict[str, Any] = dict(
            error=self.on_error, disconnected=lambda: self._record("disconnected"),
            reconnected=lambda: self._record("reconnected"),
            closed=lambda: self._record("closed"),
            discovered_server=lambda: self._record("discovered"),
            lame_duck=lambda: self._record("lame_duck"))
        cbs.update(override)
        return Callbacks(**cbs)

    def wait(self, name: str, timeout: float = TIMEOUT) -> None:
        """Wait for callback ``name``; fail the test when it does not come."""
        if not self.events[name].wait(timeout):
            raise AssertionError(f"timed out waiting for the {name} callback")

    def of_type(self, kind: type[BaseException]) -> list[BaseException]:
        with self._lock:
            return [e for e in self.errors if isinstance(e, kind)]


def pynats_threads() -> list[str]:
    """Names of the live threads a blocking client runs."""
    return [t.name for t in threading.enumerate() if t.name.startswith("pynats-")]


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def info_line(**fields: Any) -> bytes:
    info = {"server_id": "NFAKE", "server_name": "fake", "version": "2.10.0", "proto": 1,
            "host": "127.0.0.1", "port": 0, "headers": True, "max_payload": 1048576,
            "client_id": 1}
    info.update(fields)
    return b"INFO " + json.dumps(info).encode() + b"\r\n"


async def handshake(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    **info: Any) -> None:
    """Play the server's side of INFO / CONNECT / PING / PONG."""
    writer.write(info_line(**info))
    while (line := await reader.readline()) and not line.startswith(b"PING"):
        pass
    writer.write(b"PONG\r\n")
    await writer.drain()


async def answer_pings(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       pong: bool = True) -> None:
    """Read until EOF, answering PINGs (or not)."""
    while line := await reader.readline():
        if line.startswith(b"PING") and pong:
            writer.write(b"PONG\r\n")


class FakeServer:
    """A scripted listener: each accepted connection runs ``script``."""

    def __init__(self, script: Script):
        self.script = script
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> FakeServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.wait_for(self._server.wait_closed(), TIMEOUT)
