"""Asyncio subscriptions: a deque of messages, waiter futures, and an optional callback.

Theory of operation
-------------------
The read path calls :meth:`Subscription.deliver` for every message, synchronously, from
inside the parser's loop: the pure accounting in
:class:`~pynats.client.core.SubscriptionState` says accept or drop (slow consumer),
an accepted message is appended to a ``deque``, and whoever waits is woken by setting
a future's result. Nothing awaits and no task is created per message; a whole read
buffer is delivered before any consumer runs.

Consumers take from the deque without awaiting while it has messages, so ``async for``
and ``next_msg`` cost one coroutine step per message and only build a waiter future
when the deque is empty. A callback subscription has exactly one task for its whole
life, which runs the same loop and calls the callback for each message in order; an
exception from the callback goes to the client's error callback and the loop goes on.

A subscription ends (``closed``) when it is unsubscribed, drained, reaches
``max_msgs`` or its client closes. ``unsubscribe()`` and close drop what is still
buffered (as nats.go does); ``drain()`` and reaching ``max_msgs`` let consumers take
what already arrived, then iteration stops.
"""

from __future__ import annotations

import asyncio
import builtins
import inspect
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from pynats.client.core import DROP_AND_REPORT, SubscriptionState
from pynats.client.msg import Msg, Publisher
from pynats.errors import ClientError, SlowConsumerError, SubscriptionClosedError, TimeoutError

#: A message callback: a plain function or a coroutine function taking the message.
MsgCallback = Callable[[Msg], Awaitable[None] | None]


