"""JavaScript clients over WebSocket: nats.ws from Node, and in headless Chromium.

The JavaScript side lives in ``tests/js`` (``package.json`` and its lock file, installed
from the npm registry with ``npm ci`` on first use). Chromium is Debian's ``chromium``
package, installed with apt-get on first use where the tests run as root (CI); the page
is driven by ``playwright-core``. Both servers are run, so the reference shows the
expectations hold. Without Node.js, or without Chromium and a way to install it, these
tests are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import json
import os
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from harness import ServerProcess
from ws_support import start_ws

pytestmark = pytest.mark.interop
JS_DIR = Path(__file__).resolve().parent.parent / "js"
KINDS = ["pynats", "nats-server"]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``tests/js/node_modules``, installed from the lock file if missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed")
    modules = JS_DIR / "node_modules"
    if not (modules / "nats.ws").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True,
                       timeout=300, capture_output=True)
    return modules


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed with apt-get if missing and possible."""
    if not Path(CHROMIUM).exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            pytest.skip("Chromium is not installed (apt-get install chromium)")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode:
            subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600)
            subprocess.run(install, env=env, check=True, capture_output=True, timeout=600)
    return CHROMIUM


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest,
           tmp_path: Path) -> Iterator[tuple[ServerProcess, int]]:
    found, port = start_ws(str(request.param), tmp_path)
    try:
        yield found, port
    finally:
        found.stop()


def test_node_client(node_modules: Path, server: tuple[ServerProcess, int]) -> None:
    tcp_server, ws_port = server

    async def main() -> dict[str, str]:
        nc = await nats.connect(f"nats://127.0.0.1:{tcp_server.port}")
        try:
            seen = await nc.subscribe("from.js")

            async def answer(msg: nats.aio.msg.Msg) -> None:
                await msg.respond(b"answer to " + msg.data)

            await nc.subscribe("svc.py", cb=answer)
            await nc.flush()
            proc = await asyncio.create_subprocess_exec(
                "node", str(JS_DIR / "node_client.mjs"), f"ws://127.0.0.1:{ws_port}",
                stdout=asyncio.subprocess.PIPE, cwd=JS_DIR)
            assert proc.stdout is not None
            try:
                ready = await asyncio.wait_for(proc.stdout.readline(), 20)
                assert json.loads(ready) == {"ready": True}
                got = await seen.next_msg(timeout=10)
                assert (got.data, got.headers) == (b"hello from js", {"X-From": "js"})
                await nc.publish("to.js", b"pushed from python")
                await nc.flush()
                result: dict[str, str] = json.loads(
                    await asyncio.wait_for(proc.stdout.readline(), 20))
                assert await asyncio.wait_for(proc.wait(), 20) == 0
                return result
            finally:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
        finally:
            await nc.close()

    assert asyncio.run(main()) == {"answer": "answer to question",
                                   "pushed": "pushed from python"}


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve_page(directory: Path) -> tuple[http.server.ThreadingHTTPServer, int]:
    handler = functools.partial(_Quiet, directory=str(directory))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, httpd.server_address[1]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_browser_page(node_modules: Path, chromium: str, server: tuple[ServerProcess, int],
                      tmp_path: Path) -> None:
    tcp_server, ws_port = server
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(JS_DIR / "page.html", site / "index.html")
    shutil.copy(node_modules / "nats.ws" / "esm" / "nats.js", site / "nats.js")
    httpd, http_port = _serve_page(site)
    shot = tmp_path / f"browser-{tcp_server.kind}.png"

    async def main() -> dict[str, str]:
        nc = await nats.connect(f"nats://127.0.0.1:{tcp_server.port}")
        try:
            async def greet(msg: nats.aio.msg.Msg) -> None:
                await nc.publish("to.browser", b"hello browser, from python")

            await nc.subscribe("browser.ready", cb=greet)
            await nc.flush()
            page = f"http://127.0.0.1:{http_port}/index.html?server=ws://127.0.0.1:{ws_port}"
            proc = await asyncio.create_subprocess_exec(
                "node", str(JS_DIR / "browser.mjs"), page, str(shot), chromium,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=JS_DIR)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            result: dict[str, str] = json.loads(out)
            return result
        finally:
            await nc.close()

    try:
        assert asyncio.run(main()) == {"message": "hello browser, from python"}
    finally:
        httpd.shutdown()
    assert _png_size(shot) == (800, 400)
