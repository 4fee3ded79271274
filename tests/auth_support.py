"""Helpers shared by the authentication, permissions and auth-reload tests.

Every server is started from a configuration file (both kinds read the same one), with
``-D`` so that debug lines (auth timeouts, closes) can be compared. Log lines are
compared without their timestamp, pid and connection address, which differ.
"""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import bcrypt
import pytest

from harness import RawClient, ServerProcess

#: Both servers: every expectation in these tests is the reference's.
KINDS = ["pynats", "nats-server"]

_LOG_RE = re.compile(r"^\[\d+\] \S+ \S+ \[(\w+)\] (.*)$")
_CONN_RE = re.compile(r"^[0-9.:\[\]a-f]+:\d+ - cid:\d+ - ")


def bcrypt_hash(secret: str, prefix: bytes = b"2a") -> str:
    """A cheap (cost 4) bcrypt hash of ``secret``, as ``nats server passwd`` would give."""
    return bcrypt.hashpw(secret.encode(), bcrypt.gensalt(4, prefix=prefix)).decode()


class ConfServer:
    """A server of ``kind`` started from a configuration file it can reload."""

    def __init__(self, kind: str, path: Path, text: str, *args: str):
        self.path = path
        path.write_text(text)
        self.server = ServerProcess(kind, ["-c", str(path), "-D", *args])

    def __enter__(self) -> ConfServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def port(self) -> int:
        return self.server.port

    def reload(self, text: str) -> list[str]:
        """Rewrite the file, SIGHUP, wait for the outcome; return the log lines it caused."""
        self.path.write_text(text)
        mark = len(self.server.lines)
        self.server.signal(signal.SIGHUP)
        done = self.server.wait_for_log("eload", timeout=5, start=mark)
        assert done is not None, "\n".join(self.server.lines[mark:])
        if "Failed" not in done:
            assert self.server.wait_for_log("Reloaded server configuration", 5, mark)
        return self.server.lines[mark:]

    def messages(self, start: int = 0) -> list[tuple[str, str]]:
        """``(level, text)`` of the log lines from ``start``, connection prefix removed."""
        return messages(self.server.lines[start:])

    def wait_for(self, text: str, start: int = 0) -> None:
        assert self.server.wait_for_log(text, 5, start) is not None, "\n".join(
            self.server.lines[start:])


def messages(lines: list[str]) -> list[tuple[str, str]]:
    """``(level, text)`` for log lines, without timestamps and connection addresses."""
    found = []
    for line in lines:
        match = _LOG_RE.match(line)
        if match:
            found.append((match.group(1), _CONN_RE.sub("", match.group(2))))
    return found


def connect_json(**fields: object) -> bytes:
    """A CONNECT line (verbose and pedantic off unless given) followed by PING."""
    options = {"verbose": False, "pedantic": False, **fields}
    return b"CONNECT " + json.dumps(options).encode() + b"\r\nPING\r\n"


def login(port: int, **fields: object) -> RawClient:
    """A raw client that sent CONNECT with ``fields`` and got its PONG."""
    client = RawClient(port)
    client.send(connect_json(**fields))
    client.expect(b"PONG\r\n")
    return client


def refused(port: int, **fields: object) -> bytes:
    """Everything the server sends after CONNECT with ``fields`` until it closes."""
    with RawClient(port) as client:
        client.send(connect_json(**fields))
        return client.read_until_closed()


def received(client: RawClient, quiet: float = 0.3) -> bytes:
    """What arrives until the server is quiet, without its keepalive PINGs.

    Both servers send a first PING about two seconds after CONNECT; a slow run may see
    it in the middle of a test.
    """
    return client.read_available(quiet).replace(b"PING\r\n", b"")


def until_pong(client: RawClient) -> bytes:
    """Everything up to the PONG that answers our PING, the server's own PINGs left out."""
    lines = []
    while (line := client.read_line()) != b"PONG\r\n":
        if line != b"PING\r\n":
            lines.append(line)
    return b"".join(lines) + b"PONG\r\n"


def info_of(client: RawClient) -> dict[str, object]:
    assert client.info.startswith(b"INFO ")
    parsed: dict[str, object] = json.loads(client.info[5:])
    return parsed


__all__ = [
    "KINDS", "ConfServer", "bcrypt_hash", "connect_json", "info_of", "login", "messages",
    "received", "refused", "until_pong",
]


#: ``serve(kind, conf_text, *args)``: a running server from :func:`shared_servers`.
Serve = Callable[..., AbstractContextManager["ConfServer"]]


def shared_servers(tmp_path_factory: pytest.TempPathFactory, label: str) -> Iterator[Serve]:
    """Body of a module-scoped ``serve`` fixture: one server per kind, text and args.

    For test modules whose tests change only connection-scoped state, so one process per
    configuration can serve all of them. Every server is stopped when the module ends.
    """
    running: dict[tuple[str, ...], ConfServer] = {}

    @contextmanager
    def get(kind: str, text: str, *args: str) -> Iterator[ConfServer]:
        key = (kind, text, *args)
        if key not in running:
            path = tmp_path_factory.mktemp(label) / "server.conf"
            running[key] = ConfServer(kind, path, text, *args).__enter__()
        yield running[key]

    yield get
    for server in running.values():
        server.__exit__()
