"""The pure NATS wire protocol: bytes in, typed records out; records in, bytes out.

Nothing here imports asyncio or touches a socket, so the server, the client and the
command-line tools share it, and tests drive it with plain byte strings.
"""
