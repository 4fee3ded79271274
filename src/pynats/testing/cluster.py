"""In-process clusters for tests: ``run_cluster`` and the cluster handles.

Theory of operation
-------------------
A cluster is N :class:`~pynats.testing.server.Node` objects on one loop (one
:class:`~pynats.testing.server.LoopThread` in thread mode, the caller's loop with
``async with``). Node ``i`` gets a route listener on a free port (``cluster.port -1``)
and configured routes to every node before it, so the mesh is complete without waiting
for gossip; every node gets a name ``<server_name or "node">-<i>`` (names must differ)
and the cluster name ``pynats-test`` unless options say otherwise.

Start-up ends with :meth:`ClusterHandle.wait_until_routed`: each running node has
registered a route to every other running node it is not partitioned from (the
server's own route registry, polled on the loop, never a sleep).

A partition is kept by node index, not server id, so it survives a restart of either
node (a restarted server has a new id): after every start of a node, and on every
``partition``/``heal``, each node's ``Cluster.refused_peers`` is set anew from the
partitions in force and routes that must not exist are closed
(:func:`pynats.testing.faults.partition`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from pynats.testing import faults
from pynats.testing.node import (
    CONTROL_TIMEOUT,
    LoopThread,
    Node,
    build_options_and_fields,
    wait_until,
)
from pynats.testing.server import AsyncServerHandle, ServerHandle

#: Cluster name of test clusters when the options name none.
DEFAULT_CLUSTER_NAME = "pynats-test"
#: Seconds start-up waits for the full mesh of routes.
ROUTED_TIMEOUT = 10.0

H = TypeVar("H", ServerHandle, AsyncServerHandle)
#: A node of a cluster: its index or its handle.
NodeRef = int | ServerHandle | AsyncServerHandle


class _Mesh:
    """The nodes of one cluster and its partitions (touched on the cluster's loop)."""

    def __init__(self, size: int, options: dict[str, Any], log: bool):
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.size = size
        self.options = dict(options)
        self.log = log
        self.nodes: list[Node] = []
        self.partitions: set[frozenset[int]] = set()

    def node_options(self, index: int) -> dict[str, Any]:
        opts = dict(self.options)
        cluster = opts.pop("cluster", {})
        if not isinstance(cluster, dict):
            cluster = {f.name: getattr(cluster, f.name) for f in dataclasses.fields(cluster)}
        cluster = dict(cluster)
        cluster.setdefault("name", DEFAULT_CLUSTER_NAME)
        cluster.setdefault("host", "127.0.0.1")
        cluster["port"] = -1
        earlier = [f"nats-route://127.0.0.1:{node.cluster_port}" for node in self.nodes]
        cluster["routes"] = [*cluster.get("routes", ()), *earlier]
        opts["cluster"] = cluster
        opts["server_name"] = f"{opts.get('server_name') or 'node'}-{index}"
        return opts

    async def start(self) -> None:
        """Start every node, each routed to those before it."""
        for index in range(self.size):
            options, explicit = build_options_and_fields(self.node_options(index))
            node = Node(options, self.log, explicit)
            node.after_start.append(self.apply_partitions)
            self.nodes.append(node)
            await node.start()

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()

    def index(self, ref: NodeRef) -> int:
        if isinstance(ref, int):
            if not 0 <= ref < len(self.nodes):
                raise IndexError(f"no node {ref} in a cluster of {len(self.nodes)}")
            return ref
        for i, node in enumerate(self.nodes):
            if node is ref._node:
                return i
        raise ValueError("that server is not a node of this cluster")

    def apply_partitions(self) -> None:
        """Make every node refuse (and drop) routes across the partitions in force."""
        for node in self.nodes:
            if node.server is not None and node.server.cluster is not None:
                node.server.cluster.refused_peers.clear()
        for pair in self.partitions:
            a, b = (self.nodes[i].server for i in sorted(pair))
            if a is not None and b is not None:
                faults.partition(a, b)

    def partition(self, a: int, b: int) -> None:
        if a == b:
            raise ValueError("a node cannot be partitioned from itself")
        self.partitions.add(frozenset((a, b)))
        self.apply_partitions()

    def heal(self, a: int | None, b: int | None) -> None:
        healed = set(self.partitions) if a is None or b is None else {frozenset((a, b))}
        self.partitions -= healed
        self.apply_partitions()
        for pair in healed:
            one, other = (self.nodes[i].server for i in sorted(pair))
            if one is not None and other is not None:
                faults.heal(one, other)

    def routed(self) -> bool:
        """Every running node has a route to every running node it may reach."""
        running = [(i, n.server) for i, n in enumerate(self.nodes) if n.server is not None]
        for i, server in running:
            cluster = server.cluster
            if cluster is None:
                return False
            expected = {other.server_id for j, other in running
                        if j != i and frozenset((i, j)) not in self.partitions}
            if set(cluster.by_id) != expected:
                return False
        return True

    def interested(self, subject: str, account: str) -> bool:
        """Every running node would deliver a publish to ``subject`` to someone."""
        return all(n.faults.has_interest(subject, account)
                   for n in self.nodes if n.faults is not None and n.server is not None)


class _ClusterControls(Generic[H]):
    """What both cluster handles offer (see the module docstring)."""

    _mesh: _Mesh
    nodes: list[H]

    def _call(self, fn: Callable[[], Any]) -> Any:
        raise NotImplementedError

    def __getitem__(self, index: int) -> H:
        return self.nodes[index]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[H]:
        return iter(self.nodes)

    @property
    def urls(self) -> list[str]:
        """Every node's client URL, in node order."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """The first node's client URL."""
        return self.nodes[0].url

    def partition(self, a: NodeRef, b: NodeRef) -> None:
        """Cut the route between nodes ``a`` and ``b`` until :meth:`heal`."""
        i, j = self._mesh.index(a), self._mesh.index(b)
        self._call(lambda: self._mesh.partition(i, j))

    def heal(self, a: NodeRef | None = None, b: NodeRef | None = None) -> None:
        """End the partition of ``a`` and ``b`` (all partitions without arguments); the
        route is dialled again at once (:meth:`wait_until_routed` waits for it)."""
        i = None if a is None else self._mesh.index(a)
        j = None if b is None else self._mesh.index(b)
        self._call(lambda: self._mesh.heal(i, j))


class ClusterHandle(_ClusterControls[ServerHandle]):
    """A test cluster in thread mode; ``cluster[i]`` is node i's :class:`ServerHandle`."""

    def __init__(self, mesh: _Mesh, thread: LoopThread):
        self._mesh = mesh
        self._thread = thread
        self.nodes = [ServerHandle(node, thread) for node in mesh.nodes]

    def _call(self, fn: Callable[[], Any]) -> Any:
        return self._thread.call(fn)

    def wait_until_routed(self, timeout: float = ROUTED_TIMEOUT) -> None:
        """Wait until every running node is routed to every node it may reach."""
        self._thread.run(wait_until(self._mesh.routed, timeout, "the cluster's routes"),
                         timeout + CONTROL_TIMEOUT)

    def wait_for_interest(self, subject: str, *, account: str = "$G",
                          timeout: float = 5.0) -> None:
        """Wait until a publish to ``subject`` on any running node reaches a subscriber."""
        self._thread.run(wait_until(lambda: self._mesh.interested(subject, account), timeout,
                                    f"interest in {subject!r} on every node"),
                         timeout + CONTROL_TIMEOUT)

    @property
    def aio(self) -> ClusterWaits:
        """The waits as coroutines, for async tests (they must not block their loop)."""
        return ClusterWaits(self)

    def close(self) -> None:
        """Stop every node and the cluster's thread."""
        try:
            self._thread.run(self._mesh.stop())
        finally:
            self._thread.close()


class ClusterWaits:
    """A thread-mode cluster's waits as coroutines: ``await cluster.aio.wait_...()``."""

    def __init__(self, handle: ClusterHandle):
        self._handle = handle

    async def _on_cluster(self, predicate: Callable[[], bool], timeout: float,
                          what: str) -> None:
        loop = self._handle._thread.loop
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(
            wait_until(predicate, timeout, what), loop))

    async def wait_until_routed(self, timeout: float = ROUTED_TIMEOUT) -> None:
        """See :meth:`ClusterHandle.wait_until_routed`."""
        await self._on_cluster(self._handle._mesh.routed, timeout, "the cluster's routes")

    async def wait_for_interest(self, subject: str, *, account: str = "$G",
                                timeout: float = 5.0) -> None:
        """See :meth:`ClusterHandle.wait_for_interest`."""
        mesh = self._handle._mesh
        await self._on_cluster(lambda: mesh.interested(subject, account), timeout,
                               f"interest in {subject!r} on every node")


