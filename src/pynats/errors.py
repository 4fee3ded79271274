"""The one rooted error tree of pynats.

::

    PynatsError
    ├── ProtocolError            a peer sent bytes that break the NATS protocol
    │     (pynats.protocol.errors: each carries the -ERR text and close reason)
    └── ConfigError              options or a configuration file are invalid

Client-side errors hang off ``PynatsError`` too (the client issue adds them).
"""


class PynatsError(Exception):
    """Root of every exception pynats raises on purpose."""


class ConfigError(PynatsError):
    """Options, flags or a configuration file are invalid.

    The message names what is wrong (for a file: ``file:line:col`` and the key).
    """
