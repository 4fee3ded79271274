"""pynats: the NATS messaging system in Python.

Subpackages import on demand: :mod:`pynats.protocol` (pure wire protocol),
:mod:`pynats.server` (the server).
"""

__version__ = "0.1.0"

#: The nats-server version we advertise in INFO and /varz. Clients parse it and gate
#: features on it, so it must be a 2.x semver (PROTOCOL.md section 2).
SERVER_VERSION = "2.10.0"

__all__ = ["SERVER_VERSION", "__version__"]
