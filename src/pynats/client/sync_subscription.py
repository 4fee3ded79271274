"""Blocking subscriptions and replies: the thread-safe ends of the blocking client.

Theory of operation
-------------------
The loop thread's read path calls :meth:`Subscription.deliver` for every message, as for
the asyncio client, and it runs the same pure accounting
(:class:`~pynats.client.core.SubscriptionState`: pending limits, one slow-consumer report
per episode, ``max_msgs``). The difference is who waits: here it is threads, so each
subscription has one lock and two conditions on it, ``readable`` (a message arrived, or
the subscription ended) and ``idle`` (everything buffered was consumed). The lock is
held only to move a message in or out of the ``deque`` and to update the counts: never
while user code runs, so the loop thread is never held up by a consumer.

Consumers are threads of three kinds:

* ``next_msg(timeout)`` and iteration, from any threads (each message goes to exactly
  one of them);
* a callback subscription's *own* thread, ``pynats-sub-<sid>``, started by ``subscribe``:
  it calls the callback for each message in order, one at a time, and ends when the
  subscription has ended and its buffer is empty. One thread per callback subscription
  (as nats.go has one goroutine per async subscription): a slow callback delays only
  its own subscription, and a callback may call any blocking client method, even
  ``request`` or ``flush`` (it never runs on the loop thread).

Changing a subscription (``unsubscribe``, the first half of ``drain``) runs on the loop
thread (:meth:`~pynats.client.threads.LoopThread.call`), so its ``UNSUB`` is queued
before anything the calling thread publishes next. ``drain`` then waits, in the calling
thread, on ``idle``.

:class:`ReplyWaiter` (one ``request``) and :class:`ReplyIterator` (``request_many``)
receive replies from the shared inbox on the loop thread and hand them over through a
``threading.Event`` or a condition; :class:`~pynats.client.core.Gather` decides when a
scatter-gather is over, exactly as for the asyncio client.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

from pynats.client.core import (
    DROP_AND_REPORT,
    END,
    NO_RESPONDERS,
    YIELD_LAST,
    Gather,
    Sentinel,
    SubscriptionState,
)
from pynats.client.msg import Msg, Publisher
from pynats.client.replies import ReplyHandler
from pynats.errors import (
    ClientError,
    NoRespondersError,
    SlowConsumerError,
    SubscriptionClosedError,
    TimeoutError,
)

T = TypeVar("T")

#: A blocking client's message callback: a plain function of the message.
SyncMsgCallback = Callable[[Msg], object]


class SyncOwner(Publisher, Protocol):
    """What blocking subscriptions and replies need from the loop side of their client."""

    def _report(self, exc: BaseException) -> None:
        """Report an asynchronous error (loop thread)."""

    def _report_threadsafe(self, exc: BaseException) -> None:
        """Report an asynchronous error (any thread)."""

    def _unsubscribe(self, sub: SubscriptionState, max_msgs: int | None) -> None:
        """Queue an ``UNSUB`` (loop thread)."""

    def _forget(self, sub: SubscriptionState) -> None:
        """Remove ``sub`` from the table (loop thread)."""

    async def flush(self, timeout: float = ...) -> None:
        """PING and wait for the PONG (on the loop)."""

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the loop thread and return its result."""
        ...

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coro`` on the loop and wait for it."""
        ...

    def _register_reply(self, handler: ReplyHandler) -> str:
        """A reply subject routed to ``handler`` (any thread)."""
        ...

    def _discard_reply(self, reply: str) -> None:
        """Stop routing replies of ``reply`` (any thread)."""

    def _call_later(self, delay: float, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the loop thread after ``delay`` seconds (any thread)."""


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


