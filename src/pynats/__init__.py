"""pynats: the NATS messaging system in Python.

Subpackages import on demand: :mod:`pynats.protocol` (pure wire protocol),
:mod:`pynats.server` (the server), :mod:`pynats.client` (the client library) and
:mod:`pynats.sync` (its blocking front end: ``pynats.sync.connect``).
``pynats.connect`` is :func:`pynats.client.connect`, imported on first use so that
``import pynats`` stays cheap (no asyncio).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pynats.client import connect

__version__ = "0.1.0"

#: The nats-server version we advertise in INFO and /varz. Clients parse it and gate
#: features on it, so it must be a 2.x semver (PROTOCOL.md section 2).
SERVER_VERSION = "2.10.0"


def __getattr__(name: str) -> Any:
    if name == "connect":
        from pynats.client import connect

        return connect
    raise AttributeError(f"module 'pynats' has no attribute {name!r}")


__all__ = ["SERVER_VERSION", "__version__", "connect"]
