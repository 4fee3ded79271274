"""In-process NATS servers for tests, with fault injection (see docs/testing.md).

``run_server(**options)`` starts the real pynats server (the code of ``pynats-server``)
in this process on a free port; ``run_cluster(size, **options)`` starts several joined
by routes. Both work as ``with`` (a background thread serves the server, for sync and
async tests alike) and ``async with`` (on the running loop). The pytest plugin
(:mod:`pynats.testing.plugin`, registered by entry point) wraps them in the fixtures
``nats_server``, ``nats_url`` and ``nats_cluster``.
"""

from pynats.testing.cluster import AsyncClusterHandle, ClusterHandle, ClusterRunner, run_cluster
from pynats.testing.faults import ClientInfo, SubscriptionInfo
from pynats.testing.recording import ClientRef, RecordedMsg, Recording
from pynats.testing.server import (
    AsyncServerHandle,
    ServerHandle,
    ServerRunner,
    build_options,
    run_server,
)

__all__ = [
    "AsyncClusterHandle",
    "AsyncServerHandle",
    "ClientInfo",
    "ClientRef",
    "ClusterHandle",
    "ClusterRunner",
    "RecordedMsg",
    "Recording",
    "ServerHandle",
    "ServerRunner",
    "SubscriptionInfo",
    "build_options",
    "run_cluster",
    "run_server",
]
