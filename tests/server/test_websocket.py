"""WebSocket clients, against pynats and nats-server alike.

nats-py's WebSocket transport talks to TCP clients through both servers, plain, with
compression and over TLS; a raw client sends the upgrade requests and frames nats-server
refuses (or takes apart byte by byte), and the answers must be the same: the HTTP error
responses (their ``Date`` aside), the log lines, the close frames, the ``-ERR``s.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from harness import RawClient, ServerProcess
from tls_support import make_pki
from ws_support import UPGRADE, RawWebSocket, http_exchange, start_ws, without_date

pytestmark = pytest.mark.interop
KINDS = ["pynats", "nats-server"]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module", params=KINDS)
def plain(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    """A server with a plain (``no_tls``) WebSocket port and monitoring, per kind."""
    server, port = start_ws(str(request.param), tmp_path_factory.mktemp("ws"),
                            args=("-m", "-1"))
    try:
        yield server, port
    finally:
        server.stop()


async def _across(ws_url: str, tcp_url: str, **ws_options: object) -> None:
    """A WebSocket and a TCP client exchange messages and requests both ways."""
    ws = await nats.connect(ws_url, **ws_options)  # type: ignore[arg-type]
    tcp = await nats.connect(tcp_url)
    try:
        from_tcp = await ws.subscribe("to.ws")
        from_ws = await tcp.subscribe("to.tcp")

        async def echo(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(b"echo " + msg.data)

        await ws.subscribe("svc.ws", cb=echo)
        await tcp.subscribe("svc.tcp", cb=echo)
        await ws.flush()
        await tcp.flush()
        await tcp.publish("to.ws", b"hello ws", headers={"X-From": "tcp"})
        await ws.publish("to.tcp", b"x" * 300_000)  # one message over many frames' worth
        got = await from_tcp.next_msg(timeout=5)
        assert (got.data, got.headers) == (b"hello ws", {"X-From": "tcp"})
        assert (await from_ws.next_msg(timeout=5)).data == b"x" * 300_000
        assert (await ws.request("svc.tcp", b"1", timeout=5)).data == b"echo 1"
        assert (await tcp.request("svc.ws", b"2", timeout=5)).data == b"echo 2"
    finally:
        await ws.close()
        await tcp.close()


def test_nats_py_over_websocket(plain: tuple[ServerProcess, int]) -> None:
    server, port = plain
    asyncio.run(_across(f"ws://127.0.0.1:{port}", f"nats://127.0.0.1:{server.port}"))


def test_nats_py_with_compression(kind: str, tmp_path: Path) -> None:
    server, port = start_ws(kind, tmp_path, "no_tls: true\n  compression: true")
    try:
        reply = http_exchange(port, UPGRADE + b"Sec-WebSocket-Extensions: permessage-deflate"
                                              b"\r\n\r\n")
        assert b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "\
               b"client_no_context_takeover\r\n" in reply
        asyncio.run(_across(f"ws://127.0.0.1:{port}", f"nats://127.0.0.1:{server.port}"))
    finally:
        server.stop()


def test_nats_py_over_wss(kind: str, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    block = f'tls {{ cert_file: "{pki.server.cert}", key_file: "{pki.server.key}" }}'
    server, port = start_ws(kind, tmp_path, block)
    try:
        assert any("Listening for websocket clients on wss://" in line for line in server.lines)
        context = pki.client_context()
        asyncio.run(_across(f"wss://127.0.0.1:{port}", f"nats://127.0.0.1:{server.port}",
                            tls=context))
    finally:
        server.stop()


def test_startup_lines(plain: tuple[ServerProcess, int]) -> None:
    server, port = plain
    lines = [m.group(0) for line in server.lines
             if (m := re.search(r"\[[A-Z]{3}\] .*$", line))]
    ws = lines.index(f"[INF] Listening for websocket clients on ws://127.0.0.1:{port}")
    assert lines[ws + 1] == "[WRN] Websocket not configured with TLS. DO NOT USE IN PRODUCTION!"
    assert lines[ws + 2].startswith("[INF] Listening for client connections on ")


def test_info_and_connz(plain: tuple[ServerProcess, int]) -> None:
    server, port = plain
    with RawWebSocket(port) as ws:
        info = json.loads(ws.until(b"\r\n").split(b" ", 1)[1])
        assert (info["host"], info["port"]) == ("127.0.0.1", port)
        ws.send(b'CONNECT {"verbose":false,"name":"browser"}\r\nPING\r\n')
        ws.until(b"PONG\r\n")
        url = f"http://127.0.0.1:{server.http_port}/connz"
        conns = json.loads(urllib.request.urlopen(url, timeout=5).read())["connections"]
        [mine] = [c for c in conns if c.get("name") == "browser"]
        assert (mine["type"], mine["kind"]) == ("websocket", "Client")


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
    UPGRADE.replace(b"Upgrade: websocket", b"Upgrade: h2c") + b"\r\n",
    UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive") + b"\r\n",
    UPGRADE.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"") + b"\r\n",
    UPGRADE.replace(b"Version: 13", b"Version: 8") + b"\r\n",
    b"garbage\r\n\r\n",
], ids=["no-upgrade", "post", "bad-upgrade", "bad-connection", "no-key", "bad-version",
        "garbage"])
def test_bad_upgrade_requests(plain: tuple[ServerProcess, int], request_bytes: bytes) -> None:
    server, port = plain
    mark = len(server.lines)
    reply = without_date(http_exchange(port, request_bytes))
    if request_bytes.startswith(b"garbage"):
        assert reply == (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; "
                         b"charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request")
        return
    status = b"405 Method Not Allowed" if request_bytes.startswith(b"POST") else \
        b"400 Bad Request"
    body = status.split(b" ", 1)[1] + b"\n"
    assert reply == (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8"
                     b"\r\nSec-Websocket-Version: 13\r\nX-Content-Type-Options: nosniff\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    logged = server.wait_for_log("websocket handshake error: ", 5, mark)
    assert logged is not None and "[ERR] 127.0.0.1:" in logged
    with RawClient(server.port) as other:  # nobody else noticed
        other.send(b"PING\r\n")
        other.expect(b"PONG\r\n")


@pytest.mark.parametrize(("block", "origin", "refused"), [
    ("allowed_origins: [\"http://good.example\"]", b"http://good.example", b""),
    ("allowed_origins: [\"http://good.example\"]", b"http://evil.example",
     b"not in the allowed list"),
    ("allowed_origins: [\"http://good.example\"]", b"https://good.example",
     b"not in the allowed list"),
    ("same_origin: true", b"http://127.0.0.1", b""),
    ("same_origin: true", b"http://other.example", b"not same origin"),
])
def test_origin_checks(kind: str, tmp_path: Path, block: str, origin: bytes,
                       refused: bytes) -> None:
    server, port = start_ws(kind, tmp_path, f"no_tls: true\n  {block}")
    try:
        reply = http_exchange(port, UPGRADE + b"Origin: " + origin + b"\r\n\r\n")
        if not refused:
            assert reply.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
            return
        assert reply.startswith(b"HTTP/1.1 403 Forbidden\r\n")
        logged = server.wait_for_log("websocket handshake error", 5)
        assert logged is not None and logged.endswith(
            "origin not allowed: " + refused.decode())
    finally:
        server.stop()


def test_frames_split_byte_by_byte(plain: tuple[ServerProcess, int]) -> None:
    _, port = plain
    with RawWebSocket(port) as ws:
        ws.until(b"\r\n")
        ws.send(b'CONNECT {"verbose":false}\r\nSUB s 1\r\nPUB s 5\r\nhello\r\nPING\r\n',
                split=True)
        assert ws.until(b"PONG\r\n") == b"MSG s 1 5\r\nhello\r\nPONG\r\n"


def test_message_split_over_frames(plain: tuple[ServerProcess, int]) -> None:
    _, port = plain
    with RawWebSocket(port) as ws:
        ws.until(b"\r\n")
        for part in (b'CONNECT {"verbose":false}\r\nSUB s 1\r\nPU', b"B s 5\r\nhel",
                     b"lo\r\nPI", b"NG\r\n"):
            ws.send(part)
        assert ws.until(b"PONG\r\n") == b"MSG s 1 5\r\nhello\r\nPONG\r\n"


def test_payload_over_max_payload(plain: tuple[ServerProcess, int]) -> None:
    _, port = plain
    with RawWebSocket(port) as ws:
        ws.until(b"\r\n")
        ws.send(b'CONNECT {"verbose":false}\r\nPUB s 2000000\r\n')  # refused on its size
        assert ws.until(b"\r\n") == b"-ERR 'Maximum Payload Violation'\r\n"
        closing = ws.until_closed()
        assert closing is not None
        assert closing.data == (1009).to_bytes(2, "big") + b"Maximum Message Payload Exceeded"


def test_unmasked_frame_is_a_read_error(plain: tuple[ServerProcess, int]) -> None:
    server, port = plain
    mark = len(server.lines)
    with RawWebSocket(port) as ws:
        ws.until(b"\r\n")
        ws.send_raw(b"\x82\x06PING\r\n")  # a client frame must be masked
        closing = ws.until_closed()
        # nats-server closes right after its close frame, which a reset may overtake.
        assert closing is not None or server.kind == "nats-server"
        if closing is not None:
            assert closing.data == (1002).to_bytes(2, "big") + b"mask bit missing"
    logged = server.wait_for_log("read error: mask bit missing", 5, mark)
    assert logged is not None and " - wid:" in logged


def test_client_that_never_upgrades_is_closed(kind: str, tmp_path: Path) -> None:
    server, port = start_ws(kind, tmp_path, 'no_tls: true\n  handshake_timeout: "500ms"')
    try:
        reply = http_exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n", timeout=5)
        assert reply in (b"", b"HTTP/1.1 408 Request Timeout\r\n") or reply.startswith(
            b"HTTP/1.1 408")
        with RawClient(server.port) as other:
            other.send(b"PING\r\n")
            other.expect(b"PONG\r\n")
    finally:
        server.stop()


AUTH_TOP = """
authorization {
  users: [{user: tcponly, password: p, allowed_connection_types: ["STANDARD"]},
          {user: wsonly, password: p, allowed_connection_types: ["WEBSOCKET"]},
          {user: both, password: p},
          {user: guest, password: p, permissions: {publish: "guest.>"}}]
}
"""


@pytest.fixture(scope="module", params=KINDS)
def guarded(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    """Users with connection types, and the websocket block's own ``no_auth_user``."""
    server, port = start_ws(str(request.param), tmp_path_factory.mktemp("wsauth"),
                            "no_tls: true\n  no_auth_user: guest", top=AUTH_TOP)
    try:
        yield server, port
    finally:
        server.stop()


