"""pynats pub and sub, driven as subprocesses against a pynats-server."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from clitools import Background, run


def test_pub_count_and_templates_reach_sub(env: dict[str, str], url: str) -> None:
    with Background(env, ["sub", "-s", url, "tpl.>", "--count", "3"], "Subscribing on") as sub:
        pub = run(env, "pub", "-s", url, "tpl.{{Count}}",
                  "n={{Count}} r={{Random 4 4}} u={{Unix}} id={{ID}} ts={{TimeStamp}}",
                  "--count", "3")
        assert pub.returncode == 0, pub.stderr
        assert sub.finish() == 0
    out = sub.stdout
    for n in (1, 2, 3):
        assert f'[#{n}] Received on "tpl.{n}"' in out
        assert re.search(rf"n={n} r=[A-Za-z0-9]{{4}} u=\d{{10}} id=\w{{22}} ts=\d{{4}}-", out)
    assert "Received 3 messages" in sub.stderr
    assert pub.stderr.count("Published") == 3


def test_pub_headers_reply_and_stdin_body(env: dict[str, str], url: str) -> None:
    with Background(env, ["sub", "-s", url, "hdr", "--count", "1"], "Subscribing on") as sub:
        pub = run(env, "pub", "-s", url, "hdr", "-H", "X-One:1", "-H", "X-Two: two",
                  "--reply", "back.here", stdin="from stdin {{Count}}")
        assert pub.returncode == 0, pub.stderr
        assert sub.finish() == 0
    assert 'Received on "hdr" with reply "back.here"' in sub.stdout
    assert "X-One: 1" in sub.stdout and "X-Two: two" in sub.stdout
    # a body read from stdin is sent as it is, not as a template
    assert "from stdin {{Count}}" in sub.stdout


def test_sub_raw_json_and_dump(env: dict[str, str], url: str, tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    with Background(env, ["sub", "-s", url, "fmt", "--count", "2", "--raw"],
                    "Subscribing on") as raw, \
            Background(env, ["sub", "-s", url, "fmt", "--count", "2", "--json"],
                       "Subscribing on") as js, \
            Background(env, ["sub", "-s", url, "fmt", "--count", "2", "--dump", str(dump)],
                       "Subscribing on") as dumper:
        assert run(env, "pub", "-s", url, "fmt", "body {{Count}}", "--count", "2",
                   "-H", "k:v").returncode == 0
        assert raw.finish() == 0 and js.finish() == 0 and dumper.finish() == 0
    assert raw.stdout == "body 1\nbody 2\n"
    records = [json.loads(line) for line in js.stdout.splitlines()]
    assert [r["data"] for r in records] == ["body 1", "body 2"]
    assert records[0]["subject"] == "fmt" and records[0]["headers"] == {"k": ["v"]}
    files = sorted(p.name for p in dump.iterdir())
    assert files == ["1.json", "2.json"]
    assert json.loads((dump / "2.json").read_text())["data"] == "body 2"
    assert dumper.stdout == ""


def test_sub_queue_group_shares_and_ctrl_c_prints_summary(env: dict[str, str],
                                                          url: str) -> None:
    args = ["sub", "-s", url, "work", "--queue", "workers", "--raw"]
    with Background(env, args, "Subscribing on") as one, \
            Background(env, args, "Subscribing on") as two, \
            Background(env, ["sub", "-s", url, "work", "--raw"], "Subscribing on") as all_:
        assert run(env, "pub", "-s", url, "work", "m{{Count}}", "--count", "40",
                   "-q").returncode == 0
        assert all_.wait_lines(40)
        deadline = time.monotonic() + 10
        while len(one.stdout_lines) + len(two.stdout_lines) < 40 and \
                time.monotonic() < deadline:
            one.wait_lines(len(one.stdout_lines) + 1, 0.1)
        for proc in (one, two, all_):
            assert proc.finish(interrupt=True) == 0  # Ctrl-C: summary, status 0
    counts = [len(p.stdout.splitlines()) for p in (one, two)]
    assert sum(counts) == 40, counts
    assert min(counts) > 0, counts  # both members of the group got a share
    assert len(all_.stdout.splitlines()) == 40
    for proc, count in ((one, counts[0]), (two, counts[1]), (all_, 40)):
        assert f"Received {count} messages" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert sorted(one.stdout.split() + two.stdout.split()) == sorted(f"m{n}"
                                                                     for n in range(1, 41))


def test_pub_sleep_and_bad_template(env: dict[str, str], url: str) -> None:
    ok = run(env, "pub", "-s", url, "slow", "x", "--count", "2", "--sleep", "50ms")
    assert ok.returncode == 0
    bad = run(env, "pub", "-s", url, "slow", "{{Nope}}")
    assert bad.returncode == 1
    assert "unknown template function 'Nope'" in bad.stderr
    assert "Traceback" not in bad.stderr
