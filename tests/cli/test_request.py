"""pynats req and reply: bodies, templates, --echo, --command, scatter-gather."""

from __future__ import annotations

import json

from clitools import Background, assert_clean_error, run


def test_reply_body_template_and_req(env: dict[str, str], url: str) -> None:
    with Background(env, ["reply", "-s", url, "greet", "hello #{{Count}} got {{Request}}",
                          "--count", "2"], "Listening on") as rep:
        first = run(env, "req", "-s", url, "greet", "joe")
        second = run(env, "req", "-s", url, "greet", "ann", "--raw")
        assert rep.finish() == 0
    assert first.returncode == 0, first.stderr
    assert "Received with rtt" in first.stdout
    assert "hello #1 got joe" in first.stdout
    assert second.stdout == "hello #2 got ann\n"
    assert 'Received on "greet"' in rep.stdout and "Answered 2 requests" in rep.stderr


def test_reply_echo_keeps_headers(env: dict[str, str], url: str) -> None:
    with Background(env, ["reply", "-s", url, "echo.svc", "--echo", "--count", "1"],
                    "Listening on"):
        result = run(env, "req", "-s", url, "echo.svc", "ping me", "-H", "Trace:42", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["data"] == "ping me"
    assert record["headers"]["Trace"] == ["42"]
    assert record["headers"]["NATS-Request-Subject"] == ["echo.svc"]
    assert record["rtt_ms"] > 0


def test_reply_command_gets_body_on_stdin_and_subject_tokens(env: dict[str, str],
                                                             url: str) -> None:
    with Background(env, ["reply", "-s", url, "cmd.*", "--command",
                          "tr a-z A-Z; printf ' token=%s' {{1}}-{{2}}", "--count", "1"],
                    "Listening on"):
        result = run(env, "req", "-s", url, "cmd.upper", "shout", "--raw")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "SHOUT token=cmd-upper\n"


def test_req_count_gathers_several_replies(env: dict[str, str], url: str) -> None:
    # Two repliers in different queue groups: both answer every request.
    with Background(env, ["reply", "-s", url, "census", "from a", "--queue", "a"],
                    "Listening on"), \
            Background(env, ["reply", "-s", url, "census", "from b", "--queue", "b"],
                       "Listening on"):
        every = run(env, "req", "-s", url, "census", "who", "--count", "0",
                    "--timeout", "500ms", "--raw")
        capped = run(env, "req", "-s", url, "census", "who", "--count", "1", "--raw")
    assert every.returncode == 0, every.stderr
    assert sorted(every.stdout.splitlines()) == ["from a", "from b"]
    assert len(capped.stdout.splitlines()) == 1


def test_req_no_responders_and_timeout(env: dict[str, str], url: str) -> None:
    nobody = run(env, "req", "-s", url, "nobody.home", "x")
    assert "no responders" in assert_clean_error(nobody)
    # A subscriber that never answers: the request times out.
    with Background(env, ["sub", "-s", url, "silent"], "Subscribing on"):
        slow = run(env, "req", "-s", url, "silent", "x", "--timeout", "300ms")
    assert "timeout" in assert_clean_error(slow)


def test_reply_needs_one_mode(env: dict[str, str], url: str) -> None:
    result = run(env, "reply", "-s", url, "svc")
    assert "exactly one of BODY, --echo or --command" in assert_clean_error(result)
