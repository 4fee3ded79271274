"""In-process NATS servers for tests: ``run_server`` and the server handles.

Theory of operation
-------------------
A test server is the real :class:`pynats.server.server.Server` (the code behind
``pynats-server``) started in this process on 127.0.0.1 and port 0, with its log kept
in memory (:meth:`ServerHandle.log_lines`). :func:`run_server` returns a
:class:`ServerRunner`, which is both a context manager and an async context manager:

* ``with run_server(...) as srv`` (**thread mode**): the server gets its own event loop
  in a daemon thread (:class:`LoopThread`), so synchronous tests and blocking clients
  can use it. Every control is a plain method that runs its work on the server's loop
  (``asyncio.run_coroutine_threadsafe``) and blocks until it is done, with a timeout.
* ``async with run_server(...) as srv`` (**async mode**): the server runs on the
  caller's loop. Controls that act at once are the same plain methods (called directly,
  they take effect before they return); those that wait (``stop``, ``restart``,
  ``wait_for_*``) are coroutines.

Both handles share one implementation: the :class:`~pynats.testing.node.Node`
(options, the current ``Server``, its :class:`~pynats.testing.faults.Faults`), and
base class
:class:`_Controls`, whose methods go through ``_call``: a blocking hop to the server
thread in thread mode, a direct call in async mode. Waiting is never a bare sleep: a
condition is re-checked on the server's loop (every :data:`POLL_INTERVAL`) until it
holds or the deadline passes (:exc:`TimeoutError`).

A node keeps its ports across ``stop()``/``restart()``: the first start binds port 0
and later starts bind the port it got (client, cluster and monitoring ports alike), so
clients reconnect to the same URL and peers re-dial the same route URL.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

from pynats.server.cli import handle_signal
from pynats.server.config.options import ServerOptions
from pynats.server.reload import reload as _reload_server
from pynats.server.server import Server
from pynats.testing.faults import ClientInfo, SubscriptionInfo
from pynats.testing.node import (
    CONTROL_TIMEOUT,
    WAIT_TIMEOUT,
    LoopThread,
    Node,
    build_options,
    build_options_and_fields,
    wait_until,
)
from pynats.testing.recording import ClientRef, Recording

T = TypeVar("T")


def _reload(server: Server) -> None:
    _reload_server(server)


class _Controls:
    """What both handles offer, whatever thread the caller is on (module docstring)."""

    _node: Node

    def _call(self, fn: Callable[[], T]) -> T:
        raise NotImplementedError

    # -- where it is -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The client port (kept across restarts)."""
        return self._node.port

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:<port>``."""
        return f"nats://{self._node.options.host}:{self._node.port}"

    @property
    def cluster_port(self) -> int:
        """The route port (0 unclustered)."""
        return self._node.cluster_port

    @property
    def route_url(self) -> str:
        """``nats-route://127.0.0.1:<cluster port>`` ("" unclustered)."""
        host = self._node.options.cluster.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"nats-route://{host}:{self.cluster_port}" if self.cluster_port else ""

    @property
    def http_port(self) -> int:
        """The monitoring port (0 without monitoring)."""
        return self._node.http_port

    @property
    def options(self) -> ServerOptions:
        """The options the server was started with (ports as first asked for)."""
        return self._node.options

    @property
    def running(self) -> bool:
        return self._node.running

    @property
    def server(self) -> Server:
        """The running :class:`~pynats.server.server.Server` (only touch it on its loop)."""
        server = self._node.server
        if server is None:
            raise RuntimeError("the server is not running")
        return server

    @property
    def server_id(self) -> str:
        return self.server.server_id

    @property
    def server_name(self) -> str:
        return self.server.server_name

    def log_lines(self) -> list[str]:
        """The server's log lines so far (kept in memory unless ``log=True``)."""
        return self._node.log_lines()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {self.url} {state}>"

    # -- counts and inspection --------------------------------------------------------------
    @property
    def client_count(self) -> int:
        """Clients connected now."""
        return self._call(lambda: len(self._node.require().sessions()))

    @property
    def total_connections(self) -> int:
        """Client connections accepted since this start."""
        return self._call(lambda: self._node.require().server.stats.total_connections)

    @property
    def slow_consumer_count(self) -> int:
        """Connections cut off as slow consumers since this start."""
        return self._call(lambda: self._node.require().server.stats.slow_consumers)

    @property
    def route_count(self) -> int:
        """Registered routes to peer servers."""
        return self._call(lambda: len(self._node.require().server.routes))

    def clients(self, which: ClientRef = None) -> list[ClientInfo]:
        """Snapshots of the connected clients (all, or those ``which`` selects)."""
        return self._call(lambda: self._node.require().clients(which))

    def client(self, which: int | str) -> ClientInfo:
        """The one client with id or name ``which`` (LookupError if not exactly one)."""
        found = self.clients(which)
        if len(found) != 1:
            raise LookupError(f"{len(found)} clients match {which!r}")
        return found[0]

    def subscriptions(self, which: ClientRef = None) -> list[SubscriptionInfo]:
        """The subscriptions of the clients ``which`` selects (all by default)."""
        return self._call(lambda: self._node.require().subscriptions(which))

    def record(self, subject: str, account: str = "$G") -> Recording:
        """Record the messages delivered on ``subject`` from now on (see Recording)."""
        return self._call(lambda: self._node.require().record(subject, account))

    def record_published(self, subject: str = ">", which: ClientRef = None,
                         account: str = "$G") -> Recording:
        """Record what clients (``which``: all) publish on ``subject`` from now on, with
        who published each message; it subscribes to nothing (see Recording)."""
        return self._call(lambda: self._node.require().record_published(subject, which,
                                                                          account))

    # -- faults ----------------------------------------------------------------------------
    def drop_client(self, which: ClientRef = None, *, abort: bool = True) -> int:
        """Drop client connections (all by default); returns how many.

        Args:
            which: a client id, a connection name, or None for every client.
            abort: reset the socket at once; False flushes queued output, then closes.
        """
        return self._call(lambda: self._node.require().drop_client(which, abort))

    def pause_reading(self, which: ClientRef = None) -> int:
        """Stop reading what the chosen clients send (their PINGs and PUBs pile up)."""
        return self._call(lambda: self._node.require().pause_reading(which))

    def resume_reading(self, which: ClientRef = None) -> int:
        """Undo :meth:`pause_reading`."""
        return self._call(lambda: self._node.require().resume_reading(which))

    def stall_client(self, which: ClientRef = None) -> int:
        """Hold everything sent to the chosen clients, as if they stopped reading their
        socket: past ``max_pending`` (or ``write_deadline``) the server cuts them off as
        slow consumers."""
        return self._call(lambda: self._node.require().stall_client(which))

    def unstall_client(self, which: ClientRef = None) -> int:
        """Undo :meth:`stall_client`; what was held is written out."""
        return self._call(lambda: self._node.require().unstall_client(which))

    def send_error(self, which: ClientRef, message: str, *, close: bool = False) -> int:
        """Send ``-ERR '<message>'`` to the chosen clients; ``close`` closes them after."""
        return self._call(lambda: self._node.require().send_error(which, message, close))

    def stop_answering_pings(self, which: ClientRef = None) -> int:
        """Leave the chosen clients' PINGs unanswered (None: every client, new ones too)."""
        return self._call(lambda: self._node.require().stop_answering_pings(which))

    def answer_pings(self, which: ClientRef = None) -> int:
        """Undo :meth:`stop_answering_pings`."""
        return self._call(lambda: self._node.require().answer_pings(which))

    def delay_handshake(self, seconds: float) -> None:
        """Send new clients their INFO ``seconds`` late."""
        self._call(lambda: self._node.require().delay_handshake(seconds))

    def drop_handshake(self, *, close: bool = True) -> None:
        """Send new clients no INFO: close them at once (or leave them hanging)."""
        self._call(lambda: self._node.require().drop_handshake(close))

    def restore_handshake(self) -> None:
        """Undo :meth:`delay_handshake` and :meth:`drop_handshake`."""
        self._call(lambda: self._node.require().restore_handshake())

    def enter_lame_duck(self, duration: float | None = None,
                        grace: float | None = None) -> None:
        """Enter lame duck mode: stop accepting, tell clients (``ldm``), close them over
        ``duration`` seconds after ``grace``, then shut down (restart() brings it back)."""
        self._call(lambda: self._node.require().enter_lame_duck(duration, grace))

    def reload(self) -> None:
        """Reload the configuration file (``config_file``), as SIGHUP does; keywords
        given to ``run_server`` still override it.

        Raises:
            ConfigError: no file, a bad file, or a change that needs a restart.
        """
        self._call(lambda: _reload(self._node.require().server))

    def signal(self, sig: signal.Signals) -> None:
        """Handle ``sig`` as ``pynats-server`` does (SIGHUP reload, SIGUSR2 lame duck,
        SIGINT/SIGTERM shutdown: then ``wait_closed()``)."""
        self._call(lambda: handle_signal(self._node.require().server, sig))

    # -- conditions waited for --------------------------------------------------------------
    def _subscribed(self, subject: str, queue: str | None, count: int,
                    which: ClientRef) -> Callable[[], bool]:
        return lambda: self._node.require().has_subscription(subject, queue, count, which)

    def _interested(self, subject: str, account: str, remote: bool) -> Callable[[], bool]:
        return lambda: self._node.require().has_interest(subject, account, remote)

    def _client_count_is(self, count: int) -> Callable[[], bool]:
        return lambda: len(self._node.require().sessions()) == count


