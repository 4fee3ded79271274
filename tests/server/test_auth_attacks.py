"""Hostile clients against an authenticated server, on pynats and nats-server alike.

Each attack is checked for what it must not get (in, or at other tenants' subjects) and
for what it must not cost the others: a logged-in client in another account keeps
round-tripping PING/PONG and receiving its messages while the attack runs.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from auth_support import KINDS, ConfServer, connect_json, login, refused, until_pong
from harness import RawClient
from tls_support import PKI, make_pki

pytestmark = pytest.mark.interop

CONF = """
accounts {
  A { users: [ {user: alice, password: apass,
                permissions: {publish: {deny: "secret.>"}, subscribe: {deny: "secret.>"}}} ] }
  B { users: [ {user: bob, password: bpass} ] }
}
max_control_line: 1024
authorization { timeout: 1 }
"""


@pytest.fixture(params=KINDS)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ConfServer]:
    with ConfServer(request.param, tmp_path / "attack.conf", CONF) as server:
        yield server


def round_trip_ms(client: RawClient) -> float:
    start = time.monotonic()
    client.send(b"PING\r\n")
    until_pong(client)
    return (time.monotonic() - start) * 1000


def test_a_flood_of_failed_logins_gets_nobody_in_and_slows_nobody(served: ConfServer) -> None:
    with login(served.port, user="bob", **{"pass": "bpass"}) as bob:
        failures: list[bytes] = []

        def attack() -> None:
            for i in range(40):
                failures.append(refused(served.port, user="bob", **{"pass": f"guess{i}"}))

        threads = [threading.Thread(target=attack) for _ in range(3)]
        for thread in threads:
            thread.start()
        worst = max(round_trip_ms(bob) for _ in range(20))
        for thread in threads:
            thread.join(60)
        assert len(failures) == 120
        assert set(failures) == {b"-ERR 'Authorization Violation'\r\n"}
        assert worst < 1000, worst  # the honest client was never held up for long
        assert round_trip_ms(bob) < 1000


def test_pub_and_sub_before_connect_reach_nothing(served: ConfServer) -> None:
    with login(served.port, user="bob", **{"pass": "bpass"}) as bob:
        bob.send(b"SUB > 1\r\nPING\r\n")
        until_pong(bob)
        for first in (b"PUB orders 2\r\nhi\r\n", b"SUB > 9\r\nPUB x 1\r\ny\r\n"):
            with RawClient(served.port) as intruder:
                intruder.send(first)
                assert intruder.read_until_closed() == b"-ERR 'Authorization Violation'\r\n"
        bob.send(b"PING\r\n")
        assert until_pong(bob) == b"PONG\r\n"  # nothing was delivered


def test_oversized_connect_is_refused(served: ConfServer) -> None:
    with login(served.port, user="bob", **{"pass": "bpass"}) as bob:
        with RawClient(served.port) as big:
            big.send(connect_json(user="bob", **{"pass": "bpass"}, name="x" * 4096))
            assert big.read_until_closed() == b"-ERR 'maximum control line exceeded'\r\n"
        assert round_trip_ms(bob) < 1000


def test_other_accounts_and_denied_subjects_are_out_of_reach(served: ConfServer) -> None:
    with login(served.port, user="bob", **{"pass": "bpass"}) as bob, \
            login(served.port, user="alice", **{"pass": "apass"}) as alice:
        bob.send(b"SUB > 1\r\nPING\r\n")
        until_pong(bob)
        alice.send(b"SUB secret.x 5\r\nPUB secret.x 1\r\nx\r\nPUB orders 1\r\ny\r\nPING\r\n")
        answer = until_pong(alice)
        assert b"Permissions Violation for Subscription to \"secret.x\"" in answer
        assert b"Permissions Violation for Publish to \"secret.x\"" in answer
        assert b"MSG" not in answer
        bob.send(b"PING\r\n")
        assert until_pong(bob) == b"PONG\r\n"  # account A's publish never reached B


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("attack-pki"))


@pytest.mark.parametrize("kind", KINDS)
def test_a_stalled_tls_handshake_is_cut_off(kind: str, pki: PKI, tmp_path: Path) -> None:
    conf = (f'tls {{ cert_file: "{pki.server.cert}", key_file: "{pki.server.key}", '
            f"timeout: 0.5 }}\n")
    with ConfServer(kind, tmp_path / "tls.conf", conf) as served:
        context = pki.client_context()
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as honest_raw:
            honest_raw.recv(4096)  # INFO, in clear before the upgrade
            with context.wrap_socket(honest_raw, server_hostname="localhost") as honest:
                honest.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
                assert honest.recv(4096).endswith(b"PONG\r\n")
                stalled = [socket.create_connection(("127.0.0.1", served.port), timeout=5)
                           for _ in range(20)]
                try:
                    for sock in stalled:  # read INFO, then never start the handshake
                        sock.recv(4096)
                    honest.sendall(b"PING\r\n")
                    assert honest.recv(4096) == b"PONG\r\n"
                    deadline = time.monotonic() + 10
                    for sock in stalled:
                        sock.settimeout(max(deadline - time.monotonic(), 0.1))
                        assert sock.recv(4096) == b""  # closed by the server
                finally:
                    for sock in stalled:
                        sock.close()
                honest.sendall(b"PING\r\n")
                assert honest.recv(4096) == b"PONG\r\n"
