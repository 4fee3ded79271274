"""nats-py helpers for the cluster tests: bounded connects, flushes and collectors.

The cluster harness (clusterkit.py) is synchronous; :func:`interest` and :func:`gone`
run its polls in a thread so the event loop (and the nats-py clients on it) keep going.
Every await is bounded by :data:`TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import nats
from clusterkit import Cluster, Node
from nats.aio.client import Client
from nats.aio.msg import Msg

TIMEOUT = 5.0
#: How long a test listens for deliveries that must not come.
QUIET = 0.3


def unique(prefix: str) -> str:
    """A subject prefix no other test uses (clusters are shared within a module)."""
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def connect(node: Node, **options: Any) -> AsyncIterator[Client]:
    """A nats-py client connected to ``node`` only; no reconnects unless asked for."""
    options.setdefault("allow_reconnect", False)
    options.setdefault("connect_timeout", 2)
    nc = await asyncio.wait_for(nats.connect(node.url, **options), TIMEOUT)
    try:
        yield nc
    finally:
        if not nc.is_closed:
            await asyncio.wait_for(nc.close(), TIMEOUT)


@asynccontextmanager
async def connect_all(nodes: Iterable[Node]) -> AsyncIterator[list[Client]]:
    """One client per node, in order."""
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(connect(node)) for node in nodes]


async def flush(nc: Client) -> None:
    """A PING/PONG ordered after everything published (nats-py's flush alone is not:
    its PING can overtake commands still in its pending buffer)."""
    await asyncio.wait_for(nc._flush_pending(force_flush=True), TIMEOUT)
    await nc.flush(timeout=int(TIMEOUT))


async def interest(cluster: Cluster, subject: str, origin: Node,
                   on: Iterable[Node] | None = None) -> None:
    """Wait until ``origin``'s subscription on ``subject`` is known on the other nodes."""
    await asyncio.to_thread(cluster.wait_interest, subject, origin, on)


async def gone(cluster: Cluster, subject: str, origin: Node,
               on: Iterable[Node] | None = None) -> None:
    """Wait until no other node knows of ``origin`` having interest in ``subject``."""
    await asyncio.to_thread(cluster.wait_interest, subject, origin, on, False)


class Inbox:
    """A subscription callback that records messages and signals a count or a marker."""

    def __init__(self, target: int = 0, marker: bytes | None = None) -> None:
        self.msgs: list[Msg] = []
        self.target = target
        self.marker = marker
        self.done = asyncio.Event()

    async def cb(self, msg: Msg) -> None:
        self.msgs.append(msg)
        if (self.target and len(self.msgs) >= self.target) or msg.data == self.marker:
            self.done.set()

    async def wait(self, what: str = "messages", timeout: float = TIMEOUT) -> list[Msg]:
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; got {self.data}") from None
        return self.msgs

    @property
    def data(self) -> list[bytes]:
        return [m.data for m in self.msgs]

    @property
    def subjects(self) -> list[str]:
        return [m.subject for m in self.msgs]


async def quiet() -> None:
    """Give deliveries that must not happen a chance to show up (absence checks only)."""
    await asyncio.sleep(QUIET)
