"""The plugin's fixtures in this project's own tests: sync, pytest-asyncio and anyio."""

from __future__ import annotations

import asyncio

import nats
import pytest

import pynats.sync
from pynats.testing import ClusterHandle, ServerHandle


def test_nats_url_is_the_servers(nats_server: ServerHandle, nats_url: str) -> None:
    assert nats_url == nats_server.url
    with pynats.sync.connect(nats_url) as nc:
        sub = nc.subscribe("sync")
        nats_server.wait_for_subscription("sync")
        nc.publish("sync", b"blocking client")
        assert sub.next_msg(timeout=2).data == b"blocking client"


@pytest.mark.nats_server(max_payload=2048, server_name="marked")
def test_marker_options(nats_server: ServerHandle) -> None:
    assert nats_server.options.max_payload == 2048
    assert nats_server.server_name == "marked"


@pytest.mark.parametrize("nats_server", [{"max_payload": 100}, {"max_payload": 200}],
                         indirect=True)
def test_parametrized_options(nats_server: ServerHandle) -> None:
    assert nats_server.options.max_payload in (100, 200)


async def test_pytest_asyncio_test_awaits_the_waits(nats_server: ServerHandle) -> None:
    nc = await nats.connect(nats_server.url)
    sub = await nc.subscribe("a")  # the SUB may still be in nats-py's buffer here
    await nats_server.aio.wait_for_subscription("a", timeout=2)
    await nc.publish("a", b"1")
    assert (await sub.next_msg(timeout=2)).data == b"1"
    await nc.close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_anyio_test_uses_the_same_fixture(nats_server: ServerHandle) -> None:
    nc = await nats.connect(nats_server.url)
    await nc.subscribe("b")
    await nats_server.aio.wait_for_subscription("b", timeout=2)
    assert asyncio.get_running_loop() is not nats_server.loop
    await nc.close()


@pytest.mark.nats_cluster(size=2)
def test_cluster_marker_size(nats_cluster: ClusterHandle) -> None:
    assert len(nats_cluster) == 2
    assert [node.route_count for node in nats_cluster] == [1, 1]


@pytest.mark.parametrize("nats_cluster", [1, {"size": 4}], indirect=True)
def test_cluster_parametrized_size(nats_cluster: ClusterHandle) -> None:
    assert len(nats_cluster) in (1, 4)
    assert all(node.route_count == len(nats_cluster) - 1 for node in nats_cluster)
    assert len(set(nats_cluster.urls)) == len(nats_cluster)
