"""The two threads behind a blocking client: its event loop, and its callback runner.

Theory of operation
-------------------
:class:`LoopThread` runs a private asyncio event loop in a daemon thread. Other threads
hand it work in three ways, none of which polls:

* :meth:`LoopThread.call_soon`: fire and forget (``call_soon_threadsafe``, or plain
  ``call_soon`` when already on the loop thread);
* :meth:`LoopThread.call`: run a plain function on the loop and wait for its result
  (a ``concurrent.futures.Future``); the loop never blocks, so this is quick, and it is
  bounded by :data:`CALL_TIMEOUT` all the same;
* :meth:`LoopThread.run`: run a coroutine on the loop and wait for it, bounded by the
  caller's timeout (the coroutines used bound themselves too).

Waiting for the loop *on* the loop thread would deadlock, so it raises
:class:`~pynats.errors.ClientError` instead; once the loop is stopped, everything raises
:class:`~pynats.errors.ConnectionClosedError`. :meth:`LoopThread.stop` stops the loop,
cancels what is left on it, closes it and joins the thread.

:class:`Dispatcher` is one thread per client that runs the lifecycle and error callbacks
(disconnected, reconnected, closed, error, discovered server, lame duck) in the order
the loop posted them, from a ``queue.SimpleQueue``. User code therefore never runs on
the loop thread, may call the blocking client (``flush``, ``request``, ``close``) from a
callback, and may take its time without stalling I/O. What a callback raises goes to the
error callback (or the ``pynats.client`` logger when that is the one that failed), so a
failing callback cannot wedge the client.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import contextlib
import inspect
import logging
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from pynats.client.options import Callbacks, EventCallback
from pynats.errors import ClientError, ConnectionClosedError, TimeoutError

T = TypeVar("T")

_log = logging.getLogger("pynats.client")

#: Bound of :meth:`LoopThread.call`: a local action on a loop that never blocks.
CALL_TIMEOUT: Final = 10.0
#: How long stopping waits for each thread to finish.
JOIN_TIMEOUT: Final = 5.0


class LoopThread:
    """A private asyncio event loop running in a daemon thread.

    Args:
        name: the thread's name.
    """

    def __init__(self, name: str = "pynats-loop"):
        self.loop = asyncio.new_event_loop()
        self._stopped = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @property
    def in_loop(self) -> bool:
        """Whether the calling thread is the loop thread."""
        return threading.current_thread() is self._thread

    @property
    def alive(self) -> bool:
        """Whether the loop still takes work."""
        return not self._stopped

    def call_soon(self, fn: Callable[..., object], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop; returns at once.

        Raises:
            ConnectionClosedError: the loop is stopped.
        """
        if self._stopped:
            raise ConnectionClosedError("the client is closed")
        try:
            if self.in_loop:
                self.loop.call_soon(fn, *args)
            else:
                self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed between the check and the call
            raise ConnectionClosedError("the client is closed") from None

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and return its result (or raise its exception).

        Raises:
            ConnectionClosedError: the loop is stopped.
            TimeoutError: the loop did not run it within :data:`CALL_TIMEOUT`.
        """
        if self.in_loop:
            return fn(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)

        self.call_soon(run)
        return self._wait(future, CALL_TIMEOUT)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coro`` on the loop and wait for its outcome.

        Args:
            coro: the coroutine.
            timeout: seconds to wait (None: until it ends; it must bound itself).

        Raises:
            ClientError: called on the loop thread (waiting there would deadlock).
            ConnectionClosedError: the loop is stopped.
            TimeoutError: ``timeout`` passed (the coroutine is cancelled).
        """
        if self.in_loop or self._stopped:
            coro.close()
            if self._stopped:
                raise ConnectionClosedError("the client is closed")
            raise ClientError("a blocking client call on its own event loop thread would "
                              "deadlock")
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:
            coro.close()
            raise ConnectionClosedError("the client is closed") from None
        return self._wait(future, timeout)

    @staticmethod
    def _wait(future: concurrent.futures.Future[T], timeout: float | None) -> T:
        try:
            return future.result(timeout)
        except builtins.TimeoutError:
            if future.done():  # the work itself raised a TimeoutError (or just finished)
                return future.result()
            future.cancel()
            raise TimeoutError(f"no outcome from the client's event loop within "
                               f"{timeout}s") from None

    def stop(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Stop the loop (cancelling what is left on it) and join the thread. Idempotent."""
        if not self._stopped:
            self._stopped = True
            with contextlib.suppress(RuntimeError):  # already closed
                self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.in_loop:
            self._thread.join(timeout)


class Dispatcher:
    """One thread running a client's lifecycle and error callbacks, in order.

    Args:
        callbacks: the user's callbacks (plain functions).
        name: the thread's name.
    """

    def __init__(self, callbacks: Callbacks, name: str = "pynats-callbacks"):
        self._user = callbacks
        self._queue: queue.SimpleQueue[tuple[Callable[..., object], tuple[Any, ...]] | None]
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Run ``fn(*args)`` on the callback thread, after what was posted before."""
        self._queue.put((fn, args))

    def report(self, exc: BaseException) -> None:
        """Hand an asynchronous error to the error callback (or the log). Any thread."""
        if self._user.error is None:
            _log.warning("pynats client: %s: %s", type(exc).__name__, exc)
        else:
            self.post(self._user.error, exc)

    def callbacks(self) -> Callbacks:
        """Callbacks for the loop side: each posts the user's callback to this thread."""
        user = self._user

        def relay(cb: EventCallback | None) -> EventCallback | None:
            return None if cb is None else lambda: self.post(cb)

        return Callbacks(disconnected=relay(user.disconnected),
                         reconnected=relay(user.reconnected), closed=relay(user.closed),
                         error=self.report, discovered_server=relay(user.discovered_server),
                         lame_duck=relay(user.lame_duck))

    def _main(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, args = item
            self._run(fn, args)

    def _run(self, fn: Callable[..., object], args: tuple[Any, ...]) -> None:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise ClientError("callbacks of the blocking client must be plain functions")
        except Exception as exc:
            if fn is self._user.error:
                _log.exception("error callback raised")
            else:
                self.report(exc)

    @property
    def in_thread(self) -> bool:
        """Whether the calling thread is the callback thread."""
        return threading.current_thread() is self._thread

    def stop(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Run what is queued, then end the thread; joins it unless called from it."""
        self._queue.put(None)
        if not self.in_thread:
            self._thread.join(timeout)


__all__ = ["CALL_TIMEOUT", "JOIN_TIMEOUT", "Dispatcher", "LoopThread"]
