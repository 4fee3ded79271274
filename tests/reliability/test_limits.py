"""Limits under memory pressure: what one client can make the server hold in memory.

* ``max_pending`` bounds the output the server queues for a client whose socket is full;
* ``max_control_line`` bounds an unfinished control line;
* ``max_payload`` bounds an unfinished message, and an oversized one is refused from
  its control line, before its payload is read.

The server's RSS is sampled throughout (``/proc/<pid>/status``); growth is asserted
against the limit times the number of clients, plus a fixed allowance for the
interpreter's own buffers.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from support import (
    KINDS,
    Recorder,
    Sampler,
    Scale,
    close_all,
    connect_many,
    mib,
    raw_connect,
    reference_in_full_only,
    server_pid,
    start,
    sync,
    watch_closes,
)

MIB = 1 << 20
ALLOWANCE = 24 * MIB  # buffers, caches and allocator slack of a busy server


@pytest.mark.parametrize("kind", KINDS)
def test_max_pending_bounds_memory(kind: str, scale: Scale, record: Recorder,
                                   tmp_path: Path) -> None:
    """Publishing far more than max_pending to a subscriber that does not read: it is cut
    off, and the server's memory grows by about max_pending, not by what was sent."""
    limits = [2 * MIB] if not scale.full else [2 * MIB, 16 * MIB, 64 * MIB]
    payload = b"p" * 65536
    frame = b"PUB big %d\r\n%s\r\n" % (len(payload), payload)
    figures = {}
    for limit in limits:
        sent = max(10 * limit, scale.n(64, 256) * MIB)
        conf = f"max_pending: {limit}\nmax_payload: 65536\n"
        with start(kind, tmp_path, conf) as server:
            stuck = raw_connect(server.port, subscribe=b"SUB big 1\r\n", rcvbuf=4096)
            mark = len(server.lines)
            with Sampler(server_pid(server), 0.02) as rss, raw_connect(server.port) as pub:
                time.sleep(0.1)
                for _ in range(sent // len(payload)):
                    pub.send(frame)
                sync(pub)
            cut = server.wait_for_log("Slow Consumer Detected", 10.0, start=mark)
            stuck.close()
        growth = rss.peak() - rss.first()
        figures[f"{limit // MIB}MiB"] = {"sent_mib": mib(sent), "rss_growth_mib": mib(growth),
                                        "cut": cut is not None}
        assert cut is not None, "the stuck subscriber was never cut off"
        assert growth < 2 * limit + ALLOWANCE, (limit, growth)
    record.update(kind=kind, limits=figures)


@pytest.mark.parametrize("kind", KINDS)
def test_max_control_line_bounds_memory(kind: str, scale: Scale, record: Recorder,
                                        tmp_path: Path) -> None:
    """Clients streaming an endless control line are closed once it passes
    max_control_line (4 KiB); the server never buffers the rest."""
    clients = scale.n(20, 200)
    chunk = b"SUB " + b"a" * 65532
    with start(kind, tmp_path, "max_control_line: 4096\n") as server:
        with Sampler(server_pid(server), 0.02) as rss:
            socks = connect_many(server.port, clients, b'CONNECT {"verbose":false}\r\n')
            refused = 0
            for sock in socks:
                sock.settimeout(5)
                try:
                    for _ in range(64):  # up to 4 MiB each, if the server let it in
                        sock.sendall(chunk)
                except OSError:
                    refused += 1
            result = watch_closes(socks, 10.0)
            close_all(socks)
        closed = sum(1 for t, _ in result.values() if t is not None)
    growth = rss.peak() - rss.first()
    record.update(kind=kind, clients=clients, offered_mib_each=4, closed=closed,
                  send_refused=refused, rss_growth_mib=mib(growth))
    assert closed == clients
    assert growth < clients * 4096 * 4 + ALLOWANCE


@pytest.mark.parametrize("kind", KINDS)
def test_max_payload_bounds_memory(kind: str, scale: Scale, record: Recorder,
                                   tmp_path: Path) -> None:
    """An oversized PUB is refused on its control line; unfinished PUBs just under
    max_payload (1 MiB) cost at most max_payload each, and go when the keepalive fails."""
    reference_in_full_only(kind, scale)
    clients = scale.n(20, 200)
    conf = 'max_payload: 1048576\nping_interval: "1s"\nping_max: 2\n'
    with start(kind, tmp_path, conf) as server:
        pid = server_pid(server)
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as big:
            big.sendall(b'CONNECT {"verbose":false}\r\nPUB foo 100000000\r\n')
            began = time.monotonic()
            answer = b""
            big.settimeout(5)
            while b"Maximum Payload" not in answer:
                data = big.recv(4096)
                if not data:
                    break
                answer += data
            refused_after = time.monotonic() - began
        assert b"-ERR 'Maximum Payload Violation'" in answer, answer
        half = b"h" * (1 << 19)
        with Sampler(pid, 0.02) as rss:
            socks = connect_many(server.port, clients,
                                 b'CONNECT {"verbose":false}\r\nPUB foo 1000000\r\n' + half)
            result = watch_closes(socks, 15.0)
            close_all(socks)
    times = [t for t, _ in result.values() if t is not None]
    growth = rss.peak() - rss.first()
    record.update(kind=kind, oversized_refused_s=refused_after, clients=clients,
                  held_each_kib=len(half) // 1024, rss_growth_mib=mib(growth),
                  unfinished_cut=len(times), cut_within_s=max(times) if times else None)
    assert len(times) == clients
    assert growth < clients * (1 << 20) + ALLOWANCE
