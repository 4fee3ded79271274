"""Unit tests for the pure parts of ``clients.py`` and ``parse_msgs.py``.

Run with ``pytest bench/test_clients.py`` (bench tests are not in the default test paths).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clients
import parse_msgs
from clients import ROWS, Run, parse_args, render_table, summarize, targets
from pynats.protocol import ops
from pynats.protocol.parser import Parser, RecordSink, Role


def _runs(row: str, pynats: list[float | None], natspy: list[float | None],
          lost: int = 0) -> list[Run]:
    out = []
    for lib, rates in (("pynats", pynats), ("nats-py", natspy)):
        for rate in rates:
            error = None if rate is not None else "boom"
            out.append(Run(row, lib, rate=rate, lost=lost if lib == "nats-py" else 0,
                           error=error))
    return out


def test_summary_is_the_median_of_runs_without_error() -> None:
    cells = summarize(_runs("pub", [1.0, 9.0, 3.0, None], [2.0], lost=5))
    assert cells["pub", "pynats"].rate == 3.0
    assert cells["pub", "pynats"].error == "boom"
    assert cells["pub", "pynats"].runs == 4
    assert cells["pub", "nats-py"].lost == 5


def test_disturbed_runs_are_flagged() -> None:
    run = Run("pub", "pynats", rate=1.0, details={"other_cores": 0.5})
    assert summarize([run])["pub", "pynats"].disturbed


def test_table_shows_rates_ratio_losses_and_errors() -> None:
    runs = _runs("pub", [300.0], [100.0]) + _runs("reqrep", [None], [50.0], lost=2)
    table = render_table(runs, ["pub", "reqrep"])
    lines = table.splitlines()
    assert lines[0].split() == ["row", "pynats/s", "nats-py/s", "ratio", "lost(pynats)",
                                "lost(nats-py)"]
    assert lines[2].split() == ["pub", "300", "100", "3.00", "0", "0"]
    assert lines[3].split() == ["reqrep", "ERROR", "50!", "-", "0", "2"]
    assert "error: reqrep pynats: boom" in table


def test_targets_verdicts() -> None:
    runs = (_runs("pub", [2.0], [1.0]) + _runs("pubsub_cb", [100.0], [50.0])
            + _runs("pubsub_iter", [85.0], [10.0]))
    rows = ["pub", "pubsub_cb", "pubsub_iter"]
    lines = targets(summarize(runs), rows)
    assert lines[0] == "target: pynats ahead of nats-py on every row: met"
    assert lines[1] == "pynats: async iterator / callback = 0.85 (target >= 0.80: met)"
    assert lines[2] == "nats-py: async iterator / callback = 0.20"
    slow = _runs("pub", [0.9], [1.0]) + _runs("pubsub_cb", [100.0], [50.0])
    assert targets(summarize(slow), ["pub", "pubsub_cb"])[0].endswith("NOT met (pub)")
    missing = targets(summarize(_runs("pub", [2.0], [1.0])), ["pub", "reqrep"])
    assert missing[0].endswith("incomplete")


def test_args_split_rows_and_scale_counts() -> None:
    args = parse_args(["--rows", "pub,reqrep", "pubsub_cb", "--scale", "0.001"])
    assert args.rows == ["pub", "reqrep", "pubsub_cb"]
    job = clients.job_for(ROWS["reqrep64"], "pynats", args, "nats://127.0.0.1:1")
    assert (job.count, job.inflight) == (40, 64)
    assert clients.job_for(ROWS["reqrep"], "pynats", args, "x").inflight == 1
    with pytest.raises(SystemExit):
        parse_args(["--rows", "nope"])


@pytest.mark.parametrize("case", list(parse_msgs.build_cases(1)))
def test_parse_msgs_cases_hold_the_announced_operations(case: str) -> None:
    data = parse_msgs.build_cases(100)[case]
    sink = RecordSink()
    parser = Parser(Role.CLIENT)
    for piece in parse_msgs.split_reads(data, 97):
        parser.parse(piece, sink)
    assert len(sink.ops) == 100
    assert all(isinstance(op, ops.Msg | ops.HMsg) for op in sink.ops)
    assert b"".join(parse_msgs.split_reads(data, 97)) == data
