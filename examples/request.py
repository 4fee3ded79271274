"""Send requests and print the replies with the asyncio client.

Usage: ``python examples/request.py [--server URL] [--subject S] [--count N]
[--timeout S] [DATA]``

Sends ``--count`` requests (default 1) one after the other, each waiting at most
``--timeout`` seconds for its reply. Exits with status 1 if a request got no reply.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import pynats
from pynats.errors import NoRespondersError, TimeoutError

DEFAULT_SERVER = "nats://127.0.0.1:4222"


async def main() -> int:
    """Connect, make the requests, print the replies; returns the exit status."""
    parser = argparse.ArgumentParser(description="Send requests.")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="server URL")
    parser.add_argument("--subject", default="demo.service", help="subject of the service")
    parser.add_argument("--count", type=int, default=1, help="requests to send")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds to wait per reply")
    parser.add_argument("data", nargs="?", default="hello", help="request payload")
    args = parser.parse_args()

    async with await pynats.connect(args.server, connect_timeout=5) as nc:
        for i in range(args.count):
            payload = f"{args.data} {i}".encode()
            try:
                reply = await nc.request(args.subject, payload, timeout=args.timeout)
            except NoRespondersError:
                print(f"No service is listening on {args.subject}", flush=True)
                return 1
            except TimeoutError:
                print(f"No reply within {args.timeout}s", flush=True)
                return 1
            print(f"Reply: {reply.data.decode()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
