"""``pynats pub`` and ``pynats sub``.

Theory of operation
-------------------
``pub`` renders the body (and the subject) as a template for each of ``--count``
messages (:mod:`~pynats.cli.templates`), publishes it, optionally sleeps, and ends
with a ``flush`` so that the exit status means the server has every message. With no
body argument the body is read from stdin (natscli's behaviour), once, and sent as
the body of every message.

``sub`` subscribes and prints each message as natscli does (``[#N] Received on
"subject"``, the headers, the body) or only bodies with ``--raw``, or one JSON object
per line with ``--json``; ``--dump DIR`` writes each message to ``DIR/N.json``.
SIGINT and SIGTERM set an event that the receive loop waits on beside the
subscription, so Ctrl-C prints the summary (messages and bytes received, elapsed
time) and exits 0 instead of raising ``KeyboardInterrupt`` somewhere in the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import signal
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pynats.cli.connect import open_client, spec_from_args
from pynats.cli.output import CliError, Progress, bold, commas, human_bytes, parse_duration
from pynats.cli.templates import TemplateError, has_actions, render
from pynats.client import Headers, Msg


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add ``pub`` and ``sub``."""
    pub = commands.add_parser(
        "pub", aliases=["publish"], parents=[common], help="publish messages",
        description="Publish a message, or --count of them. BODY and SUBJECT are templates: "
                    "{{Count}} {{TimeStamp}} {{Unix}} {{UnixNano}} {{Time}} {{ID}} "
                    "{{Random min max}}. Without BODY the body is read from stdin.")
    pub.add_argument("subject", metavar="SUBJECT")
    pub.add_argument("body", metavar="BODY", nargs="?")
    pub.add_argument("--count", type=int, default=1, help="messages to publish (default 1)")
    pub.add_argument("--sleep", type=parse_duration, default=0.0, metavar="DURATION",
                     help="pause between messages (e.g. 100ms)")
    add_header_argument(pub)
    pub.add_argument("--reply", metavar="SUBJECT", help="reply subject of the messages")
    pub.add_argument("--force-stdin", action="store_true",
                     help="read the body from stdin even when it is a terminal")
    pub.add_argument("--no-templates", dest="templates", action="store_false",
                     help="send BODY and SUBJECT as they are")
    pub.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    pub.set_defaults(func=cmd_pub)

    sub = commands.add_parser(
        "sub", aliases=["subscribe"], parents=[common], help="subscribe and print messages",
        description="Print the messages published on SUBJECT (wildcards allowed) until "
                    "--count messages arrived or Ctrl-C.")
    sub.add_argument("subject", metavar="SUBJECT")
    sub.add_argument("--queue", metavar="GROUP", help="join this queue group")
    sub.add_argument("--count", type=int, default=0,
                     help="exit after this many messages (default: run until Ctrl-C)")
    sub.add_argument("-r", "--raw", action="store_true", help="print only the bodies")
    sub.add_argument("--json", action="store_true",
                     help="one JSON object per message (subject, reply, headers, data)")
    sub.add_argument("--dump", metavar="DIR",
                     help="write each message to DIR/N.json ('-': JSON lines on stdout)")
    sub.add_argument("-t", "--timestamp", action="store_true",
                     help="show the time each message was received")
    sub.add_argument("--headers-only", action="store_true", help="do not print bodies")
    sub.set_defaults(func=cmd_sub)


def add_header_argument(parser: argparse.ArgumentParser) -> None:
    """``-H/--header K:V``, repeatable."""
    parser.add_argument("-H", "--header", action="append", default=[], metavar="K:V",
                        help="add a header (repeatable)")


def parse_headers(items: list[str]) -> Headers | None:
    """``["K:V", ...]`` as Headers; None when empty.

    Raises:
        CliError: an item without ``:``.
    """
    if not items:
        return None
    headers = Headers()
    for item in items:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise CliError(f"invalid header {item!r}: use NAME:VALUE")
        headers.add(name.strip(), value.strip())
    return headers


def read_stdin(force: bool = False) -> bytes:
    """The whole of stdin (what natscli does when no body is given).

    Raises:
        CliError: stdin is a terminal and ``force`` is not set.
    """
    if sys.stdin.isatty() and not force:
        print("Reading payload from STDIN (end with Ctrl-D)", file=sys.stderr)
    return sys.stdin.buffer.read()


def _render(text: str, count: int, enabled: bool) -> str:
    if not enabled:
        return text
    try:
        return render(text, count)
    except TemplateError as exc:
        raise CliError(str(exc)) from None


def cmd_pub(args: argparse.Namespace) -> int:
    """Run ``pub``."""
    if args.count < 1:
        raise CliError("--count must be at least 1")
    headers = parse_headers(args.header)
    body: bytes | None = None if args.body is not None else read_stdin(args.force_stdin)
    return asyncio.run(_pub(args, headers, body))


