"""``pynats req`` and ``pynats reply``.

Theory of operation
-------------------
``req`` publishes one request. With ``--count 1`` (the default) it waits for the
first reply with :meth:`Client.request`; with ``--count N`` (or ``0``: as many as
arrive) it gathers replies with :meth:`Client.request_many` until ``N`` arrived or
``--timeout`` ran out (scatter-gather). Each reply is printed with its round-trip time
as natscli does (``Received with rtt 1.23ms``). No reply at all is an error: a
timeout, or "no responders" when the server said nobody listens.

``reply`` answers every request on a subject, in order, one at a time: with BODY (a
template, ``{{Count}}`` and ``{{Request}}`` included), with the request itself
(``--echo``), or with the output of a shell command (``--command``) that gets the
request body on stdin; ``{{0}}`` in the command is the subject and ``{{1}}``...
the subject's tokens, shell-quoted. It joins the queue group ``NATS-RPLY-22`` like
natscli, so several repliers share the load; Ctrl-C prints a summary and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shlex
import sys
import time
from typing import Any

from pynats.cli.connect import open_client, spec_from_args
from pynats.cli.output import CliError, bold, commas, format_duration, parse_duration
from pynats.cli.pubsub import (
    Stop,
    _clock,
    add_header_argument,
    format_msg,
    msg_record,
    parse_headers,
    read_stdin,
)
from pynats.cli.templates import TemplateError, render
from pynats.client import Headers, Msg
from pynats.errors import NoRespondersError

DEFAULT_QUEUE = "NATS-RPLY-22"
_TOKEN = re.compile(r"\{\{\s*(\d+)\s*\}\}")


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``req`` and ``reply``."""
    req = commands.add_parser(
        "req", aliases=["request"], parents=[common], help="send a request, print the replies",
        description="Send a request and print the reply; with --count gather several "
                    "replies (scatter-gather). BODY is a template; without it the body is "
                    "read from stdin.")
    req.add_argument("subject", metavar="SUBJECT")
    req.add_argument("body", metavar="BODY", nargs="?")
    req.add_argument("--timeout", type=parse_duration, default=2.0, metavar="DURATION",
                     help="how long to wait for replies (default 2s)")
    req.add_argument("--count", "--replies", dest="count", type=int, default=1,
                     help="replies to wait for; 0: all that arrive before the timeout")
    add_header_argument(req)
    req.add_argument("-r", "--raw", action="store_true", help="print only the reply bodies")
    req.add_argument("--json", action="store_true", help="one JSON object per reply")
    req.add_argument("--no-templates", dest="templates", action="store_false",
                     help="send BODY as it is")
    req.set_defaults(func=cmd_req)

    rep = commands.add_parser(
        "reply", parents=[common], help="answer requests",
        description="Answer requests on SUBJECT with BODY (a template: {{Count}}, "
                    "{{Request}}, {{TimeStamp}}, ...), the request itself (--echo) or "
                    "the output of a command (--command).")
    rep.add_argument("subject", metavar="SUBJECT")
    rep.add_argument("body", metavar="BODY", nargs="?")
    rep.add_argument("--echo", action="store_true",
                     help="reply with the request's body and headers")
    rep.add_argument("--command", metavar="CMD",
                     help="run CMD with the request body on stdin; reply with its output "
                          "({{0}}: subject, {{1}}..: subject tokens)")
    rep.add_argument("--queue", default=DEFAULT_QUEUE, metavar="GROUP",
                     help=f"queue group (default {DEFAULT_QUEUE})")
    rep.add_argument("--count", type=int, default=0,
                     help="exit after this many requests (default: run until Ctrl-C)")
    rep.add_argument("--sleep", type=parse_duration, default=0.0, metavar="DURATION",
                     help="wait this long before each reply")
    add_header_argument(rep)
    rep.add_argument("-q", "--quiet", action="store_true", help="do not print requests")
    rep.set_defaults(func=cmd_reply)


# -- req ------------------------------------------------------------------------------------
def cmd_req(args: argparse.Namespace) -> int:
    """Run ``req``."""
    if args.count < 0:
        raise CliError("--count must not be negative")
    if args.timeout <= 0:
        raise CliError("--timeout must be positive")
    headers = parse_headers(args.header)
    if args.body is None:
        body = read_stdin()
    else:
        try:
            body = (render(args.body) if args.templates else args.body).encode()
        except TemplateError as exc:
            raise CliError(str(exc)) from None
    return asyncio.run(_req(args, body, headers))


