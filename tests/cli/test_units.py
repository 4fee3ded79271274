"""In-process unit tests of the CLI's pure parts: templates, sizes, statistics."""

from __future__ import annotations

import re

import pytest

from pynats.cli.bench_stats import ClientResult, Group, latency_summary, percentile
from pynats.cli.output import parse_duration, parse_size
from pynats.cli.request import command_line
from pynats.cli.templates import TemplateError, render


def test_templates() -> None:
    assert render("n={{Count}}", 7) == "n=7"
    assert render("{{ Count }}-{{.Count}}", 2) == "2-2"
    assert re.fullmatch(r"[A-Za-z0-9]{3,5}", render("{{Random 3 5}}"))
    assert re.fullmatch(r"\d{10}", render("{{Unix}}"))
    assert re.fullmatch(r"\d{19}", render("{{UnixNano}}"))
    assert re.fullmatch(r"\d{1,2}:\d\d[AP]M", render("{{Time}}"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)",
                        render("{{TimeStamp}}"))
    assert render("{{ID}}") != render("{{ID}}")
    assert render("got {{Request}}", extra={"Request": "x"}) == "got x"
    assert render("no actions {here}") == "no actions {here}"
    with pytest.raises(TemplateError):
        render("{{Nope}}")
    with pytest.raises(TemplateError):
        render("{{Random 1}}")


def test_sizes_and_durations() -> None:
    assert parse_size("128") == 128 and parse_size("1K") == 1024 and parse_size("2MB") == 2 << 20
    assert parse_duration("500ms") == 0.5 and parse_duration("2s") == 2 and \
        parse_duration("1.5") == 1.5
    with pytest.raises(ValueError):
        parse_size("lots")
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_command_tokens_are_quoted() -> None:
    assert command_line("echo {{0}} {{2}} {{9}}", "a.b c") == "echo 'a.b c' 'b c' ''"


def test_percentiles_and_group_rates() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 50) == 500 and percentile(values, 99.9) == 999
    summary = latency_summary(values)
    assert summary is not None and summary["p90"] == 900 and summary["max"] == 1000
    a = ClientResult("pub", 0, 100, 1000, start=0, end=1_000_000_000)
    b = ClientResult("pub", 1, 300, 3000, start=500_000_000, end=2_000_000_000)
    group = Group("Pub", [a, b])
    assert a.rate == 100 and b.rate == 200
    assert group.seconds == 2 and group.rate == 200  # 400 msgs over the 2 s span