class ServerHandle(_Controls):
    """A test server in thread mode: every method blocks until done (module docstring).

    Made by ``with run_server(...) as srv``; or by hand, with :meth:`start` and
    :meth:`close`.
    """

    def __init__(self, node: Node, thread: LoopThread | None = None):
        self._node = node
        self._own_thread = thread is None
        self._thread = thread or LoopThread()

    def _call(self, fn: Callable[[], T]) -> T:
        return self._thread.call(fn)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The server thread's loop."""
        return self._thread.loop

    def start(self, timeout: float = CONTROL_TIMEOUT) -> Self:
        """Start the server (on the same ports after a stop)."""
        self._thread.run(self._node.start(), timeout)
        return self

    def stop(self, timeout: float = CONTROL_TIMEOUT) -> None:
        """Shut the server down gracefully (clients see their connection closed)."""
        self._thread.run(self._node.stop(), timeout)

    def kill(self, timeout: float = CONTROL_TIMEOUT) -> None:
        """Stop the server as a crash would: every socket reset at once."""
        self._thread.run(self._node.stop(kill=True), timeout)

    def restart(self, timeout: float = CONTROL_TIMEOUT) -> None:
        """Stop (if running) and start again on the same ports; faults are reset."""
        self.stop(timeout)
        self.start(timeout)

    def close(self) -> None:
        """Stop the server and its thread."""
        try:
            if self._thread.loop.is_running():
                self.stop()
        finally:
            if self._own_thread:
                self._thread.close()

    def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT_TIMEOUT,
                   what: str = "a condition") -> None:
        """Wait until ``predicate`` (called on the server's loop) returns true."""
        self._thread.run(wait_until(predicate, timeout, what), timeout + CONTROL_TIMEOUT)

    def wait_for_subscription(self, subject: str, queue: str | None = None, *,
                              count: int = 1, client: ClientRef = None,
                              timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until ``count`` subscriptions to exactly ``subject`` (in ``queue``) are
        registered (for ``client``, or any client)."""
        self.wait_until(self._subscribed(subject, queue, count, client), timeout,
                        f"a subscription to {subject!r}")

    def wait_for_interest(self, subject: str, *, account: str = "$G", remote: bool = True,
                          timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until a publish to ``subject`` here would reach a subscriber (here, or
        with ``remote`` on a peer server whose interest has arrived)."""
        self.wait_until(self._interested(subject, account, remote), timeout,
                        f"interest in {subject!r}")

    def wait_for_clients(self, count: int, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until exactly ``count`` clients are connected."""
        self.wait_until(self._client_count_is(count), timeout, f"{count} clients")

    def wait_for_messages(self, recording: Recording, count: int,
                          timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until ``recording`` holds at least ``count`` messages."""
        self.wait_until(lambda: len(recording) >= count, timeout,
                        f"{count} messages on {recording.subject!r}")

    def wait_closed(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until the server has shut down (after lame duck mode, say)."""
        self._thread.run(self._node.wait_closed(timeout), timeout + CONTROL_TIMEOUT)

    @property
    def aio(self) -> ThreadWaits:
        """The waits as coroutines, for async tests (they must not block their loop)."""
        return ThreadWaits(self._thread, self._node, self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ThreadWaits:
    """A thread-mode server's waits as coroutines: ``await srv.aio.wait_for_...()``.

    An async test must not call the blocking waits of :class:`ServerHandle`: its own
    loop, which runs the clients under test, would stand still meanwhile. These run
    the same wait on the server's thread and await its result on the caller's loop.
    """

    def __init__(self, thread: LoopThread, node: Node, handle: ServerHandle):
        self._thread = thread
        self._node = node
        self._handle = handle

    async def _on_server(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(coro, self._thread.loop))

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT_TIMEOUT,
                         what: str = "a condition") -> None:
        """See :meth:`ServerHandle.wait_until`."""
        await self._on_server(wait_until(predicate, timeout, what))

    async def wait_for_subscription(self, subject: str, queue: str | None = None, *,
                                    count: int = 1, client: ClientRef = None,
                                    timeout: float = WAIT_TIMEOUT) -> None:
        """See :meth:`ServerHandle.wait_for_subscription`."""
        await self.wait_until(self._handle._subscribed(subject, queue, count, client),
                              timeout, f"a subscription to {subject!r}")

    async def wait_for_interest(self, subject: str, *, account: str = "$G",
                                remote: bool = True, timeout: float = WAIT_TIMEOUT) -> None:
        """See :meth:`ServerHandle.wait_for_interest`."""
        await self.wait_until(self._handle._interested(subject, account, remote), timeout,
                              f"interest in {subject!r}")

    async def wait_for_clients(self, count: int, timeout: float = WAIT_TIMEOUT) -> None:
        """See :meth:`ServerHandle.wait_for_clients`."""
        await self.wait_until(self._handle._client_count_is(count), timeout,
                              f"{count} clients")

    async def wait_for_messages(self, recording: Recording, count: int,
                                timeout: float = WAIT_TIMEOUT) -> None:
        """See :meth:`ServerHandle.wait_for_messages`."""
        await self.wait_until(lambda: len(recording) >= count, timeout,
                              f"{count} messages on {recording.subject!r}")

    async def wait_closed(self, timeout: float = WAIT_TIMEOUT) -> None:
        """See :meth:`ServerHandle.wait_closed`."""
        await self._on_server(self._node.wait_closed(timeout))


class AsyncServerHandle(_Controls):
    """A test server on the caller's loop: controls that wait are coroutines.

    Made by ``async with run_server(...) as srv``; or by hand, ``await start()`` and
    ``await close()``. Use it only from the loop it was started on.
    """

    def __init__(self, node: Node):
        self._node = node

    def _call(self, fn: Callable[[], T]) -> T:
        return fn()

    async def start(self) -> Self:
        """Start the server (on the same ports after a stop)."""
        await self._node.start()
        return self

    async def stop(self) -> None:
        """Shut the server down gracefully."""
        await self._node.stop()

    async def kill(self) -> None:
        """Stop the server as a crash would: every socket reset at once."""
        await self._node.stop(kill=True)

    async def restart(self) -> None:
        """Stop (if running) and start again on the same ports; faults are reset."""
        await self._node.stop()
        await self._node.start()

    async def close(self) -> None:
        """Stop the server."""
        await self._node.stop()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT_TIMEOUT,
                         what: str = "a condition") -> None:
        """Wait until ``predicate`` returns true."""
        await wait_until(predicate, timeout, what)

    async def wait_for_subscription(self, subject: str, queue: str | None = None, *,
                                    count: int = 1, client: ClientRef = None,
                                    timeout: float = WAIT_TIMEOUT) -> None:
        """See :meth:`ServerHandle.wait_for_subscription`."""
        await wait_until(self._subscribed(subject, queue, count, client), timeout,
                         f"a subscription to {subject!r}")

    async def wait_for_interest(self, subject: str, *, account: str = "$G",
                                remote: bool = True, timeout: float = WAIT_TIMEOUT) -> None:
        """See :meth:`ServerHandle.wait_for_interest`."""
        await wait_until(self._interested(subject, account, remote), timeout,
                         f"interest in {subject!r}")

    async def wait_for_clients(self, count: int, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until exactly ``count`` clients are connected."""
        await wait_until(self._client_count_is(count), timeout, f"{count} clients")

    async def wait_for_messages(self, recording: Recording, count: int,
                                timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until ``recording`` holds at least ``count`` messages."""
        await wait_until(lambda: len(recording) >= count, timeout,
                         f"{count} messages on {recording.subject!r}")

    async def wait_closed(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until the server has shut down (after lame duck mode, say)."""
        await self._node.wait_closed(timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class ServerRunner:
    """What :func:`run_server` returns: ``with`` gives a :class:`ServerHandle` (thread
    mode), ``async with`` an :class:`AsyncServerHandle` (the caller's loop)."""

    def __init__(self, options: ServerOptions, log: bool = False,
                 explicit: frozenset[str] = frozenset()):
        self.options = options
        self.log = log
        self.explicit = explicit
        self._sync: ServerHandle | None = None
        self._async: AsyncServerHandle | None = None

    def __enter__(self) -> ServerHandle:
        handle = ServerHandle(Node(self.options, self.log, self.explicit))
        try:
            handle.start()
        except BaseException:
            handle.close()
            raise
        self._sync = handle
        return handle

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def __aenter__(self) -> AsyncServerHandle:
        handle = AsyncServerHandle(Node(self.options, self.log, self.explicit))
        await handle.start()
        self._async = handle
        return handle

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._async is not None:
            await self._async.close()
            self._async = None


def run_server(*, log: bool = False, **options: Any) -> ServerRunner:
    """An in-process pynats server on 127.0.0.1 and a free port.

    Use ``with run_server(...) as srv:`` (the server runs in a background thread; every
    control blocks) or ``async with run_server(...) as srv:`` (on the running loop;
    waiting controls are coroutines). ``srv.url`` and ``srv.port`` say where it is.

    Args:
        log: write the server's log to stderr (by default it is kept in memory:
            ``srv.log_lines()``).
        **options: any ``ServerOptions`` field (see :func:`build_options`), e.g.
            ``max_payload=1024``, ``authorization={"token": "s3cr3t"}``.
    """
    built, explicit = build_options_and_fields(options)
    return ServerRunner(built, log, explicit)


__all__ = [
    "AsyncServerHandle",
    "LoopThread",
    "Node",
    "ServerHandle",
    "ServerRunner",
    "ThreadWaits",
    "build_options",
    "run_server",
    "wait_until",
]
