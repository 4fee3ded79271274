"""Imports across a cluster: requester and responder, or publisher and importer, apart.

The node that takes the request keeps the response mapping, so the answer has to come
back to it: it declares interest in the exporting account's ``_R_.`` subjects, which its
peers hear as ``RS+``. Pairs of pynats and nats-server nodes both ways, with nats-py
clients, and the all-nats-server pair as the control. A stream import works the same
way: a node declares interest in the exporting account's stream subjects, so a message
published there on a peer comes to it and reaches the importers' subscribers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest

from harness import ServerProcess
from request_support import first_answer
from route_support import start_node

pytestmark = pytest.mark.interop

ACCOUNTS = """
accounts {
  A: { users: [{user: a, password: a}],
       exports: [{service: "svc.>"}, {service: "feed", response_type: stream},
                 {stream: "news.>"}] }
  B: { users: [{user: b, password: b}],
       imports: [{service: {account: A, subject: "svc.>"}, to: "b.svc.>"},
                 {service: {account: A, subject: "feed"}},
                 {stream: {account: A, subject: "news.>"}, prefix: from_a}] }
}
"""
PAIRS = [("pynats", "pynats"), ("pynats", "nats-server"), ("nats-server", "pynats"),
         ("nats-server", "nats-server")]


@pytest.fixture(params=PAIRS, ids=["-".join(p) for p in PAIRS])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Requester's node first, responder's second, routed to each other."""
    first_kind, second_kind = request.param
    top = "debug: true\n" + ACCOUNTS
    first, port = start_node(first_kind, tmp_path, "n1", "", top)
    second, _ = start_node(second_kind, tmp_path, "n2", f"routes: [nats://127.0.0.1:{port}]", top)
    try:
        yield [first, second]
    finally:
        second.stop()
        first.stop()


def logs(what: str, pair: list[ServerProcess]) -> str:
    """``what``, then both nodes' debug logs: a failure here shows how the route went."""
    return "\n".join([what, *pair[0].lines, "--", *pair[1].lines])


@contextlib.asynccontextmanager
async def clients(pair: list[ServerProcess]) -> AsyncIterator[tuple[nats.NATS, nats.NATS]]:
    """A client of account A on the second node and one of B on the first."""
    a = await nats.connect(f"nats://a:a@127.0.0.1:{pair[1].port}")
    b = await nats.connect(f"nats://b:b@127.0.0.1:{pair[0].port}")
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


def test_request_answered_on_another_node(pair: list[ServerProcess]) -> None:
    async def main() -> None:
        async with clients(pair) as (a, b):
            async def answer(msg: nats.aio.msg.Msg) -> None:
                await msg.respond(msg.subject.encode())

            await a.subscribe("svc.>", cb=answer)
            await a.flush()
            assert await first_answer(b, "b.svc.where") == b"svc.where"
            for n in range(20):  # every answer finds its way back, not just the first
                reply = await b.request(f"b.svc.n{n}", b"", timeout=5)
                assert reply.data == f"svc.n{n}".encode()

    asyncio.run(main())


def test_stream_answers_cross_back(pair: list[ServerProcess]) -> None:
    async def main() -> None:
        async with clients(pair) as (a, b):
            async def answer(msg: nats.aio.msg.Msg) -> None:
                for part in (b"1", b"2", b"3"):
                    await a.publish(msg.reply, part)

            await a.subscribe("feed", cb=answer)
            await a.flush()
            await first_answer(b, "feed")
            inbox = b.new_inbox()
            sub = await b.subscribe(inbox)
            await b.publish("feed", b"", reply=inbox)
            got = [(await sub.next_msg(timeout=5)).data for _ in range(3)]
            assert got == [b"1", b"2", b"3"]

    asyncio.run(main())


def test_stream_import_reaches_subscribers_on_another_node(pair: list[ServerProcess]) -> None:
    async def main() -> None:
        async with clients(pair) as (a, b):
            sub = await b.subscribe("from_a.news.>")
            await b.flush()
            deadline = time.monotonic() + 10
            while True:  # until the interest has crossed the route
                await a.publish("news.probe", b"")
                await a.flush()
                try:
                    await sub.next_msg(timeout=0.1)
                    break
                except nats.errors.TimeoutError:
                    assert time.monotonic() < deadline, logs("no stream message crossed", pair)
            for n in range(5):
                await a.publish(f"news.n{n}", str(n).encode())
            await a.flush()
            got = []
            while len(got) < 5:
                msg = await sub.next_msg(timeout=5)
                if msg.subject != "from_a.news.probe":
                    got.append((msg.subject, msg.data))
            assert got == [(f"from_a.news.n{n}", str(n).encode()) for n in range(5)]

    asyncio.run(main())
