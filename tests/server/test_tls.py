"""TLS on the client port, next to the reference nats-server.

Each behaviour runs against pynats and the real nats-server with the same configuration
and the same expectations: the upgrade after INFO, TLS first (with and without a
fallback delay), optional TLS (``allow_non_tls``), client certificate verification and
``verify_and_map``, pinned certificates, the handshake timeout, what a plaintext client
gets on a TLS port (nothing: nats-server closes without ``-ERR``), the ``/varz`` and
``/connz`` fields, ``-t`` on bad ``tls`` blocks and the ``--tls*`` flags. The unit tests
at the end cover the certificate names (Go's formatting, LDAP matching), the cipher
table and the option merging.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from harness import ServerProcess, nats_server_binary
from pynats.errors import ConfigError
from pynats.server import certs, tls
from pynats.server.config.load import merge, merge_tls, resolve
from pynats.server.config.options import ServerOptions, TLSOptions
from pynats.server.flags import parse_args
from tls_support import ALICE_DN, ALICE_EMAIL, PKI, make_pki

KINDS = ["pynats", "nats-server"]
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_block(pki: PKI, *lines: str) -> str:
    body = "".join(f"  {line}\n" for line in lines)
    return (f'tls {{\n  cert_file: "{pki.server.cert}"\n  key_file: "{pki.server.key}"\n'
            f"{body}}}\n")


def start(kind: str, tmp_path: Path, conf: str, *args: str) -> ServerProcess:
    path = tmp_path / f"{kind}.conf"
    path.write_text(conf)
    return ServerProcess(kind, ["-c", str(path), "-m", "-1", *args]).start()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Servers a test starts with :func:`start` are stopped afterwards."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def get_json(server: ServerProcess, path: str) -> Any:
    url = f"http://127.0.0.1:{server.http_port}{path}"
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return json.load(response)


def connection(server: ServerProcess, state: str = "open") -> dict[str, Any]:
    """The last connection ``/connz`` lists in ``state`` (with auth details)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        conns = get_json(server, f"/connz?state={state}&auth=1")["connections"]
        if conns or time.monotonic() > deadline:
            assert conns, f"no {state} connection"
            found: dict[str, Any] = conns[-1]
            return found
        time.sleep(0.05)


async def connect(server: ServerProcess, context: ssl.SSLContext | None, *,
                  first: bool = False, **options: Any) -> Client:
    return await nats.connect(f"tls://127.0.0.1:{server.port}", tls=context,
                              tls_handshake_first=first, allow_reconnect=False,
                              max_reconnect_attempts=0, connect_timeout=2, **options)


async def round_trip(client: Client) -> None:
    """Publish, subscribe and request over the client's connection."""
    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    sub = await client.subscribe("tls.echo", cb=echo)
    await client.flush()
    reply = await client.request("tls.echo", b"hello", timeout=TIMEOUT)
    assert reply.data == b"hello"
    await sub.unsubscribe()


async def refused(server: ServerProcess, context: ssl.SSLContext, **options: Any) -> None:
    """A client that cannot get through (connect or first round trip fails)."""
    with pytest.raises(Exception):  # noqa: B017 - which one depends on the TLS timing
        client = await connect(server, context, **options)
        try:
            await asyncio.wait_for(round_trip(client), TIMEOUT)
        finally:
            await client.close()


def raw(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def read_until_closed(sock: socket.socket, timeout: float = TIMEOUT) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def info_of(line: bytes) -> dict[str, Any]:
    assert line.startswith(b"INFO "), line
    info: dict[str, Any] = json.loads(line[5:])
    return info


# -- the upgrade after INFO -------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_tls_after_info(kind: str, pki: PKI, tmp_path: Path,
                              servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki, "timeout: 1.5"))
    servers.append(server)
    with raw(server) as sock:
        info = info_of(read_line(sock))
    keys = list(info)
    assert info["tls_required"] is True and "tls_verify" not in info
    assert keys.index("headers") < keys.index("tls_required") < keys.index("max_payload")
    client = await connect(server, pki.client_context())
    try:
        await round_trip(client)
        conn = connection(server)
        assert conn["tls_version"] == "1.3"
        assert conn["tls_cipher_suite"] in tls.CIPHERS
        assert "tls_peer_certs" not in conn and "tls_first" not in conn
        keys = list(conn)
        assert keys.index("version") < keys.index("tls_version") < keys.index("name_tag")
    finally:
        await client.close()
    varz = get_json(server, "/varz")
    assert (varz["tls_required"], varz["tls_timeout"], varz["auth_timeout"]) == (True, 1.5, 2.5)
    assert "tls_verify" not in varz


