"""``pynats bench --plot``: throughput over time and the latency histogram, as a PNG.

matplotlib is an optional extra (``pip install 'pynats[bench]'``); without it ``--plot``
fails before the benchmark starts, with one line saying how to install it. The figure
is drawn with the non-interactive Agg backend at 100 dpi with a figure size of
``width/100 x height/100`` inches and saved without tight bounding boxes, so the PNG
has exactly the requested pixel size.
"""

from __future__ import annotations

from typing import Any

from pynats.cli.bench_stats import BenchReport, throughput_series
from pynats.cli.output import CliError

DPI = 100


def require_matplotlib() -> Any:
    """Import matplotlib with the Agg backend.

    Raises:
        CliError: matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        raise CliError("--plot needs matplotlib: pip install 'pynats[bench]'") from None
    matplotlib.use("Agg")
    return matplotlib


def plot_report(report: BenchReport, path: str, width: int, height: int) -> None:
    """Write the plot of ``report`` to ``path`` (``width`` x ``height`` pixels).

    Raises:
        CliError: matplotlib is missing or the file cannot be written.
    """
    require_matplotlib()
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(width / DPI, height / DPI), dpi=DPI)
    clients = report.all_clients
    origin = min((c.start for c in clients if c.msgs), default=0)
    for group in (report.pubs, report.subs):
        xs, ys = throughput_series(group.clients, origin)
        if xs:
            top.plot(xs, ys, label=f"{group.name} ({len(group.clients)} clients)")
    top.set_title(f"NATS {report.title}: {report.msgs:,} msgs of {report.size} B")
    top.set_xlabel("seconds")
    top.set_ylabel("msgs/sec")
    top.grid(True, alpha=0.3)
    if top.get_legend_handles_labels()[0]:
        top.legend()
    latencies = [x * 1e6 for x in report.latencies]
    if latencies:
        bottom.hist(latencies, bins=min(100, max(10, len(latencies) // 20)))
        kind = "round trip" if report.request else "publish to delivery"
        bottom.set_title(f"Latency ({kind})")
        bottom.set_yscale("log")
    else:
        bottom.text(0.5, 0.5, "no latency samples (size < 8 bytes)", ha="center",
                    va="center", transform=bottom.transAxes)
    bottom.set_xlabel("µs")
    bottom.set_ylabel("messages")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=DPI, format="png")
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
