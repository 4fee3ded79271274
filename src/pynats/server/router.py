"""Router: deliver one published message to every subscription it reaches.

Theory of operation
-------------------
``publish`` is one synchronous loop: match the subject in the SubjectIndex (cached),
build the bytes that every receiver shares once, then for each receiver append three
pieces to its connection's outbound buffer: ``MSG <subject>`` (or ``HMSG``), the
subscription's pre-framed `` <sid> ``, and the shared tail (``[reply ]size\\r\\npayload
\\r\\n``). No await, no task, no per-receiver formatting.

The parser hands over consecutive messages to one subject as a run. When a run goes
only to plain subscribers without auto-unsubscribe limits, each receiver's share is one
``bytes.join`` of the framed payloads with its ``MSG <subject> <sid> `` prefix: the
per-message cost of fan-out drops to a memory copy. A run to queue groups whose members
can all take any message is split up front: each message gets one random member, then
each member gets one join of its share. Otherwise (auto-unsubscribe limits, a member
that must be skipped) messages are delivered one by one.

A connection that receives its first bytes in the current batch is put on ``dirty``;
the connection that read the batch calls :meth:`flush_dirty` once at the end of its
``data_received``, so every receiver is written to once per read, not once per message
(nats-server's ``pcd``/``flushClients``). Backpressure policy, as in nats-server: a
receiver past 75% of ``max_pending`` stalls the publisher that fed it (it stops reading
until the receiver drains, at most ``write_deadline``); a receiver whose unsent bytes
pass ``max_pending`` is cut off as a slow consumer when it is flushed.

Queue groups get one member per message, chosen from a random start and moving on past
members that may not receive it (the publisher itself with echo off). Auto-unsubscribe
counts at delivery and removes the subscription when it reaches its limit.

Clients whose permissions have ``allow_responses`` are kept in ``responders``: a message
with a reply subject delivered to one of them lets it answer (``permissions.py``). Only
when that set is not empty and the message has a reply does a publish take the slower
:meth:`_publish_noting_replies`, which notes, per receiver, what it was delivered.

Each account has its own Router (``accounts.py``); all share one ``dirty`` list. A
router whose account exports streams that others import holds :class:`StreamBridge`
objects: :meth:`set_bridges` then replaces ``publish`` and ``publish_headers`` on the
instance by variants that also deliver each message, prefixed, in the importing
accounts. Routers without bridges keep the plain methods: no test per message.
The same variants serve service imports (``services.py``): an importing account's
router looks each publish up among its imports and hands a match to the exporter's
router, with a fresh ``_R_.`` reply and the ``Nats-Request-Info`` header; an exporting
account's router delivers what is published on an open response subject back to the
requester's account, also when it arrives from a route.

Clustering (CLUSTER.md section 7) adds the account's ``remote`` index: the interest of
peer servers, one :class:`~pynats.server.subscription.RemoteSubscription` per route and
key. Once the server is clustered (:meth:`set_clustered`) a client's publish also looks
the subject up there (cached like the local index); when no peer is interested it costs
that one lookup. Otherwise each interested route gets the message once, as ``RMSG``
(``HMSG``), whatever the number of its matching subscriptions. A queue group with
members here and on peers gets each message once cluster-wide: a local member is chosen
with probability ``local members / (local members + sum of remote weights)``, else one
peer, chosen by weight, gets the message with the group's name in its ``RMSG``. Handing
a message to a route counts as a delivery (no 503 to the requester).

A message that came in from a route (:meth:`publish_routed`) goes to local subscribers
only (one hop): every plain one, and one member of each queue group the ``RMSG`` names;
none of a group it does not name, as that group was served elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain
from random import random
from typing import TYPE_CHECKING, Protocol, cast

from pynats.protocol.encode import no_responders_headers, routed_head
from pynats.protocol.parser import framed_size
from pynats.protocol.subjects import matches
from pynats.server.services import (
    RESPONSE_PREFIX,
    Requester,
    Responses,
    ServiceImport,
    framed_payload,
    hframe,
    request_headers,
    split_hframed,
)
from pynats.server.sublist import MatchResult, SubjectIndex
from pynats.server.subscription import RemoteSubscription, Subscription

if TYPE_CHECKING:
    from pynats.server.connection import Connection
    from pynats.server.sessions.client import ClientSession
    from pynats.server.sessions.route import RouteSession

#: Subscriptions of responders with their delivery count before a publish.
Watched = list[tuple[Subscription, int]]
#: One tuple of members per queue group, as the index returns them.
Groups = tuple[tuple[Subscription, ...], ...]
#: Routes to send one message to, each with the queue groups it was chosen for.
Targets = dict["RouteSession", list[bytes]]


class Origin(Protocol):
    """Where a message came from: a client (echo may be off) or a route."""

    echo: bool
    last_activity: float


@dataclass(frozen=True, slots=True)
class StreamBridge:
    """A stream import, seen from the exporting account's router.

    Attributes:
        subject: The imported subject (may have wildcards) in the exporting account.
        prefix: Put before the subject in the importing account (``b""`` or ``b"p."``).
        target: The importing account's router.
    """

    subject: bytes
    prefix: bytes
    target: Router


class Router:
    """Fan-out of published messages.

    Args:
        index: The account's subscription index.
        dirty: The list of connections with output queued in the current read batch,
            shared by the routers of every account (a new one if not given).
    """

    def __init__(self, index: SubjectIndex[Subscription], dirty: list[Connection] | None = None,
                 *, remote: SubjectIndex[RemoteSubscription] | None = None,
                 account: str = "$G"):
        self.index = index
        self._cache = index.cache
        #: Peer servers' interest in this account (see the module docstring).
        self.remote: SubjectIndex[RemoteSubscription] = remote or SubjectIndex()
        self._remote_cache = self.remote.cache
        #: The account's name as it goes into RMSG and RS+ lines.
        self.account = account.encode()
        self.clustered = False
        #: Connections with output queued during the current read batch.
        self.dirty: list[Connection] = [] if dirty is None else dirty
        #: Stream imports of this account's subjects by other accounts.
        self.bridges: tuple[StreamBridge, ...] = ()
        #: Lookups answered by the fast path of :meth:`publish` (one per run of
        #: messages to one subject), added to the index's own counters by monitoring.
        self.cache_hits = 0
        #: Clients with ``allow_responses`` (almost always none).
        self.responders: set[ClientSession] = set()
        #: This account's service imports, by local pattern (None: it has none).
        self.services: SubjectIndex[ServiceImport] | None = None
        #: Open response subjects, when other accounts import services from this one.
        self.responses: Responses | None = None

    def set_bridges(self, bridges: Iterable[StreamBridge]) -> None:
        """Deliver also through ``bridges`` from now on (none: the plain methods)."""
        self.bridges = tuple(bridges)
        self._choose_entry_points()

    def set_services(self, imports: Iterable[ServiceImport], exported: bool) -> None:
        """Serve ``imports`` from now on; ``exported``: others import services from here.

        Open response subjects survive (a reload does not lose answers in flight).
        """
        found = tuple(imports)
        self.services = None
        if found:
            self.services = SubjectIndex(cache=True)
            for service in found:
                self.services.insert(service)
        if not exported:
            self.responses = None
        elif self.responses is None:
            self.responses = Responses()
        self._choose_entry_points()

    def set_clustered(self, clustered: bool) -> None:
        """Forward to interested peer servers from now on (or stop)."""
        self.clustered = clustered
        self._choose_entry_points()

    def _choose_entry_points(self) -> None:
        """Bind ``publish``/``publish_headers`` to the variant the account needs."""
        self.__dict__.pop("publish", None)
        self.__dict__.pop("publish_headers", None)
        if self.bridges or self.services is not None or self.responses is not None:
            self.publish = self._publish_bridged  # type: ignore[method-assign]
            self.publish_headers = self._publish_headers_bridged  # type: ignore[method-assign]
        elif self.clustered:
            self.publish = self._publish_clustered  # type: ignore[method-assign]
            self.publish_headers = self._publish_headers_clustered  # type: ignore[method-assign]

    def _publish_bridged(self, origin: Origin, subject: bytes, reply: bytes,
                         framed: list[bytes], nbytes: int) -> int:
        """:meth:`publish` with stream exports, service imports or exports to serve."""
        if self.clustered:
            delivered = self._publish_clustered(origin, subject, reply, framed, nbytes)
        else:
            delivered = Router.publish(self, origin, subject, reply, framed, nbytes)
        if self.bridges:
            delivered += self._bridge(origin, subject, reply, framed, nbytes)
        if self.responses is not None and subject.startswith(RESPONSE_PREFIX):
            delivered += self._answer(origin, subject, framed, nbytes)
        services = self._services_for(subject)
        if services:
            for one in framed:
                delivered += self._request(services, origin, subject, reply, b"",
                                           framed_payload(one))
        return delivered

    def _bridge(self, origin: Origin, subject: bytes, reply: bytes, framed: list[bytes],
                nbytes: int) -> int:
        """Deliver in each account importing ``subject`` (locally: one hop)."""
        delivered = 0
        for bridge in self.bridges:
            if matches(bridge.subject, subject):
                delivered += Router.publish(bridge.target, origin, bridge.prefix + subject,
                                            reply, framed, nbytes)
        return delivered

    def _publish_headers_bridged(self, origin: Origin, subject: bytes, reply: bytes,
                                 payload: bytes, hframed: bytes) -> int:
        """:meth:`publish_headers`, then in each account importing ``subject``."""
        delivered = self._publish_headers_here(origin, subject, reply, payload, hframed)
        if self.bridges:
            delivered += self._bridge_headers(origin, subject, reply, payload, hframed)
        if self.responses is not None and subject.startswith(RESPONSE_PREFIX):
            delivered += self._answer_headers(origin, subject, payload, hframed)
        services = self._services_for(subject)
        if services:
            headers = split_hframed(hframed)[0]
            delivered += self._request(services, origin, subject, reply, headers, payload)
        return delivered

    def _publish_headers_here(self, origin: Origin, subject: bytes, reply: bytes,
                              payload: bytes, hframed: bytes) -> int:
        """To this account's subscribers, local and (clustered) on peer servers."""
        if self.clustered:
            return self._publish_headers_clustered(origin, subject, reply, payload, hframed)
        return Router.publish_headers(self, origin, subject, reply, payload, hframed)

    # -- service imports and exports (services.py) -----------------------------------------
    def _services_for(self, subject: bytes) -> tuple[ServiceImport, ...]:
        """The service imports a publish on ``subject`` in this account goes to."""
        return self.services.match(subject).plain if self.services is not None else ()

    def _request(self, services: tuple[ServiceImport, ...], origin: Origin, subject: bytes,
                 reply: bytes, headers: bytes, payload: bytes) -> int:
        """Deliver one message to the exporter of each of ``services`` (those it matches)."""
        delivered = 0
        for service in services:
            delivered += self._request_one(service, origin, subject, reply, headers, payload)
        return delivered

    def _request_one(self, service: ServiceImport, origin: Origin, subject: bytes,
                     reply: bytes, headers: bytes, payload: bytes) -> int:
        exporter = service.exporter
        responses = exporter.responses
        mapped = responses.open(self, reply, service) if reply and responses else b""
        # Only clients publish through these entry points; routed messages do not.
        requester = cast(Requester, origin)
        hdr = request_headers(headers, requester, service.share)
        delivered = exporter._publish_headers_here(origin, service.transform.apply(subject),
                                                   mapped, payload, hframe(hdr, payload))
        if not delivered and mapped and responses is not None:
            responses.cancel(mapped)
        return delivered

    def _answer(self, origin: Origin, subject: bytes, framed: list[bytes],
                nbytes: int) -> int:
        """Deliver answers on a response subject to the requester's account."""
        assert self.responses is not None
        pending = self.responses.take(subject)
        if pending is None:
            return 0
        if pending.singleton and len(framed) > 1:
            framed, nbytes = framed[:1], framed_size(framed[0])
        return Router.publish(pending.target, origin, pending.reply, b"", framed, nbytes)

    def _answer_headers(self, origin: Origin, subject: bytes, payload: bytes,
                        hframed: bytes) -> int:
        assert self.responses is not None
        pending = self.responses.take(subject)
        if pending is None:
            return 0
        return Router.publish_headers(pending.target, origin, pending.reply, b"", payload,
                                      hframed)

    def _bridge_headers(self, origin: Origin, subject: bytes, reply: bytes, payload: bytes,
                        hframed: bytes) -> int:
        delivered = 0
        for bridge in self.bridges:
            if matches(bridge.subject, subject):
                delivered += Router.publish_headers(bridge.target, origin,
                                                    bridge.prefix + subject, reply, payload,
                                                    hframed)
        return delivered

    def flush_dirty(self, reader: Connection | None = None) -> None:
        """Write out every connection that got output in this batch.

        If a receiver is congested (see Connection.flush), ``reader``, the connection
        whose input produced the batch, stops reading until it drains: nats-server's
        fast-producer stall, so a publisher cannot outrun its subscribers.
        """
        dirty = self.dirty
        while dirty:
            batch = dirty[:]
            dirty.clear()
            for conn in batch:
                if conn.flush() and reader is not None and reader is not conn:
                    reader.stall_behind(conn)

    def publish(self, origin: Origin, subject: bytes, reply: bytes,
                framed: list[bytes], nbytes: int) -> int:
        """Deliver messages without headers; returns how many deliveries were made.

        Args:
            origin: the publishing client (for echo).
            subject, reply: as published (``reply`` is ``b""`` if none).
            framed: one ``<size>\\r\\n<payload>\\r\\n`` per message, in order.
            nbytes: the sum of the payload sizes.
        """
        found = self._cache.get(subject)  # the index's own cache, read without a call
        if found is None:
            found = self.index.match(subject)
        else:
            self.cache_hits += 1  # for /subsz: the index cannot see this lookup
        if not found.plain and not found.queues:
            return 0
        return self._local(origin, found, subject, reply, framed, nbytes)

    def _local(self, origin: Origin, found: MatchResult[Subscription], subject: bytes,
               reply: bytes, framed: list[bytes], nbytes: int) -> int:
        """Deliver to the local subscriptions ``found`` (at least one)."""
        plain, queues = found
        if reply and self.responders:
            return self._publish_noting_replies(origin, found, subject, reply, framed, nbytes)
        if len(framed) > 1 and not any(s.max_msgs for s in plain):
            if not queues:
                return self._deliver_run(origin, plain, subject, reply, framed, nbytes)
            if _simple_groups(plain, queues, origin):
                delivered = self._deliver_run(origin, plain, subject, reply, framed, nbytes)
                return delivered + self._deliver_run_queued(origin, queues, subject, reply,
                                                            framed)
        delivered = 0
        for one in framed:
            size = nbytes if len(framed) == 1 else framed_size(one)
            delivered += self._deliver(origin, plain, queues, subject, reply, one, size)
        return delivered

    def publish_headers(self, origin: Origin, subject: bytes, reply: bytes,
                        payload: bytes, hframed: bytes) -> int:
        """Deliver one message with headers (stripped for receivers without them).

        ``hframed`` is ``<hdr size> <total>\\r\\n<headers><payload>\\r\\n`` as published.
        """
        plain, queues = self.index.match(subject)
        if not plain and not queues:
            return 0
        return self._local_headers(origin, plain, queues, subject, reply, payload, hframed)

    def _local_headers(self, origin: Origin, plain: tuple[Subscription, ...], queues: Groups,
                       subject: bytes, reply: bytes, payload: bytes, hframed: bytes) -> int:
        size = len(payload)
        total = len(hframed) - hframed.index(b"\n") - 3
        framed = b"%d\r\n%s\r\n" % (size, payload)
        watched = self._responders_in(plain, queues) if reply and self.responders else None
        delivered = self._deliver(origin, plain, queues, subject, reply, framed, size, hframed,
                                  total)
        if watched:
            _note_replies(watched, reply)
        return delivered

    # -- clustering ------------------------------------------------------------------------
    def _remote_match(self, subject: bytes) -> MatchResult[RemoteSubscription]:
        found = self._remote_cache.get(subject)
        return self.remote.match(subject) if found is None else found

    def _publish_clustered(self, origin: Origin, subject: bytes, reply: bytes,
                           framed: list[bytes], nbytes: int) -> int:
        """:meth:`publish` for a clustered server: local subscribers and peer servers."""
        rplain, rqueues = self._remote_match(subject)
        if not rplain and not rqueues:
            return Router.publish(self, origin, subject, reply, framed, nbytes)
        if not rqueues:
            delivered = Router.publish(self, origin, subject, reply, framed, nbytes)
            targets: Targets = {sub.route: [] for sub in rplain}
            return delivered + self._forward(targets, subject, reply, framed, nbytes)
        plain, queues = self.index.match(subject)
        delivered = 0
        for one in framed:  # queue choices are made per message
            size = nbytes if len(framed) == 1 else framed_size(one)
            kept, targets = _split_queues(queues, rqueues, rplain)
            if plain or kept:
                delivered += self._local(origin, MatchResult(plain, kept), subject, reply, [one],
                                         size)
            delivered += self._forward(targets, subject, reply, [one], size)
        return delivered

    def _publish_headers_clustered(self, origin: Origin, subject: bytes, reply: bytes,
                                   payload: bytes, hframed: bytes) -> int:
        """:meth:`publish_headers` for a clustered server."""
        rplain, rqueues = self._remote_match(subject)
        if not rplain and not rqueues:
            return Router.publish_headers(self, origin, subject, reply, payload, hframed)
        plain, queues = self.index.match(subject)
        kept, targets = _split_queues(queues, rqueues, rplain)
        delivered = 0
        if plain or kept:
            delivered = self._local_headers(origin, plain, kept, subject, reply, payload, hframed)
        return delivered + self._forward_headers(targets, subject, reply, payload, hframed)

    def _forward(self, targets: Targets, subject: bytes, reply: bytes, framed: list[bytes],
                 nbytes: int) -> int:
        """Queue ``RMSG`` for each target route: one copy per route and message."""
        dirty = self.dirty
        count = len(framed)
        for route, queues in targets.items():
            conn = route.conn
            out = conn.out
            if not out:
                dirty.append(conn)
            head = routed_head(b"RMSG", self.account, subject, reply, queues)
            out += head
            out += framed[0] if count == 1 else head.join(framed)
            route.out_msgs += count
            route.out_bytes += nbytes
        return len(targets) * count

    def _forward_headers(self, targets: Targets, subject: bytes, reply: bytes, payload: bytes,
                         hframed: bytes) -> int:
        """Queue ``HMSG`` (``RMSG`` for a peer without headers) for each target route."""
        dirty = self.dirty
        for route, queues in targets.items():
            conn = route.conn
            out = conn.out
            if not out:
                dirty.append(conn)
            if route.headers:
                out += routed_head(b"HMSG", self.account, subject, reply, queues)
                out += hframed
                route.out_bytes += len(hframed) - hframed.index(b"\n") - 3
            else:
                out += routed_head(b"RMSG", self.account, subject, reply, queues)
                out += b"%d\r\n%s\r\n" % (len(payload), payload)
                route.out_bytes += len(payload)
            route.out_msgs += 1
        return len(targets)

    def publish_routed(self, origin: Origin, subject: bytes, reply: bytes,
                       queues: tuple[bytes, ...], framed: list[bytes], nbytes: int) -> int:
        """Deliver messages from a route to local subscribers only (module docstring)."""
        found = self._cache.get(subject)
        if found is None:
            found = self.index.match(subject)
        plain, groups = found
        groups = tuple(g for g in groups if g[0].queue in queues) if queues and groups else ()
        delivered = 0
        if plain or groups:
            delivered = self._local(origin, MatchResult(plain, groups), subject, reply, framed,
                                    nbytes)
        if self.responses is not None and subject.startswith(RESPONSE_PREFIX):
            delivered += self._answer(origin, subject, framed, nbytes)
        return delivered + self._bridge(origin, subject, reply, framed, nbytes)

    def publish_routed_headers(self, origin: Origin, subject: bytes, reply: bytes,
                               queues: tuple[bytes, ...], payload: bytes, hframed: bytes) -> int:
        """:meth:`publish_routed` for a message with headers."""
        plain, groups = self.index.match(subject)
        groups = tuple(g for g in groups if g[0].queue in queues) if queues and groups else ()
        delivered = 0
        if plain or groups:
            delivered = self._local_headers(origin, plain, groups, subject, reply, payload,
                                            hframed)
        if self.responses is not None and subject.startswith(RESPONSE_PREFIX):
            delivered += self._answer_headers(origin, subject, payload, hframed)
        return delivered + self._bridge_headers(origin, subject, reply, payload, hframed)

    def _publish_noting_replies(self, origin: Origin, found: MatchResult[Subscription],
                                subject: bytes, reply: bytes, framed: list[bytes],
                                nbytes: int) -> int:
        """:meth:`publish` when receivers may track the reply (``allow_responses``)."""
        plain, queues = found
        delivered = 0
        for one in framed:  # noted per message: each delivery may count as an answer
            watched = self._responders_in(plain, queues)
            size = nbytes if len(framed) == 1 else framed_size(one)
            delivered += self._deliver(origin, plain, queues, subject, reply, one, size)
            _note_replies(watched, reply)
        return delivered

    def _responders_in(self, plain: tuple[Subscription, ...],
                       queues: tuple[tuple[Subscription, ...], ...]) -> Watched:
        """The subscriptions of responders among the targets, with their delivery counts."""
        responders = self.responders
        return [(sub, sub.delivered) for sub in chain(plain, *queues) if sub.client in responders]

    def _deliver_run(self, origin: Origin, plain: tuple[Subscription, ...],
                     subject: bytes, reply: bytes, framed: list[bytes], nbytes: int) -> int:
        """Many messages to plain subscribers: one C-level join per receiver."""
        head = b"MSG " + subject
        after_sid = reply + b" " if reply else b""
        skip_self = not origin.echo
        count = len(framed)
        dirty = self.dirty
        delivered = 0
        for sub in plain:
            client = sub.client
            if client is origin and skip_self:
                continue
            conn = client.conn
            out = conn.out
            if not out:
                dirty.append(conn)
            prefix = head + sub.sid_part + after_sid
            out += prefix
            out += prefix.join(framed)
            client.last_activity = origin.last_activity  # as nats-server: delivery is activity
            client.out_msgs += count
            client.out_bytes += nbytes
            sub.delivered += count
            delivered += count
        return delivered

    def _deliver_run_queued(self, origin: Origin, queues: Groups, subject: bytes,
                            reply: bytes, framed: list[bytes]) -> int:
        """Many messages to queue groups: each message to one random member, then one
        join per member of what it was given (see :func:`_simple_groups`)."""
        delivered = 0
        for members in queues:
            n = len(members)
            shares: list[list[bytes]] = [[] for _ in members]
            for one in framed:
                shares[int(random() * n)].append(one)
            for sub, share in zip(members, shares, strict=True):
                if share:
                    delivered += self._deliver_run(origin, (sub,), subject, reply, share,
                                                   sum(map(framed_size, share)))
        return delivered

    def _deliver(self, origin: Origin, plain: tuple[Subscription, ...],
                 queues: tuple[tuple[Subscription, ...], ...], subject: bytes, reply: bytes,
                 framed: bytes, size: int, hframed: bytes = b"", total: int = 0) -> int:
        """One message to its plain subscribers and one member of each queue group."""
        # Every receiver gets: head, its sid framed by spaces, then the shared tail.
        head = b"MSG " + subject
        tail = reply + b" " + framed if reply else framed
        if hframed:
            hhead = b"HMSG " + subject
            htail = reply + b" " + hframed if reply else hframed
        skip_self = not origin.echo
        targets = plain
        if queues:
            excluded = origin if skip_self else None
            picked = [self._pick(members, excluded) for members in queues]
            targets = plain + tuple(sub for sub in picked if sub is not None)
        dirty = self.dirty
        delivered = 0
        for sub in targets:
            client = sub.client
            if (client is origin and skip_self) or (
                    sub.max_msgs and sub.delivered >= sub.max_msgs):  # used up earlier in a run
                continue
            conn = client.conn
            out = conn.out
            if not out:
                dirty.append(conn)
            if hframed and client.headers:
                out += hhead
                out += sub.sid_part
                out += htail
                client.out_bytes += total
            else:
                out += head
                out += sub.sid_part
                out += tail
                client.out_bytes += size
            client.last_activity = origin.last_activity
            client.out_msgs += 1
            delivered += 1
            sub.delivered += 1
            if sub.max_msgs and sub.delivered >= sub.max_msgs:
                client.remove_subscription(sub)
        return delivered

    @staticmethod
    def _pick(members: tuple[Subscription, ...],
              excluded: Origin | None) -> Subscription | None:
        n = len(members)
        start = int(random() * n)
        for k in range(n):
            sub = members[(start + k) % n]
            if sub.client is not excluded and not sub.client.closed and not (
                    sub.max_msgs and sub.delivered >= sub.max_msgs):
                return sub
        return None

    def no_responders(self, origin: ClientSession, subject: bytes, reply: bytes) -> None:
        """Send ``origin`` the 503 status message on its subscription to ``reply``."""
        for sub in self.index.match(reply).plain:
            if sub.client is origin:
                hdr = no_responders_headers(subject)
                origin.conn.send(b"HMSG %s %s %d %d\r\n%s\r\n" % (
                    reply, sub.sid, len(hdr), len(hdr), hdr))
                return