@pytest.mark.parametrize("kind", KINDS)
def test_plaintext_client_is_closed_without_error(kind: str, pki: PKI, tmp_path: Path,
                                                  servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki))
    servers.append(server)
    with raw(server) as sock:
        read_line(sock)
        sock.sendall(b'CONNECT {"verbose":true}\r\nPING\r\n')
        assert read_until_closed(sock) == b""
    assert connection(server, "closed")["reason"] == "TLS Handshake Failure"
    with raw(server) as sock:  # the server still serves TLS clients
        info_of(read_line(sock))


@pytest.mark.parametrize("kind", KINDS)
def test_handshake_timeout(kind: str, pki: PKI, tmp_path: Path,
                           servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki, "timeout: 0.3"), "-D")
    servers.append(server)
    with raw(server) as sock:
        read_line(sock)
        began = time.monotonic()
        assert read_until_closed(sock) == b""
        assert 0.2 < time.monotonic() - began < 3
    assert connection(server, "closed")["reason"] == "TLS Handshake Failure"
    line = server.wait_for_log("TLS handshake error: read tcp 127.0.0.1:")
    assert line is not None and line.endswith(": i/o timeout") and "[DBG]" in line


@pytest.mark.parametrize("kind", KINDS)
def test_handshake_logs(kind: str, pki: PKI, tmp_path: Path,
                        servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki), "-D")
    servers.append(server)
    assert server.wait_for_log("TLS required for client connections", 0)
    context = pki.client_context()
    with raw(server) as sock:
        read_line(sock)
        with context.wrap_socket(sock, server_hostname="127.0.0.1") as secure:
            secure.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
            assert read_line(secure) == b"PONG\r\n"
    for text in ("Starting TLS client connection handshake", "TLS handshake complete",
                 "TLS version 1.3, cipher suite TLS_"):
        assert server.wait_for_log(text), text
    with raw(server) as sock:
        read_line(sock)
        sock.sendall(b"PING\r\n")
        read_until_closed(sock)
    line = server.wait_for_log("TLS handshake error: tls: first record does not look like a "
                               "TLS handshake")
    assert line is not None and "[DBG]" in line
    with raw(server) as sock:  # a client that goes away mid-record, or at a record's end
        read_line(sock)
        sock.sendall(b"\x16\x03\x01\x00\x50\x01")
    with raw(server) as sock:
        read_line(sock)
    line = server.wait_for_log("TLS handshake error: unexpected EOF")
    assert line is not None and "[ERR]" in line
    assert server.wait_for_log("TLS handshake error: EOF")


# -- TLS first -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_handshake_first(kind: str, pki: PKI, tmp_path: Path,
                               servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki, "handshake_first: true", "timeout: 1"))
    servers.append(server)
    assert server.wait_for_log('Clients that are not using "TLS Handshake First" option will '
                               "fail to connect", 0)
    with raw(server) as sock:  # nothing comes before the client's handshake
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(1)
    client = await connect(server, pki.client_context(), first=True)
    try:
        assert client._server_info["tls_required"] is True
        await round_trip(client)
        assert connection(server)["tls_first"] is True
    finally:
        await client.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_handshake_first_with_fallback(kind: str, pki: PKI, tmp_path: Path,
                                             servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki, 'handshake_first: "300ms"'))
    servers.append(server)
    assert server.wait_for_log("TLS Handshake First", 0) is None
    with raw(server) as sock:  # a silent client gets INFO after the delay
        began = time.monotonic()
        info = info_of(read_line(sock))
        assert time.monotonic() - began > 0.25
        assert info["tls_required"] is True
    client = await connect(server, pki.client_context(), first=True)
    try:
        await round_trip(client)
        assert connection(server)["tls_first"] is True
    finally:
        await client.close()
    client = await connect(server, pki.client_context())
    try:
        await round_trip(client)
        assert "tls_first" not in connection(server)
    finally:
        await client.close()


