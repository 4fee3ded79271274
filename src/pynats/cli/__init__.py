"""The ``pynats`` command line: pub, sub, req, reply, bench, server, context.

Theory of operation
-------------------
:func:`main` builds one argparse parser whose sub-commands come from one module per
command group (:mod:`~pynats.cli.pubsub`, :mod:`~pynats.cli.request`,
:mod:`~pynats.cli.server_cmd`, :mod:`~pynats.cli.bench`, :mod:`~pynats.cli.context`);
each module's ``register`` adds its parsers and sets ``func``, a function of the parsed
arguments that returns the exit status. Connection flags (:mod:`~pynats.cli.connect`)
are accepted before or after the command name.

Errors never escape as tracebacks: a command raises
:class:`~pynats.cli.output.CliError` (or a client library error, converted by
:func:`~pynats.cli.connect.client_error`), and :func:`main` prints it as one line,
``pynats: error: ...``, and returns its status (1 by default). Ctrl-C outside the
commands that handle it (``sub``, ``reply``) exits with 130, as shells expect.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pynats.cli import bench, context, pubsub, request, server_cmd
from pynats.cli.connect import add_connection_arguments, client_error
from pynats.cli.output import PROG, CliError, error_line


def build_parser() -> argparse.ArgumentParser:
    """The parser of the whole command line."""
    common = argparse.ArgumentParser(add_help=False)
    add_connection_arguments(common)
    parser = argparse.ArgumentParser(
        prog=PROG, parents=[common],
        description="NATS command line: publish, subscribe, request, reply, benchmark "
                    "and check servers (natscli conventions).")
    from pynats import __version__
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (pubsub, request, server_cmd, bench, context):
        module.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        error_line(str(exc))
        return exc.status
    except BrokenPipeError:
        sys.stderr.close()  # the reader went away (e.g. | head): not an error
        return 0
    except BaseException as exc:
        error = client_error(exc)
        if error is None:
            raise
        error_line(str(error))
        return error.status
    return status


__all__ = ["build_parser", "main"]
