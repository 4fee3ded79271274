"""The blocking client: ``pynats.sync.connect(...)`` returns a :class:`Client`.

Theory of operation
-------------------
*Design.* STYLE.md names two ways to give code without an event loop a blocking
client over the shared pure core: (a) a socket and one reader thread driving
:mod:`~pynats.client.core` directly (websockets' ``sync/``), or (b) a private event loop
in a background thread running the asyncio client, with a thin thread-safe facade.
This module is (b), for these reasons:

* *Reuse.* What users of blocking NATS clients miss most is robust reconnects (see
  ECOSYSTEM.md: nats-python never reconnected; nats-py's reconnect bugs). The asyncio
  client already does the whole connection lifecycle: a connect bounded over all
  servers, TLS upgrade and handshake-first, exponential backoff with jitter, the
  reconnect buffer, replaying subscriptions with remaining ``max_msgs``, keepalive
  PINGs, ``-ERR`` classification, lame duck and discovered servers. (a) would need all
  of that a second time, written with sockets, timers and threads, and tested twice.
  Here both front ends share it, so they cannot drift apart.
* *Cost.* The price is a thread hop per operation that waits for the server: a
  blocking ``request`` costs two wake-ups more than a socket read would (caller → loop
  thread → caller). Publishing pays no hop: the caller encodes and appends to the write
  batch under a lock, and the loop thread is woken once per batch, not per message, so
  many publishes share one wake-up and one ``write``. Received messages are handed
  from the loop thread to consumer threads through a condition variable, which (a)
  would need too (its reader thread is not the consumer either). Measured once against
  nats-server on one machine: a sequential request took about 0.41 ms against 0.29 ms
  for the asyncio client, and publishing ran at about 60% of its rate (430k against
  720k 16-byte messages per second), still far above what a blocking caller usually
  needs.
* *Complexity.* The facade is small: everything that decides is in the pure core
  (encoding, accounting, reply gathering) or already in the asyncio client; what is
  new is thread plumbing (:mod:`~pynats.client.threads`) and the waiting ends of
  subscriptions and replies (:mod:`~pynats.client.sync_subscription`).

*Threads.* A client owns: the loop thread (``pynats-loop``: all I/O, parsing, timers,
reconnects; it never runs user code), the callback thread (``pynats-callbacks``: the
lifecycle and error callbacks, in order), and one thread per callback subscription
(``pynats-sub-<sid>``: that subscription's messages, in order). Callbacks are plain
functions. All are daemon threads; :meth:`Client.close` (or leaving the ``with``
block) ends them. A client dropped without ``close()`` is closed when it is garbage
collected or, at the latest, when the interpreter exits (``weakref.finalize``), so a
script that forgets to close still sends what it published.

*Thread safety.* Every method of :class:`Client`, :class:`Subscription` and
``Msg.respond`` may be called from any thread, including from callbacks. Publishes
from many threads are each appended whole (never interleaved) to one write batch;
each thread's publishes keep their order. ``subscribe`` and ``unsubscribe`` run on the
loop thread before they return, so their ``SUB``/``UNSUB`` go out before whatever the
calling thread publishes next. A :class:`ReplyIterator` is meant for one consuming
thread at a time. Calling a blocking method on the loop thread itself (impossible from
callbacks, which never run there) raises :class:`~pynats.errors.ClientError`.

*Waiting.* Nothing polls: threads sleep on conditions, events and futures. Every
blocking method takes a timeout or is bounded by an option (``connect_timeout``,
``drain_timeout``); the exceptions, documented as such, are iterating over a
subscription and ``next_msg(timeout=None)``, which block until a message arrives or the
subscription ends.
"""

from __future__ import annotations

import builtins
import dataclasses
import inspect
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Final, TypeVar

from pynats.client.aio import Client as AsyncClient
from pynats.client.core import LockedOutbound, Outbound, Sentinel, ServerInfo, encode_publish
from pynats.client.link import CLOSE_TIMEOUT, ClientStats, State
from pynats.client.msg import Msg
from pynats.client.nuid import Nuid
from pynats.client.options import ConnectOptions
from pynats.client.replies import ReplyHandler
from pynats.client.sync_subscription import (
    ReplyIterator,
    ReplyWaiter,
    Subscription,
    SyncMsgCallback,
)
from pynats.client.threads import JOIN_TIMEOUT, Dispatcher, LoopThread
from pynats.errors import ConfigError, ConnectionClosedError, NoRespondersError, TimeoutError
from pynats.protocol.headers import HeaderInput, Headers

