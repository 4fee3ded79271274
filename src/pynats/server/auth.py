"""Client authentication: who may connect, and as which configured user.

Theory of operation
-------------------
An :class:`Authenticator` is built from the :class:`ServerOptions` in force (once at
start-up, again after every reload that touches authorization). It is a pure value:
:meth:`Authenticator.authenticate` takes the :class:`Credentials` a client presented in
CONNECT and returns a :class:`Login` (the configured user whose permissions apply, and
the credentials as finally used) or ``None``. The session does everything else: the
``-ERR``, the log line, the close, installing the permissions.

The mechanisms are tried in nats-server's order (``processClientOrLeafAuthentication``
in ``server/auth.go``); the first configured one decides:

1. nkey users, when the client sent an ``nkey``: the key must be a configured user's
   and ``sig`` its signature of the nonce this connection's INFO carried (an unknown
   key is refused, never tried as a password user);
2. the ``users`` list (``authorization.users`` plus the users of every ``accounts``
   block): the client's ``user`` picks the entry and its ``pass`` must match. A client
   that sent no credentials at all is logged in as ``no_auth_user`` when one is set
   (with that user's configured password standing in for its own, as nats-server
   does: a bcrypt-hashed no_auth_user therefore never matches, there as here);
3. the single ``token``;
4. the single ``user``/``password``.

With none of them configured every client is accepted and credentials are ignored.

Secrets are compared with :func:`compare_secret`: a configured value that looks like a
bcrypt hash (``$2a$``, ``$2b$``, ``$2x$``, ``$2y$`` and a two-digit cost) is checked with
bcrypt, anything else with a constant-time comparison. bcrypt is deliberately slow and
this server has one event loop, so successful checks are remembered (keyed by an HMAC
under a per-process random key, never the password itself): a client that reconnects,
or the re-check of every client after a reload, costs one hash, not one per attempt.
Failed checks are never cached.

Users of ``accounts`` blocks authenticate as above; ``Login.user.account`` names the
account the client is bound to at login (``accounts.py``; ``""`` is ``$G``).

In operator mode (``operator`` or ``trusted_keys`` configured) none of the above
applies: every client must present a user JWT, and the decision is
:class:`~pynats.server.jwtauth.mode.OperatorMode`'s (:meth:`Authenticator.jwt_login`).
The login then carries the :class:`~pynats.server.jwtauth.login.JwtUser` (``Login.jwt``)
and its user stands for the JWT: its public key, its permissions, and its account's
public key as the account name.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

import bcrypt

from pynats import nkeys
from pynats.server.config.options import Permissions, ServerOptions, User
from pynats.server.gotext import go_quote
from pynats.server.jwtauth import JwtRequest, JwtUser, JwtVerdict, OperatorMode

#: What nats-server shows in place of a token (logs, ``/connz`` ``authorized_user``).
REDACTED: Final = "[REDACTED]"
#: The connection type of every client this server accepts (``allowed_connection_types``).
STANDARD: Final = "STANDARD"
#: The connection type of WebSocket clients.
WEBSOCKET: Final = "WEBSOCKET"
#: Successful bcrypt checks remembered (see the module docstring).
BCRYPT_CACHE_MAX: Final = 1024
#: bcrypt only reads this many bytes of a password (Go's implementation ignores the rest).
BCRYPT_MAX_PASSWORD: Final = 72
#: Random bytes in an INFO nonce (nats-server's ``nonceRawLen``).
NONCE_RAW_LEN: Final = 11

_BCRYPT_PREFIX = re.compile(r"\$2[abxy]\$[0-9]{2}\$")
_CACHE_KEY = secrets.token_bytes(32)
_verified: dict[bytes, None] = {}


@dataclass(frozen=True, slots=True)
class Credentials:
    """The credentials a client presented in CONNECT (empty strings when absent)."""

    user: str = ""
    password: str = ""
    token: str = ""
    nkey: str = ""
    sig: str = ""
    jwt: str = ""
    #: The nonce the server sent in this connection's INFO ("" if none): what ``sig`` signs.
    nonce: str = ""
    #: The client's address (a user JWT may restrict it, ``src``).
    host: str = ""

    @classmethod
    def from_connect(cls, options: Mapping[str, Any], nonce: str = "",
                     host: str = "") -> Credentials:
        """Pick the credentials out of decoded CONNECT options (lower-cased keys)."""
        return cls(user=options.get("user", ""), password=options.get("pass", ""),
                   token=options.get("auth_token", ""), nkey=options.get("nkey", ""),
                   sig=options.get("sig", ""), jwt=options.get("jwt", ""), nonce=nonce,
                   host=host)

    @property
    def given(self) -> bool:
        """Whether any of user, password or token was sent (no_auth_user applies if not)."""
        return bool(self.user or self.password or self.token)

    def label(self) -> str:
        """The identity nats-server adds to a client's log prefix (``user:alice``)."""
        if self.nkey:
            return f"nkey:{self.nkey}"
        if self.user:
            return f"user:{self.user}"
        return "token" if self.token else ""

    def who(self) -> str:
        """The identity in nats-server's log messages (``User "alice"``), "" if none."""
        if self.nkey:
            return f'Nkey "{self.nkey}"'
        if self.user:
            return f'User "{self.user}"'
        return f'Token "{REDACTED}"' if self.token else ""

    def shown_user(self) -> str:
        """``/connz`` ``authorized_user``: the nkey, the user, or a redacted token."""
        return self.nkey or self.user or (REDACTED if self.token else "")


