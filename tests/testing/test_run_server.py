"""run_server in both modes, options, restart on the same port, inspection, recording."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.request
from pathlib import Path

import nats
import pytest

import pynats.client as pc
from pynats.errors import ConfigError
from pynats.testing import run_server


def test_thread_mode_serves_a_sync_test_with_nats_py() -> None:
    with run_server() as srv:
        assert srv.url == f"nats://127.0.0.1:{srv.port}" and srv.port > 0

        async def main() -> bytes:
            nc = await nats.connect(srv.url, name="sync-user")
            sub = await nc.subscribe("greet")
            await nc.publish("greet", b"hello")
            msg = await sub.next_msg(timeout=2)
            assert srv.client_count == 1
            assert srv.client("sync-user").lang == "python3"
            await nc.close()
            return bytes(msg.data)

        assert asyncio.run(main()) == b"hello"
    assert not srv.running


async def test_async_mode_runs_on_the_callers_loop_with_pynats_client() -> None:
    async with run_server() as srv:
        assert srv.server.loop is asyncio.get_running_loop()
        nc = await pc.connect(srv.url, name="aio")
        sub = nc.subscribe("jobs.*", queue="workers")
        await srv.wait_for_subscription("jobs.*", "workers", client="aio")
        [info] = srv.subscriptions("aio")
        assert (info.subject, info.queue) == ("jobs.*", "workers")
        nc.publish("jobs.1", b"x")
        assert (await sub.next_msg(2)).data == b"x"
        await nc.close()
        await srv.wait_for_clients(0)


def test_any_server_option_is_passed_through() -> None:
    with run_server(max_payload=512, authorization={"token": "s3cr3t"}) as srv:
        assert srv.options.max_payload == 512

        async def main() -> int:
            with pytest.raises(Exception):  # noqa: B017 - nats-py raises several kinds
                await nats.connect(srv.url, allow_reconnect=False, connect_timeout=1,
                                   max_reconnect_attempts=0)
            nc = await nats.connect(srv.url, token="s3cr3t")
            size = nc.max_payload
            await nc.close()
            return size

        assert asyncio.run(main()) == 512
    with pytest.raises(TypeError):
        run_server(no_such_option=1)


def test_a_configuration_file_is_the_base_of_the_options(tmp_path: Path) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text("port: 4222\nmax_payload: 2048\nauthorization { token: t0k }\n")
    with run_server(config_file=str(conf), max_control_line=512) as srv:
        assert srv.port != 4222  # a free port all the same
        assert (srv.options.max_payload, srv.options.max_control_line) == (2048, 512)
        assert srv.options.authorization.token == "t0k"
        conf.write_text("port: 4222\nmax_payload: 4096\nauthorization { token: t0k }\n")
        srv.reload()  # the file's port stays overridden, as a command-line flag would
        assert srv.server.options.max_payload == 4096
        conf.write_text("port: 4222\nmax_payload: 8192\nauthorization { token: t0k }\n")
        srv.signal(signal.SIGHUP)
        assert srv.server.options.max_payload == 8192
        conf.write_text("max_payload: [")
        with pytest.raises(ConfigError):
            srv.reload()


def test_restart_keeps_the_port_and_the_client_comes_back() -> None:
    with run_server() as srv:
        port = srv.port

        async def main() -> None:
            reconnected = asyncio.Event()

            async def on_reconnect() -> None:
                reconnected.set()

            nc = await nats.connect(srv.url, reconnect_time_wait=0.05,
                                    reconnected_cb=on_reconnect, name="back")
            sub = await nc.subscribe("again")
            await nc.flush()
            await asyncio.to_thread(srv.restart)
            assert srv.port == port
            await asyncio.wait_for(reconnected.wait(), 5)
            await srv.aio.wait_for_subscription("again", client="back")
            await nc.publish("again", b"1")
            assert (await sub.next_msg(2)).data == b"1"
            await nc.close()

        asyncio.run(main())
        assert srv.total_connections == 1  # counters are the new server's


async def test_kill_resets_clients_and_restart_serves_them_again() -> None:
    async with run_server() as srv:
        lost = asyncio.Event()

        async def on_disconnect() -> None:
            lost.set()

        nc = await pc.connect(srv.url, reconnect=pc.ReconnectOptions(time_wait=0.05),
                              callbacks=pc.Callbacks(disconnected=on_disconnect))
        await nc.flush()
        await srv.kill()
        await asyncio.wait_for(lost.wait(), 5)
        assert not srv.running
        await srv.restart()
        await srv.wait_for_clients(1)
        await nc.flush(timeout=2)
        await nc.close()


def test_recording_holds_what_clients_published() -> None:
    with run_server() as srv:
        rec = srv.record("orders.>")

        async def main() -> None:
            nc = await nats.connect(srv.url)
            await nc.publish("orders.new", b"one", reply="r.1")
            await nc.publish("orders.new", b"two", headers={"K": "v"})
            await nc.publish("other", b"not this")
            await nc.flush()
            await nc.close()

        asyncio.run(main())
        srv.wait_for_messages(rec, 2)
        first, second = rec.messages
        assert (first.subject, first.reply, first.payload) == ("orders.new", "r.1", b"one")
        assert second.headers is not None and second.headers.get("K") == "v"
        assert rec.payloads == [b"one", b"two"]
        rec.close()
        srv.wait_until(lambda: not srv.server.accounts["$G"].index.count)


def test_inspection_counts_and_subscriptions() -> None:
    with run_server() as srv:

        async def main() -> None:
            a = await nats.connect(srv.url, name="a")
            b = await nats.connect(srv.url, name="b")
            await a.subscribe("x")
            await a.subscribe("y", queue="q")
            await b.subscribe("z")
            await a.flush()
            await b.flush()
            assert srv.client_count == 2
            assert {(s.subject, s.queue) for s in srv.subscriptions("a")} == {
                ("x", None), ("y", "q")}
            assert [s.subject for s in srv.subscriptions(b.client_id)] == ["z"]
            assert len(srv.subscriptions()) == 3
            with pytest.raises(LookupError):
                srv.client("nobody")
            await a.close()
            await b.close()

        asyncio.run(main())
        srv.wait_for_clients(0)
        assert srv.total_connections == 2


def test_start_up_is_fast() -> None:
    times = []
    for _ in range(5):
        began = time.perf_counter()
        with run_server():
            times.append(time.perf_counter() - began)
    assert min(times) < 0.05, times


async def test_record_published_says_who_published_and_subscribes_nothing() -> None:
    async with run_server() as srv:
        everyone = srv.record_published("calc.*")
        only_b = srv.record_published(">", "b")
        a = await nats.connect(srv.url, name="a")
        b = await pc.connect(srv.url, name="b")
        await a.publish("calc.add", b"1")
        b.publish("calc.mul", b"2", headers={"X": "y"})
        b.publish("elsewhere", b"3")
        with pytest.raises(nats.errors.NoRespondersError):  # still nobody listening
            await a.request("calc.div", b"4", timeout=1)
        await b.flush()
        await srv.wait_for_messages(everyone, 3)
        by_subject = {m.subject: m for m in everyone.messages}
        assert {(m.client_name, s) for s, m in by_subject.items()} == {
            ("a", "calc.add"), ("b", "calc.mul"), ("a", "calc.div")}
        headers = by_subject["calc.mul"].headers
        assert headers is not None and headers.get("X") == "y"
        assert by_subject["calc.add"].client_id == a.client_id
        assert [m.payload for m in only_b.messages] == [b"2", b"3"]
        everyone.close()
        only_b.close()
        assert "publish" not in srv.server.router.__dict__
        await a.close()
        await b.close()


def test_monitoring_on_a_free_port_survives_a_restart() -> None:
    with run_server(http_port=-1) as srv:
        port = srv.http_port
        assert port > 0

        def varz() -> dict[str, object]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/varz", timeout=5) as r:
                return dict(json.load(r))

        assert varz()["port"] == srv.port
        srv.restart()
        assert srv.http_port == port
        assert varz()["server_id"] == srv.server_id
