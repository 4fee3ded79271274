"""``--signal <cmd>[=<pid|pidfile>]``: send a command to a running server, as nats-server.

Theory of operation
-------------------
nats-server's ``-sl`` / ``--signal`` (``server/opts.go`` ``processSignal`` and
``server/signal.go`` ``ProcessSignal``) sends one signal and exits; this module does
the same for pynats servers. :func:`run_signal_command` is the whole command: it
prints nothing on success and returns 0; on failure it prints ``nats-server: <error>``
to stderr and returns 1. Message texts and exit codes were checked against the
nats-server 2.15.1 binary.

Steps, in nats-server's order (the order decides which error wins):

1. ``spec`` is split on ``=``: ``reload`` or ``reload=<arg>``; more parts give
   ``invalid signal parameters: [c d]``. If ``<arg>`` names a readable file, its
   contents are used instead, unchanged (a PID file; a trailing newline therefore
   makes it an invalid pid, as in nats-server).
2. A trailing ``*`` makes the rest a prefix (glob). The rest, when not empty, must be
   a decimal integer (``invalid pid: <text>``).
3. Without a pid, or with a glob, the running servers are looked up (nats-server runs
   ``pgrep nats-server``; see :func:`find_server_pids`), this process excluded. More
   than one without a glob: ``multiple <exe> processes running:`` then one pid per
   line; none: ``no <exe> processes running``.
4. Only then is the command checked: ``stop`` SIGKILL, ``quit`` SIGINT, ``term``
   SIGTERM, ``reopen`` SIGUSR1, ``reload`` SIGHUP, ``ldm`` SIGUSR2; anything else gives
   ``unknown signal "<cmd>"``.
5. Each matching pid is signalled (with a glob, those starting with the prefix; a
   pid written differently from its decimal form, like ``+5`` or ``05``, matches
   nothing, so nothing is sent and the command succeeds, as in nats-server). Failures
   are collected as ``\\nsignal "<cmd>" <pid>: <reason>`` (``no such process``), so the
   printed error starts with an empty line: ``nats-server: \\nsignal "reload" 9: ...``.

One deliberate deviation: a pid of 0 or below is refused as ``invalid pid`` instead of
being passed to ``kill(2)``, where it would signal a whole process group or every
process (nats-server does send it).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
from typing import TextIO

from pynats.server.gotext import go_errno_text, go_quote

#: The signal each ``--signal`` command sends.
COMMANDS: dict[str, signal.Signals] = {
    "stop": signal.SIGKILL,
    "quit": signal.SIGINT,
    "term": signal.SIGTERM,
    "reopen": signal.SIGUSR1,
    "reload": signal.SIGHUP,
    "ldm": signal.SIGUSR2,
}
#: The module that ``python -m`` runs as a server ...
SERVER_MODULE = "pynats.server"
#: ... and the program name such a process goes by (the console script's).
SERVER_PROGRAM = "pynats-server"
_GO_INT_RE = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1
#: Python options that take the next argument as their value.
_PYTHON_VALUE_OPTIONS = frozenset({"-X", "-W", "-Q"})


class SignalError(Exception):
    """The ``--signal`` command failed; ``str()`` is nats-server's error text."""


def run_signal_command(
    spec: str,
    *,
    exe_name: str = "pynats-server",
    prog: str = "nats-server",
    stderr: TextIO | None = None,
    proc_root: str = "/proc",
) -> int:
    """Run ``--signal <spec>`` and return the process exit code.

    Args:
        spec: ``<cmd>``, ``<cmd>=<pid>``, ``<cmd>=<pid prefix>*`` or
            ``<cmd>=<pid file>``; commands ``stop``, ``quit``, ``term``, ``reopen``,
            ``reload``, ``ldm``.
        exe_name: The server's process name, used to find it without a pid and in
            the ``no/multiple <exe_name> processes running`` errors.
        prog: Prefix of the printed error (``nats-server: unknown signal "foo"``).
        stderr: Where the error goes (default ``sys.stderr``).
        proc_root: The procfs mount to search (tests pass a fake one).

    Returns:
        0 when every signal was sent (nothing is printed), 1 after printing the error.
    """
    try:
        send_signal_command(spec, exe_name=exe_name, proc_root=proc_root)
    except SignalError as exc:
        print(f"{prog}: {exc}", file=stderr if stderr is not None else sys.stderr)
        return 1
    return 0


def send_signal_command(
    spec: str, *, exe_name: str = "pynats-server", proc_root: str = "/proc"
) -> list[int]:
    """Do what ``--signal <spec>`` does, without printing.

    Returns:
        The pids signalled.

    Raises:
        SignalError: With nats-server's message.
    """
    command, *args = spec.split("=")
    if len(args) > 1:
        raise SignalError(f"invalid signal parameters: [{' '.join(args[1:])}]")
    pid_expr = read_pid_file_or_text(args[0]) if args else ""
    return _process_signal(command, pid_expr, exe_name, proc_root)


