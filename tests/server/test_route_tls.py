"""TLS on routes: mutual, TLS first, between pynats and nats-server in every direction.

nats-server verifies both ends of a route whatever ``verify`` says, and nothing crosses
a TLS route port in clear; the certificates are made by the test (``tls_support``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import RawClient, ServerProcess
from route_support import delivered_across, start_node
from tls_support import PKI, make_pki

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("route-pki"))


def tls_block(pki: PKI, extra: str = "") -> str:
    return (f'tls {{ cert_file: "{pki.node.cert}", key_file: "{pki.node.key}", '
            f'ca_file: "{pki.ca}" {extra} }}')


@pytest.mark.parametrize(("seed_kind", "joiner_kind"), [
    ("pynats", "pynats"), ("pynats", "nats-server"), ("nats-server", "pynats")])
def test_tls_route_carries_messages(pki: PKI, tmp_path: Path, nodes: list[ServerProcess],
                                    seed_kind: str, joiner_kind: str) -> None:
    seed, port = start_node(seed_kind, tmp_path, "seed", tls_block(pki))
    nodes.append(seed)
    joiner, _ = start_node(joiner_kind, tmp_path, "joiner",
                           tls_block(pki) + f"\nroutes: [nats-route://127.0.0.1:{port}]")
    nodes.append(joiner)
    assert delivered_across(joiner, seed)
    assert delivered_across(seed, joiner)


@pytest.mark.parametrize("kind", ["pynats", "nats-server"])
def test_nothing_in_clear_on_a_tls_route_port(pki: PKI, tmp_path: Path,
                                              nodes: list[ServerProcess], kind: str) -> None:
    seed, port = start_node(kind, tmp_path, "seed", tls_block(pki))
    nodes.append(seed)
    with RawClient(port, timeout=5.0, read_info=False) as raw:
        raw.send(b'CONNECT {"name":"NX","cluster":"C"}\r\n')
        assert b"INFO" not in raw.read_until_closed(timeout=10.0)


def test_a_node_without_the_ca_cannot_join(pki: PKI, tmp_path: Path,
                                          nodes: list[ServerProcess]) -> None:
    seed, port = start_node("pynats", tmp_path, "seed", tls_block(pki))
    nodes.append(seed)
    stranger = (f'tls {{ cert_file: "{pki.stranger.cert}", key_file: "{pki.stranger.key}", '
                f'ca_file: "{pki.ca}" }}')
    joiner, _ = start_node("pynats", tmp_path, "joiner",
                           stranger + f"\nroutes: [nats-route://127.0.0.1:{port}]")
    nodes.append(joiner)
    assert not delivered_across(seed, joiner, timeout=2.0)
