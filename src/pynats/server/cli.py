"""``pynats-server``: start a server from nats-server's command line.

Parses the flags (``flags.py``), loads the configuration file if one is given
(``config/load.py``; the flags override it), then runs the server on an event loop
(uvloop when it is installed, through ``asyncio.Runner(loop_factory=...)``) until a
signal stops it. ``-t`` checks the file and exits; ``-sl`` sends a command to a running
server and exits (``signal_cmd.py``).
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
from pynats.server.cluster import RouteListenError
from pynats.server.config.load import load_file, resolve
from pynats.server.flags import FlagError, parse_args, usage
from pynats.server.log import Logger, go_std_log_line
from pynats.server.logsinks import LogSetupError
from pynats.server.monitor.http import MonitorStartError
from pynats.server.reload import reload
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
    if cmd.signal:
        from pynats.server.signal_cmd import run_signal_command

        return run_signal_command(cmd.signal)
    if cmd.check_config:
        return check_config(cmd.options.config_file)
    try:
        opts, loaded = resolve(cmd.options, cmd.explicit, cmd.late_errors)
    except ConfigError as exc:
        print(f"nats-server: {exc}", file=sys.stderr)
        return 1
    if loaded is not None and loaded.warnings:
        print("\n".join(loaded.warnings), file=sys.stderr)
    try:
        log = Logger.from_options(opts)
    except LogSetupError as exc:
        sys.stderr.write(go_std_log_line(str(exc)))
        return 1
    server = Server(opts, log, config=loaded, explicit=cmd.explicit)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(server, log))


def check_config(path: str) -> int:
    """``-t``: report whether ``path`` loads, as nats-server does; returns the exit code.

    Unlike a start, warnings fail the check, and the start-up validation of the
    resulting options (``max_payload`` against ``max_pending``...) is not run.
    """
    if not path:
        print("nats-server: must specify [-c, --config] option to check configuration "
              "file syntax", file=sys.stderr)
        return 1
    try:
        loaded = load_file(path)
    except ConfigError as exc:
        print(f"nats-server: {exc}", file=sys.stderr)
        return 1
    if loaded.warnings:
        print("nats-server: " + "\n".join(loaded.warnings), file=sys.stderr)
        return 1
    print(f"nats-server: configuration file {path} is valid ({loaded.digest})",
          file=sys.stderr)
    return 0


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(server: Server, log: Logger) -> int:
    # Signals are handled from before the listeners open: a supervisor that sends
    # SIGHUP as soon as it reads "Server is ready" must get a reload, not a dead server.
    loop = server.loop = asyncio.get_running_loop()
    for sig in _SIGNAL_NAMES:
        loop.add_signal_handler(sig, handle_signal, server, sig)
    try:
        await server.start()
    except MonitorStartError as exc:
        log.fatal(f"Can't start monitoring: {exc}")
        await server.shutdown()
        return 1
    except ConfigError as exc:  # TLS files that went away since the configuration loaded
        log.fatal(str(exc))
        await server.shutdown()
        return 1
    except RouteListenError as exc:
        log.fatal(str(exc))
        await server.shutdown()
        return 1
    except OSError as exc:
        opts = server.options
        log.fatal(f"Error listening on port: {opts.host}:{opts.port}, {exc.strerror or exc}")
        await server.shutdown()
        return 1
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
        try:
            reload(server)
        except ConfigError as exc:
            log.error(f"Failed to reload server configuration: {exc}")


__all__ = ["check_config", "handle_signal", "main"]