def _simple_groups(plain: tuple[Subscription, ...], queues: Groups, origin: Origin) -> bool:
    """Whether a run can be split among the members of ``queues`` up front.

    True when no member has an auto-unsubscribe limit, none is closing, the publisher
    is not a member with echo off, and every receiver (plain ones too) is a different
    client: a connection then gets its messages in publish order, as it would one by
    one.
    """
    skip = None if origin.echo else origin
    members = [sub for group in queues for sub in group]
    if any(sub.max_msgs or sub.client.closed or sub.client is skip for sub in members):
        return False
    receivers = [sub.client for sub in chain(plain, members)]
    return len(set(receivers)) == len(receivers)


def _split_queues(local: Groups, remote: tuple[tuple[RemoteSubscription, ...], ...],
                  rplain: tuple[RemoteSubscription, ...]) -> tuple[Groups, Targets]:
    """Decide, per queue group, whether a local member or a peer gets one message.

    Returns the local groups that keep the message and the routes to send it to: every
    route with plain interest, each with the names of the groups it was chosen for.
    """
    targets: Targets = {sub.route: [] for sub in rplain}
    by_name = {group[0].queue: group for group in remote}
    kept: list[tuple[Subscription, ...]] = []
    for group in local:
        peers = by_name.pop(group[0].queue, None)
        if peers is None or random() * (len(group) + _weight(peers)) < len(group):
            kept.append(group)
        else:
            _pick_peer(peers, targets)
    for peers in by_name.values():
        _pick_peer(peers, targets)
    return tuple(kept), targets


def _weight(peers: tuple[RemoteSubscription, ...]) -> int:
    return sum(sub.weight for sub in peers)


def _pick_peer(peers: tuple[RemoteSubscription, ...], targets: Targets) -> None:
    """One route of a queue group, chosen in proportion to its members there."""
    x = random() * _weight(peers)
    chosen = peers[-1]
    for sub in peers:
        x -= sub.weight
        if x < 0:
            chosen = sub
            break
    targets.setdefault(chosen.route, []).append(chosen.queue)


def _note_replies(watched: Watched, reply: bytes) -> None:
    """Tell each watched receiver that got the message (its count moved) about ``reply``."""
    for sub, before in watched:
        if sub.delivered > before:
            sub.client.note_reply(reply)


__all__ = ["Origin", "Router", "StreamBridge"]