# -- optional TLS ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_allow_non_tls(kind: str, pki: PKI, tmp_path: Path,
                       servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, "allow_non_tls: true\n" + tls_block(pki))
    servers.append(server)
    assert server.wait_for_log("TLS available for client connections", 0)
    with raw(server) as sock:
        info = info_of(read_line(sock))
        assert info.get("tls_available") is True and "tls_required" not in info
        sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        assert read_line(sock) == b"PONG\r\n"
        assert "tls_version" not in connection(server)
    with raw(server) as sock:
        read_line(sock)
        with pki.client_context().wrap_socket(sock, server_hostname="127.0.0.1") as secure:
            secure.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
            assert read_line(secure) == b"PONG\r\n"
            assert connection(server)["tls_version"] == "1.3"
    varz = get_json(server, "/varz")
    assert "tls_required" not in varz and "tls_available" not in varz


# -- client certificates ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_verify(kind: str, pki: PKI, tmp_path: Path,
                      servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki, f'ca_file: "{pki.ca}"', "verify: true"))
    servers.append(server)
    with raw(server) as sock:
        info = info_of(read_line(sock))
    assert info["tls_required"] is True and info["tls_verify"] is True
    await refused(server, pki.client_context())
    assert connection(server, "closed")["reason"] == "TLS Handshake Failure"
    line = server.wait_for_log("TLS handshake error: tls: client didn't provide a certificate")
    assert line is not None and "[ERR]" in line
    await refused(server, pki.client_context(pki.stranger))
    assert server.wait_for_log("TLS handshake error: tls: failed to verify certificate: x509: "
                               "certificate signed by unknown authority")
    client = await connect(server, pki.client_context(pki.alice))
    try:
        await round_trip(client)
        conn = connection(server)
        leaf = certs.parse_certificate(pki.alice.der())
        assert conn["tls_peer_certs"][0] == {
            "subject": ALICE_DN, "spki_sha256": leaf.spki_sha256, "cert_sha256": leaf.sha256}
        assert [cert["subject"] for cert in conn["tls_peer_certs"]] == [ALICE_DN, "CN=pynats ca"]
        assert "authorized_user" not in conn
        plain_query = get_json(server, "/connz")["connections"][-1]
        assert "tls_peer_certs" not in plain_query and plain_query["tls_version"] == "1.3"
    finally:
        await client.close()
    assert get_json(server, "/varz")["tls_verify"] is True


@pytest.mark.parametrize("kind", KINDS)
async def test_peer_subject_formatting(kind: str, pki: PKI, tmp_path: Path,
                                       servers: list[ServerProcess]) -> None:
    """An escaped, multi-valued subject with a non-standard attribute, as Go prints it."""
    server = start(kind, tmp_path, tls_block(pki, f'ca_file: "{pki.ca}"', "verify: true"))
    servers.append(server)
    client = await connect(server, pki.client_context(pki.carol))
    try:
        await client.flush()
        subject = connection(server)["tls_peer_certs"][0]["subject"]
    finally:
        await client.close()
    assert subject == certs.go_name_string(certs.parse_certificate(pki.carol.der()).subject)
    assert subject.startswith("CN=\\ carol#1,OU=b+OU=a,O=Acme\\, Inc.,L=San Francisco,")


def map_conf(pki: PKI, users: str) -> str:
    return (tls_block(pki, f'ca_file: "{pki.ca}"', "verify_and_map: true")
            + f"authorization {{\n  users = [\n{users}  ]\n}}\n")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("configured", "mapped"), [
    (f'{{user: "{ALICE_DN}"}}', ALICE_DN),
    ('{user: "C=US, O=Synadia, OU=nats.io, CN=alice"}', "C=US, O=Synadia, OU=nats.io, CN=alice"),
    (f'{{user: "{ALICE_EMAIL}"}}', ALICE_EMAIL),
    ('{user: "alice.example.com"}', "alice.example.com"),
])
async def test_verify_and_map(kind: str, configured: str, mapped: str, pki: PKI,
                              tmp_path: Path, servers: list[ServerProcess]) -> None:
    users = f"    {configured}\n    {{user: bob, password: pw}}\n"
    server = start(kind, tmp_path, map_conf(pki, users), "-D")
    servers.append(server)
    client = await connect(server, pki.client_context(pki.alice))
    try:
        await round_trip(client)
        assert connection(server)["authorized_user"] == mapped
    finally:
        await client.close()
    assert get_json(server, "/varz")["auth_required"] is True