class Subscription(SubscriptionState):
    """A subscription of the blocking client: an iterator of :class:`Msg`, or a callback.

    Created by ``pynats.sync.Client.subscribe``; not meant to be built directly. Every
    method may be called from any thread.

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

    __slots__ = ("_busy", "_cb", "_idle", "_lock", "_owner", "_queue", "_readable", "_thread")

    def __init__(self, owner: SyncOwner, sid: int, subject: str, queue: str = "",
                 cb: SyncMsgCallback | None = None, max_msgs: int = 0,
                 pending_msgs_limit: int = 0, pending_bytes_limit: int = 0):
        super().__init__(sid, subject, queue, max_msgs, pending_msgs_limit,
                         pending_bytes_limit)
        self._owner = owner
        self._cb = cb
        self._queue: deque[Msg] = deque()
        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._thread: threading.Thread | None = None

    def _start(self) -> threading.Thread | None:
        """Start the callback thread (called by ``subscribe``, off the loop thread)."""
        if self._cb is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(self._cb,),
                                            name=f"pynats-sub-{self.sid}", daemon=True)
            self._thread.start()
        return self._thread

    # -- read path (loop thread) -------------------------------------------------------------
    def deliver(self, subject: bytes, reply: bytes, payload: bytes, headers: bytes) -> None:
        """Buffer a message from the read path, or drop it (slow consumer)."""
        with self._lock:
            if self.closed:
                return
            verdict = self.admit(len(payload) + len(headers))
            if not verdict:
                self._queue.append(Msg(
                    subject.decode("utf-8", "surrogateescape"),
                    reply.decode("utf-8", "surrogateescape") if reply else "",
                    payload, headers, self._owner, self.sid,
                ))
                self._readable.notify()
            ended = bool(self.max_msgs) and self.received >= self.max_msgs
            if ended:
                self._end_locked(discard=False)
        if verdict == DROP_AND_REPORT:
            self._owner._report(SlowConsumerError(
                self.subject, self.sid, self.pending_msgs, self.pending_bytes))
        if ended:
            self._owner._forget(self)

    def _end_locked(self, discard: bool) -> None:
        self.closed = True
        if discard:
            self._queue.clear()
            self.discard_pending()
        self._readable.notify_all()
        self._idle.notify_all()

    def _finish(self, discard: bool) -> None:
        """No more messages (loop thread): forget the subscription, wake every waiter."""
        with self._lock:
            self._end_locked(discard)
        self._owner._forget(self)

    def end(self) -> None:
        """The client closed (loop thread): drop what is buffered, wake every waiter."""
        with self._lock:
            self._end_locked(discard=True)

    # -- consuming (any thread) ----------------------------------------------------------------
    def _take(self) -> Msg:
        """The oldest message; the lock is held."""
        msg = self._queue.popleft()
        self.taken(msg.size)
        if not self._queue:
            self._idle.notify_all()
        return msg

    def next_msg(self, timeout: float | None = 1.0) -> Msg:
        """The next message, waiting at most ``timeout`` seconds.

        Args:
            timeout: seconds to wait; ``None`` blocks until a message arrives or the
                subscription ends.

        Returns:
            The message.

        Raises:
            TimeoutError: nothing arrived in time.
            SubscriptionClosedError: the subscription has ended and nothing is buffered.
            ClientError: the subscription has a callback.
        """
        if self._cb is not None:
            raise ClientError("next_msg cannot be used on a callback subscription")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._queue:
                if self.closed:
                    raise SubscriptionClosedError(
                        f"subscription to {self.subject!r} has ended")
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no message on {self.subject!r} within {timeout}s")
                self._readable.wait(remaining)
            return self._take()

    def __iter__(self) -> Iterator[Msg]:
        """Iterate over the messages.

        Each step blocks until a message arrives; iteration ends when the subscription
        ends (``unsubscribe``, ``drain``, ``max_msgs`` reached, client closed) and what
        was buffered has been taken. Use :meth:`next_msg` for a bounded wait.

        Raises:
            ClientError: the subscription has a callback.
        """
        if self._cb is not None:
            raise ClientError("cannot iterate over a callback subscription")
        return self

    def __next__(self) -> Msg:
        with self._lock:
            while not self._queue:
                if self.closed:
                    raise StopIteration
                self._readable.wait()
            return self._take()

    def _run(self, cb: SyncMsgCallback) -> None:
        """The callback thread: call ``cb`` for each message in order, until the end."""
        queue = self._queue
        while True:
            with self._lock:
                self._busy = False
                while not queue:
                    self._idle.notify_all()
                    if self.closed:
                        return
                    self._readable.wait()
                msg = self._take()
                self._busy = True
            try:
                cb(msg)
            except Exception as exc:  # a callback never stops the subscription
                self._owner._report_threadsafe(exc)

    # -- ending ------------------------------------------------------------------------------
    def unsubscribe(self, max_msgs: int | None = None) -> None:
        """Stop the subscription now, or after ``max_msgs`` messages in total.

        Messages already buffered are dropped when it stops now (use :meth:`drain` to
        process them). The ``UNSUB`` is queued before this returns, so it reaches the
        server before anything the calling thread publishes afterwards.

        Args:
            max_msgs: total messages (counting those already received) after which the
                server and the client end the subscription.
        """
        if not self.closed:
            self._owner._call(self._unsubscribe_on_loop, max_msgs)

    def _unsubscribe_on_loop(self, max_msgs: int | None) -> None:
        if self.closed:
            return
        if max_msgs is not None and max_msgs > self.received:
            self.max_msgs = max_msgs
            self._owner._unsubscribe(self, max_msgs)
            return
        self._owner._unsubscribe(self, None)
        self._finish(discard=True)

    def drain(self, timeout: float | None = None) -> None:
        """Unsubscribe, then wait until every message in flight has been processed.

        Processed means taken by ``next_msg``/iteration, or returned from by the
        callback. Called from the subscription's own callback it returns once the
        subscription has ended: the messages still buffered are processed after the
        callback returns (waiting for them there would wait for itself).

        Args:
            timeout: seconds for the whole drain; ``None`` waits until the consumers have
                taken everything.

        Raises:
            TimeoutError: the buffered messages were not consumed in time.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            if not self.closed:
                self._owner._run(self._drain_on_loop(), _remaining(deadline))
            self._wait_consumed(deadline)
        except builtins.TimeoutError as exc:
            raise TimeoutError(f"drain of {self.subject!r} timed out") from exc

    async def _drain_on_loop(self) -> None:
        if self.closed:
            return
        self._begin_drain()
        await self._owner.flush()  # the PONG follows every message sent to us
        self._finish(discard=False)

    def _begin_drain(self) -> None:
        """Mark draining and queue the ``UNSUB`` (loop thread)."""
        self.draining = True
        self._owner._unsubscribe(self, None)

    def _wait_consumed(self, deadline: float | None) -> None:
        """Wait until the buffer is empty and no callback runs (not on the sub's thread)."""
        if threading.current_thread() is self._thread:
            return
        with self._lock:
            while self._queue or self._busy:
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"drain of {self.subject!r} timed out")
                self._idle.wait(remaining)

    @property
    def is_active(self) -> bool:
        """Whether messages may still arrive."""
        return not self.closed

    def __repr__(self) -> str:
        queue = f" queue={self.queue!r}" if self.queue else ""
        return (f"<pynats.sync.Subscription sid={self.sid} subject={self.subject!r}{queue} "
                f"pending={self.pending_msgs} delivered={self.delivered}>")