@dataclass(frozen=True, slots=True)
class Login:
    """A successful authentication.

    Attributes:
        user: The configured user whose permissions apply; a stand-in without
            permissions for token, single-user and open servers.
        credentials: What the client presented, with no_auth_user's filled in when it
            presented nothing (nats-server checks these again after a reload).
    """

    user: User
    credentials: Credentials
    #: The user JWT's login, in operator mode.
    jwt: JwtUser | None = None

    @property
    def permissions(self) -> Permissions | None:
        """The permissions to enforce (``None``: everything allowed)."""
        return self.user.permissions

    def shown_user(self) -> str:
        """``/connz`` ``authorized_user``: the JWT's user key, else as the credentials."""
        return self.jwt.public_key if self.jwt is not None else self.credentials.shown_user()

    def label(self) -> str:
        """The identity in the client's log prefix (``jwt:U...``, ``user:alice``)."""
        return f"jwt:{self.jwt.public_key}" if self.jwt is not None else self.credentials.label()

    def who(self) -> str:
        """The identity in log messages (``JWT User "U..."``, ``User "alice"``)."""
        if self.jwt is not None:
            return f"JWT User {go_quote(self.jwt.public_key)}"
        return self.credentials.who()


#: The stand-in user of token and open logins.
ANONYMOUS: Final = User()


