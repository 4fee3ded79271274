"""The blocking client: NATS without an event loop (scripts, Flask, Django).

Usage: ``python examples/blocking.py [--server URL] [--subject S] [--request SUBJECT]``

Subscribes, publishes a message to itself and reads it back with ``next_msg``; with
``--request`` it also asks a service (e.g. ``examples/reply.py``) and prints the reply.
Every wait has a timeout, so the script always ends.
"""

from __future__ import annotations

import argparse
import sys

import pynats.sync
from pynats.errors import NoRespondersError

DEFAULT_SERVER = "nats://127.0.0.1:4222"


def main() -> int:
    """Publish, receive, optionally request; returns the exit status."""
    parser = argparse.ArgumentParser(description="Blocking client usage.")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="server URL")
    parser.add_argument("--subject", default="demo.blocking", help="subject to use")
    parser.add_argument("--request", metavar="SUBJECT", help="also send a request there")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per wait")
    args = parser.parse_args()

    with pynats.sync.connect(args.server, connect_timeout=5) as nc:  # closed on leaving
        sub = nc.subscribe(args.subject)
        nc.publish(args.subject, b"hello from a blocking client")
        msg = sub.next_msg(timeout=args.timeout)  # raises pynats.errors.TimeoutError
        print(f"Received on {msg.subject}: {msg.data.decode()}", flush=True)
        if args.request:
            try:
                reply = nc.request(args.request, b"blocking request", timeout=args.timeout)
            except NoRespondersError:
                print(f"No service is listening on {args.request}", flush=True)
                return 1
            print(f"Reply: {reply.data.decode()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
