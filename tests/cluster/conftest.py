"""Fixtures of the cluster suite: module-scoped clusters, one per topology of kinds.

Every test module gets at most one cluster per topology at a time (pytest groups the
tests by the module-scoped parameter), shared by tests that only add and remove their
own subscriptions on unique subjects. Tests that kill nodes use ``chain_cluster``, which
``healed_chain`` restores (restart on the same ports, full mesh) before each test.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clusterkit import TOPOLOGIES, Cluster


@pytest.fixture(scope="module", params=list(TOPOLOGIES))
def cluster(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-node star (nodes 1 and 2 route to node 0; gossip joins 1 and 2), ready."""
    kinds = TOPOLOGIES[request.param]
    with Cluster(kinds, tmp_path_factory.mktemp("star"), "star") as started:
        yield started


@pytest.fixture(scope="module", params=list(TOPOLOGIES))
def chain_cluster(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-node chain (node i routes to node i-1 only), kinds in reverse order.

    Reversing puts nats-server first in the mixed topologies, so pynats dials
    nats-server on an explicit route here, while the star has nats-server dialling
    pynats; gossip covers the remaining pair in both.

    Only the nodes are waited for, not the mesh: forming it is the first test's subject.
    """
    cluster = Cluster(TOPOLOGIES[request.param][::-1], tmp_path_factory.mktemp("chain"),
                      "chain")
    try:
        yield cluster.start(mesh=False)
    finally:
        cluster.stop()


@pytest.fixture
def healed_chain(chain_cluster: Cluster) -> Cluster:
    """``chain_cluster`` with every node running and the full mesh formed."""
    chain_cluster.heal()
    return chain_cluster