class AsyncClusterHandle(_ClusterControls[AsyncServerHandle]):
    """A test cluster on the caller's loop; ``cluster[i]`` is an AsyncServerHandle."""

    def __init__(self, mesh: _Mesh):
        self._mesh = mesh
        self.nodes = [AsyncServerHandle(node) for node in mesh.nodes]

    def _call(self, fn: Callable[[], Any]) -> Any:
        return fn()

    async def wait_until_routed(self, timeout: float = ROUTED_TIMEOUT) -> None:
        """See :meth:`ClusterHandle.wait_until_routed`."""
        await wait_until(self._mesh.routed, timeout, "the cluster's routes")

    async def wait_for_interest(self, subject: str, *, account: str = "$G",
                                timeout: float = 5.0) -> None:
        """See :meth:`ClusterHandle.wait_for_interest`."""
        await wait_until(lambda: self._mesh.interested(subject, account), timeout,
                         f"interest in {subject!r} on every node")

    async def close(self) -> None:
        """Stop every node."""
        await self._mesh.stop()


class ClusterRunner:
    """What :func:`run_cluster` returns: ``with`` gives a :class:`ClusterHandle`,
    ``async with`` an :class:`AsyncClusterHandle`; both once the mesh is routed."""

    def __init__(self, size: int, options: dict[str, Any], log: bool = False):
        self.size = size
        self.options = options
        self.log = log
        self._sync: ClusterHandle | None = None
        self._async: AsyncClusterHandle | None = None

    def __enter__(self) -> ClusterHandle:
        thread = LoopThread("pynats-test-cluster")
        mesh = _Mesh(self.size, self.options, self.log)
        try:
            thread.run(mesh.start())
            handle = ClusterHandle(mesh, thread)
            handle.wait_until_routed()
        except BaseException:
            try:
                thread.run(mesh.stop())
            finally:
                thread.close()
            raise
        self._sync = handle
        return handle

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def __aenter__(self) -> AsyncClusterHandle:
        mesh = _Mesh(self.size, self.options, self.log)
        try:
            await mesh.start()
            handle = AsyncClusterHandle(mesh)
            await handle.wait_until_routed()
        except BaseException:
            await mesh.stop()
            raise
        self._async = handle
        return handle

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._async is not None:
            await self._async.close()
            self._async = None


def run_cluster(size: int = 3, *, log: bool = False, **options: Any) -> ClusterRunner:
    """``size`` in-process pynats servers joined by routes (a full mesh).

    Use ``with run_cluster(3) as cluster:`` (one background thread runs every node) or
    ``async with run_cluster(3) as cluster:``. It is entered once every route is
    registered. ``options`` go to every node (see
    :func:`~pynats.testing.server.build_options`); ``cluster`` options are merged with
    the test defaults (routes and ports are set by the cluster).
    """
    return ClusterRunner(size, options, log)


__all__ = [
    "AsyncClusterHandle",
    "ClusterHandle",
    "ClusterRunner",
    "ClusterWaits",
    "NodeRef",
    "run_cluster",
]