@pytest.mark.parametrize("kind", KINDS)
async def test_verify_and_map_refusals(kind: str, pki: PKI, tmp_path: Path,
                                       servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, map_conf(pki, f'    {{user: "{ALICE_DN}"}}\n'
                                                 "    {user: bob, password: pw}\n"), "-D")
    servers.append(server)
    # carol's certificate names no user; bob's password does not count with the mapping.
    await refused(server, pki.client_context(pki.carol))
    await refused(server, pki.client_context(pki.carol), user="bob", password="pw")
    assert server.wait_for_log('User in cert ["CN=\\\\ carol#1,OU=b+OU=a,')
    assert connection(server, "closed")["reason"] == "Authentication Failure"
    assert server.wait_for_log(f'Using DistinguishedNameMatch for auth ["{ALICE_DN}"]') is None
    client = await connect(server, pki.client_context(pki.alice))
    await client.close()
    assert server.wait_for_log(f'Using DistinguishedNameMatch for auth ["{ALICE_DN}"]')


@pytest.mark.parametrize("kind", KINDS)
async def test_pinned_certs(kind: str, pki: PKI, tmp_path: Path,
                            servers: list[ServerProcess]) -> None:
    pin = certs.parse_certificate(pki.alice.der()).spki_sha256
    server = start(kind, tmp_path, tls_block(pki, f'ca_file: "{pki.ca}"', "verify: true",
                                             f'pinned_certs: ["{pin.upper()}"]'), "-D")
    servers.append(server)
    client = await connect(server, pki.client_context(pki.alice))
    await client.close()
    await refused(server, pki.client_context(pki.carol))
    carol = certs.parse_certificate(pki.carol.der()).spki_sha256
    assert server.wait_for_log(f"Failed pinned cert test for key id: {carol}")
    assert connection(server, "closed")["reason"] == "TLS Handshake Failure"


# -- configuration ---------------------------------------------------------------------------


def check(kind: str, conf: Path) -> subprocess.CompletedProcess[str]:
    if kind == "pynats":
        argv = [sys.executable, "-m", "pynats.server"]
    else:
        binary = nats_server_binary()
        assert binary is not None
        argv = [binary]
    return subprocess.run([*argv, "-t", "-c", conf.name], capture_output=True, text=True,
                          timeout=30, cwd=conf.parent)


BAD_BLOCKS = [
    'cert_file: "missing.pem"\n  key_file: "{key}"',
    'cert_file: "{cert}"\n  key_file: "{other_key}"',
    'cert_file: "{ca}"\n  key_file: "{ca}"',
    'cert_file: "{key}"\n  key_file: "{key}"',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  ca_file: "missing-ca.pem"',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  ca_file: "{key}"',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  cipher_suites: ["TLS_FOO"]',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  curve_preferences: ["CurveP256", "FOO"]',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  min_version: "1.5"',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  min_version: "1.1"',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  pinned_certs: ["abc"]',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  timeout: "soon"',
    'cert_file: "{cert}"\n  key_file: "{key}"\n  handshake_first: "never"',
    'cert_file: "{cert}"',
]


@pytest.mark.interop
@pytest.mark.parametrize("block", BAD_BLOCKS)
def test_bad_tls_block_is_reported_like_reference(block: str, pki: PKI,
                                                  tmp_path: Path) -> None:
    text = block.format(cert=pki.server.cert, key=pki.server.key, ca=pki.ca,
                        other_key=pki.alice.key)
    conf = tmp_path / "bad.conf"
    conf.write_text(f"listen: 127.0.0.1:4999\ntls {{\n  {text}\n}}\n")
    ours, theirs = check("pynats", conf), check("nats-server", conf)
    assert theirs.returncode == 1, theirs.stderr
    assert (ours.returncode, ours.stderr.strip()) == (1, theirs.stderr.strip())


