"""Helpers shared by the route tests: start a clustered node, check a message crosses.

Both work for pynats-server and nats-server alike (real processes, 127.0.0.1, random
ports); waits are bounded and end on a log line or on a delivered message.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from harness import RawClient, ServerProcess

ROUTE_RE = re.compile(r"Listening for route connections on (\S+):(\d+)")


def start_node(kind: str, tmp_path: Path, name: str, cluster: str,
               top: str = "") -> tuple[ServerProcess, int]:
    """A node named ``name`` with ``cluster`` inside its cluster block, ``top`` outside."""
    conf = tmp_path / f"{name}.conf"
    conf.write_text(f"server_name: {name}\n{top}\ncluster {{ name: C, listen: 127.0.0.1:-1\n"
                    f"{cluster} }}\n")
    server = ServerProcess(kind, ["-c", str(conf)]).start()
    line = server.wait_for_log("Listening for route connections on", 10.0)
    match = ROUTE_RE.search(line or "")
    assert match is not None, server.lines
    return server, int(match.group(2))


def delivered_across(subscriber: ServerProcess, publisher: ServerProcess,
                     timeout: float = 10.0) -> bool:
    """Whether a message published on one node reaches a subscriber on the other."""
    with RawClient(subscriber.port) as sub, RawClient(publisher.port) as pub:
        sub.send(b'CONNECT {"verbose":false}\r\nSUB probe 1\r\n')
        sub.ping_pong()
        pub.send(b'CONNECT {"verbose":false}\r\n')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # interest takes a moment to cross the route
            pub.send(b"PUB probe 2\r\nhi\r\n")
            pub.ping_pong()
            if b"MSG probe 1 2" in sub.read_available(0.1):
                return True
    return False


__all__ = ["ROUTE_RE", "delivered_across", "start_node"]
