"""NATS NKEYs: typed ed25519 keys, their text form, signatures, JWTs and ``.creds`` files.

Theory of operation
-------------------
An NKEY is an ed25519 key written as text. The text form is RFC 4648 base32 (upper
case, no ``=`` padding) of three parts: a *prefix*, the raw key, and a CRC-16 of the
first two (the XMODEM variant: polynomial 0x1021, initial value 0, stored little
endian). The prefix makes the first character name the key's role:

* public keys carry one prefix byte: ``O`` operator, ``A`` account, ``U`` user,
  ``N`` server, ``C`` cluster; the payload is the 32-byte ed25519 public key;
* seeds (the secret from which the whole key pair is derived) carry two bytes that
  spell ``S`` followed by the role letter (``SU...`` is a user seed); the payload is
  the 32-byte ed25519 seed;
* private keys (``P...``) hold the 64-byte expanded secret; they are only produced.

Decoding follows the Go ``nkeys`` library that nats-server uses, so that this server
accepts and refuses the same strings: base32 without padding, a checksum that must
match, a prefix that must be the expected one. As there, the length of a public key
is not part of "valid" (a checksummed ``U`` string of another length is a valid user
key for the configuration check) but such a key never verifies a signature.

Signing and verifying go through PyNaCl (libsodium). A server holds only public keys:
:func:`verify` checks a signature against one, :class:`KeyPair` (from a seed) signs.

The NKEY challenge: a server that has nkey users puts a random ``nonce`` in each
client's INFO; the client answers in CONNECT with its public key (``nkey``) and the
ed25519 signature of the nonce's bytes (``sig``), base64 URL-safe without padding
(:meth:`KeyPair.sign_nonce`). nats-server also takes standard padded base64 there,
which is what nats-py sends; :func:`decode_signature` accepts exactly those two.

NATS JWTs (``header.claims.signature``, each part base64 URL-safe without padding)
carry ``alg: ed25519-nkey`` (version 2: the signature covers ``header.claims``) or the
older ``ed25519`` (version 1: it covers only the claims part). :func:`decode_jwt` reads
one without checking anything; :func:`verify_jwt` checks the signature of the issuer.
A ``.creds`` file holds a user JWT and the user's seed, each between dashed lines;
:func:`parse_creds` reads both.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from enum import IntEnum
from pathlib import Path
from typing import Any, Final

import nacl.exceptions
import nacl.signing

from pynats.errors import NkeyError


class Prefix(IntEnum):
    """The prefix byte of each kind of NKEY (its top five bits are the first letter)."""

    ACCOUNT = 0
    CLUSTER = 2 << 3
    SERVER = 13 << 3
    OPERATOR = 14 << 3
    PRIVATE = 15 << 3
    SEED = 18 << 3
    USER = 20 << 3

    @property
    def letter(self) -> str:
        """The first character of keys with this prefix (``U`` for users)."""
        return _B32_ALPHABET[self >> 3]


#: The roles a public key (and the second letter of a seed) may have.
PUBLIC_PREFIXES: Final = frozenset(
    {Prefix.OPERATOR, Prefix.ACCOUNT, Prefix.USER, Prefix.SERVER, Prefix.CLUSTER})
#: Bytes in an ed25519 public key, seed and signature.
KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64

_B32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_INVALID_LENGTHS = frozenset({1, 3, 6})  # remainders mod 8 no byte count produces
_GO_IGNORED = str.maketrans("", "", "\r\n")  # Go's base32/base64 decoders skip these
_RAW_URL_B64 = re.compile(r"[A-Za-z0-9_-]*")
_STD_B64 = re.compile(r"[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16_TABLE: Final = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM of ``data`` (polynomial 0x1021, initial value 0), as nkeys uses."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16_TABLE[(crc >> 8) ^ byte]
    return crc


# -- text form --------------------------------------------------------------------------

def _b32encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def _checksummed(raw: bytes) -> str:
    return _b32encode(raw + crc16(raw).to_bytes(2, "little"))


def _decode(text: str | bytes) -> bytes:
    """Base32 without padding, checksum verified; returns prefix and payload bytes."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = text.translate(_GO_IGNORED)
    if "=" in text or len(text) % 8 in _B32_INVALID_LENGTHS:
        raise NkeyError("invalid nkey encoding")
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError) as exc:
        raise NkeyError("invalid nkey encoding") from exc
    if len(raw) < 4:
        raise NkeyError("invalid nkey encoding")
    body, checksum = raw[:-2], int.from_bytes(raw[-2:], "little")
    if crc16(body) != checksum:
        raise NkeyError("invalid nkey checksum")
    return body