@pytest.mark.interop
def test_good_tls_block_passes_the_check(pki: PKI, tmp_path: Path) -> None:
    conf = tmp_path / "good.conf"
    conf.write_text(tls_block(pki, f'ca_file: "{pki.ca}"', "verify_and_map: true",
                              'cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", '
                              '"TLS_AES_128_GCM_SHA256"]', 'curve_preferences: ["X25519"]',
                              'min_version: "1.2"', 'handshake_first: "auto"'))
    ours, theirs = check("pynats", conf), check("nats-server", conf)
    assert theirs.returncode == 0, theirs.stderr
    assert (ours.returncode, ours.stderr.strip()) == (0, theirs.stderr.strip())


def run_flags(kind: str, *args: str) -> subprocess.CompletedProcess[str]:
    prefix = [sys.executable, "-m", "pynats.server"] if kind == "pynats" else [
        nats_server_binary() or "nats-server"]
    return subprocess.run([*prefix, "-a", "127.0.0.1", "-p", "-1", *args], capture_output=True,
                          text=True, timeout=30)


@pytest.mark.interop
@pytest.mark.parametrize("args", [["--tls"], ["--tlsverify"], ["--tlscacert", "ca.pem"],
                                  ["--tlscert", "{cert}"],
                                  ["--tlscert", "missing.pem", "--tlskey", "{key}"]])
def test_flag_errors_match_reference(args: list[str], pki: PKI) -> None:
    argv = [arg.format(cert=pki.server.cert, key=pki.server.key) for arg in args]
    ours, theirs = run_flags("pynats", *argv), run_flags("nats-server", *argv)
    assert theirs.returncode == 1
    assert (ours.returncode, ours.stderr.strip()) == (1, theirs.stderr.strip())


@pytest.mark.parametrize("kind", KINDS)
async def test_flags_enable_tls(kind: str, pki: PKI, tmp_path: Path) -> None:
    args = ["-m", "-1", "--tlsverify", "--tlscert", str(pki.server.cert), "--tlskey",
            str(pki.server.key), "--tlscacert", str(pki.ca)]
    with ServerProcess(kind, args) as server:
        await refused(server, pki.client_context())
        client = await connect(server, pki.client_context(pki.alice))
        try:
            await round_trip(client)
        finally:
            await client.close()
        varz = get_json(server, "/varz")
        assert (varz["tls_verify"], varz["tls_timeout"], varz["auth_timeout"]) == (True, 2, 3)


@pytest.mark.parametrize("kind", KINDS)
def test_flags_override_the_file(kind: str, pki: PKI, tmp_path: Path,
                                 servers: list[ServerProcess]) -> None:
    conf = tls_block(pki, f'ca_file: "{pki.ca}"', "verify: true", "timeout: 1")
    server = start(kind, tmp_path, conf, "--tls", "--tlscert", str(pki.server.cert),
                   "--tlskey", str(pki.server.key))
    servers.append(server)
    varz = get_json(server, "/varz")  # no client verification; the file's timeout stays
    assert (varz.get("tls_verify"), varz["tls_timeout"]) == (None, 1)
    plain = start(kind, tmp_path, conf, "--tls=false")
    servers.append(plain)
    with raw(plain) as sock:
        assert "tls_required" not in info_of(read_line(sock))


# -- units -----------------------------------------------------------------------------------


def test_go_name_formatting(pki: PKI) -> None:
    carol = certs.parse_certificate(pki.carol.der())
    assert certs.go_rdn_string(carol.subject) == (
        "CN=\\ carol#1,OU=b+OU=a,O=Acme\\, Inc.,L=San Francisco,ST=CA,C=US")
    assert certs.go_name_string(carol.subject) == (
        certs.go_rdn_string(carol.subject) + ",1.2.840.113549.1.9.1=carol@example.com")
    assert certs.DistinguishedName.from_rdns(carol.subject) is None  # emailAddress: no name
    alice = certs.parse_certificate(pki.alice.der())
    assert (alice.emails, alice.dns_names, alice.uris) == (
        (ALICE_EMAIL,), ("alice.example.com",), ())


