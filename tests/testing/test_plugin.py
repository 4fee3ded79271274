"""The plugin in a user's project (pytester): entry point, fixtures, markers, xdist.

In-process pytester runs share this process's module cache: the user's test modules get
names no other test module of the project has (``test_pynats_*``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import pynats

SRC = Path(pynats.__file__).resolve().parent.parent

USER_TESTS = '''
import nats
import pytest


async def test_round_trip(nats_url):
    nc = await nats.connect(nats_url)
    sub = await nc.subscribe("t")
    await nc.publish("t", b"ok")
    assert (await sub.next_msg(timeout=2)).data == b"ok"
    await nc.close()


@pytest.mark.nats_server(max_payload=1234)
def test_marker(nats_server):
    assert nats_server.options.max_payload == 1234


@pytest.mark.nats_cluster(size=2)
def test_cluster(nats_cluster):
    assert [n.route_count for n in nats_cluster] == [1, 1]
'''

XDIST_TESTS = '''
import os
import pytest


@pytest.mark.parametrize("n", range(6))
def test_own_server(nats_server, n, tmp_path_factory):
    assert nats_server.client_count == 0 and nats_server.total_connections == 0
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    out = tmp_path_factory.getbasetemp().parent.parent / "ports"
    out.mkdir(exist_ok=True)
    (out / f"{worker}-{n}").write_text(str(nats_server.port))
'''


def plugin_args() -> list[str]:
    """``-p`` for the plugin unless its entry point is installed (``pip install -e .``)."""
    names = {ep.name for ep in entry_points(group="pytest11")}
    return [] if "pynats" in names else ["-p", "pynats.testing.plugin"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    path = os.pathsep.join([str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])])
    monkeypatch.setenv("PYTHONPATH", path)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n"
                     "asyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_fixtures_and_markers_work_in_a_users_project(project: pytest.Pytester) -> None:
    project.makepyfile(test_pynats_user=USER_TESTS)
    result = project.runpytest(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_markers_are_registered(project: pytest.Pytester) -> None:
    result = project.runpytest(*plugin_args(), "--markers")
    result.stdout.fnmatch_lines(["*nats_server(**options)*", "*nats_cluster(size=3*"])


def test_parallel_workers_get_their_own_servers(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project.makepyfile(test_pynats_parallel=XDIST_TESTS)
    result = project.runpytest_subprocess(*plugin_args(), "-p", "xdist", "-n", "2",
                                          "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=6)
    ports = list(project.path.parent.glob("**/ports/*"))
    assert {p.name.split("-")[0] for p in ports} == {"gw0", "gw1"}
    assert len({p.read_text() for p in ports}) >= 2


def docs_block(name: str) -> str:
    """The fenced block of docs/testing.md whose first line is ``# <name>``."""
    text = (SRC.parent / "docs" / "testing.md").read_text()
    for block in text.split("```python\n")[1:]:
        code = block.split("```", 1)[0]
        if code.startswith(f"# {name}\n"):
            return code
    raise LookupError(name)


def test_the_tutorials_conftest_and_tests_pass(project: pytest.Pytester) -> None:
    project.makeconftest(docs_block("conftest.py"))
    project.makepyfile(test_pynats_doc_orders=docs_block("test_orders.py"),
                       test_pynats_doc_hello=docs_block("test_hello.py"))
    result = project.runpytest(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_server_log_option_writes_the_log(project: pytest.Pytester) -> None:
    project.makepyfile(test_pynats_log="def test_it(nats_server):\n    pass\n")
    quiet = project.runpytest(*plugin_args(), "-p", "no:cacheprovider", "-rP")
    assert "Server is ready" not in quiet.stdout.str()
    loud = project.runpytest(*plugin_args(), "-p", "no:cacheprovider", "-rP",
                             "--nats-server-log")
    loud.assert_outcomes(passed=1)
    assert "Server is ready" in loud.stdout.str() + loud.stderr.str()


def test_a_failed_tests_report_shows_the_server_log(project: pytest.Pytester) -> None:
    project.makepyfile(test_pynats_fails="""
def test_it(nats_server, nats_cluster):
    assert False, "on purpose"
""")
    result = project.runpytest(*plugin_args(), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pynats nats_server log (call)*", "*Server is ready*",
                                 "*pynats nats_cluster[[]2[]] log (call)*"])


def test_loading_the_plugin_does_not_import_the_server() -> None:
    """pytest loads the plugin in every run of a project that has pynats installed."""
    code = ("import sys, pynats.testing.plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('pynats.server')))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout
    assert out.strip() == "[]"