def encode(prefix: Prefix, raw: bytes) -> str:
    """The text form of a public (or private) key: one prefix byte, ``raw``, the checksum.

    Raises:
        NkeyError: ``prefix`` is the seed prefix (use :func:`encode_seed`).
    """
    if prefix == Prefix.SEED:
        raise NkeyError("use encode_seed for seeds")
    return _checksummed(bytes([prefix]) + raw)


def encode_seed(prefix: Prefix, raw_seed: bytes) -> str:
    """The text form of a 32-byte seed for a key of role ``prefix`` (``SU...``, ``SA...``).

    Raises:
        NkeyError: ``prefix`` is not a public role or the seed is not 32 bytes.
    """
    if prefix not in PUBLIC_PREFIXES:
        raise NkeyError("invalid prefix byte for a seed")
    if len(raw_seed) != KEY_SIZE:
        raise NkeyError("invalid seed length")
    head = bytes([Prefix.SEED | (prefix >> 5), (prefix & 31) << 3])
    return _checksummed(head + raw_seed)


def decode_public_key(key: str | bytes, prefix: Prefix | None = None) -> tuple[Prefix, bytes]:
    """Check and decode a public key.

    Args:
        key: The text form (``U...``).
        prefix: The role it must have; ``None`` accepts any public role.

    Returns:
        The key's role and its payload (32 bytes for every key nkeys generates).

    Raises:
        NkeyError: bad encoding or checksum, or not a public key (of that role).
    """
    body = _decode(key)
    found = body[0]
    if found not in PUBLIC_PREFIXES or (prefix is not None and found != prefix):
        raise NkeyError("invalid public key" if prefix is None else "invalid prefix byte")
    return Prefix(found), body[1:]


def is_valid_public_key(key: str | bytes, prefix: Prefix | None = None) -> bool:
    """Whether ``key`` is a valid public key (of role ``prefix``), as nkeys judges it."""
    try:
        decode_public_key(key, prefix)
    except NkeyError:
        return False
    return True


def decode_seed(seed: str | bytes) -> tuple[Prefix, bytes]:
    """Check and decode a seed: returns the role of its key pair and the raw seed.

    Raises:
        NkeyError: bad encoding or checksum, not a seed, or an unknown role.
    """
    body = _decode(seed)
    if len(body) < 2 or body[0] & 0xF8 != Prefix.SEED:
        raise NkeyError("invalid seed")
    role = ((body[0] & 7) << 5) | ((body[1] & 0xF8) >> 3)
    if role not in PUBLIC_PREFIXES:
        raise NkeyError("invalid seed")
    return Prefix(role), body[2:]


# -- signatures -------------------------------------------------------------------------