def test_distinguished_names() -> None:
    parse = certs.DistinguishedName.parse
    dn = parse("CN=alice,OU=nats.io,O=Synadia,C=US")
    assert dn is not None
    spaced = parse(" cn = alice , OU=nats.io,O=Synadia,C=US")  # spaces around are dropped
    assert spaced is not None and spaced.equal(dn)
    assert parse("cn=alice,  OU=nats.io,O=Synadia,C=US  ") == parse(
        "cn=alice,OU=nats.io,O=Synadia,C=US")
    reordered = parse("C=US,O=Synadia,OU=nats.io,CN=alice")
    assert reordered is not None and not reordered.equal(dn) and reordered.rdns_match(dn)
    multi = parse("CN=a+OU=b,O=c")
    assert multi is not None and multi.equal(parse("OU=b+CN=a,O=c") or dn)
    assert parse("CN=Acme\\, Inc.,O=x") == parse("CN=Acme\\2c Inc.,O=x")
    assert parse("CN=#04") is None and parse("CN") is None and parse("=x,") is None


def test_certificate_user_order(pki: PKI) -> None:
    alice = certs.parse_certificate(pki.alice.der())
    assert tls.map_certificate_user(alice, [ALICE_DN, ALICE_EMAIL])[0] == ALICE_EMAIL
    assert tls.map_certificate_user(alice, [ALICE_DN, "alice.example.com"])[0] == (
        "alice.example.com")
    name, notes = tls.map_certificate_user(alice, ["someone"])
    assert name == "" and notes == [
        f'DistinguishedNameMatch could not be used for auth ["{ALICE_DN}"]',
        f'User in cert ["{ALICE_DN}"], not found']
    carol = certs.parse_certificate(pki.carol.der())
    literal = certs.go_rdn_string(carol.subject)
    name, notes = tls.map_certificate_user(carol, [literal])
    assert name == literal and notes[-1].startswith("Using certificate subject for auth")


def test_cipher_table() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    available = {cipher["name"] for cipher in context.get_ciphers()}
    for name in tls.DEFAULT_CIPHERS:  # the CBC ones may be off at OpenSSL's security level
        assert "CBC" in name or tls.CIPHERS[name] in available, name
    with pytest.raises(ValueError, match=r"^unrecognized cipher TLS_FOO$"):
        tls.check_cipher("TLS_FOO")
    tls.check_cipher("TLS_CHACHA20_POLY1305_SHA256")


def test_tls13_only_suites_leave_tls13(pki: PKI) -> None:
    options = TLSOptions(cert_file=str(pki.server.cert), key_file=str(pki.server.key),
                         cipher_suites=("TLS_AES_128_GCM_SHA256",))
    assert tls.server_context(options).minimum_version == ssl.TLSVersion.TLSv1_3
    options = TLSOptions(cert_file=str(pki.server.cert), key_file=str(pki.server.key),
                         cipher_suites=("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",))
    context = tls.server_context(options)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"] == [
        "ECDHE-ECDSA-AES256-GCM-SHA384"]


def test_flags_over_the_file() -> None:
    file_tls = TLSOptions(cert_file="f.pem", key_file="f.key", verify=True, timeout=1.0,
                          cipher_suites=("TLS_AES_128_GCM_SHA256",), handshake_first=True)
    flags = parse_args(["--tlscert", "c.pem", "--tlskey", "k.pem"])
    assert flags.explicit == {"tls"}
    merged = merge_tls(file_tls, flags.options.tls)
    assert merged == TLSOptions(cert_file="c.pem", key_file="k.pem", timeout=1.0,
                                handshake_first=True)
    assert merge_tls(file_tls, parse_args(["--tls=false", "--tlsverify"]).options.tls) is None
    file_options = ServerOptions(tls=None)
    merged_options = merge(file_options, flags.options, flags.explicit)
    assert merged_options.tls is not None and merged_options.auth_timeout == 3.0


