"""Recordings: what was delivered on a subject, and what clients published.

Theory of operation
-------------------
* **Recordings** of deliveries are a subscription in the account's index whose
  "client" only collects what the router writes to it, parsed back into messages: real
  delivery, with echo, queue groups and permissions unaffected (it is a plain
  subscription; note that it counts as a responder, so a request to a recorded subject
  gets no 503).
* **Recordings of what clients published** wrap the account router's ``publish`` and
  ``publish_headers`` on the instance (the way the router itself picks its clustered
  or bridged variants): each publish the server accepted from a local client is noted
  with its publisher, then delivered as usual. Nothing is subscribed, so interest and
  no-responders are unchanged; the wrapper is removed with the last such recording.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynats.protocol import ops
from pynats.protocol.headers import Headers, parse_headers
from pynats.protocol.parser import Parser, RecordSink, Role, framed_payload
from pynats.protocol.subjects import matches
from pynats.server.subscription import Subscription

if TYPE_CHECKING:
    from pynats.server.router import Origin, Router

#: Which clients a control applies to: a client id, a connection name, or all (None).
ClientRef = int | str | None


@dataclass(frozen=True, slots=True)
class RecordedMsg:
    """A message as a recording received it (``headers`` None without headers).

    ``client_id`` and ``client_name`` say who published it, in recordings of what
    clients published (``record_published``); 0 and "" in delivery recordings.
    """

    subject: str
    reply: str
    payload: bytes
    headers: Headers | None = None
    client_id: int = 0
    client_name: str = ""


class Recording:
    """Messages delivered on a subject, in order, from any client (or route).

    Made by ``record(subject)`` on a server handle; read it from any thread.
    ``close()`` removes its subscription (also done when its server stops).
    """

    def __init__(self, subject: str, loop: asyncio.AbstractEventLoop,
                 remove: Callable[[], None]):
        self.subject = subject
        self._loop = loop
        self._remove = remove
        self._messages: list[RecordedMsg] = []
        self._lock = threading.Lock()
        self.closed = False

    def _add(self, msgs: Iterable[RecordedMsg]) -> None:
        with self._lock:
            self._messages.extend(msgs)

    @property
    def messages(self) -> list[RecordedMsg]:
        """A copy of what was recorded so far."""
        with self._lock:
            return list(self._messages)

    @property
    def payloads(self) -> list[bytes]:
        """The payloads recorded so far."""
        return [m.payload for m in self.messages]

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def clear(self) -> None:
        """Forget what was recorded so far (keep recording)."""
        with self._lock:
            self._messages.clear()

    def close(self) -> None:
        """Stop recording (safe from any thread, and more than once)."""
        if self.closed:
            return
        self.closed = True
        if self._loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._remove()
        else:
            self._loop.call_soon_threadsafe(self._remove)


class RecorderConn:
    """What the router writes to: collects MSG/HMSG bytes, parses them at each flush."""

    def __init__(self, recording: Recording):
        self.out = bytearray()
        self.closing = False
        self._recording = recording
        self._parser = Parser(Role.CLIENT)

    def flush(self) -> bool:
        if not self.out:
            return False
        sink = RecordSink()
        data = bytes(self.out)
        self.out.clear()
        self._parser.parse(data, sink)
        self._recording._add(_recorded(op) for op in sink.ops
                             if isinstance(op, ops.Msg | ops.HMsg))
        return False

    def stall_behind(self, receiver: object) -> None:
        """Never stalls (the router asks only real readers)."""


def _recorded(op: ops.Msg | ops.HMsg) -> RecordedMsg:
    headers = parse_headers(op.headers) if isinstance(op, ops.HMsg) else None
    return RecordedMsg(op.subject.decode(), op.reply.decode(), bytes(op.payload), headers)


class RecorderClient:
    """The "client" of a recording's subscription: the attributes the router reads."""

    cid = 0
    name = "pynats.testing recorder"
    headers = True
    closed = False
    echo = True

    def __init__(self, conn: RecorderConn):
        self.conn = conn
        self.last_activity = 0.0
        self.out_msgs = 0
        self.out_bytes = 0

    def remove_subscription(self, sub: Subscription) -> None:
        """Unreachable: a recording has no auto-unsubscribe limit."""

    def denies_delivery(self, subject: bytes) -> bool:
        return False

    def note_reply(self, reply: bytes) -> None:
        """A recording never answers."""


class PublishTap:
    """Wraps one router's publish entry points while publish recordings exist."""

    def __init__(self, router: Router):
        self.router = router
        self.recordings: list[tuple[Recording, bytes, ClientRef]] = []
        self._publish = router.publish
        self._publish_headers = router.publish_headers
        #: The instance's own entry points before ours (None: the class's methods).
        self._own = (router.__dict__.get("publish"), router.__dict__.get("publish_headers"))
        router.publish = self.publish  # type: ignore[method-assign]
        router.publish_headers = self.publish_headers  # type: ignore[method-assign]

    def remove(self) -> None:
        """Put the router's own entry points back (unless it has chosen new ones)."""
        attrs = self.router.__dict__
        for name, ours, before in (("publish", self.publish, self._own[0]),
                                   ("publish_headers", self.publish_headers, self._own[1])):
            if attrs.get(name) == ours:
                if before is None:
                    del attrs[name]
                else:
                    attrs[name] = before

    def _note(self, origin: Origin, subject: bytes, reply: bytes,
              payloads: list[tuple[bytes, Headers | None]]) -> None:
        cid, name = getattr(origin, "cid", 0), getattr(origin, "name", "")
        for recording, pattern, which in self.recordings:
            if matches(pattern, subject) and which in (None, cid, name):
                recording._add(RecordedMsg(subject.decode(), reply.decode(), payload,
                                           headers, cid, name)
                               for payload, headers in payloads)

    def publish(self, origin: Origin, subject: bytes, reply: bytes, framed: list[bytes],
                nbytes: int) -> int:
        self._note(origin, subject, reply, [(framed_payload(f), None) for f in framed])
        return self._publish(origin, subject, reply, framed, nbytes)

    def publish_headers(self, origin: Origin, subject: bytes, reply: bytes, payload: bytes,
                        hframed: bytes) -> int:
        head, _, rest = hframed.partition(b"\r\n")
        block = rest[:int(head.split()[0])]
        self._note(origin, subject, reply, [(payload, parse_headers(block))])
        return self._publish_headers(origin, subject, reply, payload, hframed)


__all__ = ["ClientRef", "PublishTap", "RecordedMsg", "RecorderClient", "RecorderConn", "Recording"]
