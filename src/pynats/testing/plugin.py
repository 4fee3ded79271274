"""The pytest plugin of ``pynats.testing`` (registered as ``pynats`` by entry point).

Fixtures, each a fresh server (or cluster) per test on free ports, so tests run in
parallel under pytest-xdist without sharing anything:

* ``nats_server``: a :class:`~pynats.testing.server.ServerHandle` (thread mode: it
  serves sync tests and async tests of pytest-asyncio or anyio alike; async tests
  await its waits through ``nats_server.aio``).
* ``nats_url``: that server's URL.
* ``nats_cluster``: a :class:`~pynats.testing.cluster.ClusterHandle`, three nodes by
  default, entered once every route is registered.

Options, any ``ServerOptions`` field (see :func:`~pynats.testing.server.build_options`),
come from a marker or from indirect parametrization (which wins)::

    @pytest.mark.nats_server(max_payload=1024)
    @pytest.mark.nats_cluster(size=2, max_payload=1024)
    @pytest.mark.parametrize("nats_server", [{"max_payload": 1024}], indirect=True)
    @pytest.mark.parametrize("nats_cluster", [2, {"size": 5}], indirect=True)

``--nats-server-log`` writes every test server's log to stderr (captured by pytest
like any output) instead of keeping it in memory. Either way, a failed test's report
gets a section with the last :data:`LOG_TAIL` log lines of each of its servers.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported by the fixtures: loading the plugin must cost nothing
    from pynats.testing.cluster import ClusterHandle
    from pynats.testing.server import ServerHandle

#: Nodes of ``nats_cluster`` unless a marker or parameter says otherwise.
DEFAULT_CLUSTER_SIZE = 3
#: Log lines of each server shown in a failed test's report.
LOG_TAIL = 100
#: The servers of the running test, by report section title.
_SERVERS = pytest.StashKey["dict[str, ServerHandle]"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pynats", "in-process NATS servers (pynats.testing)")
    group.addoption("--nats-server-log", action="store_true", default=False,
                    help="write the log of every pynats test server to stderr")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "nats_server(**options): options of the nats_server fixture's server")
    config.addinivalue_line(
        "markers", "nats_cluster(size=3, **options): size and options of nats_cluster")


def _options(request: pytest.FixtureRequest, marker: str) -> dict[str, Any]:
    """The marker's keywords, then the indirect parameter's (an int is a size)."""
    options: dict[str, Any] = {}
    mark = request.node.get_closest_marker(marker)
    if mark is not None:
        if mark.args:
            raise pytest.UsageError(f"@pytest.mark.{marker} takes keyword options only")
        options.update(mark.kwargs)
    param = getattr(request, "param", None)
    if isinstance(param, int) and not isinstance(param, bool):
        options["size"] = param
    elif isinstance(param, dict):
        options.update(param)
    elif param is not None:
        raise pytest.UsageError(f"{marker} parameters are dicts of options, not {param!r}")
    return options


def _log(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--nats-server-log", default=False))


def _remember(request: pytest.FixtureRequest, title: str, server: ServerHandle) -> None:
    request.node.stash.setdefault(_SERVERS, {})[title] = server


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    servers = item.stash.get(_SERVERS, {})
    if report.failed and servers:
        for title, server in servers.items():
            lines = server.log_lines()[-LOG_TAIL:]
            if lines:
                report.sections.append((f"pynats {title} log ({report.when})",
                                        "\n".join(lines)))
    return report


@pytest.fixture
def nats_server(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    """A fresh in-process pynats server for this test (see the module docstring)."""
    from pynats.testing.server import run_server

    with run_server(log=_log(request), **_options(request, "nats_server")) as server:
        _remember(request, "nats_server", server)
        yield server


@pytest.fixture
def nats_url(nats_server: ServerHandle) -> str:
    """The URL of this test's ``nats_server``."""
    return nats_server.url


@pytest.fixture
def nats_cluster(request: pytest.FixtureRequest) -> Iterator[ClusterHandle]:
    """A fresh in-process cluster for this test, every route registered."""
    from pynats.testing.cluster import run_cluster

    options = _options(request, "nats_cluster")
    size = int(options.pop("size", DEFAULT_CLUSTER_SIZE))
    with run_cluster(size, log=_log(request), **options) as cluster:
        for index, node in enumerate(cluster):
            _remember(request, f"nats_cluster[{index}]", node)
        yield cluster
