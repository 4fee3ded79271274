"""Throwaway certificates for TLS tests, made with the ``openssl`` command line.

:func:`make_pki` creates, in a directory: a CA, a server certificate for 127.0.0.1 and
localhost signed by it, client certificates signed by it (``alice`` with an email and a
DNS name in its alternative names; ``carol`` whose subject needs escaping, has a
multi-valued RDN and a non-standard attribute), and a client certificate signed by a
second, untrusted CA, and a certificate for cluster nodes (``node``: server and client
use, for mutual TLS on routes). :func:`self_signed` makes a lone self-signed server certificate.
Everything is valid for two days. ``openssl`` (Debian's package, on every machine of
this project's kind) is required: without it the tests fail rather than skip, so that a
missing tool never hides the TLS tests.
"""

from __future__ import annotations

import secrets
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

#: alice's subject as Go (and nats-server's ``verify_and_map``) writes it.
ALICE_DN = "CN=alice,OU=nats.io,O=Synadia,C=US"
ALICE_EMAIL = "alice@example.com"


@dataclass(frozen=True)
class Pair:
    """A certificate and its key (PEM files)."""

    cert: Path
    key: Path

    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())


@dataclass(frozen=True)
class PKI:
    """The files :func:`make_pki` made."""

    ca: Path
    server: Pair
    alice: Pair
    carol: Pair
    stranger: Pair
    node: Pair

    def client_context(self, client: Pair | None = None) -> ssl.SSLContext:
        """A client context trusting the CA, presenting ``client`` if given."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if client is not None:
            context.load_cert_chain(str(client.cert), str(client.key))
        return context


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command line is needed for the TLS tests (apt install openssl)")
    subprocess.run([openssl, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def self_signed(directory: Path) -> Pair:
    """A self-signed certificate for 127.0.0.1 and localhost (``cert.pem``, ``key.pem``)."""
    pair = Pair(directory / "cert.pem", directory / "key.pem")
    _openssl("req", "-x509", *_key_args(pair.key), "-out", str(pair.cert), "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             cwd=directory)
    return pair


def _key_args(key: Path) -> list[str]:
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key)]


def _make_ca(directory: Path, name: str) -> Pair:
    pair = Pair(directory / f"{name}.pem", directory / f"{name}-key.pem")
    _openssl("req", "-x509", *_key_args(pair.key), "-out", str(pair.cert), "-days", "2",
             "-subj", f"/CN=pynats {name}", cwd=directory)
    return pair


def _make_leaf(directory: Path, ca: Pair, name: str, subject: str, extensions: str,
               *, multivalue: bool = False) -> Pair:
    pair = Pair(directory / f"{name}.pem", directory / f"{name}-key.pem")
    csr, ext = directory / f"{name}.csr", directory / f"{name}.ext"
    ext.write_text(extensions)
    _openssl("req", *_key_args(pair.key), "-out", str(csr), "-subj", subject,
             *(["-multivalue-rdn"] if multivalue else []), cwd=directory)
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
             "-set_serial", f"0x{secrets.token_hex(8)}", "-out", str(pair.cert), "-days", "2",
             "-extfile", str(ext), cwd=directory)
    return pair


def make_pki(directory: Path) -> PKI:
    """Make the certificates described in the module docstring under ``directory``."""
    ca = _make_ca(directory, "ca")
    other = _make_ca(directory, "other-ca")
    client_ext = "extendedKeyUsage=clientAuth\n"
    return PKI(
        ca=ca.cert,
        server=_make_leaf(directory, ca, "server", "/CN=localhost",
                          "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                          "extendedKeyUsage=serverAuth\n"),
        alice=_make_leaf(directory, ca, "alice", "/C=US/O=Synadia/OU=nats.io/CN=alice",
                         f"subjectAltName=email:{ALICE_EMAIL},DNS:alice.example.com\n"
                         + client_ext),
        carol=_make_leaf(directory, ca, "carol",
                         "/C=US/ST=CA+L=San Francisco/O=Acme\\, Inc./OU=b/OU=a/CN= carol#1"
                         "/emailAddress=carol@example.com", client_ext, multivalue=True),
        stranger=_make_leaf(directory, other, "stranger", "/CN=stranger", client_ext),
        node=_make_leaf(directory, ca, "node", "/CN=node",
                        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                        "extendedKeyUsage=serverAuth,clientAuth\n"),
    )


__all__ = ["ALICE_DN", "ALICE_EMAIL", "PKI", "Pair", "make_pki"]
