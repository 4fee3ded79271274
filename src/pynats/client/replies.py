"""Replies to requests: the shared inbox subscription and what waits on it.

Theory of operation
-------------------
All requests of a client share one wildcard subscription, ``<inbox>.<nuid>.*``
(:class:`InboxSubscription`); the pure :class:`~pynats.client.core.RequestMux` maps the
last token of a reply subject to a handler. ``request()`` registers a
:class:`OneReply`, which completes a future with the first reply; ``request_many()``
returns a :class:`ReplyStream`, an async iterator fed by the same inbox that stops on a
count, an overall deadline, a stall (no reply for a while after the first one) or a
sentinel message (scatter-gather, as nats.js ``requestMany``); what each reply means is
decided by the pure :class:`~pynats.client.core.Gather`, shared with the blocking client.

A 503 status reply (no responders) fails a request at once with
:class:`~pynats.errors.NoRespondersError` instead of waiting for the timeout.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol

from pynats.client.core import (
    END,
    NO_RESPONDERS,
    YIELD_LAST,
    Gather,
    RequestMux,
    Sentinel,
    SubscriptionState,
)
from pynats.client.msg import Msg, Publisher
from pynats.errors import NoRespondersError, TimeoutError


class ReplyHandler(Protocol):
    """Something waiting for replies on the shared inbox."""

    def on_reply(self, msg: Msg) -> None:
        """A reply arrived (called from the read path: must not block)."""

    def fail(self, exc: BaseException) -> None:
        """No more replies will come (the client closed)."""


class InboxSubscription(SubscriptionState):
    """The single wildcard subscription that receives every reply."""

    __slots__ = ("_client", "mux")

    def __init__(self, sid: int, mux: RequestMux[ReplyHandler], client: Publisher):
        super().__init__(sid, mux.subject)
        self.mux = mux
        self._client = client

    def deliver(self, subject: bytes, reply: bytes, payload: bytes, headers: bytes) -> None:
        """Route a reply to whoever registered its token (late replies are dropped)."""
        self.received += 1
        handler = self.mux.get(subject)
        if handler is not None:
            handler.on_reply(Msg(subject.decode("utf-8", "surrogateescape"),
                                 reply.decode("utf-8", "surrogateescape") if reply else "",
                                 payload, headers, self._client, self.sid))


class OneReply:
    """The first reply to a request, as a future."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Msg]):
        self.future = future

    def on_reply(self, msg: Msg) -> None:
        if not self.future.done():
            self.future.set_result(msg)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


def expire(future: asyncio.Future[Msg], subject: str, timeout: float) -> None:
    """Time a request out (a ``call_later`` target: cheaper than ``wait_for``)."""
    if not future.done():
        future.set_exception(TimeoutError(f"no reply on {subject!r} within {timeout}s"))


class ReplyStream:
    """Replies to one scatter-gather request, as an async iterator.

    Iteration ends, without error, when ``max_msgs`` replies arrived, the deadline
    passed, no reply came for ``stall`` seconds after the previous one, or a sentinel
    arrived (the sentinel itself is not yielded). Leaving early is fine: the inbox
    token is released at the deadline anyway, or at once by :meth:`aclose`.

    Raises (from iteration):
        NoRespondersError: the first reply says no one listens.
        ConnectionClosedError: the client closed.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, mux: RequestMux[ReplyHandler],
                 subject: str, timeout: float, max_msgs: int | None = None,
                 stall: float | None = None, sentinel: Sentinel | None = None):
        self._loop = loop
        self._mux = mux
        self.subject = subject
        self.reply = mux.register(self)
        self._deadline = loop.time() + timeout
        self._gather = Gather(max_msgs, sentinel)
        self._stall = stall
        self._queue: deque[Msg] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self._last_at = 0.0
        self._done = False
        self._expiry = loop.call_at(self._deadline, self._finish)

    # -- fed by the inbox ----------------------------------------------------------------
    def on_reply(self, msg: Msg) -> None:
        if self._done:
            return
        self._queue.append(msg)
        self._last_at = self._loop.time()
        self._wake()

    def fail(self, exc: BaseException) -> None:
        self._error = exc
        self._finish()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._expiry.cancel()
            self._mux.discard(self.reply)
        self._wake()

    # -- iteration -----------------------------------------------------------------------
    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> Msg:
        while True:
            if self._queue:
                msg = self._queue.popleft()
                verdict = self._gather.verdict(msg)
                if verdict >= END:
                    self._end()
                    if verdict == NO_RESPONDERS:
                        raise NoRespondersError(self.subject)
                    raise StopAsyncIteration
                if verdict == YIELD_LAST:
                    self._end()
                return msg
            if self._error is not None:
                raise self._error
            if self._done:
                raise StopAsyncIteration
            await self._wait()

    def _end(self) -> None:
        self._finish()
        self._queue.clear()

    async def _wait(self) -> None:
        handle = None
        if self._stall is not None and self._gather.count:
            handle = self._loop.call_at(self._last_at + self._stall, self._stalled)
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            if handle is not None:
                handle.cancel()
            self._waiter = None

    def _stalled(self) -> None:
        if not self._queue:
            self._finish()

    async def aclose(self) -> None:
        """Stop collecting replies now."""
        self._end()

    async def __aenter__(self) -> ReplyStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["InboxSubscription", "OneReply", "ReplyHandler", "ReplyStream", "Sentinel", "expire"]