async def _req(args: argparse.Namespace, body: bytes, headers: Headers | None) -> int:
    nc = await open_client(spec_from_args(args), reconnect=False)
    try:
        if not args.raw and not args.json:
            print(f"{_clock()} Sending request on {args.subject!r}", file=sys.stderr,
                  flush=True)
        started = time.monotonic()
        if args.count == 1:
            msg = await nc.request(args.subject, body, timeout=args.timeout, headers=headers)
            _print_reply(args, msg, 1, time.monotonic() - started)
            return 0
        got = 0
        stream = nc.request_many(args.subject, body, timeout=args.timeout,
                                 max_msgs=args.count or None, headers=headers)
        async with stream:
            async for msg in stream:
                got += 1
                _print_reply(args, msg, got, time.monotonic() - started)
        if got == 0:
            raise CliError(f"timeout: no reply on {args.subject!r} within "
                           f"{format_duration(args.timeout)}")
        if not args.raw and not args.json:
            print(f"{_clock()} Received {commas(got)} replies", file=sys.stderr)
        return 0
    except NoRespondersError:
        raise CliError(f"no responders are available on {args.subject!r}") from None
    except TimeoutError:
        raise CliError(f"timeout: no reply on {args.subject!r} within "
                       f"{format_duration(args.timeout)}") from None
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


def _print_reply(args: argparse.Namespace, msg: Msg, number: int, rtt: float) -> None:
    out = sys.stdout
    if args.json:
        record = msg_record(msg, number)
        record["rtt_ms"] = round(rtt * 1000, 3)
        import json
        out.write(json.dumps(record) + "\n")
    elif args.raw:
        out.buffer.write(msg.data + b"\n")
    else:
        parts = [bold(f"{_clock()} Received with rtt {format_duration(rtt)}")]
        headers = msg.headers
        if headers is not None:
            parts.extend(f"{name}: {value}" for name, value in headers.multi_items())
            parts.append("")
        parts.append(msg.data.decode(errors="replace"))
        out.write("\n".join(parts) + "\n\n")
    out.flush()


# -- reply ----------------------------------------------------------------------------------
def cmd_reply(args: argparse.Namespace) -> int:
    """Run ``reply``."""
    modes = sum(x is not None and x is not False for x in (args.body, args.command,
                                                              args.echo or None))
    if modes != 1:
        raise CliError("give exactly one of BODY, --echo or --command")
    if args.count < 0:
        raise CliError("--count must not be negative")
    return asyncio.run(_reply(args, parse_headers(args.header)))


async def _reply(args: argparse.Namespace, headers: Headers | None) -> int:
    nc = await open_client(spec_from_args(args))
    answered = 0
    try:
        with Stop() as stop:
            sub = nc.subscribe(args.subject, queue=args.queue or None)
            await nc.flush()
            print(f"{_clock()} Listening on {args.subject!r} in group {args.queue!r}",
                  file=sys.stderr, flush=True)
            while not args.count or answered < args.count:
                msg = await stop.wait_for(sub.next_msg(timeout=None))
                if msg is None:
                    break
                answered += 1
                if not args.quiet:
                    sys.stdout.write(format_msg(msg, answered, timestamp=False) + "\n")
                    sys.stdout.flush()
                if args.sleep:
                    await asyncio.sleep(args.sleep)
                data, reply_headers = await _answer(args, msg, answered, headers)
                if msg.reply:
                    msg.respond(data, headers=reply_headers)
            await nc.flush()
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    print(f"\nAnswered {commas(answered)} requests on {args.subject!r}", file=sys.stderr,
          flush=True)
    return 0


async def _answer(args: argparse.Namespace, msg: Msg, count: int,
                  headers: Headers | None) -> tuple[bytes, Headers | None]:
    if args.echo:
        echoed = msg.headers.copy() if msg.headers is not None else Headers()
        echoed["NATS-Request-Subject"] = msg.subject
        if headers is not None:
            echoed.update_all({k: headers.get_all(k) for k in headers})
        return msg.data, echoed
    if args.command:
        return await run_command(args.command, msg), headers
    try:
        text = render(args.body, count, {"Request": msg.data.decode(errors="replace")})
    except TemplateError as exc:
        raise CliError(str(exc)) from None
    return text.encode(), headers


def command_line(template: str, subject: str) -> str:
    """``template`` with ``{{0}}`` (the subject) and ``{{N}}`` (token N) shell-quoted."""
    tokens = [subject, *subject.split(".")]

    def token(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return shlex.quote(tokens[index]) if index < len(tokens) else "''"

    return _TOKEN.sub(token, template)


async def run_command(template: str, msg: Msg) -> bytes:
    """Run the reply command for ``msg``: its body on stdin, the reply from stdout.

    A command that fails still answers (stdout, then stderr), and the failure is
    reported on our stderr.
    """
    env = dict(os.environ, NATS_REQUEST_SUBJECT=msg.subject, NATS_REQUEST_REPLY=msg.reply)
    proc = await asyncio.create_subprocess_shell(
        command_line(template, msg.subject), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await proc.communicate(msg.data)
    if proc.returncode:
        print(f"{_clock()} command exited with status {proc.returncode}: "
              f"{err.decode(errors='replace').strip()}", file=sys.stderr, flush=True)
        return out + err
    return out


__all__ = ["command_line", "register", "run_command"]


