"""Decentralized authentication (operator mode): NATS JWTs on the client port.

Theory of operation
-------------------
In operator mode the server is configured with trusted operators (operator JWTs, or
their public keys), an account resolver (``MEMORY``, filled by ``resolver_preload``)
and usually a system account; it has no users of its own. A client presents a user
JWT and the signature of the INFO nonce by the user's key; the user JWT names its
account (its issuer), whose JWT the resolver holds and a trusted operator signed.

The package is pure logic, in layers:

* :mod:`.claims`: decoding operator, account and user JWTs as the Go library does;
* :mod:`.checks`: their validity (times, subjects, networks) and meaning (templates,
  connect windows, permissions);
* :mod:`.resolver`: trust, the memory resolver and the directory of accounts in use;
* :mod:`.login`: the login decision, step by step, with nats-server's log lines;
* :mod:`.config`: what the configuration layer reads and checks;
* :mod:`.mode`: all of it built from one set of options, for the Authenticator.

The client session applies a login (account binding, permissions, limits, expiry
timers) in :mod:`pynats.server.sessions.jwtsession`.
"""

from pynats.server.jwtauth.login import JwtRequest, JwtUser, JwtVerdict
from pynats.server.jwtauth.mode import OperatorMode
from pynats.server.jwtauth.notes import Note

__all__ = ["JwtRequest", "JwtUser", "JwtVerdict", "Note", "OperatorMode"]
