"""The link to the servers: one connection at a time, reconnecting; no user API.

Theory of operation
-------------------
:class:`Link` is the base of the asyncio :class:`~pynats.client.aio.Client`: it holds
the client's state and runs its connections, and the subclass adds the operations
(publish, subscribe, request, flush, drain). Decisions come from the pure core
(:mod:`~pynats.client.core`, :mod:`~pynats.client.pool`); the transport is touched only
by :class:`~pynats.client.connection.Connection`.

*Connect.* Each attempt is INFO, optional TLS, CONNECT (with ``nkey``/``jwt`` and the
signed nonce when nkey or ``.creds`` credentials are configured, see
:mod:`~pynats.client.credentials`), PING, PONG. The first connect tries each server of
the pool once, in order, each with
an even share of what is left of ``connect_timeout`` (the whole connect is bounded, a
stalled server cannot eat it all). A refused credential raises
:class:`~pynats.errors.AuthorizationError`; nothing but timeouts raises
:class:`~pynats.errors.TimeoutError`; anything else
:class:`~pynats.errors.NoServersError` listing every server's error.

*Writes.* Every operation is appended to the :class:`~pynats.client.core.Outbound`
batch; the first append of a loop iteration schedules one ``_flush_out`` with
``call_soon``, which hands the whole batch to the transport in one write. Control lines
(SUB, UNSUB, PING, PONG) belong to the current connection; publishes survive a
disconnect in the same batch, which is then the bounded reconnect buffer. (The blocking
client's loop side swaps in a :class:`~pynats.client.core.LockedOutbound` through
``_new_outbound``, so that other threads may publish into it.)

*Connection events.* PING is answered, PONG completes the oldest PING waiter, an async
INFO updates the pool (``connect_urls``: discovered servers; ``ldm``: lame duck, the
server is tried last), ``-ERR`` is classified as nats.go does: reconnect, authorization
(the server closes; the same error twice from one server removes it), report only
(permissions), or close. A keepalive PING every ``ping_interval``; one more than
``max_outstanding_pings`` unanswered makes the connection stale and it is dropped.

*Reconnect.* When an attached connection is lost, one task runs ``_reconnect``: the
``disconnected`` callback, then servers chosen by the pool with exponential backoff
and jitter, each attempt bounded by ``connect_timeout``. On success the subscriptions
are replayed (with the remaining ``max_msgs``), then the buffered publishes are sent,
then the ``reconnected`` callback runs. When no server is left the client closes.

*Callbacks* (lifecycle and error) run in their own short task or inline in the
reconnect task; an exception from one is reported, never propagated, so it cannot
wedge the client.
"""

from __future__ import annotations

import asyncio
import builtins
import enum
import inspect
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final

from pynats.client.connection import Connection
from pynats.client.core import (
    ErrAction,
    Outbound,
    Pings,
    RequestMux,
    ServerInfo,
    SubscriptionState,
    classify_err,
    connect_options,
)
from pynats.client.credentials import load_credentials
from pynats.client.nuid import Nuid
from pynats.client.options import ConnectOptions
from pynats.client.pool import Backoff, ServerEntry, ServerPool
from pynats.client.replies import ReplyHandler
from pynats.errors import (
    AuthorizationError,
    ClientError,
    ConnectionClosedError,
    ConnectionLostError,
    NoServersError,
    StaleConnectionError,
    TimeoutError,
)
from pynats.protocol import ops
from pynats.protocol.encode import PING, PONG, encode_connect

_log = logging.getLogger("pynats.client")

#: How long ``close()`` waits for buffered writes to leave.
CLOSE_TIMEOUT: Final = 2.0