def _ws_connect(port: int, **fields: object) -> bytes:
    """What a WebSocket client gets for CONNECT with ``fields`` and a PING."""
    with RawWebSocket(port) as ws:
        ws.until(b"\r\n")
        options = {"verbose": False, **fields}
        ws.send(b"CONNECT " + json.dumps(options).encode() + b"\r\nPING\r\n")
        return ws.until(b"\r\n")


def _tcp_connect(port: int, **fields: object) -> bytes:
    with RawClient(port) as tcp:
        options = {"verbose": False, **fields}
        tcp.send(b"CONNECT " + json.dumps(options).encode() + b"\r\nPING\r\n")
        return tcp.read_line()


@pytest.mark.parametrize(("user", "over_ws", "over_tcp"), [
    ("tcponly", False, True), ("wsonly", True, False), ("both", True, True)])
def test_allowed_connection_types(guarded: tuple[ServerProcess, int], user: str,
                                  over_ws: bool, over_tcp: bool) -> None:
    server, port = guarded
    refused = b"-ERR 'Authorization Violation'\r\n"
    ws = _ws_connect(port, user=user, **{"pass": "p"})
    tcp = _tcp_connect(server.port, user=user, **{"pass": "p"})
    assert (ws == b"PONG\r\n", tcp == b"PONG\r\n") == (over_ws, over_tcp)
    assert refused in (ws, tcp) or (over_ws and over_tcp)


