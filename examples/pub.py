"""Publish messages with the asyncio client.

Usage: ``python examples/pub.py [--server URL] [--subject S] [--count N] [DATA]``

Publishes ``--count`` messages (default 1) to ``--subject``, waits until the server
has them all (``flush``), and exits.
"""

from __future__ import annotations

import argparse
import asyncio

import pynats

DEFAULT_SERVER = "nats://127.0.0.1:4222"


async def main() -> None:
    """Connect, publish, flush, close."""
    parser = argparse.ArgumentParser(description="Publish messages.")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="server URL")
    parser.add_argument("--subject", default="demo.greeting", help="subject to publish to")
    parser.add_argument("--count", type=int, default=1, help="messages to publish")
    parser.add_argument("data", nargs="?", default="hello", help="message payload")
    args = parser.parse_args()

    async with await pynats.connect(args.server, connect_timeout=5) as nc:
        for i in range(args.count):
            nc.publish(args.subject, f"{args.data} {i}".encode())  # queued, never blocks
        await nc.flush(timeout=5)  # the server has processed everything sent so far
        print(f"Published {args.count} message(s) to {args.subject}", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