class Authenticator:
    """The client-port authentication configured by one set of options.

    Args:
        options: The server options; ``authorization``, ``accounts`` and
            ``no_auth_user`` are read.
    """

    def __init__(self, options: ServerOptions):
        auth = options.authorization
        self.users: dict[str, User] = {}
        self.nkeys: dict[str, User] = {}
        #: Operator mode (JWT logins), when operators or trusted keys are configured.
        self.operator = OperatorMode(options) if options.operator_mode else None
        for user in (*auth.users, *(u for account in options.accounts for u in account.users)):
            if user.nkey:
                self.nkeys[user.nkey] = user
            else:
                self.users[user.username] = user
        self.username = auth.username
        self.password = auth.password
        self.token = auth.token
        #: Whether clients must authenticate (an auth timer runs, CONNECT comes first).
        self.required = self.operator is not None or bool(
            self.users or self.nkeys or self.username or self.token)
        self.no_auth_user = self.users.get(options.no_auth_user) if options.no_auth_user else None
        #: INFO's ``auth_required``: false when no_auth_user lets clients in without.
        self.info_required = self.required and not options.no_auth_user

    def authenticate(self, creds: Credentials, conn_type: str = STANDARD) -> Login | None:
        """Check CONNECT credentials; returns the login, or None to refuse the client."""
        if not self.required:
            return Login(ANONYMOUS, creds)
        if self.operator is not None:
            return self.jwt_login(creds, lambda account: 0, conn_type)[0]
        if self.nkeys and creds.nkey:
            return self._nkey_login(creds, conn_type)
        if self.users:
            login = self._user_login(creds, conn_type)
            if login is not None or creds.user:
                return login
        if self.token:
            return Login(ANONYMOUS, creds) if compare_secret(self.token, creds.token) else None
        if self.username and creds.user == self.username and compare_secret(
                self.password, creds.password):
            return Login(User(username=self.username), creds)
        return None

    def jwt_login(self, creds: Credentials, clients_in: Callable[[str], int],
                  conn_type: str = STANDARD) -> tuple[Login | None, JwtVerdict]:
        """Operator mode: the login a user JWT gives, and the verdict with its log lines.

        Args:
            creds: The CONNECT credentials (``jwt``, ``sig``, the nonce and address).
            clients_in: How many clients an account (by public key) has now.
            conn_type: The kind of connection.

        Raises:
            RuntimeError: the server is not in operator mode.
        """
        if self.operator is None:
            raise RuntimeError("not in operator mode")
        request = JwtRequest(creds.jwt, creds.sig, creds.nonce, creds.host, conn_type)
        verdict = self.operator.login(request, clients_in)
        jwt = verdict.user
        if jwt is None:
            return None, verdict
        user = User(nkey=jwt.public_key, permissions=jwt.permissions, account=jwt.account_name)
        return Login(user, creds, jwt), verdict

    def effective(self, creds: Credentials) -> Credentials:
        """The credentials checked for ``creds``: no_auth_user's when none were given."""
        if self.no_auth_user is not None and self.users and not creds.given:
            return replace(creds, user=self.no_auth_user.username,
                           password=self.no_auth_user.password)
        return creds

    def login_without_connect(self) -> Login | None:
        """A client's first operation is not CONNECT: only no_auth_user lets it in."""
        if self.no_auth_user is None:
            return None
        return self.authenticate(Credentials())

    def user_is_gone(self, creds: Credentials, account: str) -> bool:
        """Whether a client's user or nkey no longer exists, or moved to another account.

        nats-server closes such clients after a reload without an error
        (``clientHasMovedToDifferentAccount``); clients that presented neither are
        re-authenticated instead, and so are all clients in operator mode.
        """
        if self.operator is not None:
            return False
        if creds.nkey:
            user = self.nkeys.get(creds.nkey)
        elif creds.user:
            user = self.users.get(creds.user)
        else:
            return False
        return user is None or user.account != account

    def plaintext_passwords(self, cert_logins: bool = False) -> bool:
        """Whether a password is stored in clear (nats-server warns at start-up).

        With ``cert_logins`` (``verify_and_map``), users without a password do not count.
        """
        if self.password and not is_bcrypt(self.password):
            return True
        return any(not is_bcrypt(user.password) for user in self.users.values()
                   if user.password or not cert_logins)

    def _user_login(self, creds: Credentials, conn_type: str) -> Login | None:
        # As nats-server, no_auth_user's configured password stands in for the client's
        # and goes through the same comparison (so a bcrypt one never matches).
        creds = self.effective(creds)
        user = self.users.get(creds.user) if creds.user else None
        if user is None or not connection_type_allowed(user, conn_type):
            return None
        return Login(user, creds) if compare_secret(user.password, creds.password) else None

    # -- certificate logins (verify_and_map; the TLS code picks the user) -------------------
    def login_as(self, username: str, creds: Credentials) -> Login | None:
        """Log in as ``username``, named by the client's certificate.

        As nats-server, the user's configured password (normally none) is still compared
        with the one the client sent; the login carries ``username`` as its user.
        """
        user = self.users.get(username)
        if user is None or not compare_secret(user.password, creds.password):
            return None
        return Login(user, replace(creds, user=username))

    # -- nkey users ------------------------------------------------------------------------
    @property
    def nonce_required(self) -> bool:
        """Whether INFO carries a nonce: nkey users or operator mode (``nonceRequired``)."""
        return bool(self.nkeys) or self.operator is not None

    def _nkey_login(self, creds: Credentials, conn_type: str) -> Login | None:
        """A configured nkey whose owner signed this connection's nonce."""
        user = self.nkeys.get(creds.nkey)
        if user is None or not connection_type_allowed(user, conn_type):
            return None
        return Login(user, creds) if not nkey_signature_problem(creds) else None

    def nkey_refusal(self, creds: Credentials) -> str:
        """Why nats-server would refuse these nkey credentials, for its debug log.

        "" when the nkey branch does not apply, the key is unknown (nats-server says
        nothing more then) or the signature is good.
        """
        if not (self.nkeys and creds.nkey in self.nkeys):
            return ""
        return nkey_signature_problem(creds)


