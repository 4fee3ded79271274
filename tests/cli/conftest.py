"""CLI test fixtures: one pynats-server (with monitoring) for the module, a private
config directory (``XDG_CONFIG_HOME``) and environment per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clitools import cli_env

from harness import ServerProcess


@pytest.fixture(scope="session")
def cli_server() -> Iterator[ServerProcess]:
    """A pynats-server with its monitoring port, shared by the CLI tests."""
    with ServerProcess("pynats", ["-m", "-1"]) as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The CLI's environment: a private XDG_CONFIG_HOME, no NATS_* variables."""
    return cli_env(tmp_path / "config")


@pytest.fixture
def url(cli_server: ServerProcess) -> str:
    """The shared server's URL."""
    return cli_server.url
