"""The pynats client library.

``await pynats.client.connect(servers, **options)`` returns a connected
:class:`~pynats.client.aio.Client`. Layers (see STYLE.md 2b):

* :mod:`pynats.client.core` and :mod:`pynats.client.pool`: the pure core (no asyncio):
  subscription accounting, the write batch and reconnect buffer, PING accounting, the
  request inbox mux, CONNECT building, ``-ERR`` classification, the server pool and the
  reconnect policy. Shared with the blocking client.
* :mod:`pynats.client.connection`: the one ``asyncio.Protocol`` that touches the
  transport.
* :mod:`pynats.client.aio`: the asyncio ``Client`` (user API and glue), with
  :mod:`~pynats.client.subscription`, :mod:`~pynats.client.replies` and
  :mod:`~pynats.client.msg`.
* :mod:`pynats.client.sync` (public as :mod:`pynats.sync`): the blocking ``Client``, the
  asyncio client run on a private loop thread behind thread-safe entry points, with
  :mod:`~pynats.client.sync_subscription` and :mod:`~pynats.client.threads`.
* :mod:`pynats.client.options`: the typed, frozen options;
  :mod:`pynats.client.credentials`: nkey and ``.creds`` authentication.
"""

from pynats.client.aio import Client, ClientStats, State, connect
from pynats.client.core import ServerInfo
from pynats.client.msg import Msg
from pynats.client.options import Callbacks, ConnectOptions, ReconnectOptions
from pynats.client.replies import ReplyStream
from pynats.client.subscription import Subscription
from pynats.protocol.headers import Headers

__all__ = [
    "Callbacks",
    "Client",
    "ClientStats",
    "ConnectOptions",
    "Headers",
    "Msg",
    "ReconnectOptions",
    "ReplyStream",
    "ServerInfo",
    "State",
    "Subscription",
    "connect",
]