T = TypeVar("T")

#: Added to a wait that the loop bounds itself, so the loop's own error comes first.
GRACE: Final = 1.0


class LoopClient(AsyncClient):
    """The asyncio client as the loop side of a blocking client; thread-safe entry points.

    Built on the loop thread by :class:`Client`. ``publish`` may be called from any
    thread (the write batch is a :class:`~pynats.client.core.LockedOutbound`); methods
    named ``*_on_loop`` and the inherited ones run on the loop thread.
    """

    def __init__(self, options: ConnectOptions, runner: LoopThread, dispatcher: Dispatcher):
        super().__init__(options)
        out = self._out
        assert isinstance(out, LockedOutbound)
        self._lock = out.lock
        self._runner = runner
        self._dispatcher = dispatcher

    def _new_outbound(self, limit: int) -> Outbound:
        return LockedOutbound(limit)

    def publish(self, subject: str, payload: bytes = b"", reply: str | None = None,
                headers: Headers | HeaderInput | None = None) -> None:
        """Thread-safe publish: encode here, append under the lock, wake the loop once."""
        if self._state is State.CLOSED or self._loop is None:
            raise ConnectionClosedError(f"the client is {self._state.value}")
        data, size = encode_publish(
            self._subjects.get(subject) or self._subject(subject), payload,
            self._subject(reply) if reply else b"", headers,
            max_payload=self._max_payload, headers_supported=self._info.headers)
        self._out.publish(data, size)
        if not self._flush_scheduled:
            # The loop clears the flag before it takes the batch: a publish that sees it
            # set is taken by the flush already scheduled.
            self._flush_scheduled = True
            self._runner.call_soon(self._flush_out)

    # -- subscriptions (loop thread) --------------------------------------------------------
    def subscribe_on_loop(self, subject: str, queue: str | None, cb: SyncMsgCallback | None,
                          max_msgs: int | None, pending_msgs_limit: int | None,
                          pending_bytes_limit: int | None) -> Subscription:
        """Create and register a blocking subscription (see :meth:`Client.subscribe`)."""
        if self._state in (State.CLOSED, State.DRAINING):
            raise ConnectionClosedError(f"the client is {self._state.value}")
        opts = self.options
        self._sid += 1
        sub = Subscription(
            self, self._sid, subject, queue or "", cb, max_msgs or 0,
            opts.pending_msgs_limit if pending_msgs_limit is None else pending_msgs_limit,
            opts.pending_bytes_limit if pending_bytes_limit is None else pending_bytes_limit,
        )
        self._register(sub)
        return sub

    async def start_drain_on_loop(self) -> list[Subscription] | None:
        """Unsubscribe everything and flush; the subscriptions to wait for, or None.

        None means there is nothing to drain: closed, draining already, or reconnecting
        (the caller then closes, as the asyncio ``drain`` does).
        """
        if self._state is not State.CONNECTED:
            return None
        self._state = State.DRAINING
        subs = [s for s in self._subs.values() if isinstance(s, Subscription)]
        for sub in subs:
            sub._begin_drain()
        await self.flush()
        for sub in subs:
            sub._finish(discard=False)
        return subs

    # -- SyncOwner ---------------------------------------------------------------------------
    def _report_threadsafe(self, exc: BaseException) -> None:
        self._dispatcher.report(exc)

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return self._runner.call(fn, *args)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return self._runner.run(coro, timeout)

    def _register_reply(self, handler: ReplyHandler) -> str:
        if self._state is State.CLOSED:
            raise ConnectionClosedError("the client is closed")
        mux = self._mux or self._runner.call(self._request_mux)
        with self._lock:
            reply = mux.register(handler)
        if self.is_closed:  # closed meanwhile: the mux may have been cleared
            mux.discard(reply)
            raise ConnectionClosedError("the client is closed")
        return reply

    def _discard_reply(self, reply: str) -> None:
        if self._mux is not None:
            self._mux.discard(reply)

    def _call_later(self, delay: float, fn: Callable[[], object]) -> None:
        loop = self._require_loop()
        try:
            self._runner.call_soon(loop.call_later, delay, fn)
        except ConnectionClosedError:
            fn()