class SubscriptionOwner(Publisher, Protocol):
    """What a subscription needs from its client."""

    def _report(self, exc: BaseException) -> None: ...

    def _unsubscribe(self, sub: SubscriptionState, max_msgs: int | None) -> None: ...

    def _forget(self, sub: SubscriptionState) -> None: ...

    async def flush(self, timeout: float = ...) -> None: ...


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Subscription(SubscriptionState):
    """A subscription: an async iterator of :class:`Msg`, or a callback.

    Created by ``Client.subscribe``; not meant to be built directly.

    Attributes:
        subject: the subscribed subject.
        queue: the queue group ("" for none).
        sid: the subscription id.
        max_msgs: auto-unsubscribe limit (0: none).
        received: messages that arrived (dropped ones included).
        delivered: messages handed to the application.
        dropped: messages dropped by the pending limits.
        pending_msgs: messages buffered, not yet taken.
        pending_bytes: bytes buffered.
    """

    __slots__ = ("_cb", "_cb_is_coro", "_client", "_empty", "_loop", "_queue", "_task",
                 "_waiters")

    def __init__(self, client: SubscriptionOwner, loop: asyncio.AbstractEventLoop, sid: int,
                 subject: str, queue: str = "", cb: MsgCallback | None = None,
                 max_msgs: int = 0, pending_msgs_limit: int = 0,
                 pending_bytes_limit: int = 0):
        super().__init__(sid, subject, queue, max_msgs, pending_msgs_limit,
                         pending_bytes_limit)
        self._client = client
        self._loop = loop
        self._queue: deque[Msg] = deque()
        self._waiters: list[asyncio.Future[None]] = []
        self._empty: asyncio.Future[None] | None = None
        self._cb = cb
        self._cb_is_coro = inspect.iscoroutinefunction(cb)
        self._task: asyncio.Task[None] | None = None
        if cb is not None:
            self._task = loop.create_task(self._run(cb), name=f"pynats-sub-{sid}")

    # -- read path (synchronous) -------------------------------------------------------------
    def deliver(self, subject: bytes, reply: bytes, payload: bytes, headers: bytes) -> None:
        """Buffer a message from the read path, or drop it (slow consumer)."""
        if self.closed:
            return
        verdict = self.admit(len(payload) + len(headers))
        if verdict:
            if verdict == DROP_AND_REPORT:
                self._client._report(SlowConsumerError(
                    self.subject, self.sid, self.pending_msgs, self.pending_bytes))
        else:
            self._queue.append(Msg(
                subject.decode("utf-8", "surrogateescape"),
                reply.decode("utf-8", "surrogateescape") if reply else "",
                payload, headers, self._client, self.sid,
            ))
            if self._waiters:
                self._wake_all()
        if self.max_msgs and self.received >= self.max_msgs:
            self._finish(discard=False)

    def _wake_all(self) -> None:
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    # -- consuming -------------------------------------------------------------------------
    def _take(self) -> Msg:
        msg = self._queue.popleft()
        self.taken(msg.size)
        if not self._queue and self._empty is not None:
            _wake(self._empty)
        return msg

    async def _wait(self, timeout: float | None) -> None:
        fut = self._loop.create_future()
        self._waiters.append(fut)
        handle = self._loop.call_later(timeout, _wake, fut) if timeout is not None else None
        try:
            await fut
        finally:
            if handle is not None:
                handle.cancel()
            if not fut.done():
                fut.cancel()
            if fut in self._waiters:
                self._waiters.remove(fut)

    async def next_msg(self, timeout: float | None = 1.0) -> Msg:
        """The next message.

        Args:
            timeout: seconds to wait; ``None`` waits for ever.

        Returns:
            The message.

        Raises:
            TimeoutError: nothing arrived in time.
            SubscriptionClosedError: the subscription has ended and nothing is buffered.
            ClientError: the subscription has a callback.
        """
        if self._queue:
            return self._take()
        if self._cb is not None:
            raise ClientError("next_msg cannot be used on a callback subscription")
        deadline = None if timeout is None else self._loop.time() + timeout
        while True:
            if self._queue:
                return self._take()
            if self.closed:
                raise SubscriptionClosedError(f"subscription to {self.subject!r} has ended")
            remaining = None if deadline is None else deadline - self._loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"no message on {self.subject!r} within {timeout}s")
            await self._wait(remaining)

    def __aiter__(self) -> Subscription:
        if self._cb is not None:
            raise ClientError("cannot iterate over a callback subscription")
        return self

    async def __anext__(self) -> Msg:
        if self._queue:
            return self._take()
        while True:
            if self.closed:
                raise StopAsyncIteration
            await self._wait(None)
            if self._queue:
                return self._take()

    async def _run(self, cb: MsgCallback) -> None:
        """The one task of a callback subscription: call ``cb`` for each message."""
        queue = self._queue
        is_coro = self._cb_is_coro
        while True:
            while queue:
                msg = self._take()
                try:
                    if is_coro:
                        await cb(msg)  # type: ignore[misc]
                    else:
                        result = cb(msg)
                        if result is not None and inspect.isawaitable(result):
                            await result
                except Exception as exc:  # a callback never stops the subscription
                    self._client._report(exc)
            if self.closed:
                return
            await self._wait(None)

    # -- ending ------------------------------------------------------------------------------
    def unsubscribe(self, max_msgs: int | None = None) -> None:
        """Stop the subscription now, or after ``max_msgs`` messages in total.

        Messages already buffered are dropped when it stops now (use :meth:`drain` to
        process them). Non-blocking: the ``UNSUB`` is queued for the server.

        Args:
            max_msgs: total messages (counting those already received) after which the
                server and the client end the subscription.
        """
        if self.closed:
            return
        if max_msgs is not None and max_msgs > self.received:
            self.max_msgs = max_msgs
            self._client._unsubscribe(self, max_msgs)
            return
        self._client._unsubscribe(self, None)
        self._finish(discard=True)

    async def drain(self, timeout: float | None = None) -> None:
        """Unsubscribe, then wait until every message in flight has been processed.

        Args:
            timeout: seconds for the whole drain; ``None`` waits for ever.

        Raises:
            TimeoutError: the buffered messages were not consumed in time.
        """
        try:
            async with asyncio.timeout(timeout):
                if not self.closed:
                    self.draining = True
                    self._client._unsubscribe(self, None)
                    await self._client.flush()  # the PONG follows every message sent
                    self._finish(discard=False)
                await self._wait_consumed()
        except builtins.TimeoutError as exc:
            raise TimeoutError(f"drain of {self.subject!r} timed out") from exc

    async def _wait_consumed(self) -> None:
        if self._task is not None:
            await asyncio.wait([self._task])  # never raises, even if the task was cancelled
            return
        while self._queue:
            self._empty = self._loop.create_future()
            await self._empty
            self._empty = None

    def _finish(self, discard: bool) -> None:
        """No more messages: forget the subscription, wake whoever waits."""
        self.closed = True
        self._client._forget(self)
        if discard:
            self._queue.clear()
            self.discard_pending()
        self._wake_all()
        if self._empty is not None:
            _wake(self._empty)

    def end(self) -> None:
        """The client closed: drop everything and stop the callback task."""
        self._finish(discard=True)
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    @property
    def is_active(self) -> bool:
        """Whether messages may still arrive."""
        return not self.closed

    def __repr__(self) -> str:
        queue = f" queue={self.queue!r}" if self.queue else ""
        return (f"<Subscription sid={self.sid} subject={self.subject!r}{queue} "
                f"pending={self.pending_msgs} delivered={self.delivered}>")


__all__ = ["MsgCallback", "Subscription", "SubscriptionOwner"]
