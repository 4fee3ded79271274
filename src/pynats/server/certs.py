"""X.509 facts read from DER: names, alternative names, key hashes, expiry.

Theory of operation
-------------------
The standard library verifies certificates but does not parse them, and what
nats-server shows and matches (``/connz`` ``tls_peer_certs``, ``verify_and_map``) is
defined by Go's ``crypto/x509`` formatting. This module walks the few DER elements
needed, with no dependency:

``Certificate`` → ``tbsCertificate`` → version, serial, signature algorithm, issuer,
validity, **subject**, **subjectPublicKeyInfo**, then the optional unique ids and the
**extensions**, of which only ``subjectAltName`` (2.5.29.17) is read.

Names are kept as the RDN sequence of the DER (:class:`Attribute` per value, grouped in
RDN sets), and formatted three ways, each as a nats-server code path does:

* :func:`go_name_string`: Go's ``pkix.Name.String()`` (``tls_peer_certs`` subjects):
  the standard attributes in Go's fixed order (not the certificate's), reversed, with
  RFC 2253 escaping; other attributes follow as ``<oid>=<value>`` (as nats-server 2.15
  prints them; a value that is not a string as ``#<hex DER>``);
* :func:`go_rdn_string`: Go's ``Name.ToRDNSequence().String()``, the same without the
  non-standard attributes (the subject string ``verify_and_map`` falls back to);
* :class:`DistinguishedName`: the LDAP view nats-server builds from the raw subject
  (``ldap.FromRawCertSubject``: the DER order reversed, multi-valued RDNs kept) and
  from a configured user name (``ldap.ParseDN``), with its two comparisons (by
  position, and regardless of RDN order).

Anything this walk does not understand raises :class:`ValueError` (or ``IndexError``);
callers treat such a certificate as having no name.
"""

from __future__ import annotations

import calendar
import hashlib
import ssl
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final

_PEM_BEGIN: Final = b"-----BEGIN CERTIFICATE-----"
_PEM_END: Final = b"-----END CERTIFICATE-----"

# DER tags.
_SEQUENCE, _SET, _OID, _OCTET_STRING, _BOOLEAN = 0x30, 0x31, 0x06, 0x04, 0x01
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18
_EXPLICIT_VERSION, _EXPLICIT_EXTENSIONS = 0xA0, 0xA3
#: String types Go decodes into a ``string`` (others stay raw bytes).
_STRING_TAGS: Final = frozenset({0x0C, 0x12, 0x13, 0x14, 0x16, 0x1E})
_BMP_STRING: Final = 0x1E
#: GeneralName choices (context-specific, primitive) read from subjectAltName.
_SAN_EMAIL, _SAN_DNS, _SAN_URI = 0x81, 0x82, 0x86
_OID_SAN: Final = "2.5.29.17"

#: Go's ``pkix`` short names (``attributeTypeNames``).
GO_TYPE_NAMES: Final = {
    "2.5.4.6": "C", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.3": "CN",
    "2.5.4.5": "SERIALNUMBER", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.9": "STREET",
    "2.5.4.17": "POSTALCODE",
}
#: nats-server's LDAP short names: Go's plus domain components.
LDAP_TYPE_NAMES: Final = {**GO_TYPE_NAMES, "0.9.2342.19200300.100.1.25": "DC"}
#: The order ``pkix.Name.ToRDNSequence`` lays the standard attributes out in.
_GO_NAME_ORDER: Final = ("2.5.4.6", "2.5.4.8", "2.5.4.7", "2.5.4.9", "2.5.4.17",
                         "2.5.4.10", "2.5.4.11", "2.5.4.3", "2.5.4.5")
#: Attributes Go keeps a single (the last) value of.
_GO_SINGLE: Final = frozenset({"2.5.4.3", "2.5.4.5"})
_ESCAPED: Final = frozenset(',+"\\<>;')


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a name: its OID, its value as Go sees it, and its DER."""

    oid: str
    #: The decoded string, or None when Go would not decode it to a string.
    value: str | None
    #: The whole DER element of the value (tag, length, content).
    der: bytes


#: A name: RDN sets in DER order, each a tuple of attributes.
RDNSequence = tuple[tuple[Attribute, ...], ...]


@dataclass(frozen=True, slots=True)
class Certificate:
    """What nats-server reads from a peer certificate."""

    der: bytes
    subject: RDNSequence
    #: The subject's raw DER (``RawSubject``).
    subject_der: bytes
    #: ``SubjectPublicKeyInfo`` DER (``RawSubjectPublicKeyInfo``).
    spki_der: bytes
    emails: tuple[str, ...] = ()
    dns_names: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()

    @property
    def spki_sha256(self) -> str:
        """Hex SHA-256 of the public key info (what ``pinned_certs`` lists)."""
        return hashlib.sha256(self.spki_der).hexdigest()

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the whole certificate."""
        return hashlib.sha256(self.der).hexdigest()


