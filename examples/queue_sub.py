"""Share work in a queue group: each message goes to one member only.

Usage: ``python examples/queue_sub.py [--server URL] [--subject S] [--queue Q]
[--members N] [--count N] [--timeout S]``

Starts ``--members`` subscriptions (default 3) in one queue group, each handling its
messages in a callback, and exits once ``--count`` messages were handled in total or
``--timeout`` seconds passed. Run several copies of this script: the server still gives
every message to exactly one member of the group.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

import pynats
from pynats.client import Msg

DEFAULT_SERVER = "nats://127.0.0.1:4222"


async def main() -> None:
    """Connect, join the queue group, handle messages until the count or the timeout."""
    parser = argparse.ArgumentParser(description="Queue group subscribers.")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="server URL")
    parser.add_argument("--subject", default="demo.greeting", help="subject to subscribe to")
    parser.add_argument("--queue", default="workers", help="queue group name")
    parser.add_argument("--members", type=int, default=3, help="group members to start")
    parser.add_argument("--count", type=int, default=10, help="stop after this many messages")
    parser.add_argument("--timeout", type=float, default=10.0, help="stop after this many seconds")
    args = parser.parse_args()

    handled: Counter[int] = Counter()
    done = asyncio.Event()

    def member(number: int) -> Callable[[Msg], Awaitable[None]]:
        async def handle(msg: Msg) -> None:
            handled[number] += 1
            print(f"member {number} got {msg.subject}: {msg.data.decode()}", flush=True)
            if handled.total() >= args.count:
                done.set()
        return handle

    async with await pynats.connect(args.server, connect_timeout=5) as nc:
        for number in range(1, args.members + 1):
            nc.subscribe(args.subject, queue=args.queue, cb=member(number))
        await nc.flush()
        print(f"Listening on {args.subject} in queue group {args.queue!r}", flush=True)
        try:
            await asyncio.wait_for(done.wait(), args.timeout)
        except TimeoutError:
            print(f"Timed out after {args.timeout}s", flush=True)
    shares = ", ".join(f"member {n}: {handled[n]}" for n in range(1, args.members + 1))
    print(f"Handled {handled.total()} message(s) ({shares})", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
