"""Print the figures of a reliability run as Markdown: ``python report.py results.json``.

The JSON is what ``PYNATS_RELIABILITY_RESULTS=<path>`` makes the suite write: one entry
per test (its node id), holding the figures that test recorded. Rows are grouped by
module; the ``kind`` figure (pynats or nats-server) is its own column so the two servers
sit side by side.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any


def cell(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {cell(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    return str(value)


def main(path: str) -> None:
    results: dict[str, dict[str, Any]] = json.loads(Path(path).read_text())
    modules: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for nodeid, figures in sorted(results.items()):
        module, _, test = nodeid.partition("::")
        modules[module.rsplit("/", 1)[-1]].append((test, figures))
    for module, rows in modules.items():
        print(f"\n### {module}\n")
        print("| test | server | figures |")
        print("|---|---|---|")
        for test, figures in rows:
            kind = figures.get("kind", "")
            rest = {k: v for k, v in figures.items() if k != "kind"}
            print(f"| `{test}` | {kind} | {cell(rest)} |")


if __name__ == "__main__":
    main(sys.argv[1])
