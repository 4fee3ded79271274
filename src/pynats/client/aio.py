"""The asyncio client: ``await connect(...)`` returns a :class:`Client`.

Theory of operation
-------------------
Three layers, as asyncpg's: the pure core (:mod:`~pynats.client.core`,
:mod:`~pynats.client.pool`) decides; one ``asyncio.Protocol`` per connection
(:mod:`~pynats.client.connection`) touches the transport and parses; the client is the
glue and the user API, on one event loop, with no locks. The glue (connect, reconnect,
connection events, closing, callbacks) is :class:`~pynats.client.link.Link`; this
module adds the operations.

*Publishing* encodes the operation and appends it to the write batch; the first append
of a loop iteration schedules one flush that hands the whole batch to the transport in
one write (or sooner, once 64 KiB are waiting). So ``publish`` never awaits, never
creates a task, and costs one system call per loop iteration however many messages
were published. While reconnecting the batch is the bounded reconnect buffer.

*Receiving*: the connection delivers messages to subscriptions directly from the read
buffer (see :mod:`~pynats.client.subscription`); requests share one inbox subscription
(see :mod:`~pynats.client.replies`).

*Waiting* (``flush``, ``request``, ``next_msg``) arms one ``call_later`` per wait, not a
task, and ``flush`` during a reconnect first waits for the reconnect, within the same
timeout.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Iterable
from typing import Any, Final

from pynats.client.core import RequestMux, SubscriptionState, encode_publish, encode_subject
from pynats.client.link import ClientStats, Link, State
from pynats.client.msg import Msg
from pynats.client.options import ConnectOptions
from pynats.client.replies import (
    InboxSubscription,
    OneReply,
    ReplyHandler,
    ReplyStream,
    Sentinel,
    expire,
)
from pynats.client.subscription import MsgCallback, Subscription
from pynats.errors import (
    ClientError,
    ConnectionClosedError,
    ConnectionLostError,
    MaxPayloadError,
    NoRespondersError,
    TimeoutError,
)
from pynats.protocol.encode import PING
from pynats.protocol.headers import HeaderInput, Headers

#: Flush the write batch at once when this much is waiting (bounds memory and latency).
FLUSH_HIGH_WATER: Final = 64 * 1024
_SUBJECT_CACHE_MAX: Final = 4096


class Client(Link):
    """A NATS client on an asyncio event loop. Make one with :func:`connect`.

    Operations that only queue bytes are plain methods (``publish``, ``subscribe``,
    ``Subscription.unsubscribe``, ``Msg.respond``); those that wait for the server are
    coroutines (``flush``, ``rtt``, ``request``, ``drain``, ``close``). Usable as
    ``async with``: leaving the block closes the client.

    Args:
        options: the options (see :class:`~pynats.client.options.ConnectOptions`).

    Raises:
        ConfigError: a server URL is invalid, or the ``.creds`` file cannot be read.
    """

    def _subject(self, subject: str) -> bytes:
        raw = self._subjects.get(subject)
        if raw is None:
            raw = encode_subject(subject)
            if len(self._subjects) >= _SUBJECT_CACHE_MAX:
                self._subjects.clear()
            self._subjects[subject] = raw
        return raw

    def publish(self, subject: str, payload: bytes = b"", reply: str | None = None,
                headers: Headers | HeaderInput | None = None) -> None:
        """Publish a message. Non-blocking: it is buffered and written this loop iteration.

        While reconnecting the message goes to the reconnect buffer and is sent after
        the reconnect. Use :meth:`flush` to know the server has it.

        Args:
            subject: where to publish.
            payload: the message body.
            reply: a reply subject for the receivers.
            headers: message headers (a :class:`Headers` or a plain mapping).

        Raises:
            ConnectionClosedError: the client is closed (or was never connected).
            InvalidSubjectError: the subject or reply is empty or contains whitespace.
            MaxPayloadError: payload plus headers exceed the server's ``max_payload``.
            ReconnectBufferFullError: disconnected, and the buffer is full.
            NotSupportedError: headers, and the server does not support them.
        """
        loop = self._loop
        if self._state is State.CLOSED or loop is None:
            raise ConnectionClosedError(f"the client is {self._state.value}")
        subj = self._subjects.get(subject) or self._subject(subject)
        size = len(payload)
        if headers is not None:
            data, size = self._hpub(subj, payload, reply, headers)
        elif size > self._max_payload:
            raise MaxPayloadError(f"payload of {size} bytes exceeds max_payload "
                                  f"{self._max_payload}")
        elif reply:
            data = b"PUB %s %s %d\r\n%s\r\n" % (subj, self._subject(reply), size, payload)
        else:
            data = b"PUB %s %d\r\n%s\r\n" % (subj, size, payload)
        out = self._out
        out.publish(data, size)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush_out)
        elif out.size >= FLUSH_HIGH_WATER:
            self._flush_out()
            self._flush_scheduled = True  # the scheduled call is still pending

    def _hpub(self, subj: bytes, payload: bytes, reply: str | None,
              headers: Headers | HeaderInput) -> tuple[bytes, int]:
        raw_reply = self._subject(reply) if reply else b""
        return encode_publish(subj, payload, raw_reply, headers, max_payload=self._max_payload,
                              headers_supported=self._info.headers)

    # -- subscribing -------------------------------------------------------------------------
    def subscribe(self, subject: str, queue: str | None = None, cb: MsgCallback | None = None,
                  max_msgs: int | None = None, pending_msgs_limit: int | None = None,
                  pending_bytes_limit: int | None = None) -> Subscription:
        """Subscribe to ``subject``. Non-blocking: the ``SUB`` is queued for the server.

        Without ``cb`` the subscription is an async iterator (and has ``next_msg``);
        with ``cb`` (a function or coroutine function of the message) one task calls
        it for each message in order.

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
        """
        if self._state in (State.CLOSED, State.DRAINING):
            raise ConnectionClosedError(f"the client is {self._state.value}")
        opts = self.options
        self._sid += 1
        sub = Subscription(
            self, self._require_loop(), self._sid, subject, queue or "", cb, max_msgs or 0,
            opts.pending_msgs_limit if pending_msgs_limit is None else pending_msgs_limit,
            opts.pending_bytes_limit if pending_bytes_limit is None else pending_bytes_limit,
        )
        self._register(sub)
        return sub

    def _register(self, sub: SubscriptionState) -> None:
        """Add ``sub`` to the table and queue its ``SUB``."""
        self._subs[sub.sid_bytes] = sub
        self._control(sub.sub_ops())

    def _unsubscribe(self, sub: SubscriptionState, max_msgs: int | None) -> None:
        self._control(sub.unsub_op(max_msgs))

    def _forget(self, sub: SubscriptionState) -> None:
        if self._subs.get(sub.sid_bytes) is sub:
            del self._subs[sub.sid_bytes]

    # -- request/reply -----------------------------------------------------------------------
    def new_inbox(self) -> str:
        """A unique inbox subject, ``<inbox_prefix>.<nuid>``."""
        return f"{self.options.inbox_prefix}.{self._nuid.next_str()}"

    def _request_mux(self) -> RequestMux[ReplyHandler]:
        mux = self._mux
        if mux is None:
            mux = self._mux = RequestMux(self.options.inbox_prefix, self._nuid)
            self._sid += 1
            self._register(InboxSubscription(self._sid, mux, self))
        return mux

    async def request(self, subject: str, payload: bytes = b"", timeout: float = 1.0,
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
        loop = self._require_loop()
        mux = self._request_mux()
        future: asyncio.Future[Msg] = loop.create_future()
        reply = mux.register(OneReply(future))
        try:
            self.publish(subject, payload, reply, headers)
            handle = loop.call_later(timeout, expire, future, subject, timeout)
            try:
                msg = await future
            finally:
                handle.cancel()
        finally:
            mux.discard(reply)
        if msg.is_no_responders:
            raise NoRespondersError(subject)
        return msg

    def request_many(self, subject: str, payload: bytes = b"", *, timeout: float = 1.0,
                     max_msgs: int | None = None, stall: float | None = None,
                     sentinel: Sentinel | None = None,
                     headers: Headers | HeaderInput | None = None) -> ReplyStream:
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
            An async iterator of replies (also an async context manager).

        Raises:
            NoRespondersError: from iteration, when no one subscribes to ``subject``.
        """
        stream = ReplyStream(self._require_loop(), self._request_mux(), subject, timeout,
                             max_msgs, stall, sentinel)
        try:
            self.publish(subject, payload, stream.reply, headers)
        except BaseException:
            stream._finish()
            raise
        return stream

    # -- flush and rtt -----------------------------------------------------------------------
    async def flush(self, timeout: float = 10.0) -> None:
        """Wait until the server has processed everything sent so far (PING/PONG).

        While reconnecting, waits for the reconnect first, within the same timeout.

        Args:
            timeout: seconds for the whole wait.

        Raises:
            TimeoutError: no PONG in time.
            ConnectionClosedError: the client is closed.
            ConnectionLostError: the connection dropped before the PONG.
        """
        loop = self._require_loop()
        if self._state is State.CLOSED:
            raise ConnectionClosedError("the client is closed")
        try:
            async with asyncio.timeout(timeout):
                if self._conn is None:
                    await self._connected.wait()
                if self.is_closed:
                    raise ConnectionClosedError("the client is closed")
                if self._conn is None:
                    raise ConnectionLostError("not connected")
                future: asyncio.Future[None] = loop.create_future()
                self._pings.sent(future)
                self._control(PING)
                self._flush_out()
                await future
        except builtins.TimeoutError as exc:
            if isinstance(exc, ClientError):
                raise
            raise TimeoutError(f"flush timed out after {timeout}s") from None

    async def rtt(self, timeout: float = 10.0) -> float:
        """Round-trip time to the server in seconds (a PING/PONG).

        Raises:
            TimeoutError: no PONG in time.
        """
        loop = self._require_loop()
        start = loop.time()
        await self.flush(timeout)
        return loop.time() - start

    # -- draining and closing ----------------------------------------------------------------
    async def drain(self) -> None:
        """Unsubscribe everything, process what is in flight, flush, then close.

        Publishing stays possible until the subscriptions are drained. Bounded by the
        ``drain_timeout`` option.

        Raises:
            TimeoutError: the drain did not finish in time (the client is closed anyway).
        """
        if self._state in (State.CLOSED, State.DRAINING):
            return
        if self._state is State.RECONNECTING:
            await self.close()
            return
        self._state = State.DRAINING
        timeout = self.options.drain_timeout
        try:
            async with asyncio.timeout(timeout):
                subs = [s for s in self._subs.values() if isinstance(s, Subscription)]
                await asyncio.gather(*(s.drain() for s in subs))
                await self.flush()
        except builtins.TimeoutError:
            error = TimeoutError(f"drain did not finish within {timeout}s")
            self._report(error)
            raise error from None
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the client: flush what is buffered, end every subscription.

        Pending requests fail with ConnectionClosedError. Idempotent.
        """
        await self._close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<pynats.client.Client {self._state.value} {self.connected_url or ''}>"


async def connect(servers: str | Iterable[str] | None = None, *,
                  options: ConnectOptions | None = None, **overrides: Any) -> Client:
    """Connect to NATS and return the connected client.

    Args:
        servers: a URL or a list of URLs (default ``nats://127.0.0.1:4222``).
        options: base options; keyword overrides are applied on top.
        **overrides: any :class:`~pynats.client.options.ConnectOptions` field, e.g.
            ``name="svc"``, ``user="a", password="b"``, ``connect_timeout=2``,
            ``reconnect=ReconnectOptions(...)``, ``callbacks=Callbacks(...)``.

    Returns:
        The connected client (usable as ``async with``).

    Raises:
        ConfigError: an unknown option or an invalid value (an invalid nkey seed, an
            unreadable ``.creds`` file).
        AuthorizationError: the server refused the credentials.
        TimeoutError: ``connect_timeout`` passed.
        NoServersError: no server could be reached.
    """
    client = Client(ConnectOptions.build(servers, options, **overrides))
    await client.connect()
    return client


__all__ = ["Client", "ClientStats", "State", "connect"]