def parse_certificate(der: bytes) -> Certificate:
    """Read the subject, key and alternative names of a DER certificate.

    Raises:
        ValueError, IndexError: Not a certificate this walk understands.
    """
    fields = _tbs_fields(der)
    _, subject_start, subject_end = fields[5]
    _, spki_start, spki_end = fields[6]
    emails: list[str] = []
    dns: list[str] = []
    uris: list[str] = []
    for tag, start, end in fields[7:]:
        if tag == _EXPLICIT_EXTENSIONS:
            _read_san(der, start, end, emails, dns, uris)
    return Certificate(der=der, subject=parse_name(der[subject_start:subject_end]),
                       subject_der=der[subject_start:subject_end],
                       spki_der=der[spki_start:spki_end], emails=tuple(emails),
                       dns_names=tuple(dns), uris=tuple(uris))


def _tbs_fields(der: bytes) -> list[tuple[int, int, int]]:
    """The elements of ``tbsCertificate`` as (tag, start, end), the version made explicit.

    Index 0 is the version (zero-length when absent), then serial, signature, issuer,
    validity, subject, subjectPublicKeyInfo and the optional trailing elements; ``start``
    is where the element's own tag begins (so ``der[start:end]`` is its whole DER)
    except for the trailing ones, where it is where their content begins.
    """
    _, cert, _ = _item(der, 0)
    _, pos, tbs_end = _item(der, cert)
    fields: list[tuple[int, int, int]] = []
    tag, _, end = _item(der, pos)
    if tag == _EXPLICIT_VERSION:
        fields.append((tag, pos, end))
        pos = end
    else:
        fields.append((0, pos, pos))
    while pos < tbs_end:
        tag, content, end = _item(der, pos)
        fields.append((tag, pos if len(fields) < 7 else content, end))
        pos = end
    if len(fields) < 7:
        raise ValueError("truncated tbsCertificate")
    return fields


def _read_san(der: bytes, start: int, end: int, emails: list[str], dns: list[str],
              uris: list[str]) -> None:
    """Collect the subjectAltName entries from the ``[3] Extensions`` element."""
    _, pos, seq_end = _item(der, start)
    while pos < seq_end:
        _, ext, ext_end = _item(der, pos)
        pos = ext_end
        tag, oid_start, oid_end = _item(der, ext)
        if tag != _OID or decode_oid(der[oid_start:oid_end]) != _OID_SAN:
            continue
        tag, value_start, value_end = _item(der, oid_end)
        if tag == _BOOLEAN:  # critical flag
            tag, value_start, value_end = _item(der, value_end)
        _, names, names_end = _item(der, value_start)  # OCTET STRING → GeneralNames
        while names < names_end:
            tag, content, item_end = _item(der, names)
            target = {_SAN_EMAIL: emails, _SAN_DNS: dns, _SAN_URI: uris}.get(tag)
            if target is not None:
                target.append(der[content:item_end].decode("latin-1"))
            names = item_end


def parse_name(der: bytes) -> RDNSequence:
    """An X.501 ``Name`` (a SEQUENCE of SETs of type/value pairs), in DER order."""
    _, pos, end = _item(der, 0)
    rdns: list[tuple[Attribute, ...]] = []
    while pos < end:
        tag, member, set_end = _item(der, pos)
        if tag != _SET:
            raise ValueError("RDN is not a SET")
        attributes: list[Attribute] = []
        while member < set_end:
            _, atv, atv_end = _item(der, member)
            _, oid_start, oid_end = _item(der, atv)
            value_tag, value_start, value_end = _item(der, oid_end)
            raw = der[value_start:value_end]
            attributes.append(Attribute(decode_oid(der[oid_start:oid_end]),
                                        _decode_string(value_tag, raw), der[oid_end:value_end]))
            member = atv_end
        rdns.append(tuple(attributes))
        pos = set_end
    return tuple(rdns)


