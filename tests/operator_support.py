"""Operator mode test material: keys, operator/account/user JWTs, configuration files.

Every key is generated when the tests run (nothing secret is checked in) and every JWT
is signed with :func:`pynats.nkeys.encode_jwt`, so the servers under test see JWTs they
have never seen before. The shapes follow what ``nsc`` writes: version 2 claims with
``nats.type`` and ``nats.version``, limits at ``-1`` (unlimited) unless a test wants
otherwise, since nats-server reads an absent limit as zero.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness import RawClient
from pynats import nkeys
from pynats.nkeys import KeyPair, Prefix

#: An account's limits when nothing is limited.
UNLIMITED_ACCOUNT: dict[str, Any] = {
    "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
    "wildcards": True, "conn": -1, "leaf": -1,
}
#: A user's limits when nothing is limited.
UNLIMITED_USER: dict[str, Any] = {"subs": -1, "data": -1, "payload": -1}


def key(prefix: Prefix) -> KeyPair:
    """A new random key pair."""
    return nkeys.generate(prefix)


def _claims(subject: KeyPair | str, name: str, nats: Mapping[str, Any],
            **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    sub = subject if isinstance(subject, str) else subject.public_key
    return {"jti": f"{name}-{now}-{sub[:8]}", "iat": now, "name": name, "sub": sub,
            "nats": dict(nats), **extra}


def operator_jwt(operator: KeyPair, *, signing_keys: Iterable[KeyPair] = (),
                 system_account: str = "", name: str = "op", **nats: Any) -> str:
    """A self-signed operator JWT."""
    body: dict[str, Any] = {"type": "operator", "version": 2, **nats}
    keys = [k.public_key for k in signing_keys]
    if keys:
        body["signing_keys"] = keys
    if system_account:
        body["system_account"] = system_account
    return nkeys.encode_jwt(_claims(operator, name, body), operator)


def account_jwt(account: KeyPair, name: str, signer: KeyPair, *,
                limits: Mapping[str, Any] | None = None, signing_keys: Iterable[Any] = (),
                revocations: Mapping[str, int] | None = None,
                default_permissions: Mapping[str, Any] | None = None,
                **extra: Any) -> str:
    """An account JWT signed by ``signer`` (an operator or operator signing key).

    ``signing_keys`` holds key pairs (plain signing keys) or scope dicts; ``extra``
    goes to the top-level claims (``exp``, ``nbf``...).
    """
    body: dict[str, Any] = {"type": "account", "version": 2,
                            "limits": dict(UNLIMITED_ACCOUNT if limits is None else limits)}
    keys = [k.public_key if isinstance(k, KeyPair) else k for k in signing_keys]
    if keys:
        body["signing_keys"] = keys
    if revocations:
        body["revocations"] = dict(revocations)
    if default_permissions is not None:
        body["default_permissions"] = dict(default_permissions)
    return nkeys.encode_jwt(_claims(account, name, body, **extra), signer)


def user_jwt(user: KeyPair, signer: KeyPair, *, name: str = "user",
             issuer_account: str = "", limits: Mapping[str, Any] | None = None,
             top: Mapping[str, Any] | None = None, **nats: Any) -> str:
    """A user JWT signed by ``signer`` (the account, or one of its signing keys).

    ``nats`` goes to the ``nats`` object (``pub``, ``sub``, ``resp``, ``src``...),
    ``top`` to the top-level claims (``exp``, ``nbf``, ``iat``).
    """
    body: dict[str, Any] = {"type": "user", "version": 2,
                            **(UNLIMITED_USER if limits is None else limits), **nats}
    if issuer_account:
        body["issuer_account"] = issuer_account
    return nkeys.encode_jwt(_claims(user, name, body, **dict(top or {})), signer)


def scope(key_pair: KeyPair, template: Mapping[str, Any], role: str = "scoped") -> dict[
        str, Any]:
    """A scoped signing key entry for an account JWT's ``signing_keys``."""
    return {"kind": "user_scope", "key": key_pair.public_key, "role": role,
            "template": dict(template)}


def server_conf(operator: str, preload: Mapping[str, str], system_account: str = "",
                extra: str = "") -> str:
    """A configuration file: the operator JWT inline, a memory resolver, the preloads."""
    lines = [f"operator: {operator}", "resolver: MEMORY"]
    if system_account:
        lines.append(f"system_account: {system_account}")
    lines.append("resolver_preload: {")
    lines += [f"  {account}: {token}" for account, token in preload.items()]
    lines.append("}")
    return "\n".join(lines) + "\n" + extra


def creds_file(path: Path, jwt: str, seed: str) -> Path:
    """Write a ``.creds`` file as ``nsc`` does."""
    path.write_text(f"-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n"
                    "************************* IMPORTANT *************************\n"
                    "NKEY Seed printed below can be used to sign and prove identity.\n\n"
                    f"-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n")
    return path


def nonce_of(client: RawClient) -> str:
    """The ``nonce`` of the INFO a raw client read."""
    info = json.loads(client.info[5:])
    return str(info.get("nonce", ""))


def jwt_connect(client: RawClient, jwt: str, signer: KeyPair | None, **fields: Any) -> bytes:
    """The CONNECT line (then PING) a client with ``jwt`` sends, ``sig`` by ``signer``."""
    options: dict[str, Any] = {"verbose": False, "pedantic": False, "jwt": jwt, **fields}
    if signer is not None and "sig" not in fields:
        options["sig"] = signer.sign_nonce(nonce_of(client))
    return b"CONNECT " + json.dumps(options).encode() + b"\r\nPING\r\n"


def jwt_login(port: int, jwt: str, signer: KeyPair, **fields: Any) -> RawClient:
    """A raw client logged in with ``jwt`` (its PONG read)."""
    client = RawClient(port)
    client.send(jwt_connect(client, jwt, signer, **fields))
    client.expect(b"PONG\r\n")
    return client


def jwt_refused(port: int, jwt: str, signer: KeyPair | None, **fields: Any) -> bytes:
    """Everything the server sends after a JWT CONNECT, until it closes."""
    with RawClient(port) as client:
        client.send(jwt_connect(client, jwt, signer, **fields))
        return client.read_until_closed()


__all__ = [
    "UNLIMITED_ACCOUNT", "UNLIMITED_USER", "account_jwt", "creds_file", "jwt_connect",
    "jwt_login", "jwt_refused", "key", "nonce_of", "operator_jwt", "scope", "server_conf",
    "user_jwt",
]