def verify(public_key: str | bytes, data: bytes, sig: bytes) -> bool:
    """Whether ``sig`` is the ed25519 signature of ``data`` by ``public_key`` (text form).

    An invalid key, a key of the wrong length or a signature of the wrong length
    gives False, never an exception.
    """
    try:
        _, raw = decode_public_key(public_key)
        nacl.signing.VerifyKey(raw).verify(data, sig)
    except (NkeyError, nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def encode_signature(sig: bytes) -> str:
    """A signature as clients send it in CONNECT: base64 URL-safe, no padding."""
    return base64.urlsafe_b64encode(sig).decode().rstrip("=")


def decode_signature(text: str) -> bytes | None:
    """A CONNECT ``sig``, decoded as nats-server does; ``None`` if it is not base64.

    nats-server tries base64 URL-safe without padding first, then standard base64
    with padding; both ignore line breaks.
    """
    text = text.translate(_GO_IGNORED)
    raw = _raw_url_decode(text)
    if raw is None and _STD_B64.fullmatch(text) and len(text) % 4 == 0:
        raw = base64.b64decode(text)
    return raw


def _raw_url_decode(text: str) -> bytes | None:
    """Base64 URL-safe without padding (Go's ``RawURLEncoding``); ``None`` if not."""
    if not _RAW_URL_B64.fullmatch(text) or len(text) % 4 == 1:
        return None
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyPair:
    """An ed25519 key pair built from a seed: it signs, and verifies its own signatures.

    Args:
        seed: The seed in text form (``SU...``).

    Raises:
        NkeyError: the seed is invalid.
    """

    __slots__ = ("_signing", "prefix", "public_key", "seed")

    def __init__(self, seed: str | bytes):
        prefix, raw = decode_seed(seed)
        if len(raw) != KEY_SIZE:
            raise NkeyError("invalid seed length")
        self._signing = nacl.signing.SigningKey(raw)
        #: The role of the key pair (``Prefix.USER`` for an ``SU`` seed).
        self.prefix = prefix
        #: The seed, text form.
        self.seed = seed.decode() if isinstance(seed, bytes) else seed
        #: The public key, text form (``U...``).
        self.public_key = encode(prefix, bytes(self._signing.verify_key))

    @property
    def private_key(self) -> str:
        """The private key, text form (``P...``: the seed then the public key)."""
        return encode(Prefix.PRIVATE, bytes(self._signing) + bytes(self._signing.verify_key))

    def sign(self, data: bytes) -> bytes:
        """The 64-byte ed25519 signature of ``data``."""
        return self._signing.sign(data).signature

    def sign_nonce(self, nonce: str) -> str:
        """CONNECT's ``sig`` for an INFO ``nonce``: its signature, base64 URL-safe."""
        return encode_signature(self.sign(nonce.encode()))

    def verify(self, data: bytes, sig: bytes) -> bool:
        """Whether ``sig`` is this key pair's signature of ``data``."""
        return verify(self.public_key, data, sig)

    def __repr__(self) -> str:
        return f"KeyPair({self.public_key})"


def from_seed(seed: str | bytes) -> KeyPair:
    """The key pair of ``seed`` (same as :class:`KeyPair`)."""
    return KeyPair(seed)


def generate(prefix: Prefix = Prefix.USER) -> KeyPair:
    """A new random key pair of role ``prefix``."""
    return KeyPair(encode_seed(prefix, os.urandom(KEY_SIZE)))


# -- JWT ---------------------------------------------------------------------------------

_JWT_ALGORITHMS: Final = {"ed25519": 1, "ed25519-nkey": 2}


def _b64url_json(part: str, what: str) -> dict[str, Any]:
    raw = _raw_url_decode(part)
    if raw is None:
        raise NkeyError(f"JWT {what} is not base64url")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise NkeyError(f"JWT {what} is not JSON") from exc
    if not isinstance(value, dict):
        raise NkeyError(f"JWT {what} is not a JSON object")
    return value


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, decoded but not verified.

    Raises:
        NkeyError: not three dot-separated parts, or a part that is not base64url JSON.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise NkeyError("JWT must have 3 parts")
    return _b64url_json(parts[0], "header"), _b64url_json(parts[1], "claims")


def verify_jwt(token: str, issuer_public_key: str | None = None) -> dict[str, Any]:
    """Check a NATS JWT's signature; returns its claims.

    Args:
        token: The JWT.
        issuer_public_key: The key that must have signed it (and must be its ``iss``);
            ``None`` takes the ``iss`` claim as is (the caller then decides whether
            it trusts that issuer).

    Raises:
        NkeyError: malformed, not a NATS JWT (``typ`` JWT, ``alg`` ed25519-nkey or
            ed25519), another issuer, or a signature that does not verify.
    """
    token = token.strip()
    header, claims = decode_jwt(token)
    version = _JWT_ALGORITHMS.get(str(header.get("alg", "")).lower())
    if str(header.get("typ", "")).upper() != "JWT" or version is None:
        raise NkeyError("not a NATS JWT (typ/alg)")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or (issuer_public_key is not None
                                       and issuer != issuer_public_key):
        raise NkeyError("JWT issuer mismatch")
    head, body, sig_text = token.split(".")
    sig = _raw_url_decode(sig_text)
    signed = f"{head}.{body}" if version == 2 else body
    if sig is None or not verify(issuer, signed.encode(), sig):
        raise NkeyError("JWT signature does not verify")
    return claims


def encode_jwt(claims: dict[str, Any], issuer: KeyPair) -> str:
    """A version 2 NATS JWT of ``claims`` signed by ``issuer`` (sets ``iss``; for tests/tools).

    The caller provides every other claim (``sub``, ``nats``, ``iat``, ...) as wanted.
    """
    header = {"typ": "JWT", "alg": "ed25519-nkey"}
    claims = {**claims, "iss": issuer.public_key}
    head = encode_signature(json.dumps(header, separators=(",", ":")).encode())
    body = encode_signature(json.dumps(claims, separators=(",", ":")).encode())
    sig = issuer.sign(f"{head}.{body}".encode())
    return f"{head}.{body}.{encode_signature(sig)}"


# -- .creds files ---------------------------------------------------------------------------

_DASHED = re.compile(r"\s*-{3,}.*-{3,}\s*")
_TOKEN = re.compile(r"[\w\-.=]+", re.ASCII)
_SEED_STARTS = ("SO", "SA", "SU")


def _decorated_blocks(text: str) -> list[str]:
    """The one-line contents found between dashed lines, in order."""
    lines = text.splitlines()
    found = []
    for i in range(len(lines) - 2):
        if (_DASHED.fullmatch(lines[i]) and _TOKEN.fullmatch(lines[i + 1])
                and _DASHED.fullmatch(lines[i + 2])):
            found.append(lines[i + 1])
    return found


def parse_creds(text: str) -> tuple[str, str]:
    """The user JWT and the seed held in a ``.creds`` file's text.

    The JWT is the first decorated block (the whole text if there is none); the seed
    is the second block, or else the first line that starts with ``SO``, ``SA`` or
    ``SU`` (as the Go libraries read it).

    Raises:
        NkeyError: no seed, or one that is not a valid operator, account or user seed.
    """
    blocks = _decorated_blocks(text)
    jwt = blocks[0] if blocks else text.strip()
    if len(blocks) > 1:
        seed = blocks[1]
    else:
        seed = next((line.strip() for line in text.splitlines()
                     if line.strip().startswith(_SEED_STARTS)), "")
    if not seed:
        raise NkeyError("no nkey seed found")
    if not seed.startswith(_SEED_STARTS):
        raise NkeyError("doesn't contain a seed nkey")
    decode_seed(seed)
    return jwt, seed


def read_creds(path: str | os.PathLike[str]) -> tuple[str, str]:
    """:func:`parse_creds` of the file at ``path``.

    Raises:
        NkeyError: the file cannot be read or holds no valid seed.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise NkeyError(f"cannot read creds file {os.fspath(path)!r}: {exc}") from exc
    return parse_creds(text)


__all__ = [
    "KEY_SIZE", "PUBLIC_PREFIXES", "SIGNATURE_SIZE", "KeyPair", "NkeyError", "Prefix",
    "crc16", "decode_jwt", "decode_public_key", "decode_seed", "decode_signature", "encode",
    "encode_jwt", "encode_seed", "encode_signature", "from_seed", "generate",
    "is_valid_public_key", "parse_creds", "read_creds", "verify", "verify_jwt",
]
