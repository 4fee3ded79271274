"""Cluster benchmark: 1 publisher on node A -> 1 subscriber on node B, across a route.

Usage: ``python bench/cluster.py [--duration S] [--sizes 16,1024] [--repeat N]
[--only pynats|nats-server] [--pynats-cmd CMD] [--nats-server-cmd CMD] [--json FILE]``

Method: two 2-node clusters are started, one of pynats nodes and one of nats-server
nodes. Every node is a ``servers.ServerProcess`` (``-a 127.0.0.1 -p -1``, ready once its
log says so) reading a generated config file (``server_name``, ``http:
127.0.0.1:-1``, ``cluster { name, listen: 127.0.0.1:-1, routes }``) in which B routes to
A. A cluster is formed once both logs show ``Listening for route connections on
HOST:PORT`` and each node's ``/routez`` names the other's ``server_id`` (from
``/varz``). Each run is the ``pubsub`` scenario of ``scenarios.py`` with the publisher
connected to A and the subscriber to B; the publisher is released only once A's
``/routez?subs=1`` lists B's subscription, so every message crosses the route. Runs
alternate between the two clusters (the order flips on every repetition). The table is
``compare.py``'s: msgs/s published for each cluster, their ratio (pynats / nats-server)
and the messages lost. A cluster that cannot be formed (e.g. pynats without a route
listener) yields an error row, not a crash. Every process started is stopped on the way
out; every wait is bounded.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from compare import SERVERS, _describe, _on_sigterm, log, metadata, render_table, summarize
from scenarios import SCENARIOS, BenchError, RunResult, Settings, run, subject_of
from servers import ServerError, ServerProcess, resolve_command

SCENARIO = "route_pubsub"  # the row name in the table
ROUTE_RE = re.compile(r"Listening for route connections on \S+:(\d+)")
HTTP_RE = re.compile(r"Starting http monitor on \S+:(\d+)")
ROUTE_LISTEN_TIMEOUT = 3.0  # after "Server is ready"
MESH_TIMEOUT = 10.0
INTEREST_TIMEOUT = 5.0
POLL = 0.02


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=3.0,
                        help="seconds of publishing per run (default 3)")
    parser.add_argument("--sizes", default="16,1024",
                        help="payload sizes in bytes (default 16,1024)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per cell; the table shows the median rate (default 1)")
    parser.add_argument("--only", choices=SERVERS, help="benchmark only this cluster")
    parser.add_argument("--pynats-cmd", default="python -m pynats.server",
                        help="command that starts a pynats node")
    parser.add_argument("--nats-server-cmd", default="nats-server",
                        help="command that starts a reference node")
    parser.add_argument("--idle", type=float, default=2.0,
                        help="seconds without deliveries before the rest count as lost")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="hard limit per run beyond --duration (default 60)")
    parser.add_argument("--verify", action="store_true",
                        help="the subscriber checks every delivery byte for byte")
    parser.add_argument("--json", type=Path, help="also write all results to this JSON file")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(s) for s in args.sizes.split(",") if s]
    except ValueError:
        parser.error("--sizes must be comma-separated integers")
    args.scenarios, args.pin = [SCENARIO], False  # what compare.metadata records
    return args


def http_json(port: int, path: str) -> dict[str, Any]:
    """GET a monitoring endpoint of a node."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2.0) as resp:
        data: dict[str, Any] = json.loads(resp.read())
    return data


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; BenchError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL)


@dataclass
class Node:
    """A started cluster node and the ports and id it reported."""

    server: ServerProcess
    route_port: int
    http_port: int
    server_id: str = ""

    def routes(self, subs: bool = False) -> list[dict[str, Any]]:
        routes: list[dict[str, Any]] = http_json(
            self.http_port, "/routez?subs=1" if subs else "/routez")["routes"]
        return routes


