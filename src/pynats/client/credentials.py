"""NKEY and ``.creds`` authentication: answering the server's nonce challenge.

Theory of operation
-------------------
A server with nkey users (or in operator mode, with JWTs) puts a random ``nonce`` in
each client's INFO. The client proves it holds a private key by signing the nonce with
it (ed25519, :meth:`pynats.nkeys.KeyPair.sign_nonce`) and sends in CONNECT:

* for a bare nkey user (``nkey_seed`` option): ``nkey`` (its public key) and ``sig``;
* for a JWT user (``creds_file`` option, a ``.creds`` file holding the user JWT and the
  user's seed): ``jwt`` and ``sig``; the server finds the public key in the JWT.

:class:`Credentials` holds what the options say and is asked, at every handshake, for
the fields to add to CONNECT. The ``.creds`` file is read again at each handshake (as
nats.go does), so a file rotated on disk is picked up by the next reconnect;
:func:`load_credentials` reads it once up front so that a missing or malformed file
fails ``connect`` at once with a :class:`~pynats.errors.ConfigError` instead of as
many refused connection attempts. Besides that read, nothing here does I/O.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pynats import nkeys
from pynats.client.options import ConnectOptions
from pynats.errors import ConfigError, NkeyError


@dataclass(frozen=True, slots=True)
class Credentials:
    """The nkey or JWT credentials of a client.

    Attributes:
        seed: the nkey seed (``SU...``) given directly, if any.
        creds_file: the ``.creds`` file to read at each handshake, if any.
    """

    seed: str | None = None
    creds_file: str | os.PathLike[str] | None = None

    def connect_fields(self, nonce: str | None) -> dict[str, str]:
        """The CONNECT fields that answer ``nonce`` (empty without nkey credentials).

        Args:
            nonce: the INFO ``nonce``; without one, nothing is signed (the server did
                not ask) but the public key or JWT is still sent.

        Returns:
            ``nkey`` and ``sig``, or ``jwt`` and ``sig``.

        Raises:
            NkeyError: the ``.creds`` file can no longer be read or holds no valid seed.
        """
        if self.creds_file is not None:
            jwt, seed = nkeys.read_creds(self.creds_file)
            return sign_challenge(seed, nonce, jwt)
        if self.seed is not None:
            return sign_challenge(self.seed, nonce)
        return {}


def sign_challenge(seed: str, nonce: str | None, jwt: str | None = None) -> dict[str, str]:
    """The CONNECT fields for a key pair: ``jwt`` (when given) or ``nkey``, and ``sig``.

    Args:
        seed: the nkey seed.
        nonce: the server's nonce (None: no ``sig``).
        jwt: the user JWT, for operator mode.

    Returns:
        The fields to merge into CONNECT.

    Raises:
        NkeyError: the seed is invalid.
    """
    pair = nkeys.KeyPair(seed)
    fields = {"jwt": jwt} if jwt else {"nkey": pair.public_key}
    if nonce is not None:
        fields["sig"] = pair.sign_nonce(nonce)
    return fields


def load_credentials(options: ConnectOptions) -> Credentials:
    """The credentials the options ask for, the ``.creds`` file checked once.

    Raises:
        ConfigError: the ``.creds`` file cannot be read, or holds no valid seed.
    """
    if options.creds_file is not None:
        try:
            nkeys.read_creds(options.creds_file)
        except NkeyError as exc:
            raise ConfigError(f"creds_file: {exc}") from exc
    return Credentials(options.nkey_seed, options.creds_file)


__all__ = ["Credentials", "load_credentials", "sign_challenge"]