def new_nonce() -> str:
    """A fresh INFO nonce: 11 random bytes, base64 URL-safe without padding (15 chars)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(NONCE_RAW_LEN)).decode().rstrip("=")


def nkey_signature_problem(creds: Credentials) -> str:
    """Check ``sig`` against ``nonce`` and ``nkey``: "" if good, else nats-server's reason."""
    if not creds.sig:
        return "Signature missing"
    sig = nkeys.decode_signature(creds.sig)
    if sig is None:
        return "Signature not valid base64"
    if not nkeys.is_valid_public_key(creds.nkey):
        return "User nkey not valid"
    if not nkeys.verify(creds.nkey, creds.nonce.encode(), sig):
        return "Signature not verified"
    return ""


def connection_type_allowed(user: User, conn_type: str) -> bool:
    """Whether ``user`` may connect over ``conn_type`` (no list: any type)."""
    allowed = user.allowed_connection_types
    return not allowed or conn_type in (kind.upper() for kind in allowed)


def is_bcrypt(secret: str) -> bool:
    """Whether a configured password or token is a bcrypt hash (nats-server's ``isBcrypt``)."""
    return _BCRYPT_PREFIX.match(secret) is not None


def compare_secret(configured: str, given: str) -> bool:
    """Compare a client's password or token with the configured one.

    Args:
        configured: The value from the configuration (plain, or a bcrypt hash).
        given: What the client sent.

    Returns:
        True when they match: by bcrypt for a hash, in constant time otherwise.
    """
    if is_bcrypt(configured):
        return _bcrypt_matches(configured, given)
    return hmac.compare_digest(configured.encode(), given.encode())


def _bcrypt_matches(hashed: str, given: str) -> bool:
    key = hmac.digest(_CACHE_KEY, hashed.encode() + b"\0" + given.encode(), "sha256")
    if key in _verified:
        return True
    # Go ignores the minor version letter; the Python library wants one it knows.
    normalized = b"$2b$" + hashed.encode()[4:]
    try:
        ok = bcrypt.checkpw(given.encode()[:BCRYPT_MAX_PASSWORD], normalized)
    except ValueError:  # a malformed hash matches nothing
        return False
    if ok:
        if len(_verified) >= BCRYPT_CACHE_MAX:
            del _verified[next(iter(_verified))]
        _verified[key] = None
    return ok


__all__ = [
    "ANONYMOUS", "NONCE_RAW_LEN", "REDACTED", "STANDARD", "WEBSOCKET", "Authenticator",
    "Credentials", "Login", "compare_secret", "connection_type_allowed", "is_bcrypt", "new_nonce",
    "nkey_signature_problem",
]
