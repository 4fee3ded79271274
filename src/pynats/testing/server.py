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

Both handles share one implementation: the :class:`Node` (options, the current
``Server``, its :class:`~pynats.testing.faults.Faults`), and base class
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
import collections
import concurrent.futures
import dataclasses
import io
import signal
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TextIO, TypeVar, cast

from pynats.server.cli import handle_signal
from pynats.server.config.load import load_file
from pynats.server.config.options import (
    Authorization,
    ClusterOptions,
    ServerOptions,
    TLSOptions,
    WebsocketOptions,
)
from pynats.server.log import Logger
from pynats.server.reload import reload as _reload_server
from pynats.server.server import Server
from pynats.testing import faults
from pynats.testing.faults import ClientInfo, ClientRef, Faults, Recording, SubscriptionInfo

T = TypeVar("T")

#: Seconds a blocking control waits for the server thread (a wait adds its own timeout).
CONTROL_TIMEOUT = 10.0
#: Seconds between two checks of a waited-for condition on the server's loop.
POLL_INTERVAL = 0.002
#: Default timeout of the ``wait_for_*`` methods.
WAIT_TIMEOUT = 5.0
#: Log lines kept in memory per server.
LOG_LINES = 2000

#: Option fields that hold a nested options dataclass (a dict is accepted for them).
_NESTED: dict[str, type] = {
    "authorization": Authorization, "cluster": ClusterOptions, "tls": TLSOptions,
    "websocket": WebsocketOptions,
}


def build_options(**options: Any) -> ServerOptions:
    """``ServerOptions`` for a test server: 127.0.0.1, a free port, then ``options``.

    Any :class:`~pynats.server.config.options.ServerOptions` field may be given. Nested
    blocks (``cluster``, ``authorization``, ``tls``, ``websocket``) may be dicts of
    their fields (laid over the block in force), and lists are turned into tuples.
    ``config_file`` loads a nats-server configuration file first, as
    ``pynats-server -c`` does; its client port (and route port) are still replaced by
    free ones unless ``port`` (or ``cluster``'s ``port``) is given here.

    Raises:
        TypeError: an unknown option.
        ConfigError: the configuration file cannot be loaded.
    """
    return _build(options)[0]


def _build(options: dict[str, Any]) -> tuple[ServerOptions, frozenset[str]]:
    """:func:`build_options`, and the fields set over the file (as command-line flags
    are: a reload of the file keeps them, ``load.merge``)."""
    options = dict(options)
    config_file = options.pop("config_file", "")
    base = load_file(str(config_file)).options if config_file else ServerOptions()
    values: dict[str, Any] = {"host": "127.0.0.1", "port": -1}
    explicit = {"host", "port"}
    if base.cluster.enabled:
        values["cluster"] = dataclasses.replace(base.cluster, port=-1)
        explicit.add("cluster.port")
    for key, value in options.items():
        values[key] = _nested(values.get(key, getattr(base, key, None)), key, value)
        if isinstance(value, dict) and key in _NESTED:
            explicit.update(f"{key}.{field}" for field in value)
        else:
            explicit.add(key)
    return dataclasses.replace(base, **values), frozenset(explicit)


def _nested(current: Any, key: str, value: Any) -> Any:
    if isinstance(value, dict) and key in _NESTED:
        fields = {k: _tupled(v) for k, v in value.items()}
        if dataclasses.is_dataclass(current) and not isinstance(current, type):
            return dataclasses.replace(current, **fields)
        return _NESTED[key](**fields)
    return _tupled(value)


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class _LogBuffer(io.TextIOBase):
    """A text stream keeping the last :data:`LOG_LINES` lines written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            text = self._partial + text
            *complete, self._partial = text.split("\n")
            self.lines.extend(complete)
        return len(text)

    def isatty(self) -> bool:
        return False

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)


class LoopThread:
    """An event loop running in a daemon thread, for servers used from other threads."""

    def __init__(self, name: str = "pynats-test-server") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        tasks = asyncio.all_tasks(self.loop)
        for task in tasks:
            task.cancel()
        if tasks:
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = CONTROL_TIMEOUT) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"server loop did not answer within {timeout}s") from None

    def call(self, fn: Callable[[], T], timeout: float = CONTROL_TIMEOUT) -> T:
        """Call ``fn`` on the loop and wait for its result."""
        if threading.current_thread() is self._thread:
            return fn()

        async def call() -> T:
            return fn()

        return self.run(call(), timeout)

    def close(self, timeout: float = CONTROL_TIMEOUT) -> None:
        """Stop the loop (cancelling what still runs on it) and join the thread."""
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)


class Node:
    """One server of a test: its options, the running ``Server`` and its faults.

    Every method runs on the node's loop (the caller's, or a :class:`LoopThread`'s).
    """

    def __init__(self, options: ServerOptions, log: bool = False,
                 explicit: frozenset[str] = frozenset()):
        self.options = options
        #: Fields set by keywords: they override the configuration file on reload.
        self.explicit = explicit | {"port"}
        self.server: Server | None = None
        self.faults: Faults | None = None
        self.port = 0
        self.cluster_port = 0
        self.http_port = 0
        self._echo_log = log
        self._log = _LogBuffer()
        #: Called on the loop after every start (a cluster re-applies its partitions).
        self.after_start: list[Callable[[], None]] = []

    @property
    def running(self) -> bool:
        return self.server is not None

    def _logger(self) -> Logger:
        opts = self.options
        if self._echo_log:
            return Logger(debug=opts.debug, trace=opts.trace, path=opts.log_file)
        return Logger(debug=opts.debug, trace=opts.trace, path=opts.log_file,
                      stream=cast(TextIO, self._log), colors=False)

    async def start(self) -> None:
        """Start the server (again), on the ports of the first start."""
        if self.server is not None:
            return
        opts = self.options
        if self.port:
            opts = dataclasses.replace(opts, port=self.port)
            if self.cluster_port:
                opts = dataclasses.replace(
                    opts, cluster=dataclasses.replace(opts.cluster, port=self.cluster_port))
            if self.http_port:
                field = "http_port" if opts.http_port else "https_port"
                opts = dataclasses.replace(opts, **{field: self.http_port})  # type: ignore[arg-type]
        server = Server(opts, self._logger(), explicit=self.explicit)
        await server.start()
        self.server, self.faults = server, Faults(server)
        self.port, self.http_port = server.client_port, server.http_port
        self.cluster_port = server.cluster_port
        for callback in self.after_start:
            callback()

    async def stop(self, kill: bool = False) -> None:
        """Shut the server down (``kill``: reset every socket first, as a crash would)."""
        server, self.server = self.server, None
        if server is None:
            return
        if self.faults is not None:
            self.faults.close_recordings()
        if kill:
            faults.kill(server)
        await server.shutdown()
        for _ in range(3):  # let closed transports call connection_lost
            await asyncio.sleep(0)

    async def wait_closed(self, timeout: float) -> None:
        """Wait until the server shuts itself down (lame duck mode), then forget it."""
        if self.server is not None:
            try:
                await asyncio.wait_for(self.server.wait_closed(), timeout)
            except TimeoutError:
                raise TimeoutError(f"the server did not shut down within {timeout}s") from None
        await self.stop()

    def require(self) -> Faults:
        """The running server's faults; RuntimeError when the server is stopped."""
        if self.faults is None or self.server is None:
            raise RuntimeError("the server is not running (start() or restart() it)")
        return self.faults

    def log_lines(self) -> list[str]:
        return self._log.snapshot()


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Re-check ``predicate`` on this loop until true; TimeoutError after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)


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
    built, explicit = _build(options)
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
