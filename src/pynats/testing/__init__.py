"""In-process NATS servers for tests, with fault injection (see docs/testing.md).

``run_server(**options)`` starts the real pynats server (the code of ``pynats-server``)
in this process on a free port; ``run_cluster(size, **options)`` starts several joined
by routes. Both work as ``with`` (a background thread serves the server, for sync and
async tests alike) and ``async with`` (on the running loop). The pytest plugin
(:mod:`pynats.testing.plugin`, registered by entry point) wraps them in the fixtures
``nats_server``, ``nats_url`` and ``nats_cluster``.

The names below are imported on first use, as ``pynats.connect`` is: pytest imports the
plugin (and so this package) in every run of a project that has pynats installed, and
that must not cost the import of the whole server. They live in
:mod:`~pynats.testing.server` (``run_server``, the server handles, ``build_options``),
:mod:`~pynats.testing.cluster` (``run_cluster``, the cluster handles),
:mod:`~pynats.testing.faults` (``ClientInfo``, ``SubscriptionInfo``) and
:mod:`~pynats.testing.recording` (``Recording``, ``RecordedMsg``, ``ClientRef``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynats.testing.cluster import (
        AsyncClusterHandle,
        ClusterHandle,
        ClusterRunner,
        run_cluster,
    )
    from pynats.testing.faults import ClientInfo, SubscriptionInfo
    from pynats.testing.recording import ClientRef, RecordedMsg, Recording
    from pynats.testing.server import (
        AsyncServerHandle,
        ServerHandle,
        ServerRunner,
        build_options,
        run_server,
    )

_WHERE = {
    "AsyncClusterHandle": "cluster", "ClusterHandle": "cluster", "ClusterRunner": "cluster",
    "run_cluster": "cluster", "ClientInfo": "faults", "SubscriptionInfo": "faults",
    "ClientRef": "recording", "RecordedMsg": "recording", "Recording": "recording",
    "AsyncServerHandle": "server", "ServerHandle": "server", "ServerRunner": "server",
    "build_options": "server", "run_server": "server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pynats.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pynats.testing.{module}"), name)


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