def test_websocket_no_auth_user(guarded: tuple[ServerProcess, int]) -> None:
    server, port = guarded
    assert _tcp_connect(server.port) == b"-ERR 'Authorization Violation'\r\n"
    with RawWebSocket(port) as ws:
        info = json.loads(ws.until(b"\r\n").split(b" ", 1)[1])
        assert info["auth_required"] is True  # as nats-server says, no_auth_user or not
        ws.send(b'CONNECT {"verbose":false}\r\nPUB other 0\r\n\r\nPUB guest.x 0\r\n\r\nPING\r\n')
        assert ws.until(b"PONG\r\n") == (
            b"-ERR 'Permissions Violation for Publish to \"other\"'\r\nPONG\r\n")


def test_websocket_block_user_overrides(kind: str, tmp_path: Path) -> None:
    server, port = start_ws(kind, tmp_path,
                            "no_tls: true\n  authorization { user: web, password: secret }",
                            top="authorization { token: tcptoken }")
    try:
        assert _ws_connect(port, user="web", **{"pass": "secret"}) == b"PONG\r\n"
        assert _ws_connect(port, auth_token="tcptoken") == b"-ERR 'Authorization Violation'\r\n"
        assert _tcp_connect(server.port, auth_token="tcptoken") == b"PONG\r\n"
        assert _tcp_connect(server.port, user="web", **{"pass": "secret"}) == (
            b"-ERR 'Authorization Violation'\r\n")
    finally:
        server.stop()


