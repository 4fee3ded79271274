"""What a JWT login changes in a client session: account, limits, expiry.

Theory of operation
-------------------
The client session (``client.py``) asks the Authenticator for a JWT login and hands the
outcome to these functions:

* :func:`login`: runs the login with the count of clients already in each account (the
  account's connection limit), writes the log lines the verdict carries, and closes a
  client whose account is full with ``maximum account active connections exceeded``;
* :func:`account`: the account the client joins, registered on its first login under
  its public key, with its JWT claims;
* :func:`start`: the login's limits (subscriptions and payload, ``-1`` unlimited; a JWT
  that allows no subscription at all closes the client, as nats-server does) and the
  expiry timer: the client is closed with ``User Authentication Expired`` when its JWT
  expires (or its ``times`` window ends) and ``Account Authentication Expired`` when
  the account JWT does, whichever comes first;
* :func:`stop`: the timer is cancelled when the client goes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from pynats.server.accounts import Account, bind_account
from pynats.server.jwtauth import JwtUser, Note
from pynats.server.jwtauth.claims import NO_LIMIT
from pynats.server.jwtauth.login import TOO_MANY_ACCOUNT_CONNECTIONS

if TYPE_CHECKING:
    from pynats.server.auth import Credentials, Login
    from pynats.server.server import Server
    from pynats.server.sessions.client import ClientSession

#: nats-server closes a client whose JWT allows no subscription this long after login.
SUBS_AT_LIMIT_DELAY: Final = 0.02
USER_EXPIRED: Final = "User Authentication Expired"
ACCOUNT_EXPIRED: Final = "Account Authentication Expired"
TOO_MANY_SUBSCRIPTIONS: Final = "maximum subscriptions exceeded"


class ExactZero(int):
    """A payload limit of zero bytes: true, so the parser checks it (its 0 is "none")."""

    def __bool__(self) -> bool:
        return True


def login(session: ClientSession, creds: Credentials) -> Login | None:
    """The JWT login of ``session`` (None: refused; closed already if its account is full)."""
    server = session.server
    found, verdict = session.auth.jwt_login(creds, lambda name: clients_in(server, name),
                                            session.conn_type)
    for note in verdict.notes:
        write(session, note)
    if verdict.account_full:
        session.conn.close("Maximum Account Connections Exceeded", TOO_MANY_ACCOUNT_CONNECTIONS)
        return None
    return found


def write(session: ClientSession, note: Note) -> None:
    """Log one note: connection-scoped ones with the client's prefix."""
    text = f"{session.describe()}{note.text}" if note.client else note.text
    getattr(session.server.log, note.level)(text)


def clients_in(server: Server, name: str) -> int:
    """How many logged-in clients account ``name`` has."""
    return sum(1 for session in server.clients.values()
               if session.login is not None and session.account.name == name)


def account(server: Server, jwt: JwtUser) -> Account:
    """The account a JWT user joins (registered under its public key on first use).

    A clustered server starts sharing a newly registered account's interest with its
    peers at once.
    """
    known = jwt.account_name in server.accounts
    found = bind_account(server.accounts, jwt.account_name, server.dirty, jwt.account,
                         cache=not server.options.disable_sublist_cache)
    if not known and server.cluster is not None:
        server.cluster.attach()
    return found


def start(session: ClientSession, jwt: JwtUser) -> None:
    """Apply a JWT login's limits and arm its expiry timer."""
    stop(session)
    session.max_subs = jwt.max_subs
    parser = session.conn.parser
    parser.max_payload = (0 if jwt.max_payload == NO_LIMIT else
                          ExactZero(0) if jwt.max_payload == 0 else jwt.max_payload)
    if jwt.max_subs != NO_LIMIT and len(session.subs) >= jwt.max_subs:
        _subscriptions_exhausted(session)
    _arm_expiry(session, jwt)


def stop(session: ClientSession) -> None:
    """Cancel the expiry timer (the client closed, or logged in again)."""
    timer = session.expiry_timer
    if timer is not None:
        timer.cancel()
        session.expiry_timer = None


def _subscriptions_exhausted(session: ClientSession) -> None:
    """Tell the client, then close it (after what CONNECT's batch answers, as nats-server)."""
    def tell() -> None:
        if not session.closed:
            session.server.log.error(f"{session.describe()}{TOO_MANY_SUBSCRIPTIONS}")
            session.conn.send_now(f"-ERR '{TOO_MANY_SUBSCRIPTIONS}'\r\n".encode())

    loop = session.server.loop
    loop.call_soon(tell)
    loop.call_later(SUBS_AT_LIMIT_DELAY, session.conn.close, "Maximum Subscriptions Exceeded")


def _arm_expiry(session: ClientSession, jwt: JwtUser) -> None:
    now = time.time()
    user, account_left = jwt.user_expiry(now), jwt.account_expiry(now)
    candidates = [(left, text) for left, text in ((user, USER_EXPIRED),
                                                  (account_left, ACCOUNT_EXPIRED))
                  if left is not None]
    if not candidates:
        return
    delay, text = min(candidates)
    session.expiry_timer = session.server.loop.call_later(delay, _expired, session, text)


def _expired(session: ClientSession, text: str) -> None:
    session.expiry_timer = None
    if session.closed:
        return
    session.server.log.debug(f"{session.describe()}{text}")
    session.conn.close("Authentication Expired", text)


__all__ = ["ACCOUNT_EXPIRED", "USER_EXPIRED", "ExactZero", "account", "clients_in", "login",
           "start", "stop", "write"]