def read_pid_file_or_text(arg: str) -> str:
    """The contents of the file ``arg`` if it can be read, else ``arg`` itself."""
    try:
        with open(arg, "rb") as file:
            return file.read().decode("utf-8", "surrogateescape")
    except (OSError, ValueError):
        return arg


def _process_signal(command: str, pid_expr: str, exe_name: str, proc_root: str) -> list[int]:
    is_glob = pid_expr.endswith("*")
    pid_text = pid_expr[:-1] if is_glob else pid_expr
    pids = [_parse_pid(pid_text, is_glob)] if pid_text else []
    if not pid_text or is_glob:
        pids = find_server_pids(exe_name, proc_root=proc_root)
    if len(pids) > 1 and not is_glob:
        raise SignalError(f"multiple {exe_name} processes running:"
                          + "".join(f"\n{pid}" for pid in pids))
    if not pids:
        raise SignalError(f"no {exe_name} processes running")
    signum = COMMANDS.get(command)
    if signum is None:
        raise SignalError(f"unknown signal {go_quote(command)}")
    sent: list[int] = []
    failures = ""
    for pid in pids:
        if pid_text and str(pid) != pid_text and not (is_glob and str(pid).startswith(pid_text)):
            continue
        reason = _kill(pid, signum)
        if reason:
            failures += f"\nsignal {go_quote(command)} {pid}: {reason}"
        else:
            sent.append(pid)
    if failures:
        raise SignalError(failures)
    return sent


def _parse_pid(text: str, is_glob: bool) -> int:
    """Go's ``strconv.Atoi``; a pid below 1 is refused unless it is only a prefix."""
    if _GO_INT_RE.fullmatch(text) is None or abs(int(text)) > _INT64_MAX:
        raise SignalError(f"invalid pid: {text}")
    pid = int(text)
    if pid <= 0 and not is_glob:
        raise SignalError(f"invalid pid: {text}")
    return pid


def _kill(pid: int, signum: signal.Signals) -> str:
    """Send ``signum``; "" on success, else Go's text for the error."""
    try:
        os.kill(pid, signum)
    except OverflowError:
        return go_errno_text(errno.ESRCH)
    except OSError as exc:
        return go_errno_text(exc.errno) if exc.errno else str(exc)
    return ""


# -- finding running servers -----------------------------------------------------------------


def find_server_pids(exe_name: str = "pynats-server", *, proc_root: str = "/proc") -> list[int]:
    """Pids of running servers, lowest first, this process excluded.

    nats-server asks ``pgrep nats-server``: processes whose name contains the pattern.
    A pynats server may also run under a Python interpreter, so each process gets
    several names, and it counts when ``exe_name`` is part of one of them:

    * its name (``comm``, 15 characters at most), as ``pgrep`` matches;
    * the base name of its ``argv[0]``, and of the script a Python interpreter runs
      (``python /venv/bin/pynats-server``);
    * ``pynats-server`` for a Python interpreter running ``-m pynats.server``.

    Processes without a command line (kernel threads, zombies) are skipped.

    Raises:
        SignalError: ``unable to resolve pid, try providing one`` when ``proc_root``
            cannot be listed.
    """
    try:
        entries = os.listdir(proc_root)
    except OSError:
        raise SignalError("unable to resolve pid, try providing one") from None
    own = os.getpid()
    pids = [
        int(entry) for entry in entries
        if entry.isdigit() and int(entry) != own
        and _is_server_process(os.path.join(proc_root, entry), exe_name)
    ]
    return sorted(pids)


def _is_server_process(proc_dir: str, exe_name: str) -> bool:
    argv = _read_cmdline(proc_dir)
    if not argv:
        return False
    if exe_name[:15] in _read_text(os.path.join(proc_dir, "comm")).rstrip("\n"):
        return True
    return any(exe_name in name for name in _argv_names(argv))


def _argv_names(argv: list[str]) -> list[str]:
    """The program names a command line shows: ``argv[0]``, and for a Python
    interpreter the script it runs, or ``pynats-server`` for ``-m pynats.server``."""
    first = os.path.basename(argv[0])
    if not first.startswith(("python", "pypy")):
        return [first]
    args = iter(argv[1:])
    for arg in args:
        if arg == "-c":
            break
        if arg == "-m" or arg.startswith("-m"):
            module = next(args, "") if arg == "-m" else arg[2:]
            return [first, SERVER_PROGRAM] if module == SERVER_MODULE else [first]
        if arg in _PYTHON_VALUE_OPTIONS:
            next(args, "")
        elif not arg.startswith("-") or arg == "-":
            return [first, os.path.basename(arg)]
    return [first]


def _read_cmdline(proc_dir: str) -> list[str]:
    raw = _read_text(os.path.join(proc_dir, "cmdline"))
    return raw.rstrip("\0").split("\0") if raw.strip("\0") else []


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as file:
            return file.read().decode("utf-8", "surrogateescape")
    except OSError:
        return ""


__all__ = [
    "COMMANDS",
    "SignalError",
    "find_server_pids",
    "read_pid_file_or_text",
    "run_signal_command",
    "send_signal_command",
]