class Client:
    """A blocking NATS client. Make one with :func:`connect`.

    Same operations and semantics as the asyncio :class:`pynats.client.Client`, with
    blocking methods instead of coroutines; usable as a context manager (leaving the
    block closes it). Every method may be called from any thread; see the module
    docstring for the threads a client runs and where callbacks run.

    Args:
        options: the options (see :class:`~pynats.client.options.ConnectOptions`);
            callbacks must be plain functions.

    Raises:
        ConfigError: a server URL is invalid, or the ``.creds`` file cannot be read.
    """

    def __init__(self, options: ConnectOptions | None = None):
        self.options = options if options is not None else ConnectOptions()
        for field in dataclasses.fields(self.options.callbacks):
            _plain("callbacks." + field.name, getattr(self.options.callbacks, field.name))
        self._dispatcher = Dispatcher(self.options.callbacks)
        self._runner = LoopThread()
        self._nuid = Nuid()
        self._lock = threading.Lock()
        self._cb_threads: list[threading.Thread] = []
        loop_options = dataclasses.replace(self.options, callbacks=self._dispatcher.callbacks())
        try:
            self._lc = self._runner.call(LoopClient, loop_options, self._runner,
                                         self._dispatcher)
        except BaseException:
            self._stop_threads()
            raise
        self._finalizer = weakref.finalize(self, _release, self._runner, self._dispatcher,
                                           self._lc, self._cb_threads)

    def connect(self) -> None:
        """Connect to the first server of the pool that answers.

        Bounded by the ``connect_timeout`` option. On failure the client's threads end.

        Raises:
            AuthorizationError: a server refused the credentials.
            TimeoutError: ``connect_timeout`` passed with every attempt timing out.
            NoServersError: no server could be reached (``errors`` lists why).
        """
        try:
            self._runner.run(self._lc.connect(), self.options.connect_timeout + GRACE)
        except BaseException:
            self._stop_threads()
            raise

    # -- publishing --------------------------------------------------------------------------
    def publish(self, subject: str, payload: bytes = b"", reply: str | None = None,
                headers: Headers | HeaderInput | None = None) -> None:
        """Publish a message. Does not block: it is queued and written by the loop thread.

        While reconnecting the message goes to the reconnect buffer and is sent after
        the reconnect. Use :meth:`flush` to know the server has it.

        Args:
            subject: where to publish.
            payload: the message body.
            reply: a reply subject for the receivers.
            headers: message headers (a :class:`Headers` or a plain mapping).

        Raises:
            ConnectionClosedError: the client is closed.
            InvalidSubjectError: the subject or reply is empty or contains whitespace.
            MaxPayloadError: payload plus headers exceed the server's ``max_payload``.
            ReconnectBufferFullError: disconnected, and the buffer is full.
            NotSupportedError: headers, and the server does not support them.
        """
        self._lc.publish(subject, payload, reply, headers)

    # -- subscribing -------------------------------------------------------------------------
    def subscribe(self, subject: str, queue: str | None = None,
                  cb: SyncMsgCallback | None = None, max_msgs: int | None = None,
                  pending_msgs_limit: int | None = None,
                  pending_bytes_limit: int | None = None) -> Subscription:
        """Subscribe to ``subject``; the ``SUB`` is queued before this returns.

        Without ``cb`` the subscription is an iterator and has ``next_msg``; with ``cb``
        (a plain function of the message) a thread of its own calls it for each message,
        in order.

        Args:
            subject: the subject, wildcards allowed.
            queue: queue group to join.
            cb: message callback.
            max_msgs: unsubscribe automatically after this many messages.
            pending_msgs_limit: buffered messages before dropping (default from options;
                0 or less: unlimited).
            pending_bytes_limit: buffered bytes before dropping.

        Returns:
            The subscription.

        Raises:
            ConnectionClosedError: the client is closed or draining.
            InvalidSubjectError: the subject or queue is invalid.
            ConfigError: ``cb`` is a coroutine function.
        """
        _plain("cb", cb)
        sub = self._lc._call(self._lc.subscribe_on_loop, subject, queue, cb, max_msgs,
                             pending_msgs_limit, pending_bytes_limit)
        thread = sub._start()
        if thread is not None:
            with self._lock:
                self._cb_threads[:] = [t for t in self._cb_threads if t.is_alive()]
                self._cb_threads.append(thread)
        return sub

    # -- request/reply -----------------------------------------------------------------------
    def new_inbox(self) -> str:
        """A unique inbox subject, ``<inbox_prefix>.<nuid>``."""
        with self._lock:
            token = self._nuid.next_str()
        return f"{self.options.inbox_prefix}.{token}"

    def request(self, subject: str, payload: bytes = b"", timeout: float = 1.0,
                headers: Headers | HeaderInput | None = None) -> Msg:
        """Publish a request and wait for the first reply.

        Args:
            subject: where to send the request.
            payload: the request body.
            timeout: seconds to wait for the reply.
            headers: request headers.

        Returns:
            The reply.

        Raises:
            NoRespondersError: no one subscribes to ``subject``.
            TimeoutError: no reply in time.
            ConnectionClosedError: the client closed meanwhile.
        """
        waiter = ReplyWaiter()
        reply = self._lc._register_reply(waiter)
        try:
            self._lc.publish(subject, payload, reply, headers)
            msg = waiter.wait(timeout, subject)
        finally:
            self._lc._discard_reply(reply)
        if msg.is_no_responders:
            raise NoRespondersError(subject)
        return msg

    def request_many(self, subject: str, payload: bytes = b"", *, timeout: float = 1.0,
                     max_msgs: int | None = None, stall: float | None = None,
                     sentinel: Sentinel | None = None,
                     headers: Headers | HeaderInput | None = None) -> ReplyIterator:
        """Publish a request now and iterate over the replies (scatter-gather).

        Iteration ends, without error, at the first of: ``max_msgs`` replies, the
        ``timeout`` deadline, ``stall`` seconds without a reply after one arrived, or a
        sentinel (a payload equal to a bytes sentinel, or a predicate returning True).

        Args:
            subject: where to send the request.
            payload: the request body.
            timeout: overall deadline in seconds from now.
            max_msgs: stop after this many replies.
            stall: stop when a reply is followed by this many seconds of silence.
            sentinel: bytes or a predicate marking the end of the replies (not yielded).
            headers: request headers.

        Returns:
            An iterator of replies (also a context manager).

        Raises:
            NoRespondersError: from iteration, when no one subscribes to ``subject``.
            ConnectionClosedError: the client is closed.
        """
        stream = ReplyIterator(self._lc, subject, timeout, max_msgs, stall, sentinel)
        try:
            self._lc.publish(subject, payload, stream.reply, headers)
        except BaseException:
            stream.close()
            raise
        return stream

    # -- flush and rtt -----------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> None:
        """Block until the server has processed everything sent so far (PING/PONG).

        While reconnecting, waits for the reconnect first, within the same timeout.

        Args:
            timeout: seconds for the whole wait.

        Raises:
            TimeoutError: no PONG in time.
            ConnectionClosedError: the client is closed.
            ConnectionLostError: the connection dropped before the PONG.
        """
        self._runner.run(self._lc.flush(timeout), timeout + GRACE)

    def rtt(self, timeout: float = 10.0) -> float:
        """Round-trip time to the server in seconds (a PING/PONG).

        Raises:
            TimeoutError: no PONG in time.
            ConnectionClosedError: the client is closed.
        """
        return self._runner.run(self._lc.rtt(timeout), timeout + GRACE)

    # -- draining and closing ----------------------------------------------------------------
    def drain(self) -> None:
        """Unsubscribe everything, let consumers process what is in flight, flush, close.

        Publishing stays possible until the subscriptions are drained. Bounded by the
        ``drain_timeout`` option.

        Raises:
            TimeoutError: the drain did not finish in time (the client is closed anyway).
        """
        if self._lc.state in (State.CLOSED, State.DRAINING):
            return
        timeout = self.options.drain_timeout
        deadline = time.monotonic() + timeout
        try:
            subs = self._runner.run(self._lc.start_drain_on_loop(), timeout)
            for sub in subs or ():
                sub._wait_consumed(deadline)
        except builtins.TimeoutError:
            error = TimeoutError(f"drain did not finish within {timeout}s")
            self._dispatcher.report(error)
            raise error from None
        finally:
            self.close()

    def close(self) -> None:
        """Close the client: flush what is buffered, end every subscription and thread.

        Pending requests fail with ConnectionClosedError; subscriptions drop what they
        buffered. When this returns, the ``closed`` callback has run and no message
        callback is running any more (each is given up to a few seconds to return; the
        calling thread's own callback is not waited for). Idempotent.
        """
        if not self._runner.alive:
            return
        try:
            self._runner.run(self._lc.close(), CLOSE_TIMEOUT + GRACE)
        finally:
            self._stop_threads()

    def _stop_threads(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer.detach()
        _stop(self._runner, self._dispatcher, getattr(self, "_cb_threads", []))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state -------------------------------------------------------------------------------
    @property
    def state(self) -> State:
        """The life-cycle state."""
        return self._lc.state

    @property
    def is_connected(self) -> bool:
        """Connected (or draining) over a live connection."""
        return self._lc.is_connected

    @property
    def is_reconnecting(self) -> bool:
        """Between connections, trying to reconnect."""
        return self._lc.is_reconnecting

    @property
    def is_closed(self) -> bool:
        """Closed for good."""
        return self._lc.is_closed

    @property
    def is_draining(self) -> bool:
        """Draining before closing."""
        return self._lc.is_draining

    @property
    def connected_url(self) -> str | None:
        """URL (without credentials) of the current server; None when not connected."""
        return self._lc.connected_url

    @property
    def servers(self) -> list[str]:
        """URLs of every server in the pool, discovered ones included."""
        return self._lc.servers

    @property
    def server_info(self) -> ServerInfo:
        """The latest INFO of the current (or last) server."""
        return self._lc.server_info

    @property
    def max_payload(self) -> int:
        """The largest message the server accepts."""
        return self._lc.max_payload

    @property
    def last_error(self) -> BaseException | None:
        """The last error seen on a connection (or the reason the client closed)."""
        return self._lc.last_error

    @property
    def stats(self) -> ClientStats:
        """Message and byte counters, and the number of reconnects."""
        return self._lc.stats

    def __repr__(self) -> str:
        return (f"<pynats.sync.Client {self._lc.state.value} "
                f"{self._lc.connected_url or ''}>")


def _plain(what: str, cb: object) -> None:
    """Refuse a coroutine function where the blocking client calls a plain function."""
    if cb is not None and inspect.iscoroutinefunction(cb):
        raise ConfigError(f"{what}: the blocking client calls plain functions, "
                          "not coroutine functions")


def _stop(runner: LoopThread, dispatcher: Dispatcher, cb_threads: list[threading.Thread],
          timeout: float = JOIN_TIMEOUT) -> None:
    """End the loop and callback threads, and wait (bounded) for message callbacks."""
    runner.stop()
    dispatcher.stop()
    deadline = time.monotonic() + timeout
    for thread in list(cb_threads):
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def _release(runner: LoopThread, dispatcher: Dispatcher, lc: LoopClient,
             cb_threads: list[threading.Thread]) -> None:
    """Close a client dropped without ``close()`` (garbage collected, or at exit)."""
    try:
        if runner.in_loop:  # collected on the loop thread: close without waiting
            lc._shutdown()
        elif runner.alive:
            runner.run(lc.close(), CLOSE_TIMEOUT + GRACE)
    except Exception:  # best effort: nothing is left to report to
        pass
    finally:
        _stop(runner, dispatcher, cb_threads)


def connect(servers: str | Iterable[str] | None = None, *,
            options: ConnectOptions | None = None, **overrides: Any) -> Client:
    """Connect to NATS and return the connected blocking client.

    Args:
        servers: a URL or a list of URLs (default ``nats://127.0.0.1:4222``).
        options: base options; keyword overrides are applied on top.
        **overrides: any :class:`~pynats.client.options.ConnectOptions` field, e.g.
            ``name="svc"``, ``nkey_seed="SU..."``, ``creds_file="user.creds"``,
            ``connect_timeout=2``, ``reconnect=ReconnectOptions(...)``,
            ``callbacks=Callbacks(...)`` (plain functions, run on the client's callback
            thread).

    Returns:
        The connected client (usable as ``with``).

    Raises:
        ConfigError: an unknown option or an invalid value.
        AuthorizationError: the server refused the credentials.
        TimeoutError: ``connect_timeout`` passed.
        NoServersError: no server could be reached.
    """
    client = Client(ConnectOptions.build(servers, options, **overrides))
    client.connect()
    return client


__all__ = ["Client", "LoopClient", "ReplyIterator", "Subscription", "connect"]
