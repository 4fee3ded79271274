"""Start-up time of in-process test servers (pynats.testing), as a test suite pays it.

Measures, N times each, from the call to the moment the handle is usable:

* ``server``: ``with run_server()`` until it yields (thread mode: a new loop thread, the
  real Server started on a free port, ready to accept);
* ``server-async``: ``async with run_server()`` on the caller's loop;
* ``cluster3``: ``with run_cluster(3)`` until every route is registered on every node;
* ``cluster3-async``: the same on the caller's loop.

Also the time to stop and clean up, reported separately (``stop``), since a fresh server
per test pays both. Prints median and p95 in milliseconds; ``--json FILE`` keeps the
raw samples.

    PYTHONPATH=src python bench/startup.py            # 200 runs of each
    PYTHONPATH=src python bench/startup.py --runs 50 --json startup.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

from pynats.testing import ClusterRunner, ServerRunner, run_cluster, run_server

Runner = ServerRunner | ClusterRunner


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure_sync(enter: Callable[[], Runner], runs: int) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for _ in range(runs):
        began = time.perf_counter()
        runner = enter()
        runner.__enter__()
        ready = time.perf_counter()
        runner.__exit__(None, None, None)
        stopped = time.perf_counter()
        starts.append(ready - began)
        stops.append(stopped - ready)
    return starts, stops


async def measure_async(enter: Callable[[], Runner],
                        runs: int) -> tuple[list[float], list[float]]:
    starts, stops = [], []
    for _ in range(runs):
        began = time.perf_counter()
        runner = enter()
        await runner.__aenter__()
        ready = time.perf_counter()
        await runner.__aexit__(None, None, None)
        stopped = time.perf_counter()
        starts.append(ready - began)
        stops.append(stopped - ready)
    return starts, stops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs of each case")
    parser.add_argument("--json", default="", help="write the raw samples here")
    args = parser.parse_args(argv)
    cases: dict[str, tuple[list[float], list[float]]] = {}
    measure_sync(run_server, 5)  # warm up imports and the first socket
    cases["server"] = measure_sync(run_server, args.runs)
    cases["server-async"] = asyncio.run(measure_async(run_server, args.runs))
    cases["cluster3"] = measure_sync(lambda: run_cluster(3), args.runs)
    cases["cluster3-async"] = asyncio.run(measure_async(lambda: run_cluster(3), args.runs))
    print(f"python {platform.python_version()} on {platform.machine()}, {args.runs} runs each")
    print(f"{'case':<16}{'start median':>14}{'start p95':>11}{'stop median':>13}{'stop p95':>10}")
    for name, (starts, stops) in cases.items():
        print(f"{name:<16}{statistics.median(starts) * 1e3:>11.2f} ms"
              f"{percentile(starts, 0.95) * 1e3:>8.2f} ms"
              f"{statistics.median(stops) * 1e3:>10.2f} ms"
              f"{percentile(stops, 0.95) * 1e3:>7.2f} ms")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({name: {"start": s, "stop": t} for name, (s, t) in cases.items()}, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
