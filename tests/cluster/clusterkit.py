"""Cluster harness: N real server processes on 127.0.0.1 forming one full-mesh cluster.

The cluster tests are black-box: every node is a real process (pynats or the reference
nats-server, in any mix) started by :class:`harness.ServerProcess` from a generated
config file that both servers read::

    server_name: "n1"
    http: "127.0.0.1:-1"
    cluster {
      name: "c-1a2b3c4d"
      listen: "127.0.0.1:-1"
      routes: ["nats-route://127.0.0.1:PORT"]
    }

plus ``-a 127.0.0.1 -p -1`` on the command line (``-p PORT`` on a restart).

How a cluster comes up (:meth:`Cluster.start`):

* Nodes start one at a time. A node is up once its log shows ``Listening for client
  connections on HOST:PORT``, ``Server is ready`` (both via ServerProcess), ``Starting http
  monitor on HOST:PORT`` (before those) and ``Listening for route connections on
  HOST:PORT`` (nats-server prints it *after* "Server is ready"). A node that never prints
  the route line fails within :data:`ROUTE_LISTEN_TIMEOUT` with its log in the error.
* Route ports are random, so a node's ``routes`` point at nodes started before it:
  ``star`` (every node routes to node 0) or ``chain`` (node i routes to node i-1 only,
  so the full mesh needs gossip).
* The mesh is ready when every node's ``/routez`` names every other node's ``server_id``
  (from ``/varz``) as a ``remote_id``, and no other (:meth:`Cluster.wait_mesh`).
  nats-server 2.10+ opens several connections per peer (route pooling plus a dedicated
  ``$SYS`` route), so the check is on the set of distinct remote ids, not on
  ``num_routes``.

Interest propagation is observed on ``/routez?subs=1``: a subscription made on node B is
visible on node A once one of A's routes to B lists the subject in ``subscriptions_list``
(:meth:`Cluster.wait_interest`). nats-server's ``/subsz`` does not list remote
subscriptions, which is why ``/routez`` is used.

Every wait is a bounded poll (:data:`POLL_INTERVAL`) of a condition, never a bare sleep,
and raises :class:`ClusterError` with the state seen last. :meth:`Cluster.stop` (also on
``__exit__``, and when start-up fails half way) stops every process started.
``kill`` (SIGKILL) and ``restart`` bring a node back on the same client, route and
monitoring ports.

``PYNATS_TEST_SERVER=nats-server`` makes every "pynats" node a nats-server (see
harness.py), which is how this suite is validated against the reference. Adding
``PYNATS_TEST_POOL_SIZE=-1`` writes ``pool_size: -1`` into the "pynats" nodes' cluster
block: nats-server then keeps one route per peer, as pynats does (no route pooling,
see CLUSTER.md), so the stand-ins interoperate with the real nats-server nodes exactly
the way pynats will. (pynats ignores ``pool_size``.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from harness import ServerProcess

#: How long a ready node may take to print its route listener line.
ROUTE_LISTEN_TIMEOUT = 3.0
#: Upper bound for a cluster to form (or re-form) its full mesh.
MESH_TIMEOUT = 10.0
#: Upper bound for interest to appear on (or vanish from) another node.
INTEREST_TIMEOUT = 5.0
POLL_INTERVAL = 0.02
HTTP_TIMEOUT = 2.0

ROUTE_LINE = "Listening for route connections on"
ROUTE_RE = re.compile(ROUTE_LINE + r" (\S+):(\d+)")

Topology = Literal["star", "chain"]

#: Kinds of the three nodes of the test clusters, by topology id. "pynats" becomes
#: nats-server with PYNATS_TEST_SERVER=nats-server; "nats3" is the control.
TOPOLOGIES: dict[str, list[str]] = {
    "pynats3": ["pynats", "pynats", "pynats"],
    "pynats2-nats1": ["pynats", "pynats", "nats-server"],
    "pynats1-nats2": ["pynats", "nats-server", "nats-server"],
    "nats3": ["nats-server", "nats-server", "nats-server"],
}
#: The topologies with both kinds of server.
MIXED = ["pynats2-nats1", "pynats1-nats2"]

T = TypeVar("T")


class ClusterError(AssertionError):
    """A node did not start, or the cluster did not reach a state in time."""


def effective_kind(kind: str) -> str:
    """The server really started for ``kind`` (see ``PYNATS_TEST_SERVER``)."""
    if kind == "pynats" and os.environ.get("PYNATS_TEST_SERVER") == "nats-server":
        return "nats-server"
    return kind


def pool_size(kind: str) -> str | None:
    """The ``pool_size`` to configure for ``kind`` (see ``PYNATS_TEST_POOL_SIZE``)."""
    return (os.environ.get("PYNATS_TEST_POOL_SIZE") or None) if kind == "pynats" else None


def pools_routes(kind: str) -> bool:
    """Whether a node of ``kind`` opens several route connections per peer."""
    return effective_kind(kind) == "nats-server" and pool_size(kind) not in ("-1", "0")


def poll(condition: Callable[[], T | None], timeout: float, describe: Callable[[], str]) -> T:
    """Call ``condition`` every POLL_INTERVAL until it returns non-None; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise ClusterError(f"timed out after {timeout}s: {describe()}")
        time.sleep(POLL_INTERVAL)


