"""A first request that waits for the responder's interest to be in place."""

from __future__ import annotations

import asyncio
import time

import nats


async def first_answer(nc: nats.NATS, subject: str, payload: bytes = b"ping",
                       timeout: float = 10.0) -> bytes:
    """The first answer, retrying while the responder's interest is not in place yet.

    Interest can take a moment to reach the requester's path: across a route, or (with
    nats-server) into an account's service import after a subscription in the exporter.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return (await nc.request(subject, payload, timeout=1)).data
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
