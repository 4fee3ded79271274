"""TLS for the HTTPS monitoring listener, and the certificate facts ``/varz`` shows.

Theory of operation
-------------------
nats-server serves HTTPS monitoring (``https_port``) with a clone of the client-port TLS
configuration, except that it never asks a monitoring client for a certificate
(``startMonitoring`` sets ``ClientAuth = NoClientCert``). :func:`monitor_ssl_context`
builds the same thing from :class:`~pynats.server.config.options.TLSOptions`: the
server certificate and key, TLS 1.2 or the configured ``min_version`` at least, and no
client verification. Go cipher-suite and curve names are not mapped to OpenSSL's;
OpenSSL's defaults apply.

``/varz`` reports when the client-port certificate expires (``tls_cert_not_after``).
The standard library has no X.509 parser, so :func:`cert_not_after` walks the few DER
elements in front of the validity period (``Certificate`` → ``tbsCertificate`` →
version, serial, signature algorithm, issuer → ``validity``), which is all it needs.
"""

from __future__ import annotations

import calendar
import ssl
import time
from functools import lru_cache
from pathlib import Path
from typing import Final

from pynats.server.config.options import TLSOptions

#: nats-server's answer when ``https_port`` is set without a certificate and key.
TLS_REQUIRED: Final = "TLS cert and key required for HTTPS"

_PEM_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"
_PEM_END: Final = b"-----END CERTIFICATE-----"
_UTC_TIME, _GENERALIZED_TIME, _EXPLICIT_VERSION = 0x17, 0x18, 0xA0


def monitor_ssl_context(tls: TLSOptions | None) -> ssl.SSLContext:
    """The server-side TLS context of the HTTPS monitoring listener.

    Args:
        tls: The top-level ``tls`` block (the client port's).

    Returns:
        A context with the certificate chain loaded and client certificates not asked for.

    Raises:
        ValueError: No certificate or key is configured (:data:`TLS_REQUIRED`).
        OSError: The files cannot be read or do not hold a matching certificate and key
            (:class:`ssl.SSLError` is an ``OSError``).
    """
    if tls is None or not tls.cert_file or not tls.key_file:
        raise ValueError(TLS_REQUIRED)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (ssl.TLSVersion.TLSv1_3 if tls.min_version == "1.3"
                               else ssl.TLSVersion.TLSv1_2)
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def cert_not_after(path: str) -> int | None:
    """When the first certificate in a PEM file expires.

    Args:
        path: A PEM file (a chain's first certificate is the server's).

    Returns:
        Seconds since the epoch, or None when the file cannot be read or parsed.
    """
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return _not_after_cached(path, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _not_after_cached(path: str, mtime_ns: int) -> int | None:
    try:
        pem = Path(path).read_bytes()
        start = pem.index(_PEM_BEGIN)
        end = pem.index(_PEM_END, start) + len(_PEM_END)
        der = ssl.PEM_cert_to_DER_cert(pem[start:end].decode("ascii"))
        return der_not_after(der)
    except (OSError, ValueError, IndexError, UnicodeDecodeError):
        return None


def der_not_after(der: bytes) -> int:
    """The ``notAfter`` time of a DER certificate, in seconds since the epoch.

    Raises:
        ValueError, IndexError: Not a certificate this walk understands.
    """
    _, cert, _ = _item(der, 0)
    _, pos, _ = _item(der, cert)  # tbsCertificate
    tag, _, end = _item(der, pos)
    if tag == _EXPLICIT_VERSION:
        pos = end
    for _ in range(3):  # serialNumber, signature, issuer
        pos = _item(der, pos)[2]
    _, validity, _ = _item(der, pos)
    not_before_end = _item(der, validity)[2]
    tag, start, end = _item(der, not_before_end)
    return _asn1_time(tag, der[start:end].decode("ascii"))


def _item(der: bytes, pos: int) -> tuple[int, int, int]:
    """The DER element at ``pos``: its tag, where its content starts and ends."""
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[pos:pos + size], "big")
        pos += size
    if pos + length > len(der):
        raise ValueError("truncated DER element")
    return tag, pos, pos + length


def _asn1_time(tag: int, value: str) -> int:
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ; years below 50 are 20xx (RFC 5280)
        year = int(value[:2])
        value = f"{2000 + year if year < 50 else 1900 + year}{value[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise ValueError(f"not an ASN.1 time (tag {tag:#x})")
    parsed = time.strptime(value[:14], "%Y%m%d%H%M%S")
    return calendar.timegm(parsed)


__all__ = ["TLS_REQUIRED", "cert_not_after", "der_not_after", "monitor_ssl_context"]