def until(predicate: Callable[[], bool], timeout: float, describe: Callable[[], str]) -> None:
    """Wait until ``predicate()`` is true (see :func:`poll`)."""
    poll(lambda: True if predicate() else None, timeout, describe)


def http_json(port: int, path: str, timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
    """GET ``http://127.0.0.1:port/path`` and decode the JSON body."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


@dataclass(frozen=True)
class Ports:
    """The three listening ports of a node; 0 means "pick a free one" (-1)."""

    client: int = 0
    route: int = 0
    http: int = 0


def _listen(port: int) -> str:
    return f"127.0.0.1:{port or -1}"


@dataclass(eq=False)  # compared and hashed by identity
class Node:
    """One cluster member: its config, its process and what its log and /varz told."""

    index: int
    kind: str
    cluster_name: str
    workdir: Path
    route_to: list[Node] = field(default_factory=list)
    proc: ServerProcess | None = None
    ports: Ports = Ports()
    server_id: str = ""

    @property
    def name(self) -> str:
        return f"n{self.index}"

    @property
    def label(self) -> str:
        """E.g. ``n1(pynats)``, naming the server that really runs."""
        return f"{self.name}({effective_kind(self.kind)})"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.ports.client}"

    @property
    def client_hostport(self) -> str:
        """The node's client address as nats-server writes it in ``connect_urls``."""
        return f"127.0.0.1:{self.ports.client}"

    @property
    def route_url(self) -> str:
        return f"nats-route://127.0.0.1:{self.ports.route}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.proc is not None and \
            self.proc.proc.poll() is None

    def config_text(self) -> str:
        """The node's config file; ports come from ``self.ports`` (0 = free port)."""
        lines = [
            f'server_name: "{self.name}"',
            f'http: "{_listen(self.ports.http)}"',
            "cluster {",
            f'  name: "{self.cluster_name}"',
            f'  listen: "{_listen(self.ports.route)}"',
        ]
        if (pool := pool_size(self.kind)) is not None:
            lines.append(f"  pool_size: {pool}")
        if self.route_to:
            urls = ", ".join(f'"{peer.route_url}"' for peer in self.route_to)
            lines.append(f"  routes: [{urls}]")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Start the process on ``self.ports`` and wait for all its listener lines."""
        conf = self.workdir / f"{self.cluster_name}-{self.name}.conf"
        conf.write_text(self.config_text())
        args = ["-c", str(conf)]
        if self.ports.client:
            args += ["-p", str(self.ports.client)]  # a later -p overrides harness's -p -1
        self.proc = ServerProcess(self.kind, args)
        try:
            self.proc.start()  # raises RuntimeError with the log if never ready
        except RuntimeError as exc:
            raise ClusterError(f"{self.label}: {exc}") from None
        try:
            self._learn_ports()
            self.server_id = str(self.varz()["server_id"])
        except BaseException:
            self.proc.stop()
            raise

    def _learn_ports(self) -> None:
        assert self.proc is not None
        line = self.proc.wait_for_log(ROUTE_LINE, ROUTE_LISTEN_TIMEOUT)
        match = ROUTE_RE.search(line or "")
        if match is None:
            raise ClusterError(
                f"{self.label} is ready but printed no '{ROUTE_LINE} HOST:PORT' line within "
                f"{ROUTE_LISTEN_TIMEOUT}s (no route listener?). Log:\n" + self.log_tail()
            )
        if not self.proc.http_port:
            raise ClusterError(f"{self.label} printed no 'Starting http monitor on' line")
        self.ports = Ports(self.proc.port, int(match.group(2)), self.proc.http_port)

    def kill(self) -> None:
        """SIGKILL the process and reap it (no shutdown, peers see the sockets drop)."""
        if self.running:
            assert self.proc is not None
            self.proc.signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.proc.lines[-lines:]) if self.proc else "(not started)"

    # -- monitoring ----------------------------------------------------------------------
    def monitor(self, path: str) -> dict[str, Any]:
        """A monitoring endpoint, e.g. ``node.monitor("/routez?subs=1")``."""
        return http_json(self.ports.http, path)

    def varz(self) -> dict[str, Any]:
        return self.monitor("/varz")

    def routez(self, subs: bool = False) -> dict[str, Any]:
        return self.monitor("/routez?subs=1" if subs else "/routez")

    def remote_ids(self) -> set[str]:
        """Distinct server ids this node has a route to."""
        return {str(r["remote_id"]) for r in self.routez()["routes"]}

    def routes_to(self, peer: Node, subs: bool = False) -> list[dict[str, Any]]:
        """This node's route connections to ``peer`` (several with nats-server pooling)."""
        return [r for r in self.routez(subs)["routes"] if r["remote_id"] == peer.server_id]

    def routed_out_msgs(self, peer: Node) -> int:
        """Messages this node sent to ``peer`` on its routes, the ``$SYS`` route aside.

        (nats-server pins ``$SYS`` to a route of its own, which carries a few periodic
        system messages even on an idle cluster.)
        """
        return sum(int(r["out_msgs"]) for r in self.routes_to(peer)
                   if r.get("account") != "$SYS")

    def sees_interest(self, subject: str, origin: Node) -> bool:
        """Whether ``origin`` has told this node about a subscription on ``subject``."""
        return any(subject in (r.get("subscriptions_list") or [])
                   for r in self.routes_to(origin, subs=True))


class Cluster:
    """N nodes of the given kinds in one cluster; a context manager that stops them all."""

    def __init__(self, kinds: Sequence[str], workdir: Path, topology: Topology = "star"):
        self.topology = topology
        name = f"c-{uuid.uuid4().hex[:8]}"
        self.nodes = [Node(i, kind, name, workdir) for i, kind in enumerate(kinds)]
        for node in self.nodes[1:]:
            seed = self.nodes[0] if topology == "star" else self.nodes[node.index - 1]
            node.route_to = [seed]

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"{self.topology}[{', '.join(n.label for n in self.nodes)}]"

    def start(self, mesh: bool = True) -> Self:
        """Start every node in order and (unless ``mesh`` is false) wait for the full
        mesh; stop all on failure."""
        try:
            for node in self.nodes:
                node.start()
            if mesh:
                self.wait_mesh()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def others(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if n is not node]

    # -- faults --------------------------------------------------------------------------
    def restart(self, node: Node) -> None:
        """Start a stopped or killed node again on the same three ports."""
        node.stop()
        node.start()  # node.ports are set, so the config and -p reuse them

    def heal(self) -> None:
        """Restart whatever node is down, then wait for the full mesh."""
        for node in self.nodes:
            if not node.running:
                self.restart(node)
        self.wait_mesh()

    # -- readiness -----------------------------------------------------------------------
    def mesh_problems(self) -> list[str]:
        """Why the cluster is not a full mesh right now (empty when it is)."""
        problems = []
        for node in self.nodes:
            expected = {peer.server_id for peer in self.others(node)}
            try:
                seen = node.remote_ids()
            except OSError as exc:
                problems.append(f"{node.label}: /routez failed: {exc}")
                continue
            if seen != expected:
                names = sorted(p.name for p in self.others(node) if p.server_id in seen)
                stale = len(seen - expected)
                problems.append(f"{node.label} routes to {names} (+{stale} unknown ids)")
        return problems

    def wait_mesh(self, timeout: float = MESH_TIMEOUT) -> None:
        """Wait until every node has a route to exactly every other node."""
        until(lambda: not self.mesh_problems(), timeout,
              lambda: f"{self!r} is not a full mesh: {self.mesh_problems()}\n" + self._logs())

    def wait_departed(self, gone: Node, timeout: float = MESH_TIMEOUT) -> None:
        """Wait until no other node has a route to ``gone`` (e.g. after a kill)."""
        def holding() -> list[Node]:
            return [n for n in self.others(gone) if gone.server_id in n.remote_ids()]

        until(lambda: not holding(), timeout,
              lambda: f"{[n.label for n in holding()]} still route to {gone.label}")

    def wait_interest(self, subject: str, origin: Node, on: Iterable[Node] | None = None,
                      present: bool = True, timeout: float = INTEREST_TIMEOUT) -> None:
        """Wait until every node in ``on`` (default: all but ``origin``) knows, through
        its routes to ``origin``, of a subscription on ``subject`` (or, with
        ``present=False``, no longer does)."""
        targets = list(on) if on is not None else self.others(origin)

        def pending() -> list[Node]:
            return [n for n in targets if n.sees_interest(subject, origin) != present]

        state = "visible" if present else "gone"
        until(lambda: not pending(), timeout,
              lambda: f"interest in {subject!r} from {origin.label} not {state} on "
                      f"{[n.label for n in pending()]}")

    def _logs(self) -> str:
        return "\n".join(f"--- {n.label} log:\n{n.log_tail(15)}" for n in self.nodes)


__all__ = [
    "INTEREST_TIMEOUT",
    "MESH_TIMEOUT",
    "MIXED",
    "ROUTE_LINE",
    "TOPOLOGIES",
    "Cluster",
    "ClusterError",
    "Node",
    "Ports",
    "Topology",
    "effective_kind",
    "http_json",
    "poll",
    "pools_routes",
    "until",
]
