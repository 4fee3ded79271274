"""Cluster authorization on routes: credentials from the route URL, checked in CONNECT.

Both servers are tested alike: a peer without the cluster's user and password (or with
wrong ones) gets ``-ERR 'Authorization Violation'``; a node whose route URL carries
them joins, and the INFO says ``auth_required``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import RawClient, ServerProcess
from route_support import delivered_across, start_node

pytestmark = pytest.mark.interop

AUTH = "authorization { user: ruser, password: s3cret, timeout: 1 }"


@pytest.mark.parametrize("kind", ["pynats", "nats-server"])
@pytest.mark.parametrize("creds", [{}, {"user": "ruser", "pass": "wrong"},
                                   {"user": "other", "pass": "s3cret"}],
                         ids=["none", "wrong-pass", "wrong-user"])
def test_bad_route_credentials_are_refused(kind: str, creds: dict[str, str], tmp_path: Path,
                                           nodes: list[ServerProcess]) -> None:
    seed, port = start_node(kind, tmp_path, "seed", AUTH)
    nodes.append(seed)
    with RawClient(port) as raw:
        assert json.loads(raw.info[5:])["auth_required"] is True
        connect = {"name": "NX", "cluster": "C", "verbose": False, **creds}
        raw.send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        assert raw.read_until_closed() == b"-ERR 'Authorization Violation'\r\n"


@pytest.mark.parametrize("kind", ["pynats", "nats-server"])
def test_silent_route_peer_times_out(kind: str, tmp_path: Path,
                                     nodes: list[ServerProcess]) -> None:
    seed, port = start_node(kind, tmp_path, "seed", AUTH)
    nodes.append(seed)
    with RawClient(port) as raw:
        assert raw.read_until_closed(timeout=5.0) == b"-ERR 'Authentication Timeout'\r\n"


@pytest.mark.parametrize(("seed_kind", "joiner_kind"), [
    ("pynats", "pynats"), ("pynats", "nats-server"), ("nats-server", "pynats")])
def test_credentials_in_the_route_url_join(seed_kind: str, joiner_kind: str, tmp_path: Path,
                                           nodes: list[ServerProcess]) -> None:
    seed, port = start_node(seed_kind, tmp_path, "seed", AUTH)
    nodes.append(seed)
    joiner, _ = start_node(joiner_kind, tmp_path, "joiner",
                           f"{AUTH}\nroutes: [nats-route://ruser:s3cret@127.0.0.1:{port}]")
    nodes.append(joiner)
    assert delivered_across(joiner, seed)
    assert delivered_across(seed, joiner)