def decode_oid(content: bytes) -> str:
    """Dotted text of an OBJECT IDENTIFIER's content octets."""
    if not content:
        raise ValueError("empty OID")
    first = content[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    value = 0
    for byte in content[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    if content[0] & 0x80:  # a first arc above 127 (2.x with a large x)
        raise ValueError("unsupported OID encoding")
    return ".".join(str(part) for part in parts)


def _decode_string(tag: int, raw: bytes) -> str | None:
    if tag not in _STRING_TAGS:
        return None
    if tag == _BMP_STRING:
        return raw.decode("utf-16-be", errors="replace")
    return raw.decode("utf-8", errors="replace")


# -- Go's formatting ------------------------------------------------------------------------

def _go_fields(rdns: RDNSequence) -> dict[str, list[str]]:
    """The standard attributes as Go's ``pkix.Name`` keeps them (per type, in order)."""
    fields: dict[str, list[str]] = {}
    for rdn in rdns:
        for attr in rdn:
            if attr.oid in GO_TYPE_NAMES and attr.value is not None:
                values = fields.setdefault(attr.oid, [])
                if attr.oid in _GO_SINGLE:
                    values.clear()
                values.append(attr.value)
    return fields


def _go_rdns(rdns: RDNSequence, *, extra: bool) -> list[tuple[Attribute, ...]]:
    """Go's rebuilt sequence: non-standard attributes first (if ``extra``), then the rest."""
    rebuilt: list[tuple[Attribute, ...]] = []
    if extra:
        rebuilt.extend((attr,) for rdn in rdns for attr in rdn if attr.oid not in GO_TYPE_NAMES)
    fields = _go_fields(rdns)
    for oid in _GO_NAME_ORDER:
        if fields.get(oid):
            rebuilt.append(tuple(Attribute(oid, value, b"") for value in fields[oid]))
    return rebuilt


def go_name_string(rdns: RDNSequence) -> str:
    """Go's ``pkix.Name.String()`` of a parsed name (``tls_peer_certs`` subject)."""
    return _sequence_string(_go_rdns(rdns, extra=True))


def go_rdn_string(rdns: RDNSequence) -> str:
    """Go's ``Name.ToRDNSequence().String()`` (standard attributes only)."""
    return _sequence_string(_go_rdns(rdns, extra=False))


def _sequence_string(rdns: list[tuple[Attribute, ...]]) -> str:
    """Go's ``RDNSequence.String()``: last RDN first, ``+`` inside a set."""
    parts = []
    for rdn in reversed(rdns):
        parts.append("+".join(_attribute_string(attr) for attr in rdn))
    return ",".join(parts)


def _attribute_string(attr: Attribute) -> str:
    """``TYPE=value``; an unknown type by its OID, a value that is no string as DER hex."""
    name = GO_TYPE_NAMES.get(attr.oid, attr.oid)
    if attr.value is None:
        return f"{name}=#{attr.der.hex()}"
    return f"{name}={_escape(attr.value)}"


def _escape(value: str) -> str:
    """RFC 2253 escaping as Go applies it."""
    out = []
    last = len(value.encode()) - 1
    offset = 0
    for ch in value:
        escape = ch in _ESCAPED or (ch == " " and offset in (0, last)) or (
            ch == "#" and offset == 0)
        out.append("\\" + ch if escape else ch)
        offset += len(ch.encode())
    return "".join(out)


def domain_components(rdns: RDNSequence) -> str:
    """``DC=a,DC=b`` of the name's domain components, in DER order (``getTLSAuthDCs``)."""
    return ",".join(f"DC={attr.value}" for rdn in rdns for attr in rdn
                    if attr.oid == "0.9.2342.19200300.100.1.25" and attr.value is not None)


# -- LDAP distinguished names ---------------------------------------------------------------

#: One RDN: its (type, value) pairs; the type compared case-insensitively.
LdapRDN = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class DistinguishedName:
    """A distinguished name as nats-server's LDAP code models it."""

    rdns: tuple[LdapRDN, ...] = field(default=())

    @classmethod
    def from_rdns(cls, rdns: RDNSequence) -> DistinguishedName | None:
        """From a certificate's subject: RDNs (and values in a set) reversed.

        None when an attribute type has no LDAP short name or a value is not a string.
        """
        built: list[LdapRDN] = []
        for rdn in reversed(rdns):
            pairs = []
            for attr in reversed(rdn):
                name = LDAP_TYPE_NAMES.get(attr.oid)
                if name is None or attr.value is None:
                    return None
                pairs.append((name, attr.value))
            if pairs:
                built.append(tuple(pairs))
        return cls(tuple(built))

    @classmethod
    def parse(cls, text: str) -> DistinguishedName | None:
        """Parse an RFC 4514 string (a configured user name); None if it is not one."""
        try:
            return cls(_parse_dn(text))
        except ValueError:
            return None

    def equal(self, other: DistinguishedName) -> bool:
        """Same RDNs at the same positions (each RDN compared as a set)."""
        return len(self.rdns) == len(other.rdns) and all(
            _rdn_equal(mine, theirs) for mine, theirs in zip(self.rdns, other.rdns, strict=True))

    def rdns_match(self, other: DistinguishedName) -> bool:
        """Same RDNs in any order."""
        return len(self.rdns) == len(other.rdns) and all(
            any(_rdn_equal(mine, theirs) for theirs in other.rdns) for mine in self.rdns)


def _rdn_equal(first: LdapRDN, second: LdapRDN) -> bool:
    return len(first) == len(second) and _has_all(first, second) and _has_all(second, first)


def _has_all(container: LdapRDN, wanted: LdapRDN) -> bool:
    return all(any(kind.lower() == mine_kind.lower() and value == mine_value
                   for mine_kind, mine_value in container) for kind, value in wanted)


def _parse_dn(text: str) -> tuple[LdapRDN, ...]:
    """RFC 4514 parsing as nats-server's ``ldap.ParseDN`` does it (bytes, not runes)."""
    data = text.encode()
    rdns: list[LdapRDN] = []
    rdn: list[tuple[str, str]] = []
    buf = bytearray()
    kind = ""
    trailing = 0  # unescaped spaces at the end of buf
    i = 0
    while i < len(data):
        char = data[i]
        if char == 0x5C:  # backslash
            i = _unescape(data, i + 1, buf)
            trailing = 0
        elif char == 0x3D:  # '='
            kind = _take(buf, trailing)
            trailing = 0
            if data[i + 1:i + 2] == b"#":
                raise ValueError("unsupported BER encoding")
        elif char in (0x2C, 0x2B):  # ',' or '+'
            if not kind:
                raise ValueError("incomplete type, value pair")
            rdn.append((kind, _take(buf, trailing)))
            kind, trailing = "", 0
            if char == 0x2C:
                rdns.append(tuple(rdn))
                rdn = []
        elif char == 0x20 and not buf:
            pass  # leading spaces
        else:
            trailing = trailing + 1 if char == 0x20 else 0
            buf.append(char)
        i += 1
    if buf:
        if not kind:
            raise ValueError("DN ended with incomplete type, value pair")
        rdn.append((kind, _take(buf, trailing)))
        rdns.append(tuple(rdn))
    return tuple(rdns)


def _unescape(data: bytes, i: int, buf: bytearray) -> int:
    """Append the escaped character at ``data[i]``; return the index of its last byte."""
    if i >= len(data):
        raise ValueError("got corrupted escaped character")
    if chr(data[i]) in ' "#+,;<=>\\':
        buf.append(data[i])
        return i
    if i + 2 > len(data):
        raise ValueError("got corrupted escaped character")
    buf.append(int(data[i:i + 2].decode("ascii", errors="replace"), 16))
    return i + 1


def _take(buf: bytearray, trailing: int) -> str:
    text = bytes(buf[:len(buf) - trailing]).decode("utf-8", errors="replace")
    buf.clear()
    return text


# -- expiry ---------------------------------------------------------------------------------

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
    _, validity_start, _ = _tbs_fields(der)[4]
    _, validity, _ = _item(der, validity_start)
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


__all__ = [
    "GO_TYPE_NAMES", "LDAP_TYPE_NAMES", "Attribute", "Certificate", "DistinguishedName",
    "RDNSequence", "cert_not_after", "decode_oid", "der_not_after", "domain_components",
    "go_name_string", "go_rdn_string", "parse_certificate", "parse_name",
]
