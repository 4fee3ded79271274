"""pynats bench with small counts: summary, JSON, queue groups, request/reply, CSV, PNG."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from clitools import assert_clean_error, png_size, run


def test_bench_pub_sub_summary_csv_and_plot(env: dict[str, str], url: str,
                                            tmp_path: Path) -> None:
    csv_path, png = tmp_path / "bench.csv", tmp_path / "bench.png"
    result = run(env, "bench", "-s", url, "b.pubsub", "--pub", "2", "--sub", "2",
                 "--msgs", "4000", "--size", "64", "--csv", str(csv_path),
                 "--plot", str(png), "--plot-size", "640x480", timeout=90)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Starting Core NATS pub/sub benchmark" in result.stderr
    assert "NATS pub/sub stats:" in out and " Pub stats:" in out and " Sub stats:" in out
    assert "(2,000 msgs)" in out and "(4,000 msgs)" in out  # per publisher / subscriber
    assert "min " in out and "| stddev" in out and "p99.9" in out
    assert "\x1b[" not in out + result.stderr  # no bars or colours when piped
    with csv_path.open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][:3] == ["#RunID", "ClientID", "MsgCount"]
    assert sorted((r[1], r[2]) for r in rows[1:]) == [
        ("PUB1", "2000"), ("PUB2", "2000"), ("SUB1", "4000"), ("SUB2", "4000")]
    assert png_size(png) == (640, 480)


def test_bench_queue_json(env: dict[str, str], url: str) -> None:
    result = run(env, "bench", "-s", url, "b.queue", "--sub", "2", "--queue",
                 "--msgs", "3000", "--size", "16", "--json", timeout=90)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pub"]["msgs"] == 3000
    assert report["sub"]["msgs"] == 3000  # the group shares the messages
    assert report["lost"] == 0
    assert set(report["latency"]) >= {"p50", "p90", "p99", "p99.9", "min", "max"}


def test_bench_request_reply_latency(env: dict[str, str], url: str) -> None:
    result = run(env, "bench", "-s", url, "b.req", "--pub", "1", "--sub", "1",
                 "--request", "--msgs", "300", "--json", timeout=90)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["req"]["msgs"] == 300 and report["request"] is True
    assert report["latency"]["count"] == 300
    assert 0 < report["latency"]["p50"] <= report["latency"]["p99"] <= report["latency"]["max"]


def test_bench_bad_arguments(env: dict[str, str], url: str) -> None:
    assert "--request needs" in assert_clean_error(
        run(env, "bench", "-s", url, "x", "--request"))
    assert "invalid --plot-size" in assert_clean_error(
        run(env, "bench", "-s", url, "x", "--plot", "a.png", "--plot-size", "big"))


def test_bench_compare_runs_both_servers(env: dict[str, str]) -> None:
    result = run(env, "bench", "--compare", "--scenarios", "pubsub,queue3", "--msgs", "3000",
                 "--size", "16", "--json", timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["servers"]) == {"pynats", "nats-server"}
    assert [row["scenario"] for row in report["scenarios"]] == ["pubsub", "queue3"]
    for row in report["scenarios"]:
        assert row["pynats"]["msgs_per_sec"] > 0 and row["nats-server"]["msgs_per_sec"] > 0
        assert row["pynats"]["lost"] == 0 and row["nats-server"]["lost"] == 0
        assert row["ratio"] > 0
    table = run(env, "bench", "--compare", "--scenarios", "req", "--msgs", "2000", timeout=120)
    assert table.returncode == 0, table.stderr
    assert "ratio" in table.stdout.splitlines()[0] and table.stdout.count("\nreq ") == 1


def test_plot_without_matplotlib_is_a_clear_error(env: dict[str, str], url: str) -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['matplotlib'] = None; from pynats.cli import main; "
            f"sys.exit(main(['bench', '-s', '{url}', 'x', '--plot', 'out.png']))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=30, check=False)
    assert "--plot needs matplotlib" in assert_clean_error(result)