def test_cluster_advertises_websocket_urls(kind: str, tmp_path: Path) -> None:
    from route_support import ROUTE_RE

    def node(name: str, routes: str = "") -> tuple[ServerProcess, int, int]:
        top = f"server_name: {name}\ncluster {{ name: C, listen: 127.0.0.1:-1\n{routes} }}"
        server, ws_port = start_ws(kind, tmp_path / name, top=top)
        line = server.wait_for_log("Listening for route connections on", 10)
        match = ROUTE_RE.search(line or "")
        assert match is not None
        return server, ws_port, int(match.group(2))

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, first_ws, route_port = node("a")
    second, second_ws, _ = node("b", f"routes: [nats://127.0.0.1:{route_port}]")
    try:
        wanted = {f"127.0.0.1:{first_ws}", f"127.0.0.1:{second_ws}"}
        deadline = time.monotonic() + 10
        while True:  # until the route is up and the URLs have crossed it
            with RawWebSocket(first_ws) as ws:
                info = json.loads(ws.until(b"\r\n").split(b" ", 1)[1])
            if set(info.get("connect_urls", ())) == wanted or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert set(info.get("connect_urls", ())) == wanted
        with RawClient(first.port) as tcp:  # TCP clients keep getting TCP URLs
            tcp_urls = json.loads(tcp.info.split(b" ", 1)[1])["connect_urls"]
        assert f"127.0.0.1:{first.port}" in tcp_urls and f"127.0.0.1:{first_ws}" not in tcp_urls
    finally:
        second.stop()
        first.stop()


def test_credentials_from_cookies(kind: str, tmp_path: Path) -> None:
    server, port = start_ws(kind, tmp_path, "no_tls: true\n  token_cookie: tok\n"
                                            "  user_cookie: u\n  pass_cookie: p",
                            top="authorization { users: [{user: web, password: pw}] }")
    try:
        def connect(cookie: str) -> bytes:
            with RawWebSocket(port, headers={"Cookie": cookie}) as ws:
                ws.until(b"\r\n")
                ws.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
                return ws.until(b"\r\n")

        assert connect("u=web; p=pw") == b"PONG\r\n"
        assert connect("u=web; p=wrong") == b"-ERR 'Authorization Violation'\r\n"
    finally:
        server.stop()


def test_frame_over_the_bound_is_refused(tmp_path: Path) -> None:
    """pynats bounds a frame (8 MiB, or twice max_payload): nats-server streams them."""
    server, port = start_ws("pynats", tmp_path)
    try:
        with RawWebSocket(port) as ws:
            ws.until(b"\r\n")
            ws.send_raw(b"\x82\xff" + (100 * 1024 * 1024).to_bytes(8, "big") + b"\0\0\0\0")
            closing = ws.until_closed()
            assert closing is not None and closing.data[:2] == (1009).to_bytes(2, "big")
        with RawClient(server.port) as other:
            other.ping_pong()
    finally:
        server.stop()