class ReplyWaiter:
    """The first reply to one blocking request."""

    __slots__ = ("_event", "error", "msg")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.msg: Msg | None = None
        self.error: BaseException | None = None

    def on_reply(self, msg: Msg) -> None:
        """A reply arrived (loop thread)."""
        if self.msg is None:
            self.msg = msg
            self._event.set()

    def fail(self, exc: BaseException) -> None:
        """No reply will come (the client closed)."""
        self.error = exc
        self._event.set()

    def wait(self, timeout: float | None, subject: str) -> Msg:
        """The reply, waiting at most ``timeout`` seconds.

        Raises:
            TimeoutError: no reply in time.
            ConnectionClosedError: the client closed meanwhile.
        """
        if not self._event.wait(timeout):
            raise TimeoutError(f"no reply on {subject!r} within {timeout}s")
        if self.msg is not None:
            return self.msg
        assert self.error is not None
        raise self.error


class ReplyIterator:
    """Replies to one scatter-gather request (``request_many``), as a blocking iterator.

    Iteration ends, without error, when ``max_msgs`` replies arrived, the deadline passed,
    no reply came for ``stall`` seconds after the previous one, or a sentinel arrived (it
    is not yielded). Each step waits at most until the deadline. Leaving early is fine:
    the inbox token is released at the deadline anyway, or at once by :meth:`close`
    (or the ``with`` block). Iterate from one thread at a time.

    Raises (from iteration):
        NoRespondersError: the first reply says no one listens.
        ConnectionClosedError: the client closed.
    """

    def __init__(self, owner: SyncOwner, subject: str, timeout: float,
                 max_msgs: int | None = None, stall: float | None = None,
                 sentinel: Sentinel | None = None):
        self.subject = subject
        self._owner = owner
        self._gather = Gather(max_msgs, sentinel)
        self._stall = stall
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: deque[Msg] = deque()
        self._error: BaseException | None = None
        self._done = False
        self._deadline = time.monotonic() + timeout
        self._last_at = 0.0
        #: The reply subject the request was published with.
        self.reply = owner._register_reply(self)
        owner._call_later(timeout, self._finish)

    # -- fed by the inbox (loop thread) ------------------------------------------------------
    def on_reply(self, msg: Msg) -> None:
        """A reply arrived."""
        with self._lock:
            if self._done:
                return
            self._queue.append(msg)
            self._last_at = time.monotonic()
            self._arrived.notify()

    def fail(self, exc: BaseException) -> None:
        """No more replies (the client closed)."""
        with self._lock:
            self._error = exc
        self._finish()

    def _finish(self) -> None:
        with self._lock:
            release = not self._done
            self._done = True
            self._arrived.notify_all()
        if release:
            self._owner._discard_reply(self.reply)

    # -- iteration ---------------------------------------------------------------------------
    def __iter__(self) -> ReplyIterator:
        return self

    def __next__(self) -> Msg:
        while True:
            msg = self._next_arrival()
            verdict = self._gather.verdict(msg)  # outside the lock: a predicate is user code
            if verdict >= END:
                self.close()
                if verdict == NO_RESPONDERS:
                    raise NoRespondersError(self.subject)
                raise StopIteration
            if verdict == YIELD_LAST:
                self.close()
            return msg

    def _next_arrival(self) -> Msg:
        with self._lock:
            while not self._queue:
                if self._error is not None:
                    raise self._error
                if self._done:
                    raise StopIteration
                until = self._deadline
                if self._stall is not None and self._gather.count:
                    until = min(until, self._last_at + self._stall)
                remaining = until - time.monotonic()
                if remaining <= 0:
                    self._done = True
                    break
                self._arrived.wait(remaining)
            else:
                return self._queue.popleft()
        self._owner._discard_reply(self.reply)
        raise StopIteration

    def close(self) -> None:
        """Stop collecting replies now."""
        with self._lock:
            self._queue.clear()
        self._finish()

    def __enter__(self) -> ReplyIterator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["ReplyIterator", "ReplyWaiter", "Subscription", "SyncMsgCallback", "SyncOwner"]
