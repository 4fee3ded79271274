"""pynats.nkeys: the NKEY text form, signatures, JWTs and .creds files.

Fixed vectors come from the NATS projects' own test data (key pairs and a .creds file
published with nats-server and nats.py). When the Go-compatible ``nkeys`` package from
PyPI is installed (test extras), it is used as an oracle for random keys of every role.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pynats import nkeys
from pynats.errors import NkeyError, PynatsError
from pynats.nkeys import KeyPair, Prefix

ROLES = [Prefix.OPERATOR, Prefix.ACCOUNT, Prefix.USER, Prefix.SERVER, Prefix.CLUSTER]

#: A user key pair from nats-server's configuration tests.
USER_SEED = "SUAKINP3Z2BPUXWOFSW2FZC7TFJCMMU7DHKP2C62IJQUDASOCDSTDTRMJQ"
USER_PUBLIC = "UB57IEMPG4KOTPFV5A66QKE2HZ3XBXFHVRCCVMJEWKECMVN2HSH3VTSJ"
#: Seed of the 32 bytes 0..31 for a user, and its public key (checked with the oracle).
COUNTING_SEED = "SUAAAAICAMCAKBQHBAEQUCYMBUHA6EARCIJRIFIWC4MBSGQ3DQOR4H776Y"
COUNTING_PUBLIC = "UAB2CB576PHBBPQ5ODORRZ2LYCMWPZGWGCN2KDK7DXOIMZASKUY3RLKK"

#: nats.py's ``bar-user.creds`` test file: a version 1 JWT (``alg: ed25519``).
BAR_JWT = (
    "eyJ0eXAiOiJqd3QiLCJhbGciOiJlZDI1NTE5In0.eyJqdGkiOiJTRVYzUE5WNExQU0JZUDRGVTdLSDROSkhS"
    "WjNSREhCQlpWUFZCNEZYNENIUURORktMSTRRIiwiaWF0IjoxNTUzODQwOTMyLCJpc3MiOiJBQVhQVFAzMkJE"
    "NzNZVzNBQ1VZNkRQWEtXQlNVVzRWRVpORTNMRDRGVU9GRFA2S0RVNDNQUVZVMiIsIm5hbWUiOiJiYXItdXNl"
    "ciIsInN1YiI6IlVBVFY3QkE0SEpBSUxXMjJHUVhJUzU1MlZNS1E2NDRGWlJJQUlVV1ZJTEpWSlo0U1pWVkNY"
    "QVZRIiwidHlwZSI6InVzZXIiLCJuYXRzIjp7InB1YiI6e30sInN1YiI6e319fQ.2_IUOJ_YnE1R0dpDxllFQk"
    "V4chzzlRi1MY5da9L0dPQkqPanSyNSig8yEUBLH4qHmmwl0Wc349vsO_ZYZD0mDw")
BAR_SEED = "SUADASFE2CMNLLIYTMWA6VMSD6T3CLTFXDW7AFTRBNANFR5EPDE554NUOE"
BAR_ISSUER = "AAXPTP32BD73YW3ACUY6DPXKWBSUW4VEZNE3LD4FUOFDP6KDU43PQVU2"
BAR_CREDS = f"""-----BEGIN NATS USER JWT-----
{BAR_JWT}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
{BAR_SEED}
------END USER NKEY SEED------

