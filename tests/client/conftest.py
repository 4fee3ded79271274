"""Client test fixtures: every test runs against pynats-server and the real nats-server.

``kind`` is parametrized over both servers; ``server`` is a server of that kind shared by
the whole session (tests that disturb a server start their own), ``nc`` an asyncio client
connected to it and ``snc`` a blocking one. Helpers live in ``clienttools.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

import pynats.sync
from harness import ServerProcess
from pynats.client import Client, connect

KINDS = ("pynats", "nats-server")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Which server the test runs against."""
    return str(request.param)


@pytest.fixture(scope="session")
def _shared_servers() -> Iterator[dict[str, ServerProcess]]:
    started: dict[str, ServerProcess] = {}
    yield started
    for server in started.values():
        server.stop()


@pytest.fixture
def server(kind: str, _shared_servers: dict[str, ServerProcess]) -> ServerProcess:
    """A server of ``kind`` shared by every test that leaves it as it found it."""
    if kind not in _shared_servers:
        _shared_servers[kind] = ServerProcess(kind).start()
    return _shared_servers[kind]


@pytest.fixture
async def nc(server: ServerProcess) -> AsyncIterator[Client]:
    """A client connected to the shared server."""
    client = await connect(server.url, connect_timeout=5.0)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def snc(server: ServerProcess) -> Iterator[pynats.sync.Client]:
    """A blocking client connected to the shared server."""
    client = pynats.sync.connect(server.url, connect_timeout=5.0)
    try:
        yield client
    finally:
        client.close()