def test_flag_tls_needs_certificate_and_key(pki: PKI) -> None:
    for argv, message in ((["--tls"], "TLS Server certificate must be present and valid"),
                          (["--tlscert", "x"], "TLS Server private key must be present and valid")):
        command = parse_args(argv)
        with pytest.raises(ConfigError, match=f"^{message}$"):
            resolve(command.options, command.explicit)
    command = parse_args(["--tlscert", str(pki.server.cert), "--tlskey", str(pki.server.key)])
    options, _ = resolve(command.options, command.explicit)
    assert options.tls is not None and options.auth_timeout == 3.0


@pytest.mark.parametrize("kind", KINDS)
async def test_reload_changes_tls(kind: str, pki: PKI, tmp_path: Path,
                                  servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki))
    servers.append(server)
    (tmp_path / f"{kind}.conf").write_text(
        tls_block(pki, f'ca_file: "{pki.ca}"', "verify: true", "timeout: 1"))
    mark = len(server.lines)
    server.signal(signal.SIGHUP)
    assert server.wait_for_log("Reloaded server configuration", start=mark)
    assert server.wait_for_log("Reloaded: tls = enabled", 0, start=mark)
    with raw(server) as sock:
        assert info_of(read_line(sock))["tls_verify"] is True
    await refused(server, pki.client_context())
    client = await connect(server, pki.client_context(pki.alice))
    await client.close()
    assert get_json(server, "/varz")["tls_timeout"] == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_large_messages_over_tls(kind: str, pki: PKI, tmp_path: Path,
                                       servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki))
    servers.append(server)
    publisher = await connect(server, pki.client_context())
    subscriber = await connect(server, pki.client_context())
    try:
        sub = await subscriber.subscribe("big")
        await subscriber.flush()
        payloads = [bytes([n % 251]) * 65536 for n in range(100)] + [b"x" * (1024 * 1024)]
        for payload in payloads:
            await publisher.publish("big", payload)
        await publisher.flush()
        for payload in payloads:
            assert (await sub.next_msg(timeout=TIMEOUT)).data == payload
    finally:
        await publisher.close()
        await subscriber.close()


def test_single_curve_is_the_only_one(pki: PKI) -> None:
    options = TLSOptions(cert_file=str(pki.server.cert), key_file=str(pki.server.key),
                         curve_preferences=("CurveP384",))
    server = tls.server_context(options)
    for curve, works in (("secp384r1", True), ("prime256v1", False)):
        client = pki.client_context()
        client.set_ecdh_curve(curve)
        assert handshake(server, client) is works, curve


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> bool:
    """Whether a handshake between the two contexts succeeds (over memory BIOs)."""
    server_in, server_out, client_in, client_out = (ssl.MemoryBIO() for _ in range(4))
    ours = server.wrap_bio(server_in, server_out, server_side=True)
    theirs = client.wrap_bio(client_in, client_out, server_hostname="localhost")
    for _ in range(10):
        for side in (theirs, ours):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False
            server_in.write(client_out.read())
            client_in.write(server_out.read())
        if ours.version() and theirs.version():
            return True
    return False


@pytest.mark.parametrize("kind", KINDS)
async def test_tls12_cipher_names(kind: str, pki: PKI, tmp_path: Path,
                                  servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, tls_block(pki))
    servers.append(server)
    context = pki.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    client = await connect(server, context)
    try:
        await client.flush()
        conn = connection(server)
    finally:
        await client.close()
    assert (conn["tls_version"], conn["tls_cipher_suite"]) == (
        "1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")


@pytest.mark.parametrize("kind", KINDS)
def test_mapped_users_are_no_plaintext_passwords(kind: str, pki: PKI, tmp_path: Path,
                                                 servers: list[ServerProcess]) -> None:
    server = start(kind, tmp_path, map_conf(pki, f'    {{user: "{ALICE_DN}"}}\n'))
    servers.append(server)
    assert server.wait_for_log("Plaintext passwords detected", 0) is None
    with_password = start(kind, tmp_path, map_conf(pki, f'    {{user: "{ALICE_DN}"}}\n'
                                                        "    {user: bob, password: pw}\n"))
    servers.append(with_password)
    assert with_password.wait_for_log("Plaintext passwords detected", 0)
