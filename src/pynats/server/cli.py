"""``pynats-server``: start a server from nats-server's command line.

Parses the flags (``flags.py``), then runs the server on an event loop (uvloop when it
is installed, through ``asyncio.Runner(loop_factory=...)``) until a signal stops it.
Signals, as nats-server (SERVER.md section 4): SIGINT and SIGTERM shut down (SIGTERM is
ignored in lame duck mode, which ends on its own), SIGUSR2 enters lame duck mode,
SIGUSR1 reopens the log file, SIGHUP reloads the configuration file. Every signal is
logged as ``Trapped "<name>" signal``.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Sequence

from pynats import SERVER_VERSION, __version__
from pynats.errors import ConfigError
from pynats.server.flags import FlagError, parse_args, usage
from pynats.server.log import Logger
from pynats.server.monitor.http import MonitorStartError
from pynats.server.server import Server

_SIGNAL_NAMES = {
    signal.SIGINT: "interrupt",
    signal.SIGTERM: "terminated",
    signal.SIGHUP: "hangup",
    signal.SIGUSR1: "user defined signal 1",
    signal.SIGUSR2: "user defined signal 2",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server; returns the process exit code."""
    try:
        cmd = parse_args(sys.argv[1:] if argv is None else argv)
    except FlagError as exc:
        print(f"{exc}\n{usage()}", file=sys.stderr)
        return 0
    except ConfigError as exc:
        print(f"nats-server: {exc}", file=sys.stderr)
        return 1
    if cmd.action == "version":
        print(f"nats-server: v{SERVER_VERSION} (pynats {__version__})")
        return 0
    if cmd.action == "help":
        print(usage())
        return 0
    opts = cmd.options
    log = Logger(debug=opts.debug, trace=opts.trace, logtime=opts.logtime,
                 utc=opts.logtime_utc, path=opts.log_file)
    if opts.config_file:
        log.fatal(f"error parsing configuration file {opts.config_file}: configuration files "
                  "are not supported by this version of pynats-server")
        return 1
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(Server(opts, log), log))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(server: Server, log: Logger) -> int:
    try:
        await server.start()
    except MonitorStartError as exc:
        log.fatal(f"Can't start monitoring: {exc}")
        await server.shutdown()
        return 1
    except OSError as exc:
        opts = server.options
        log.fatal(f"Error listening on port: {opts.host}:{opts.port}, {exc.strerror or exc}")
        await server.shutdown()
        return 1
    loop = asyncio.get_running_loop()
    for sig in _SIGNAL_NAMES:
        loop.add_signal_handler(sig, handle_signal, server, sig)
    await server.wait_closed()
    return 0


def handle_signal(server: Server, sig: signal.Signals) -> None:
    """Do what nats-server does on ``sig`` (must run on the server's loop)."""
    log = server.log
    log.notice(f'Trapped "{_SIGNAL_NAMES[sig]}" signal')
    if sig == signal.SIGINT or (sig == signal.SIGTERM and not server.lame_duck_mode):
        server.loop.create_task(server.shutdown())
    elif sig == signal.SIGUSR2:
        server.lame_duck()
    elif sig == signal.SIGUSR1:
        log.reopen()
    elif sig == signal.SIGHUP:
        log.error("Failed to reload server configuration: can only reload config when a "
                  "file is provided using -c or --config")


__all__ = ["handle_signal", "main"]
