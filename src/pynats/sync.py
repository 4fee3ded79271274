"""The blocking NATS client, for code without an event loop (Flask, Django, scripts).

``pynats.sync.connect(servers, **options)`` returns a connected
:class:`~pynats.client.sync.Client` with the operations of the asyncio client as
blocking methods::

    import pynats.sync

    with pynats.sync.connect("nats://127.0.0.1:4222") as nc:
        sub = nc.subscribe("greet.*")
        nc.publish("greet.joe", b"hello")
        print(sub.next_msg(timeout=1.0).data)
        reply = nc.request("svc.time", timeout=2.0)

How it works (a private event loop thread running the asyncio client, with thread-safe
entry points), which threads run callbacks, and the thread-safety rules are in
:mod:`pynats.client.sync`.
"""

from __future__ import annotations

from pynats.client.core import ServerInfo
from pynats.client.link import ClientStats, State
from pynats.client.msg import Msg
from pynats.client.options import Callbacks, ConnectOptions, ReconnectOptions
from pynats.client.sync import Client, ReplyIterator, Subscription, connect
from pynats.protocol.headers import Headers

__all__ = [
    "Callbacks",
    "Client",
    "ClientStats",
    "ConnectOptions",
    "Headers",
    "Msg",
    "ReconnectOptions",
    "ReplyIterator",
    "ServerInfo",
    "State",
    "Subscription",
    "connect",
]
