"""The machinery under the test server handles: options, the loop thread, the node.

Theory of operation
-------------------
* :func:`build_options` turns keywords into frozen ``ServerOptions`` (127.0.0.1 and a
  free port unless told otherwise, optionally over a configuration file); the fields
  given are remembered, so a reload of the file keeps them, as command-line flags are.
* :class:`LoopThread` is an event loop in a daemon thread; ``run``/``call`` hand it a
  coroutine or a function with ``asyncio.run_coroutine_threadsafe`` and block, with a
  timeout, until it is done.
* :class:`Node` is one server of a test, loop-agnostic: its coroutines and methods run
  on whatever loop serves it. It holds the options, the running ``Server`` and its
  :class:`~pynats.testing.faults.Faults`, the log (in memory), and the ports of the
  first start, which later starts bind again.
* :func:`wait_until` re-checks a condition on the loop every :data:`POLL_INTERVAL`
  until it holds or its deadline passes; every wait of the handles is one.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import io
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TextIO, TypeVar, cast

from pynats.server.config.load import load_file
from pynats.server.config.options import (
    Authorization,
    ClusterOptions,
    ServerOptions,
    TLSOptions,
    WebsocketOptions,
)
from pynats.server.log import Logger
from pynats.server.server import Server
from pynats.testing import faults
from pynats.testing.faults import Faults

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
    return build_options_and_fields(options)[0]


def build_options_and_fields(options: dict[str, Any]) -> tuple[ServerOptions, frozenset[str]]:
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
        self._watcher: asyncio.Task[None] | None = None
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
        self._watcher = asyncio.get_running_loop().create_task(self._forget_when_closed(server))
        for callback in self.after_start:
            callback()

    async def _forget_when_closed(self, server: Server) -> None:
        """A server that shuts itself down (lame duck mode, a signal) is stopped here."""
        await server.wait_closed()
        if self.server is server:
            await self.stop()

    async def stop(self, kill: bool = False) -> None:
        """Shut the server down (``kill``: reset every socket first, as a crash would)."""
        server, self.server = self.server, None
        watcher, self._watcher = self._watcher, None
        if watcher is not None and watcher is not asyncio.current_task():
            watcher.cancel()
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


__all__ = [
    "CONTROL_TIMEOUT",
    "POLL_INTERVAL",
    "WAIT_TIMEOUT",
    "LoopThread",
    "Node",
    "build_options",
    "build_options_and_fields",
    "wait_until",
]
