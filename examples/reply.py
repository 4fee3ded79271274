"""Answer requests: a small service with the asyncio client.

Usage: ``python examples/reply.py [--server URL] [--subject S] [--count N] [--timeout S]``

Subscribes to ``--subject`` (in the queue group ``service``, so several copies share the
load) and answers each request with its payload upper-cased. Exits after answering
``--count`` requests or after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio

import pynats
from pynats.client import Msg

DEFAULT_SERVER = "nats://127.0.0.1:4222"


async def main() -> None:
    """Connect, serve requests until the count or the timeout, then drain."""
    parser = argparse.ArgumentParser(description="Answer requests.")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="server URL")
    parser.add_argument("--subject", default="demo.service", help="subject to serve")
    parser.add_argument("--count", type=int, default=1, help="stop after this many requests")
    parser.add_argument("--timeout", type=float, default=10.0, help="stop after this many seconds")
    args = parser.parse_args()

    answered = 0
    done = asyncio.Event()

    async def handle(msg: Msg) -> None:
        nonlocal answered
        msg.respond(msg.data.upper())  # queued like a publish; never blocks
        answered += 1
        print(f"Answered request {answered}: {msg.data.decode()}", flush=True)
        if answered >= args.count:
            done.set()

    nc = await pynats.connect(args.server, connect_timeout=5)
    try:
        nc.subscribe(args.subject, queue="service", cb=handle)
        await nc.flush()
        print(f"Listening for requests on {args.subject}", flush=True)
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except TimeoutError:
            print(f"Timed out after {args.timeout}s", flush=True)
    finally:
        await nc.drain()  # sends the last replies, then closes


if __name__ == "__main__":
    asyncio.run(main())