class Cluster:
    """Two nodes of one kind, B routing to A; a context manager that stops both."""

    def __init__(self, name: str, command: str, workdir: Path) -> None:
        self.name = name
        self.argv = resolve_command(command)
        self.workdir = workdir
        self.cluster_name = f"bench-{name}"
        self.nodes: list[Node] = []

    def start(self) -> Self:
        """Start A, then B with a route to A, and wait for the mesh; raise on failure."""
        try:
            a = self._start_node("a", [])
            self._start_node("b", [a.route_port])
            wait_until(self._meshed, MESH_TIMEOUT, f"the {self.name} nodes to route")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, label: str, route_ports: list[int]) -> Node:
        conf = self.workdir / f"{self.name}-{label}.conf"
        routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in route_ports)
        conf.write_text(f'server_name: "{label}"\nhttp: "127.0.0.1:-1"\ncluster {{\n'
                        f'  name: "{self.cluster_name}"\n  listen: "127.0.0.1:-1"\n'
                        f"  routes: [{routes}]\n}}\n")
        server = ServerProcess(f"{self.name}-{label}", [*self.argv, "-c", str(conf)])
        server.start()
        route = server.wait_for_line(ROUTE_RE, ROUTE_LISTEN_TIMEOUT)
        http = server.wait_for_line(HTTP_RE, 0)
        node = Node(server, int(route.group(1)) if route else 0, int(http.group(1)) if http else 0)
        self.nodes.append(node)  # stopped by stop() from now on
        if route is None or http is None:
            missing = "Listening for route connections on" if route is None else "http monitor"
            raise BenchError(f"{self.name} node {label} printed no '{missing}' line "
                             f"(no route listener?)")
        node.server_id = str(http_json(node.http_port, "/varz")["server_id"])
        return node

    def _meshed(self) -> bool:
        a, b = self.nodes
        return any(r["remote_id"] == b.server_id for r in a.routes()) and \
            any(r["remote_id"] == a.server_id for r in b.routes())

    def interest_on_a(self, subject: str) -> bool:
        """Whether A knows of a subscription on ``subject`` made on B."""
        a, b = self.nodes
        return any(subject in (r.get("subscriptions_list") or [])
                   for r in a.routes(subs=True) if r["remote_id"] == b.server_id)

    def alive(self) -> bool:
        return all(node.server.alive() for node in self.nodes)

    def cpu_seconds(self) -> float | None:
        """CPU used so far by both nodes."""
        used = [node.server.cpu_seconds() for node in self.nodes]
        return None if None in used else sum(u for u in used if u is not None)

    def stop(self) -> None:
        for node in self.nodes:
            node.server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_cluster(name: str, command: str, workdir: Path) -> Cluster | str:
    """A formed cluster, or the reason it could not be formed (the error row)."""
    try:
        cluster = Cluster(name, command, workdir).start()
    except (ServerError, BenchError, OSError) as exc:
        reason = str(exc).splitlines()[0]
        log(f"[{name}] cluster not formed: {reason}")
        return reason
    a, b = cluster.nodes
    log(f"[{name}] cluster: A client {a.server.port} route {a.route_port}, "
        f"B client {b.server.port} route {b.route_port}")
    return cluster


def run_cell(name: str, cluster: Cluster | str, size: int, settings: Settings) -> RunResult:
    """One run of 1 publisher on A -> 1 subscriber on B."""
    if isinstance(cluster, str):
        return RunResult(SCENARIO, size, name, error=cluster)
    if not cluster.alive():
        return RunResult(SCENARIO, size, name, error="a cluster node died")
    scenario = SCENARIOS["pubsub"]
    subject = subject_of(scenario)
    try:  # the previous run's subscriber must be gone, or its interest would count
        wait_until(lambda: not cluster.interest_on_a(subject), INTEREST_TIMEOUT,
                   "the previous subscriber's interest to go")
    except BenchError as exc:
        return RunResult(SCENARIO, size, name, error=str(exc))
    a, b = cluster.nodes
    result = run(scenario, a.server.port, size, name, settings, cluster.cpu_seconds,
                 sub_port=b.server.port,
                 before_go=lambda: wait_until(lambda: cluster.interest_on_a(subject),
                                              INTEREST_TIMEOUT, "B's subscription on A"))
    result.scenario = SCENARIO
    if result.error is None and not cluster.alive():
        result.error = "a cluster node exited during the run"
    log(_describe(result))
    return result


def run_all(args: argparse.Namespace, settings: Settings,
            clusters: dict[str, Cluster | str], results: list[RunResult]) -> None:
    """Every size x repetition, alternating the clusters (order flips each repetition)."""
    for size in args.sizes:
        for repetition in range(args.repeat):
            order = list(clusters.items())
            if repetition % 2:
                order.reverse()
            for name, cluster in order:
                results.append(run_cell(name, cluster, size, settings))


def write_json(args: argparse.Namespace, settings: Settings, results: list[RunResult]) -> None:
    summary = [{"scenario": key[0], "size": key[1], "server": key[2], **cell}
               for key, cell in summarize(results).items()]
    data = {"meta": metadata(args, settings), "summary": summary,
            "runs": [asdict(r) for r in results]}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=2) + "\n")
    log(f"results written to {args.json}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (1 if any run failed, 130 if interrupted)."""
    args = parse_args(argv)
    settings = Settings(duration=args.duration, idle=args.idle, timeout=args.timeout,
                        verify=args.verify)
    signal.signal(signal.SIGTERM, _on_sigterm)
    commands = {"nats-server": args.nats_server_cmd, "pynats": args.pynats_cmd}
    results: list[RunResult] = []
    clusters: dict[str, Cluster | str] = {}
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as workdir:
        try:
            for name in SERVERS:
                if args.only in (None, name):
                    clusters[name] = start_cluster(name, commands[name], Path(workdir))
            run_all(args, settings, clusters, results)
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted: stopping every process started; partial results follow")
        finally:
            for cluster in clusters.values():
                if isinstance(cluster, Cluster):
                    cluster.stop()
    print(render_table(results, [SCENARIO], args.sizes))
    if args.json:
        write_json(args, settings, results)
    if interrupted:
        return 130
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
