"""Service imports between accounts, against pynats and nats-server.

Account A exports services; B imports them, under other local subjects. A request from
B reaches A's responders on the exported subject with a ``_R_.`` reply and a
``Nats-Request-Info`` header, and their answer comes back to B's reply subject: once for
a ``Singleton`` export, as often as it comes for a ``Stream`` one until its response
threshold passes. Every expectation is what nats-server does; the random parts of
response subjects and the RTT are compared by shape.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from auth_support import KINDS, ConfServer, Serve, login, shared_servers, until_pong
from harness import RawClient
from request_support import first_answer

CONF = """
server_name: svc1
accounts {
  A: {
    users: [{user: a, password: a},
            {user: r, password: r, permissions: {publish: {deny: ">"},
                                                  allow_responses: true}}]
    exports: [{service: "svc.>"},
              {service: "feed", response_type: stream, response_threshold: "700ms"},
              {service: "who"}, {service: "quiet"}]
  }
  B: {
    users: [{user: b, password: b}]
    imports: [{service: {account: A, subject: "svc.>"}, to: "b.svc.>"},
              {service: {account: A, subject: "feed"}},
              {service: {account: A, subject: "who"}, share: true},
              {service: {account: A, subject: "quiet"}, to: "nobody.home"}]
  }
}
"""
_MSG = re.compile(rb"H?MSG [^\r\n]+\r\n")
_RESPONSE = re.compile(rb"^_R_\.[0-9A-Za-z]{6}\.[0-9A-Za-z]{6}$")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    yield from shared_servers(tmp_path_factory, "services")


def user(server: ConfServer, name: str, **fields: object) -> RawClient:
    options = {"user": name, "pass": name, "headers": True, "no_responders": True,
               "name": f"client-{name}", "lang": "raw", "version": "0.1", **fields}
    return login(server.port, **options)


def settled(client: RawClient, data: bytes = b"") -> bytes:
    """Send ``data`` and PING; what arrived before the PONG (server PINGs left out)."""
    client.send(data + b"PING\r\n")
    return until_pong(client)[:-len(b"PONG\r\n")]


def messages(data: bytes) -> list[tuple[bytes, bytes, bytes, bytes, bytes]]:
    """``(op, subject, reply, headers, payload)`` of each MSG/HMSG in ``data``."""
    found, pos = [], 0
    while (m := _MSG.search(data, pos)) is not None:
        fields = m.group(0).split()
        op, subject = fields[0], fields[1]
        sizes = 2 if op == b"HMSG" else 1
        reply = fields[3] if len(fields) == 4 + sizes else b""
        total = int(fields[-1])
        split = int(fields[-2]) if op == b"HMSG" else 0
        body = data[m.end():m.end() + total]
        found.append((op, subject, reply, body[:split], body[split:]))
        pos = m.end() + total + 2
    return found


def request_info(headers: bytes) -> dict[str, object]:
    line = next(h for h in headers.split(b"\r\n") if h.startswith(b"Nats-Request-Info: "))
    info: dict[str, object] = json.loads(line.split(b": ", 1)[1])
    return info


def test_request_and_answer_across_accounts(kind: str, serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "a") as a, user(server, "b") as b:
        settled(a, b"SUB svc.> 1\r\n")
        settled(b, b"SUB _INBOX.b 9\r\n")
        settled(b, b"PUB b.svc.add.x _INBOX.b 3\r\n1+1\r\n")
        [(op, subject, reply, headers, payload)] = messages(settled(a))
        assert (op, subject, payload) == (b"HMSG", b"svc.add.x", b"1+1")
        assert _RESPONSE.match(reply), reply
        info = request_info(headers)
        assert set(info) == {"acc", "rtt"} and info["acc"] == "B"
        assert isinstance(info["rtt"], int) and info["rtt"] > 0
        settled(a, b"PUB %s 1\r\n2\r\n" % reply)
        assert settled(b) == b"MSG _INBOX.b 9 1\r\n2\r\n"


def test_singleton_answers_once_and_streams_until_the_threshold(kind: str,
                                                                serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "a") as a, user(server, "b") as b:
        settled(a, b"SUB svc.one 1\r\nSUB feed 2\r\n")
        settled(b, b"SUB _INBOX.b.> 9\r\nPUB b.svc.one _INBOX.b.1 0\r\n\r\n"
                   b"PUB feed _INBOX.b.2 0\r\n\r\n")
        (_, _, single, _, _), (_, _, stream, _, _) = messages(settled(a))
        settled(a, b"PUB %s 1\r\n1\r\nPUB %s 1\r\n2\r\n" % (single, single))
        settled(a, b"PUB %s 1\r\n3\r\nPUB %s 1\r\n4\r\n" % (stream, stream))
        assert settled(b) == (b"MSG _INBOX.b.1 9 1\r\n1\r\n"
                              b"MSG _INBOX.b.2 9 1\r\n3\r\nMSG _INBOX.b.2 9 1\r\n4\r\n")
        time.sleep(1.5)  # past the stream's 700ms response threshold
        settled(a, b"PUB %s 1\r\n5\r\n" % stream)
        assert settled(b) == b""


def test_requester_headers_are_kept_and_the_info_goes_last(kind: str, serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "a") as a, user(server, "b") as b:
        settled(a, b"SUB svc.h 1\r\n")
        hdr = b"NATS/1.0\r\nX-Trace: 7\r\n\r\n"
        settled(b, b"HPUB b.svc.h %d %d\r\n%sok\r\n" % (len(hdr), len(hdr) + 2, hdr))
        [(op, _, reply, headers, payload)] = messages(settled(a))
        assert (op, reply, payload) == (b"HMSG", b"", b"ok")  # no reply: no _R_ subject
        lines = headers.split(b"\r\n")
        assert lines[:2] == [b"NATS/1.0", b"X-Trace: 7"]
        assert lines[2].startswith(b"Nats-Request-Info: ") and lines[3:] == [b"", b""]


def test_responder_without_headers_gets_a_plain_message(kind: str, serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "a", headers=False,
                                           no_responders=False) as a, \
            user(server, "b") as b:
        settled(a, b"SUB svc.plain 1\r\n")
        settled(b, b"PUB b.svc.plain _INBOX.x 2\r\nhi\r\n")
        [(op, subject, reply, headers, payload)] = messages(settled(a))
        assert (op, subject, headers, payload) == (b"MSG", b"svc.plain", b"", b"hi")
        assert _RESPONSE.match(reply)


def test_shared_import_describes_the_requester(kind: str, serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "a") as a, user(server, "b") as b:
        settled(a, b"SUB who 1\r\n")
        settled(b, b"PUB who _INBOX.w 0\r\n\r\n")
        [(_, _, _, headers, _)] = messages(settled(a))
        info = request_info(headers)
        assert set(info) == {"start", "host", "id", "acc", "user", "name", "lang", "ver",
                             "rtt", "server", "kind", "client_type"}
        assert (info["acc"], info["user"], info["name"], info["lang"], info["ver"]) == (
            "B", "b", "client-b", "raw", "0.1")
        assert (info["host"], info["server"], info["kind"], info["client_type"]) == (
            "127.0.0.1", "svc1", "Client", "nats")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", str(info["start"]))


def test_importer_subscribers_also_get_the_request(kind: str, serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "a") as a, user(server, "b") as b, \
            user(server, "b") as b2:
        settled(a, b"SUB svc.both 1\r\n")
        settled(b2, b"SUB b.svc.both 4\r\n")
        settled(b, b"PUB b.svc.both _INBOX.q 1\r\nx\r\n")
        assert settled(b2) == b"MSG b.svc.both 4 _INBOX.q 1\r\nx\r\n"
        assert len(messages(settled(a))) == 1


def test_no_responders_in_the_exporter(kind: str, serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "b") as b:
        out = settled(b, b"SUB _INBOX.n 9\r\nPUB nobody.home _INBOX.n 0\r\n\r\n")
        assert out == (b"HMSG _INBOX.n 9 43 43\r\nNATS/1.0 503\r\n"
                       b"Nats-Subject: nobody.home\r\n\r\n\r\n")


def test_imports_go_one_way_only(kind: str, serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "a") as a, user(server, "b") as b:
        settled(b, b"SUB b.svc.> 1\r\nSUB svc.> 2\r\n")
        settled(a, b"SUB svc.> 1\r\n")
        settled(a, b"PUB b.svc.x 1\r\n1\r\n")  # A has no import: stays in A
        # B's own svc.x stays in B (and its own b.svc.x subscriber sees A's nothing).
        assert settled(b, b"PUB svc.x 1\r\n2\r\n") == b"MSG svc.x 2 1\r\n2\r\n"
        assert settled(a) == b""


def test_responder_with_allow_responses_answers(kind: str, serve: Serve) -> None:
    with serve(kind, CONF) as server, user(server, "r") as r, user(server, "b") as b:
        settled(r, b"SUB svc.r 1\r\n")
        settled(b, b"SUB _INBOX.r 9\r\nPUB b.svc.r _INBOX.r 0\r\n\r\n")
        [(_, _, reply, _, _)] = messages(settled(r))
        assert settled(r, b"PUB %s 3\r\nyes\r\nPUB %s 3\r\ntwo\r\n" % (reply, reply)) == (
            b"-ERR 'Permissions Violation for Publish to \"%s\"'\r\n" % reply)
        assert settled(b) == b"MSG _INBOX.r 9 3\r\nyes\r\n"


def test_nats_py_request_across_accounts(kind: str, serve: Serve) -> None:
    async def main(port: int) -> None:
        a = await nats.connect(f"nats://a:a@127.0.0.1:{port}")
        b = await nats.connect(f"nats://b:b@127.0.0.1:{port}")
        try:
            seen: list[str] = []

            async def double(msg: nats.aio.msg.Msg) -> None:
                seen.append(msg.subject)
                await msg.respond(msg.data * 2)

            await a.subscribe("svc.double", cb=double)
            await a.flush()
            assert await first_answer(b, "b.svc.double", b"ab") == b"abab"
            assert set(seen) == {"svc.double"}
            with pytest.raises(nats.errors.NoRespondersError):
                await b.request("nobody.home", b"", timeout=5)
        finally:
            await a.close()
            await b.close()

    with serve(kind, CONF) as server:
        asyncio.run(main(server.port))


def test_reload_adds_and_removes_an_import(kind: str, tmp_path: Path) -> None:
    without = CONF.replace('{service: {account: A, subject: "who"}, share: true},', "")
    with ConfServer(kind, tmp_path / "server.conf", without) as server, \
            user(server, "a") as a, user(server, "b") as b:
        settled(a, b"SUB who 1\r\n")
        assert settled(b, b"SUB _INBOX.w 9\r\nPUB who _INBOX.w 0\r\n\r\n").startswith(
            b"HMSG _INBOX.w 9 35 35\r\nNATS/1.0 503\r\n")
        server.reload(CONF)
        assert settled(b, b"PUB who _INBOX.w 0\r\n\r\n") == b""
        [(_, subject, _, _, _)] = messages(settled(a))
        assert subject == b"who"
        server.reload(without)
        assert b"503" in settled(b, b"PUB who _INBOX.w 0\r\n\r\n")
        assert settled(a) == b""


def test_pynats_client_request_across_accounts(kind: str, serve: Serve) -> None:
    import pynats
    from pynats.client.msg import Msg
    from pynats.errors import NoRespondersError

    async def main(port: int) -> None:
        async with await pynats.connect(f"nats://a:a@127.0.0.1:{port}") as a, \
                await pynats.connect(f"nats://b:b@127.0.0.1:{port}") as b:
            headers: list[dict[str, object]] = []

            def upper(msg: Msg) -> None:
                headers.append(json.loads(msg.headers["Nats-Request-Info"]))
                msg.respond(msg.data.upper())

            a.subscribe("svc.upper", cb=upper)
            await a.flush()
            answer = await b.request("b.svc.upper", b"abc", timeout=5)
            assert answer.data == b"ABC" and headers[0]["acc"] == "B"
            with pytest.raises(NoRespondersError):
                await b.request("nobody.home", b"", timeout=5)

    with serve(kind, CONF) as server:
        asyncio.run(main(server.port))