async def _pub(args: argparse.Namespace, headers: Headers | None, stdin: bytes | None) -> int:
    spec = spec_from_args(args)
    nc = await open_client(spec, reconnect=False)
    templated = args.templates and (has_actions(args.subject) or
                                    (args.body is not None and has_actions(args.body)))
    progress = Progress(["Publishing"], [args.count]) if args.count > 20 and not args.quiet \
        else None
    log = not args.quiet and progress is None
    try:
        for n in range(1, args.count + 1):
            subject = _render(args.subject, n, templated)
            data = stdin if stdin is not None else _render(args.body, n, templated).encode()
            nc.publish(subject, data, reply=args.reply, headers=headers)
            if log:
                print(f"{_clock()} Published {len(data)} bytes to {subject!r}",
                      file=sys.stderr, flush=True)
            if progress is not None:
                progress.update([n])
            if args.sleep:
                await nc.flush()
                await asyncio.sleep(args.sleep)
            elif n % 1000 == 0:
                await nc.flush()
        await nc.flush()
        if progress is not None:
            progress.close([args.count])
            print(f"Published {commas(args.count)} messages to {args.subject!r}",
                  file=sys.stderr)
    finally:
        await nc.close()
    return 0


def _clock() -> str:
    return datetime.now().strftime("%H:%M:%S")


def msg_record(msg: Msg, number: int) -> dict[str, Any]:
    """A message as a JSON-able dict (``data`` as text, or base64 when binary)."""
    record: dict[str, Any] = {"n": number, "subject": msg.subject}
    if msg.reply:
        record["reply"] = msg.reply
    headers = msg.headers
    if headers is not None:
        record["headers"] = {name: headers.get_all(name) for name in headers}
        if headers.status is not None:
            record["status"] = headers.status
    try:
        record["data"] = msg.data.decode()
    except UnicodeDecodeError:
        record["data_b64"] = base64.b64encode(msg.data).decode()
    record["time"] = datetime.now().astimezone().isoformat()
    return record


def format_msg(msg: Msg, number: int, timestamp: bool, headers_only: bool = False) -> str:
    """natscli's rendering of one message."""
    when = f" {datetime.now().strftime('%H:%M:%S.%f')[:-3]}" if timestamp else ""
    line = f'[#{number}]{when} Received on "{msg.subject}"'
    if msg.reply:
        line += f' with reply "{msg.reply}"'
    parts = [bold(line)]
    headers = msg.headers
    if headers is not None:
        if headers.status is not None:
            parts.append(f"Status: {headers.status} {headers.description}".rstrip())
        parts.extend(f"{name}: {value}" for name, value in headers.multi_items())
    if not headers_only:
        if headers is not None:
            parts.append("")
        parts.append(msg.data.decode(errors="replace"))
    return "\n".join(parts) + "\n"


class Stop:
    """An asyncio event set by SIGINT/SIGTERM while installed (``with Stop() as stop``)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self._signals: list[signal.Signals] = []

    def __enter__(self) -> Stop:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.event.set)
                self._signals.append(sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)

    async def wait_for(self, coro: Any) -> Any:
        """Await ``coro`` unless the stop event comes first (then None)."""
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(self.event.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if task in done:
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return None


def cmd_sub(args: argparse.Namespace) -> int:
    """Run ``sub``."""
    if args.count < 0:
        raise CliError("--count must not be negative")
    if args.dump and args.dump != "-":
        Path(args.dump).mkdir(parents=True, exist_ok=True)
    return asyncio.run(_sub(args))


async def _sub(args: argparse.Namespace) -> int:
    spec = spec_from_args(args)
    nc = await open_client(spec)
    received = size = 0
    started = time.monotonic()
    try:
        with Stop() as stop:
            sub = nc.subscribe(args.subject, queue=args.queue, pending_msgs_limit=0,
                               pending_bytes_limit=0)
            await nc.flush()
            group = f" in queue group {args.queue!r}" if args.queue else ""
            print(f"{_clock()} Subscribing on {args.subject}{group}", file=sys.stderr,
                  flush=True)
            while not args.count or received < args.count:
                msg = await stop.wait_for(sub.next_msg(timeout=None))
                if msg is None:
                    break
                received += 1
                size += len(msg.data)
                _show(args, msg, received)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    elapsed = time.monotonic() - started
    print(f"\nReceived {commas(received)} messages ({human_bytes(size)}) on "
          f"{args.subject!r} in {elapsed:.2f}s", file=sys.stderr, flush=True)
    return 0


def _show(args: argparse.Namespace, msg: Msg, number: int) -> None:
    out = sys.stdout
    if args.dump == "-":
        out.write(json.dumps(msg_record(msg, number)) + "\n")
    elif args.dump:
        path = Path(args.dump) / f"{number}.json"
        path.write_text(json.dumps(msg_record(msg, number), indent=2) + "\n")
    if args.json:
        out.write(json.dumps(msg_record(msg, number)) + "\n")
    elif args.raw:
        out.buffer.write(msg.data + b"\n")
    elif not args.dump:
        out.write(format_msg(msg, number, args.timestamp, args.headers_only) + "\n")
    out.flush()
