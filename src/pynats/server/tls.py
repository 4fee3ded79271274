"""TLS policy: SSL contexts from :class:`TLSOptions`, and what a TLS client's session shows.

Theory of operation
-------------------
Every TLS decision the server makes lives here (STYLE.md: ``server/tls.py``); the
mechanism that runs TLS over a connection is :mod:`pynats.server.tlstransport`, the
certificate parsing :mod:`pynats.server.certs`.

* Configuration checks, with nats-server's messages, for the config loader: cipher
  suite and curve names (Go's), ``min_version``, ``pinned_certs``
  (:func:`check_cipher`...), and the files (:func:`server_context` raises
  :class:`TLSConfigError` as ``GenTLSConfig`` fails: ``error parsing X509
  certificate/key pair: open x.pem: no such file or directory``).
* :func:`server_context` builds the client port's ``ssl.SSLContext`` as
  ``GenTLSConfig`` builds Go's ``tls.Config``: TLS 1.2 at least (or ``min_version``),
  the certificate chain, client certificates required and verified with ``verify`` /
  ``verify_and_map`` (against ``ca_file``, else the system roots), and the TLS 1.2
  cipher suites mapped from Go's names to OpenSSL's. TLS 1.3 suites cannot be chosen
  with the standard library (Go ignores them too); when no configured suite exists in
  OpenSSL, only TLS 1.3 is left. A single configured curve is the only one allowed;
  with several, OpenSSL's groups apply (the standard library sets one at most).
  :func:`monitor_context` is the same for HTTPS monitoring, which never asks for a
  client certificate.
* :class:`ClientTLS` is what the client port demands, read by the session and the
  connection: upgrade after INFO (default), TLS first (``handshake_first``, optionally
  with a fallback delay), or TLS optional (``allow_non_tls``).
* After a handshake, :class:`PeerTLS` holds what ``/connz`` and the logs show (Go's
  version and cipher names, the peer chain), :func:`pinned_failure` applies
  ``pinned_certs`` and :func:`map_certificate_user` finds the ``verify_and_map`` user
  in nats-server's order (email SANs, DNS SANs, URIs, the subject as a DN, the subject
  string).
* :func:`handshake_error` words a failed handshake as Go's ``crypto/tls`` would, for
  the ``TLS handshake error: ...`` log line, and tells whether nats-server logs it as an
  error or (for clients that do not speak TLS at all) only at debug level.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from pynats.errors import ConfigError
from pynats.server.certs import (
    Certificate,
    DistinguishedName,
    domain_components,
    go_name_string,
    go_rdn_string,
    parse_certificate,
)
from pynats.server.config.options import DEFAULT_TLS_TIMEOUT, ServerOptions, TLSOptions
from pynats.server.gotext import go_os_error, go_quote

#: nats-server's answer when ``https_port`` is set without a certificate and key.
TLS_REQUIRED: Final = "TLS cert and key required for HTTPS"
#: The fallback delay of ``handshake_first: auto``.
DEFAULT_FALLBACK: Final = 0.05
#: The first byte of a TLS handshake record (``allow_non_tls`` tells TLS clients by it).
TLS_HANDSHAKE_RECORD: Final = 0x16

#: Go's cipher suite names (``tls.CipherSuites`` and ``tls.InsecureCipherSuites``) and
#: OpenSSL's names for them; ``None`` for TLS 1.3 suites, which cannot be chosen.
CIPHERS: Final[dict[str, str | None]] = {
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
}
#: The suites Go offers by default (its secure list, RSA key exchange being off).
DEFAULT_CIPHERS: Final = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
)
_GO_CIPHER_BY_OPENSSL: Final = {openssl: go for go, openssl in CIPHERS.items() if openssl}
#: Go's curve names (``tls.CurveID.String``) nats-server accepts.
CURVES: Final = frozenset({"X25519", "CurveP256", "CurveP384", "CurveP521",
                           "SecP384r1MLKEM1024", "SecP256r1MLKEM768", "X25519MLKEM768"})
#: OpenSSL's names of the curves the standard library can select (one at a time).
_OPENSSL_CURVES: Final = {"X25519": "X25519", "CurveP256": "prime256v1",
                          "CurveP384": "secp384r1", "CurveP521": "secp521r1"}
_VERSIONS: Final = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
#: ``_ssl.ENCODING_DER``, for the certificate objects of Python 3.11's private chain API.
_ENCODING_DER: Final = 2
_PINNED: Final = re.compile(r"[0-9a-fA-F]{64}")
_PEM_BLOCK: Final = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
#: OpenSSL reasons meaning the peer did not start with a TLS record.
_NOT_TLS: Final = frozenset({"WRONG_VERSION_NUMBER", "HTTP_REQUEST", "HTTPS_PROXY_REQUEST",
                             "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG",
                             "RECORD_LAYER_FAILURE", "UNEXPECTED_RECORD"})
#: OpenSSL verification results that Go calls an unknown authority.
_UNKNOWN_AUTHORITY: Final = frozenset({2, 18, 19, 20, 21})
_EXPIRED: Final = frozenset({9, 10})


class TLSConfigError(ConfigError):
    """A ``tls`` block whose files cannot be used (nats-server's ``GenTLSConfig`` text)."""


# -- configuration checks -------------------------------------------------------------------

def check_cipher(name: str) -> None:
    """Raise ValueError (``unrecognized cipher X``) for a name Go does not know."""
    if name not in CIPHERS:
        raise ValueError(f"unrecognized cipher {name}")


def check_curve(name: str) -> None:
    """Raise ValueError (``unrecognized curve preference X``) for an unknown curve."""
    if name not in CURVES:
        raise ValueError(f"unrecognized curve preference {name}")


def check_min_version(text: str) -> None:
    """Raise ValueError for a ``min_version`` nats-server refuses (Go's wording)."""
    if text in ("1.0", "1.1"):
        raise ValueError(f"unsupported TLS version: TLS {text}")
    if text not in _VERSIONS:
        raise ValueError(f"unknown version: {text}")


def check_pinned(text: str) -> None:
    """Raise ValueError unless ``text`` is a hex SHA-256 (a ``pinned_certs`` entry)."""
    if not _PINNED.fullmatch(text):
        raise ValueError(f"'pinned_certs' key {text} does not look like hex-encoded sha256 "
                         "of DER encoded SubjectPublicKeyInfo")


# -- contexts -------------------------------------------------------------------------------

def server_context(tls: TLSOptions) -> ssl.SSLContext:
    """The client port's TLS context for ``tls`` (see the module docstring).

    Raises:
        TLSConfigError: A file cannot be read or does not hold what it should; the
            message is nats-server's.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS.get(tls.min_version, ssl.TLSVersion.TLSv1_2)
    if tls.cert_file or tls.key_file:
        _load_pair(context, tls.cert_file, tls.key_file)
    if tls.ca_file:
        _load_ca(context, tls.ca_file)
    if tls.verify or tls.verify_and_map:
        context.verify_mode = ssl.CERT_REQUIRED
        if not tls.ca_file:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    else:
        context.verify_mode = ssl.CERT_NONE
    _set_ciphers(context, tls.cipher_suites or DEFAULT_CIPHERS)
    _set_curve(context, tls.curve_preferences)
    return context


@dataclass(frozen=True, slots=True)
class RouteTLS:
    """TLS on routes: both sides present a certificate and verify the other's.

    nats-server forces mutual verification on routes whatever ``verify`` says, and
    routes are TLS first (nothing is sent in clear). ``dial`` verifies the peer's name
    against the route URL's host unless ``insecure``.
    """

    accept: ssl.SSLContext
    dial: ssl.SSLContext
    timeout: float

    @classmethod
    def from_options(cls, tls: TLSOptions | None) -> RouteTLS | None:
        """The contexts for the ``cluster.tls`` block (None without one).

        Raises:
            TLSConfigError: The files cannot be used (see :func:`server_context`).
        """
        if tls is None:
            return None
        accept = server_context(replace(tls, verify=True))
        dial = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        dial.minimum_version = _VERSIONS.get(tls.min_version, ssl.TLSVersion.TLSv1_2)
        if tls.cert_file or tls.key_file:
            _load_pair(dial, tls.cert_file, tls.key_file)
        if tls.ca_file:
            _load_ca(dial, tls.ca_file)
        else:
            dial.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if tls.insecure:
            dial.check_hostname = False
            dial.verify_mode = ssl.CERT_NONE
        _set_ciphers(dial, tls.cipher_suites or DEFAULT_CIPHERS)
        return cls(accept, dial, tls.timeout or DEFAULT_TLS_TIMEOUT)


def monitor_context(tls: TLSOptions | None) -> ssl.SSLContext:
    """The HTTPS monitoring listener's context: the client port's, never asking for certs.

    Raises:
        ValueError: No certificate or key is configured (:data:`TLS_REQUIRED`).
        OSError: The files cannot be read or do not hold a matching certificate and key
            (:class:`ssl.SSLError` is an ``OSError``).
    """
    if tls is None or not tls.cert_file or not tls.key_file:
        raise ValueError(TLS_REQUIRED)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _VERSIONS.get(tls.min_version, ssl.TLSVersion.TLSv1_2)
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TLSConfigError(go_os_error("open", path, exc)) from None


def _load_pair(context: ssl.SSLContext, cert_file: str, key_file: str) -> None:
    prefix = "error parsing X509 certificate/key pair: "
    try:
        cert, key = _read(cert_file), _read(key_file)
    except TLSConfigError as exc:
        raise TLSConfigError(prefix + str(exc)) from None
    problem = _pem_problem(_pem_kinds(cert), _pem_kinds(key))
    if problem:
        raise TLSConfigError(prefix + problem)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None)
        text = ("tls: private key does not match public key" if reason == "KEY_VALUES_MISMATCH"
                else f"tls: {reason or exc}")
        raise TLSConfigError(prefix + text) from None


def _pem_kinds(data: bytes) -> set[str]:
    return {match.decode() for match in _PEM_BLOCK.findall(data)}


def _pem_problem(cert: set[str], key: set[str]) -> str:
    """Go's complaint about PEM inputs that hold the wrong kinds of blocks ("" if none)."""
    has_key = any(kind.endswith("PRIVATE KEY") for kind in key)
    if "CERTIFICATE" not in cert:
        if any(kind.endswith("PRIVATE KEY") for kind in cert):
            return ("tls: failed to find certificate PEM data in certificate input, but did "
                    "find a private key; PEM inputs may have been switched")
        return "tls: failed to find any PEM data in certificate input"
    if not has_key:
        if "CERTIFICATE" in key:
            return "tls: found a certificate rather than a key in the PEM for the private key"
        return "tls: failed to find any PEM data in key input"
    return ""


def _load_ca(context: ssl.SSLContext, ca_file: str) -> None:
    data = _read(ca_file)
    try:
        context.load_verify_locations(cadata=data.decode("ascii", errors="replace"))
    except (ssl.SSLError, ValueError):
        raise TLSConfigError("failed to parse root ca certificate") from None


def _set_curve(context: ssl.SSLContext, names: Sequence[str]) -> None:
    """A single configured curve is the only one allowed, as in Go; with several,
    OpenSSL's defaults apply (the standard library can select only one)."""
    if len(names) == 1 and names[0] in _OPENSSL_CURVES:
        context.set_ecdh_curve(_OPENSSL_CURVES[names[0]])


def _set_ciphers(context: ssl.SSLContext, names: Sequence[str]) -> None:
    """TLS 1.2 suites from Go names; none available in OpenSSL leaves TLS 1.3 only."""
    openssl = [name for go_name in names if (name := CIPHERS.get(go_name))]
    if openssl:
        try:
            context.set_ciphers(":".join(openssl))
            return
        except ssl.SSLError:  # none of them is in this OpenSSL
            pass
    context.minimum_version = ssl.TLSVersion.TLSv1_3


# -- what the client port demands -------------------------------------------------------------

@dataclass(frozen=True)
class ClientTLS:
    """The client port's TLS settings in force (from :meth:`from_options`).

    Attributes:
        context: The server context (:func:`server_context`).
        options: The ``tls`` block it was built from.
        timeout: Seconds a handshake may take (``tls.timeout``; 0 means the default).
        handshake_first: TLS before INFO (``handshake_first``).
        fallback: With ``handshake_first``, seconds to wait for the client's first bytes
            before sending INFO in plaintext instead (0: never fall back).
        optional: ``allow_non_tls``: a client may stay in plaintext.
        verify: Client certificates are required and verified.
        map_users: ``verify_and_map``: the certificate names the user.
        pinned: ``pinned_certs`` (lower-case hex), empty when not configured.
    """

    context: ssl.SSLContext
    options: TLSOptions
    timeout: float
    handshake_first: bool
    fallback: float
    optional: bool
    verify: bool
    map_users: bool
    pinned: frozenset[str]

    @classmethod
    def from_options(cls, opts: ServerOptions) -> ClientTLS | None:
        """The settings for ``opts``, or None without a ``tls`` block.

        Raises:
            TLSConfigError: The files cannot be used (see :func:`server_context`).
        """
        tls = opts.tls
        if tls is None:
            return None
        first = tls.handshake_first
        fallback = 0.0 if isinstance(first, bool) else float(first)
        return cls(context=server_context(tls), options=tls,
                   timeout=tls.timeout or DEFAULT_TLS_TIMEOUT,
                   handshake_first=first is not False, fallback=fallback,
                   optional=opts.allow_non_tls, verify=tls.verify or tls.verify_and_map,
                   map_users=tls.verify_and_map,
                   pinned=frozenset(pin.lower() for pin in tls.pinned_certs))

    @property
    def required(self) -> bool:
        """INFO's ``tls_required`` before any TLS-first handshake."""
        return not self.optional

    def startup_notices(self) -> list[tuple[str, str]]:
        """(level, text) lines nats-server logs after ``Listening for client connections``."""
        lines = [("notice", f"TLS {'available' if self.optional else 'required'} for "
                            "client connections")]
        if self.handshake_first and not self.fallback:
            lines.append(("warn", 'Clients that are not using "TLS Handshake First" option '
                                  "will fail to connect"))
        return lines


# -- after the handshake ----------------------------------------------------------------------

@dataclass(frozen=True)
class PeerTLS:
    """What a finished handshake negotiated, as nats-server reports it.

    Attributes:
        version: ``1.2`` or ``1.3``.
        cipher: Go's name of the cipher suite.
        chain: The certificates the client sent, its own first (empty without any).
    """

    version: str
    cipher: str
    chain: tuple[Certificate, ...] = ()

    @classmethod
    def from_ssl(cls, sslobj: ssl.SSLObject) -> PeerTLS:
        """Read the negotiated version, cipher and peer chain off ``sslobj``."""
        protocol = sslobj.version() or ""
        cipher = sslobj.cipher()
        name = cipher[0] if cipher else ""
        if not name.startswith("TLS_"):
            name = _GO_CIPHER_BY_OPENSSL.get(name, name)
        return cls(version=protocol.removeprefix("TLSv"), cipher=name, chain=_peer_chain(sslobj))

    @property
    def leaf(self) -> Certificate | None:
        """The client's own certificate."""
        return self.chain[0] if self.chain else None

    def peer_certs(self) -> list[dict[str, str]]:
        """``/connz`` ``tls_peer_certs``."""
        return [{"subject": go_name_string(cert.subject), "spki_sha256": cert.spki_sha256,
                 "cert_sha256": cert.sha256} for cert in self.chain]


def _peer_chain(sslobj: ssl.SSLObject) -> tuple[Certificate, ...]:
    """The certificates the peer sent, parsed (those that cannot be are left out)."""
    chain = []
    for der in peer_chain_der(sslobj):
        try:
            chain.append(parse_certificate(der))
        except (ValueError, IndexError):
            continue
    return tuple(chain)


def peer_chain_der(sslobj: ssl.SSLObject) -> list[bytes]:
    """The DER certificates the peer sent, its own first, even after a failed handshake.

    The whole chain where the runtime exposes it (Python 3.13's public API, the private
    one of earlier versions), else the peer's own certificate.
    """
    ders: list[bytes] = []
    unverified = getattr(sslobj, "get_unverified_chain", None)
    inner = getattr(sslobj, "_sslobj", None)
    if unverified is None and inner is not None:
        unverified = getattr(inner, "get_unverified_chain", None)
    try:
        for cert in (unverified() if unverified is not None else None) or ():
            ders.append(cert if isinstance(cert, bytes) else cert.public_bytes(_ENCODING_DER))
    except (ValueError, ssl.SSLError):
        ders = []
    if not ders:
        try:
            leaf = sslobj.getpeercert(binary_form=True)
        except ValueError:  # the handshake did not get that far
            leaf = None
        ders = [leaf] if leaf else []
    return ders


def pinned_failure(tls: ClientTLS, peer: PeerTLS) -> str:
    """Why ``pinned_certs`` refuses the peer ("" when it does not, or none are pinned)."""
    if not tls.pinned:
        return ""
    leaf = peer.leaf
    if leaf is None:
        return "Failed pinned cert test as client did not provide a certificate"
    if leaf.spki_sha256 not in tls.pinned:
        return f"Failed pinned cert test for key id: {leaf.spki_sha256}"
    return ""


def map_certificate_user(cert: Certificate, users: Sequence[str]) -> tuple[str, list[str]]:
    """The configured user a client certificate maps to (``verify_and_map``).

    Args:
        cert: The client's certificate.
        users: The names of the users that may log in this way, in configuration order.

    Returns:
        The user name ("" when none matches) and the debug lines nats-server logs on
        the way, in order.
    """
    notes: list[str] = []
    subject = go_rdn_string(cert.subject)
    if not cert.emails and not go_name_string(cert.subject) and not cert.uris:
        return "", ["User required in cert, none found"]
    known = set(users)
    for label, names in (("email", cert.emails), ("SAN", cert.dns_names), ("URI", cert.uris)):
        for name in names:
            if name in known:
                return name, [f"Using {label} found in cert for auth [{go_quote(name)}]"]
    dn = DistinguishedName.from_rdns(cert.subject)
    if dn is not None:
        match = _dn_user(dn, users)
        if match:
            return match, [f"Using DistinguishedNameMatch for auth [{go_quote(match)}]"]
        notes.append(f"DistinguishedNameMatch could not be used for auth [{go_quote(subject)}]")
    dcs = domain_components(cert.subject)
    if dcs:
        with_dcs = f"{subject},{dcs}"
        if with_dcs in known:
            return with_dcs, [*notes, f"Using RDNSequence for auth [{go_quote(with_dcs)}]"]
        notes.append(f"RDNSequence could not be used for auth [{go_quote(with_dcs)}]")
    if subject in known:
        return subject, [*notes, f"Using certificate subject for auth [{go_quote(subject)}]"]
    notes.append(f"User in cert [{go_quote(subject)}], not found")
    return "", notes


def _dn_user(dn: DistinguishedName, users: Sequence[str]) -> str:
    """The first user whose name is ``dn``; else one whose name has its RDNs reordered."""
    parsed = [(name, DistinguishedName.parse(name)) for name in users]
    for name, other in parsed:
        if other is not None and other.equal(dn):
            return name
    for name, other in parsed:
        if other is not None and other.rdns_match(dn):
            return name
    return ""


def handshake_error(exc: BaseException, peer_der: bytes | None = None) -> tuple[str, bool]:
    """A failed handshake as Go's ``crypto/tls`` words it, for ``TLS handshake error: ...``.

    Args:
        exc: What the TLS layer raised (an :class:`ssl.SSLError`, ``EOFError``...).
        peer_der: The client's certificate, when it sent one.

    Returns:
        The text, and whether nats-server logs it only at debug level (a client that
        does not speak TLS; timeouts are worded by the caller and are quiet too).
    """
    if not isinstance(exc, ssl.SSLError):
        return str(exc) or type(exc).__name__, False
    reason = exc.reason or ""
    if reason in _NOT_TLS:
        return "tls: first record does not look like a TLS handshake", True
    if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        return "tls: client didn't provide a certificate", False
    if reason == "NO_SHARED_CIPHER":
        return "tls: no cipher suite supported by both client and server", False
    if reason in ("NO_SUITABLE_KEY_SHARE", "NO_SHARED_GROUPS"):
        return "tls: no ECDHE curve supported by both client and server", False
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: x509: {_verify_detail(exc, peer_der)}", False
    if isinstance(exc, ssl.SSLEOFError):
        return "unexpected EOF", False
    return (f"tls: {reason.lower().replace('_', ' ')}" if reason else str(exc)), False


def _verify_detail(exc: ssl.SSLCertVerificationError, peer_der: bytes | None) -> str:
    code = exc.verify_code
    if code in _UNKNOWN_AUTHORITY:
        detail = "certificate signed by unknown authority"
        try:
            cert = parse_certificate(peer_der) if peer_der else None
        except (ValueError, IndexError):
            cert = None
        if cert is not None:  # Go names the certificate it could not chain
            detail += f" ({go_name_string(cert.subject)} SHA-256: {cert.sha256})"
        return detail
    if code in _EXPIRED:
        return "certificate has expired or is not yet valid"
    return exc.verify_message or (exc.reason or "").lower()


__all__ = [
    "CIPHERS", "CURVES", "DEFAULT_CIPHERS", "DEFAULT_FALLBACK", "TLS_HANDSHAKE_RECORD",
    "TLS_REQUIRED", "ClientTLS", "PeerTLS", "TLSConfigError", "check_cipher", "check_curve",
    "check_min_version", "check_pinned", "handshake_error", "map_certificate_user",
    "monitor_context", "peer_chain_der", "pinned_failure", "server_context",
]