*************************************************************
"""


def _flip(text: str, index: int) -> str:
    """``text`` with one base32 character changed (the checksum no longer matches)."""
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1:]


# -- encoding ------------------------------------------------------------------------------


def test_crc16_is_xmodem() -> None:
    assert nkeys.crc16(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value
    assert nkeys.crc16(b"") == 0


def test_prefix_letters() -> None:
    assert [p.letter for p in ROLES] == ["O", "A", "U", "N", "C"]
    assert Prefix.SEED.letter == "S" and Prefix.PRIVATE.letter == "P"


def test_known_vectors() -> None:
    assert nkeys.encode_seed(Prefix.USER, bytes(range(32))) == COUNTING_SEED
    assert KeyPair(COUNTING_SEED).public_key == COUNTING_PUBLIC
    assert KeyPair(USER_SEED).public_key == USER_PUBLIC
    assert KeyPair(BAR_SEED).public_key == nkeys.decode_jwt(BAR_JWT)[1]["sub"]


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_generated_keys_have_their_letters(role: Prefix) -> None:
    pair = nkeys.generate(role)
    assert pair.seed[:2] == "S" + role.letter
    assert pair.public_key[0] == role.letter
    assert pair.private_key[0] == "P"
    assert len(pair.public_key) == 56 and len(pair.seed) == 58
    assert nkeys.decode_seed(pair.seed)[0] == role
    assert nkeys.decode_public_key(pair.public_key) == (role, nkeys.decode_public_key(
        pair.public_key, role)[1])


@given(st.binary(min_size=32, max_size=32), st.sampled_from(ROLES))
def test_round_trips(raw: bytes, role: Prefix) -> None:
    seed = nkeys.encode_seed(role, raw)
    assert nkeys.decode_seed(seed) == (role, raw)
    public = nkeys.encode(role, raw)
    assert nkeys.decode_public_key(public, role) == (role, raw)
    assert nkeys.is_valid_public_key(public) and nkeys.is_valid_public_key(public, role)


@pytest.mark.parametrize("role", ROLES, ids=lambda p: p.name)
def test_matches_the_go_compatible_package(role: Prefix) -> None:
    oracle = pytest.importorskip("nkeys")
    for raw in (bytes(32), b"\xff" * 32, bytes(range(32)), os.urandom(32)):
        seed = nkeys.encode_seed(role, raw)
        assert seed == oracle.encode_seed(raw, int(role)).decode()
        ours, theirs = KeyPair(seed), oracle.from_seed(seed.encode())
        assert ours.public_key == theirs.public_key.decode()
        assert ours.private_key == theirs.private_key.decode()
        assert ours.sign(b"nonce") == theirs.sign(b"nonce")


@pytest.mark.parametrize("key", [
    "",
    "UABC",  # too short for a checksum, and a bad length for base32
    USER_PUBLIC.lower(),
    USER_PUBLIC + "====",
    _flip(USER_PUBLIC, 10),  # checksum mismatch
    USER_PUBLIC[:-1],
    USER_SEED,  # a seed is not a public key
    nkeys.encode(Prefix.PRIVATE, bytes(64)),
    "U" + "1" * 55,  # not in the base32 alphabet
])
def test_invalid_public_keys(key: str) -> None:
    assert not nkeys.is_valid_public_key(key)
    with pytest.raises(NkeyError):
        nkeys.decode_public_key(key)


def test_public_key_of_another_role() -> None:
    account = nkeys.generate(Prefix.ACCOUNT).public_key
    assert nkeys.is_valid_public_key(account)
    assert not nkeys.is_valid_public_key(account, Prefix.USER)
    assert nkeys.is_valid_public_key(USER_PUBLIC, Prefix.USER)


def test_line_breaks_are_ignored_like_go() -> None:
    assert nkeys.is_valid_public_key(USER_PUBLIC[:20] + "\r\n" + USER_PUBLIC[20:])


def test_length_is_not_part_of_validity_but_such_keys_never_verify() -> None:
    odd = nkeys.encode(Prefix.USER, bytes(16))
    assert nkeys.is_valid_public_key(odd, Prefix.USER)  # as nkeys.IsValidPublicUserKey
    assert not nkeys.verify(odd, b"x", bytes(64))


@pytest.mark.parametrize("seed", [
    USER_PUBLIC, _flip(USER_SEED, 12), USER_SEED[:-2], "SX" + USER_SEED[2:], "",
    nkeys.encode(Prefix.PRIVATE, bytes(32)),
])
def test_invalid_seeds(seed: str) -> None:
    with pytest.raises(NkeyError):
        nkeys.decode_seed(seed)
    with pytest.raises(NkeyError):
        KeyPair(seed)


def test_encode_refuses_bad_input() -> None:
    with pytest.raises(NkeyError):
        nkeys.encode_seed(Prefix.USER, bytes(31))
    with pytest.raises(NkeyError):
        nkeys.encode_seed(Prefix.SEED, bytes(32))
    with pytest.raises(NkeyError):
        nkeys.encode(Prefix.SEED, bytes(32))


def test_errors_are_rooted() -> None:
    assert issubclass(NkeyError, PynatsError) and issubclass(NkeyError, ValueError)


# -- signatures ----------------------------------------------------------------------------


def test_sign_and_verify() -> None:
    pair = KeyPair(USER_SEED.encode())
    sig = pair.sign(b"hello")
    assert len(sig) == nkeys.SIGNATURE_SIZE
    assert nkeys.verify(USER_PUBLIC, b"hello", sig) and pair.verify(b"hello", sig)
    assert not nkeys.verify(USER_PUBLIC, b"hellO", sig)
    assert not nkeys.verify(COUNTING_PUBLIC, b"hello", sig)
    assert not nkeys.verify(USER_PUBLIC, b"hello", sig[:-1])
    assert not nkeys.verify("UABC", b"hello", sig)


def test_key_pair_does_not_show_its_seed() -> None:
    pair = KeyPair(USER_SEED)
    assert USER_SEED not in repr(pair) and USER_PUBLIC in repr(pair)
    assert nkeys.from_seed(USER_SEED).public_key == USER_PUBLIC


def test_sign_nonce_is_raw_url_base64() -> None:
    pair = KeyPair(USER_SEED)
    text = pair.sign_nonce("abc_DEF-123")
    assert "=" not in text and "+" not in text and "/" not in text
    assert nkeys.decode_signature(text) == pair.sign(b"abc_DEF-123")


@pytest.mark.parametrize(("text", "raw"), [
    ("-_8", b"\xfb\xff"),  # URL-safe, no padding: nats.go
    ("+/8=", b"\xfb\xff"),  # standard with padding: nats-py
    ("QQ", b"A"),
    ("QQ==", b"A"),
    ("QUJD", b"ABC"),
    ("Q\r\nQ", b"A"),
    ("", b""),
    ("-_8=", None),  # URL-safe with padding: neither encoding
    ("+/8", None),  # standard without padding
    ("QQ=", None),
    ("A", None),
    ("QQ==QQ==", None),
    ("Q Q", None),
])
def test_decode_signature_like_nats_server(text: str, raw: bytes | None) -> None:
    assert nkeys.decode_signature(text) == raw


# -- JWT -----------------------------------------------------------------------------------


def _b64(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


def test_decode_jwt_v1_vector() -> None:
    header, claims = nkeys.decode_jwt(BAR_JWT)
    assert header == {"typ": "jwt", "alg": "ed25519"}
    assert claims["iss"] == BAR_ISSUER and claims["name"] == "bar-user"


def test_verify_jwt_v1_vector() -> None:
    assert nkeys.verify_jwt(BAR_JWT)["type"] == "user"
    assert nkeys.verify_jwt(BAR_JWT, BAR_ISSUER)["name"] == "bar-user"
    with pytest.raises(NkeyError):
        nkeys.verify_jwt(BAR_JWT, nkeys.generate(Prefix.ACCOUNT).public_key)


def test_jwt_v2_round_trip() -> None:
    account = nkeys.generate(Prefix.ACCOUNT)
    claims = {"sub": USER_PUBLIC, "name": "u", "nats": {"type": "user", "version": 2}}
    token = nkeys.encode_jwt(claims, account)
    header, decoded = nkeys.decode_jwt(token)
    assert header == {"typ": "JWT", "alg": "ed25519-nkey"}
    assert decoded == {**claims, "iss": account.public_key}
    assert nkeys.verify_jwt(token, account.public_key) == decoded


def test_jwt_tampering_is_detected() -> None:
    account = nkeys.generate(Prefix.ACCOUNT)
    token = nkeys.encode_jwt({"sub": USER_PUBLIC, "name": "u"}, account)
    head, _, sig = token.split(".")
    forged = f"{head}.{_b64({'sub': USER_PUBLIC, 'name': 'x', 'iss': account.public_key})}.{sig}"
    with pytest.raises(NkeyError, match="signature"):
        nkeys.verify_jwt(forged)
    # A v2 signature covers the header too.
    other_head = _b64({"typ": "JWT", "alg": "ED25519-NKEY"})
    with pytest.raises(NkeyError, match="signature"):
        nkeys.verify_jwt(f"{other_head}.{token.split('.', 1)[1]}")


@pytest.mark.parametrize("header", [{"typ": "JWT", "alg": "HS256"}, {"typ": "JOSE", "alg":
                                    "ed25519-nkey"}, {"alg": "ed25519-nkey"}])
def test_jwt_of_another_kind_is_refused(header: dict[str, str]) -> None:
    account = nkeys.generate(Prefix.ACCOUNT)
    body = _b64({"sub": USER_PUBLIC, "iss": account.public_key})
    sig = nkeys.encode_signature(account.sign(f"{_b64(header)}.{body}".encode()))
    with pytest.raises(NkeyError, match="NATS JWT"):
        nkeys.verify_jwt(f"{_b64(header)}.{body}.{sig}")


@pytest.mark.parametrize("token", [
    "a.b", "a.b.c.d", "!!.e30.x", f"{_b64([1])}.e30.x", "e30.bm90IGpzb24.x",
    "e30=.e30.x",  # padded parts are not JWT base64url
])
def test_malformed_jwt(token: str) -> None:
    with pytest.raises(NkeyError):
        nkeys.decode_jwt(token)


def test_verify_jwt_needs_an_issuer() -> None:
    with pytest.raises(NkeyError):
        nkeys.verify_jwt("e30.e30.AAAA")


# -- .creds files --------------------------------------------------------------------------


def test_read_creds(tmp_path: Path) -> None:
    path = tmp_path / "bar.creds"
    path.write_text(BAR_CREDS)
    assert nkeys.read_creds(path) == (BAR_JWT, BAR_SEED)
    assert nkeys.parse_creds(BAR_CREDS.replace("\n", "\r\n")) == (BAR_JWT, BAR_SEED)


def test_creds_seed_without_decoration() -> None:
    text = f"-----BEGIN NATS USER JWT-----\n{BAR_JWT}\n------END NATS USER JWT------\n\n" \
           f"  {BAR_SEED}\n"
    assert nkeys.parse_creds(text) == (BAR_JWT, BAR_SEED)
    assert nkeys.parse_creds(BAR_SEED + "\n") == (BAR_SEED, BAR_SEED)  # a bare seed file


@pytest.mark.parametrize("text", [
    f"-----BEGIN NATS USER JWT-----\n{BAR_JWT}\n------END NATS USER JWT------\n",
    BAR_CREDS.replace(BAR_SEED, USER_PUBLIC),
    BAR_CREDS.replace(BAR_SEED, _flip(BAR_SEED, 20)),
])
def test_creds_without_a_valid_seed(text: str) -> None:
    with pytest.raises(NkeyError):
        nkeys.parse_creds(text)


def test_read_creds_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NkeyError, match="cannot read"):
        nkeys.read_creds(tmp_path / "nope.creds")
