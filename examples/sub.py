"""Receive messages with the asyncio client, as an async iterator.

Usage: ``python examples/sub.py [--server URL] [--subject S] [--count N] [--timeout S]``

Prints each message received on ``--subject`` (wildcards allowed) and exits after
``--count`` messages or ``--timeout`` seconds, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio

import pynats

DEFAULT_SERVER = "nats://127.0.0.1:4222"


async def main() -> None:
    """Connect, subscribe, print messages until the count or the timeout."""
    parser = argparse.ArgumentParser(description="Receive messages.")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="server URL")
    parser.add_argument("--subject", default="demo.>", help="subject to subscribe to")
    parser.add_argument("--count", type=int, default=1, help="stop after this many messages")
    parser.add_argument("--timeout", type=float, default=10.0, help="stop after this many seconds")
    args = parser.parse_args()

    received = 0
    async with await pynats.connect(args.server, connect_timeout=5) as nc:
        sub = nc.subscribe(args.subject, max_msgs=args.count)  # ends itself after --count
        await nc.flush()  # the server has the subscription: publishers may start
        print(f"Listening on {args.subject}", flush=True)
        try:
            async with asyncio.timeout(args.timeout):
                async for msg in sub:
                    received += 1
                    print(f"[{received}] {msg.subject}: {msg.data.decode()}", flush=True)
        except TimeoutError:
            print(f"Timed out after {args.timeout}s", flush=True)
    print(f"Received {received} message(s)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