class State(enum.Enum):
    """Where the client is in its life."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DRAINING = "draining"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ClientStats:
    """Counters since the client was created.

    Attributes:
        in_msgs: messages received.
        in_bytes: payload and header bytes received.
        out_msgs: messages published.
        out_bytes: payload and header bytes published.
        reconnects: successful reconnects.
    """

    in_msgs: int
    in_bytes: int
    out_msgs: int
    out_bytes: int
    reconnects: int


class Link:
    """Connection lifecycle and state shared by the asyncio client's operations.

    Args:
        options: the options (see :class:`~pynats.client.options.ConnectOptions`).

    Raises:
        ConfigError: a server URL is invalid, or the ``.creds`` file cannot be read.
    """

    def __init__(self, options: ConnectOptions | None = None):
        self.options = options = options if options is not None else ConnectOptions()
        self._credentials = load_credentials(options)
        rc = options.reconnect
        self._pool = ServerPool.from_urls(
            options.servers, Backoff(rc.time_wait, rc.max_time_wait, rc.jitter),
            max_attempts=rc.max_attempts, randomize=options.randomize)
        self._state = State.CONNECTING
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: Connection | None = None
        self._subs: dict[bytes, SubscriptionState] = {}
        self._sid = 0
        self._out = self._new_outbound(rc.buffer_size)
        self._flush_scheduled = False
        self._pings: Pings[asyncio.Future[None]] = Pings(options.max_outstanding_pings)
        self._ping_timer: asyncio.TimerHandle | None = None
        self._info = ServerInfo()
        self._max_payload = self._info.max_payload
        self._nuid = Nuid()
        self._mux: RequestMux[ReplyHandler] | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connected = asyncio.Event()
        self._last_error: BaseException | None = None
        self._subjects: dict[str, bytes] = {}
        self._in_msgs = self._in_bytes = 0
        self._reconnects = 0

    def _new_outbound(self, limit: int) -> Outbound:
        """The write batch (the blocking client's loop side shares it between threads)."""
        return Outbound(limit)

    # -- connecting ------------------------------------------------------------------------
    async def connect(self) -> None:
        """Connect to the first server of the pool that answers.

        Raises:
            AuthorizationError: a server refused the credentials.
            TimeoutError: ``connect_timeout`` passed with every attempt timing out.
            NoServersError: no server could be reached (``errors`` lists why).
        """
        if self._state is not State.CONNECTING:
            raise ClientError("connect() may be called once")
        loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.connect_timeout
        plan = self._pool.plan_initial()
        errors: list[tuple[str, BaseException]] = []
        for i, entry in enumerate(plan):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            budget = self._pool.attempt_budget(remaining, len(plan) - i)
            try:
                conn = await self._open(entry, budget)
            except Exception as exc:
                errors.append((entry.address.url, exc))
                self._failed(entry, exc)
                continue
            self._install(conn, entry, initial=True)
            return
        self._state = State.CLOSED
        raise self._connect_error(errors)

    def _connect_error(self, errors: list[tuple[str, BaseException]]) -> ClientError:
        detail = "; ".join(f"{url}: {type(e).__name__}: {e}" for url, e in errors)
        auth = [e for _, e in errors if isinstance(e, AuthorizationError)]
        if auth:
            return auth[-1]
        if not errors or all(isinstance(e, builtins.TimeoutError) for _, e in errors):
            error: ClientError = TimeoutError(
                f"could not connect within {self.options.connect_timeout}s"
                + (f" ({detail})" if detail else ""))
        else:
            error = NoServersError(f"could not connect to any server: {detail}", errors)
        error.__cause__ = errors[-1][1] if errors else None
        return error

    async def _open(self, entry: ServerEntry, budget: float) -> Connection:
        """One connection attempt, handshake included, bounded by ``budget`` seconds."""
        loop = self._require_loop()
        opts = self.options
        address = entry.address
        want_tls = opts.tls is not None or address.scheme == "tls"
        hostname = opts.tls_hostname or address.host
        conn = Connection(self, self._subs)
        try:
            async with asyncio.timeout(budget):
                if opts.tls_handshake_first and want_tls:
                    ctx = opts.tls or ssl.create_default_context()
                    await loop.create_connection(lambda: conn, address.host, address.port,
                                                 ssl=ctx, server_hostname=hostname)
                else:
                    await loop.create_connection(lambda: conn, address.host, address.port)
                await conn.handshake(lambda info, tls: self._connect_line(entry, info, tls),
                                     opts.tls, hostname, want_tls)
        except builtins.TimeoutError as exc:
            conn.abort()
            if isinstance(exc, ClientError):
                raise
            raise TimeoutError(f"{address.url}: no answer within {budget:.3g}s") from None
        except BaseException:
            conn.abort()
            raise
        return conn

    def _connect_line(self, entry: ServerEntry, info: Any, tls: bool) -> bytes:
        server = ServerInfo.from_wire(info)
        auth = self._credentials.connect_fields(server.nonce)
        return encode_connect(connect_options(self.options, server, entry.address, tls, auth))

    def _failed(self, entry: ServerEntry, exc: BaseException) -> None:
        auth = exc.text if isinstance(exc, AuthorizationError) else None
        self._pool.failed(entry, self._require_loop().time(), auth)

    def _install(self, conn: Connection, entry: ServerEntry, initial: bool) -> None:
        """Make ``conn`` the connection: replay subscriptions, send the buffer."""
        loop = self._require_loop()
        self._conn = conn
        self._pool.connected(entry, loop.time())
        self._set_info(conn.info, initial)
        self._state = State.CONNECTED
        self._pings = Pings(self.options.max_outstanding_pings)
        replay = b"".join(s.sub_ops() for s in self._subs.values() if s.replayable)
        if replay:
            conn.write(replay)
        self._out.connected = True
        self._flush_out()
        self._arm_ping_timer()
        self._connected.set()
        if not conn.attach():  # lost (or refused by an -ERR) right after the handshake
            self._conn_lost(conn, conn.lost_error)

    # -- connection events -------------------------------------------------------------------
    def _conn_op(self, conn: Connection, op: ops.Op) -> None:
        if conn is not self._conn:
            return
        if isinstance(op, ops.Ping):
            self._control(PONG)
        elif isinstance(op, ops.Pong):
            waiter = self._pings.pong()
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif isinstance(op, ops.Info):
            self._set_info({**self._info.raw, **op.info}, initial=False)
        elif isinstance(op, ops.Err):
            self._on_err(conn, op.text)

    def _set_info(self, raw: dict[str, Any], initial: bool) -> None:
        info = self._info = ServerInfo.from_wire(raw)
        self._max_payload = info.max_payload
        current = self._pool.current
        scheme = current.address.scheme if current is not None else "nats"
        new = self._pool.discovered(info.connect_urls, scheme) if info.connect_urls else []
        if new and not initial:
            self._spawn(self._fire(self.options.callbacks.discovered_server))
        if info.ldm and current is not None and not current.lame_duck:
            self._pool.lame_duck(current)
            self._spawn(self._fire(self.options.callbacks.lame_duck))

    def _on_err(self, conn: Connection, text: str) -> None:
        action, error = classify_err(text)
        self._last_error = error
        self._report(error)
        if action is ErrAction.REPORT:
            return
        if action is ErrAction.AUTH and self._pool.current is not None:
            self._pool.current.last_auth_error = text
        if action is ErrAction.CLOSE:
            self._spawn(self._after_shutdown(self._shutdown()))
            return
        conn.abort()

    def _conn_lost(self, conn: Connection, exc: BaseException | None) -> None:
        if conn is not self._conn:
            return
        self._conn = None
        self._in_msgs += conn.in_msgs
        self._in_bytes += conn.in_bytes
        if exc is not None:
            self._last_error = exc
            if isinstance(exc, ClientError):  # found by the connection (garbage, -ERR)
                self._report(exc)
        self._out.disconnected()
        self._cancel_ping_timer()
        for waiter in self._pings.reset():
            if not waiter.done():
                waiter.set_exception(ConnectionLostError("connection lost before the PONG"))
        self._connected.clear()
        if self._state is State.CLOSED:
            return
        if self._state is State.DRAINING or not self.options.reconnect.enabled:
            self._spawn(self._lost_for_good())
            return
        self._state = State.RECONNECTING
        self._pool.disconnected()
        self._reconnect_task = self._spawn(self._reconnect())

    async def _lost_for_good(self) -> None:
        await self._fire(self.options.callbacks.disconnected)
        await self._close()

    async def _reconnect(self) -> None:
        loop = self._require_loop()
        await self._fire(self.options.callbacks.disconnected)
        while self._state is State.RECONNECTING:
            pick = self._pool.next_reconnect(loop.time())
            if pick is None:
                error = NoServersError("no server left to reconnect to")
                error.__cause__ = self._last_error
                self._last_error = error
                self._report(error)
                await self._close()
                return
            entry, delay = pick
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                conn = await self._open(entry, self.options.connect_timeout)
            except Exception as exc:
                self._last_error = exc
                self._failed(entry, exc)
                self._report(exc)
                continue
            self._reconnects += 1
            self._install(conn, entry, initial=False)
            await self._fire(self.options.callbacks.reconnected)
            return

    # -- writing -----------------------------------------------------------------------------
    def _control(self, data: bytes) -> None:
        """Queue a control line for the current connection (none: nothing to do)."""
        if self._conn is None or not self._out.connected:
            return
        self._out.control(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._require_loop().call_soon(self._flush_out)

    def _flush_out(self) -> None:
        """Hand the write batch to the transport in one write."""
        self._flush_scheduled = False
        conn = self._conn
        if conn is None or not self._out.connected or not self._out.chunks:
            return
        chunks = self._out.take()
        conn.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    # -- keepalive -------------------------------------------------------------------------
    def _arm_ping_timer(self) -> None:
        self._cancel_ping_timer()
        self._ping_timer = self._require_loop().call_later(
            self.options.ping_interval, self._ping_tick)

    def _cancel_ping_timer(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None

    def _ping_tick(self) -> None:
        self._ping_timer = None
        conn = self._conn
        if conn is None:
            return
        if self._pings.keepalive():
            self._control(PING)
            self._arm_ping_timer()
            return
        error = StaleConnectionError(
            f"{self.options.max_outstanding_pings} PINGs unanswered: connection is stale")
        self._last_error = error
        self._report(error)
        conn.abort()

    # -- closing ---------------------------------------------------------------------------
    async def _close(self) -> None:
        if self._state is State.CLOSED:
            return
        await self._after_shutdown(self._shutdown())

    def _shutdown(self) -> Connection | None:
        """The synchronous part of closing; returns the connection to wait for."""
        self._state = State.CLOSED
        task = self._reconnect_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        self._cancel_ping_timer()
        conn, self._conn = self._conn, None
        if conn is not None:
            self._flush_to(conn)
            conn.close()
            self._in_msgs += conn.in_msgs
            self._in_bytes += conn.in_bytes
        self._out.connected = False
        self._out.take()
        self._end_everything()
        return conn

    async def _after_shutdown(self, conn: Connection | None) -> None:
        if conn is not None:
            await conn.wait_closed(CLOSE_TIMEOUT)
        await self._fire(self.options.callbacks.closed)

    def _flush_to(self, conn: Connection) -> None:
        if self._out.chunks and self._out.connected:
            conn.write(b"".join(self._out.take()))

    def _end_everything(self) -> None:
        closed = ConnectionClosedError("the client was closed")
        for sub in list(self._subs.values()):
            sub.end()
        self._subs.clear()
        for waiter in self._pings.reset():
            if not waiter.done():
                waiter.set_exception(closed)
        if self._mux is not None:
            for handler in self._mux.clear():
                handler.fail(closed)
        self._connected.set()  # wake flushes waiting for a reconnect: they will see CLOSED

    # -- callbacks and tasks -----------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._require_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _fire(self, cb: Callable[..., Awaitable[None] | None] | None,
                    *args: Any) -> None:
        """Run a user callback; what it raises is reported, never propagated."""
        if cb is None:
            return
        try:
            result = cb(*args)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            if cb is self.options.callbacks.error:
                _log.exception("error callback raised")
            else:
                self._report(exc)

    def _report(self, exc: BaseException) -> None:
        """Hand an asynchronous error to the error callback (or the log)."""
        cb = self.options.callbacks.error
        if cb is None:
            _log.warning("pynats client: %s: %s", type(exc).__name__, exc)
            return
        if self._loop is not None and not self._loop.is_closed():
            self._spawn(self._fire(cb, exc))

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise ClientError("the client is not connected (use pynats.client.connect)")
        return self._loop

    # -- state -------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        """Connected (or draining) over a live connection."""
        return self._conn is not None and self._state in (State.CONNECTED, State.DRAINING)

    @property
    def is_reconnecting(self) -> bool:
        """Between connections, trying to reconnect."""
        return self._state is State.RECONNECTING

    @property
    def is_closed(self) -> bool:
        """Closed for good."""
        return self._state is State.CLOSED

    @property
    def is_draining(self) -> bool:
        """Draining before closing."""
        return self._state is State.DRAINING

    @property
    def state(self) -> State:
        """The life-cycle state."""
        return self._state

    @property
    def connected_url(self) -> str | None:
        """URL (without credentials) of the current server; None when not connected."""
        current = self._pool.current
        return current.address.url if self.is_connected and current is not None else None

    @property
    def servers(self) -> list[str]:
        """URLs of every server in the pool, discovered ones included."""
        return [e.address.url for e in self._pool.entries]

    @property
    def server_info(self) -> ServerInfo:
        """The latest INFO of the current (or last) server."""
        return self._info

    @property
    def max_payload(self) -> int:
        """The largest message the server accepts."""
        return self._max_payload

    @property
    def last_error(self) -> BaseException | None:
        """The last error seen on a connection (or the reason the client closed)."""
        return self._last_error

    @property
    def stats(self) -> ClientStats:
        """Message and byte counters, and the number of reconnects."""
        conn = self._conn
        in_msgs = self._in_msgs + (conn.in_msgs if conn is not None else 0)
        in_bytes = self._in_bytes + (conn.in_bytes if conn is not None else 0)
        out = self._out
        return ClientStats(in_msgs, in_bytes, out.msgs, out.payload_bytes, self._reconnects)


__all__ = ["CLOSE_TIMEOUT", "ClientStats", "Link", "State"]
