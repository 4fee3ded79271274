"""Publish and subscribe permissions, checked against pynats and the real nats-server.

One server per kind, from one configuration with a user per scenario. Raw clients check
the exact ``-ERR`` bytes (violations never close the connection); an observer that may
see everything checks what was, and was not, delivered. The unit tests at the end check
``pynats.server.permissions`` directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import nats
import pytest
from nats.aio.msg import Msg

from auth_support import KINDS, ConfServer, login, received, until_pong
from harness import RawClient
from pynats.server.config.options import (
    Permissions,
    ResponsePermission,
    SubjectPermission,
)
from pynats.server.permissions import (
    PUB_CACHE_MAX,
    ClientPermissions,
    is_subset,
    subjects_collide,
)

CONF = """
authorization {
  default_permissions: { publish: { deny: "default.denied" } }
  users: [
    {user: pub, password: p, permissions: {
       publish: {allow: ["foo.*", "bar.>", "baz"], deny: ["foo.secret", "bar.hidden.>"]}}}
    {user: sub, password: p, permissions: {
       subscribe: {allow: ["foo.*", "q.* workers", "q.x v1.*"], deny: ["foo.secret"]}}}
    {user: subq, password: p, permissions: {subscribe: {deny: ["dq.* bad", "dp.>"]}}}
    {user: d, password: p, permissions: {subscribe: {allow: ">", deny: ["foo.secret", "a.>"]}}}
    {user: svc, password: p, permissions: {subscribe: "req.>", allow_responses: true}}
    {user: svc2, password: p, permissions: {
       subscribe: "req.>", publish: {deny: "x"}, allow_responses: {max: 2, expires: "1s"}}}
    {user: free, password: p}
  ]
}
"""


def err(text: str) -> bytes:
    return f"-ERR '{text}'\r\n".encode()


def pub_denied(subject: str) -> bytes:
    return err(f'Permissions Violation for Publish to "{subject}"')


def sub_denied(subject: str, queue: str = "") -> bytes:
    using = f' using queue "{queue}"' if queue else ""
    return err(f'Permissions Violation for Subscription to "{subject}"{using}')


@pytest.fixture(scope="module", params=KINDS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfServer]:
    path = tmp_path_factory.mktemp(str(request.param)) / "server.conf"
    with ConfServer(str(request.param), path, CONF) as running:
        yield running


def user(server: ConfServer, name: str, **fields: object) -> RawClient:
    return login(server.port, user=name, **{"pass": "p"}, **fields)


def observer(server: ConfServer) -> RawClient:
    """A client that sees every message published during the test."""
    client = user(server, "free")
    client.send(b"SUB > 1\r\nPING\r\n")
    client.expect(b"PONG\r\n")
    return client


def subjects_seen(data: bytes) -> list[str]:
    return [line.split()[1].decode() for line in data.split(b"\r\n") if line.startswith(b"MSG")]


# -- publish ------------------------------------------------------------------------------

PUBLISH_CASES = [
    ("foo.bar", True), ("foo.secret", False), ("foo", False), ("foo.bar.baz", False),
    ("bar.x", True), ("bar.x.y", True), ("bar.hidden.x", False), ("bar.hidden", True),
    ("baz", True), ("baz.x", False), ("other", False),
]


def test_publish_allow_and_deny(server: ConfServer) -> None:
    with observer(server) as seen, user(server, "pub") as pub:
        pub.send(b"".join(b"PUB %s 1\r\nx\r\n" % s.encode() for s, _ in PUBLISH_CASES))
        pub.send(b"PING\r\n")
        expected = b"".join(pub_denied(s) for s, ok in PUBLISH_CASES if not ok) + b"PONG\r\n"
        assert until_pong(pub) == expected
        seen.send(b"PING\r\n")
        delivered = until_pong(seen)
        assert subjects_seen(delivered) == [s for s, ok in PUBLISH_CASES if ok]
        assert delivered.endswith(b"PONG\r\n")


def test_every_message_of_a_denied_run_gets_its_error(server: ConfServer) -> None:
    with RawClient(server.port) as pub:
        pub.send(b'CONNECT {"user":"pub","pass":"p"}\r\n')
        assert received(pub, 0.3) == b"+OK\r\n"  # verbose, as before CONNECT
        pub.send(b"PUB foo.a 0\r\n\r\n" * 2 + b"PUB other 0\r\n\r\n" * 3 + b"PING\r\n")
        assert until_pong(pub) == b"+OK\r\n" * 2 + pub_denied("other") * 3 + (
            b"PONG\r\n")


def test_headers_publish_is_checked(server: ConfServer) -> None:
    with user(server, "pub", headers=True) as pub:
        pub.send(b"HPUB other 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
                 b"HPUB foo.a 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPING\r\n")
        assert until_pong(pub) == pub_denied("other") + b"PONG\r\n"


def test_default_permissions_apply_to_users_without_their_own(server: ConfServer) -> None:
    with user(server, "free") as free:
        free.send(b"PUB default.denied 0\r\n\r\nPUB anything 0\r\n\r\nPING\r\n")
        assert until_pong(free) == pub_denied("default.denied") + b"PONG\r\n"


# -- subscribe ----------------------------------------------------------------------------

SUBSCRIBE_CASES = [
    ("foo.x", "", True), ("foo.secret", "", False), ("foo", "", False),
    ("foo.*", "", True), ("foo.>", "", True),  # as nats-server: "foo.*" admits "foo.>"
    ("q.a", "workers", True), ("q.a", "others", False), ("q.a", "", False),
    ("q.x", "v1.blue", True), ("q.x", "v2", False), ("foo.x", "any", True),
    (">", "", False),
]


def test_subscribe_allow_deny_and_queues(server: ConfServer) -> None:
    with user(server, "sub") as sub:
        ops = b"".join(b"SUB %s %s%d\r\n" % (s.encode(), (q + " ").encode() if q else b"", i)
                       for i, (s, q, _) in enumerate(SUBSCRIBE_CASES))
        sub.send(ops + b"PING\r\n")
        expected = b"".join(sub_denied(s, q) for s, q, ok in SUBSCRIBE_CASES if not ok)
        assert until_pong(sub) == expected + b"PONG\r\n"


def test_queue_entries_in_a_deny_list(server: ConfServer) -> None:
    cases = [("dq.a", "bad", False), ("dq.a", "good", True), ("dq.a", "", True),
             ("dp.x", "", False), ("dp.x", "grp", False)]
    with user(server, "subq") as sub:
        sub.send(b"".join(b"SUB %s %s%d\r\n" % (s.encode(), (q + " ").encode() if q else b"", i)
                          for i, (s, q, _) in enumerate(cases)) + b"PING\r\n")
        expected = b"".join(sub_denied(s, q) for s, q, ok in cases if not ok)
        assert until_pong(sub) == expected + b"PONG\r\n"


def test_denied_subscription_receives_nothing(server: ConfServer) -> None:
    with user(server, "sub") as sub, user(server, "free") as free:
        sub.send(b"SUB foo.secret 1\r\nSUB foo.x 2\r\nPING\r\n")
        assert until_pong(sub) == sub_denied("foo.secret") + b"PONG\r\n"
        free.send(b"PUB foo.secret 1\r\ns\r\nPUB foo.x 1\r\nx\r\nPING\r\n")
        free.expect(b"PONG\r\n")
        sub.send(b"PING\r\n")
        assert until_pong(sub) == b"MSG foo.x 2 1\r\nx\r\nPONG\r\n"


def test_wildcard_subscription_skips_denied_subjects(server: ConfServer) -> None:
    """A deny entry inside a wildcard subscription filters every delivery to the client."""
    with user(server, "d") as d, user(server, "free") as free:
        d.send(b"SUB foo.* 1\r\nSUB *.b 2\r\nPING\r\n")
        d.expect(b"PONG\r\n")
        free.send(b"".join(b"PUB %s 1\r\nx\r\n" % s for s in (b"foo.secret", b"foo.ok",
                                                             b"a.b", b"c.b")) + b"PING\r\n")
        free.expect(b"PONG\r\n")
        d.send(b"PING\r\n")
        assert subjects_seen(until_pong(d)) == ["foo.ok", "c.b"]


def test_overlap_with_the_deny_list_is_enough_to_filter(server: ConfServer) -> None:
    """``*.b`` is not inside ``a.>``, but they share ``a.b``: filtered all the same."""
    with user(server, "d") as d, user(server, "free") as free:
        d.send(b"SUB *.b 2\r\nPING\r\n")
        d.expect(b"PONG\r\n")
        free.send(b"PUB a.b 1\r\nx\r\nPUB c.b 1\r\nx\r\nPING\r\n")
        free.expect(b"PONG\r\n")
        d.send(b"PING\r\n")
        assert subjects_seen(until_pong(d)) == ["c.b"]


# -- allow_responses ----------------------------------------------------------------------


def _request(server: ConfServer, client: RawClient, reply: str) -> None:
    client.send(f"PUB req.x {reply} 2\r\nhi\r\nPING\r\n".encode())
    client.expect(b"PONG\r\n")


def test_allow_responses_once(server: ConfServer) -> None:
    with user(server, "svc") as svc, observer(server) as seen, user(server, "free") as cli:
        svc.send(b"SUB req.> 1\r\nPING\r\n")
        svc.expect(b"PONG\r\n")
        _request(server, cli, "_INBOX.1")
        assert svc.read_line() == b"MSG req.x 1 _INBOX.1 2\r\n"
        svc.read_line()
        svc.send(b"PUB _INBOX.1 1\r\na\r\nPUB _INBOX.1 1\r\nb\r\nPUB _INBOX.2 1\r\nc\r\n"
                 b"PUB foo 1\r\nd\r\nPING\r\n")
        assert until_pong(svc) == (pub_denied("_INBOX.1") + pub_denied("_INBOX.2") +
                                           pub_denied("foo") + b"PONG\r\n")
        seen.send(b"PING\r\n")
        delivered = until_pong(seen)
        assert delivered.count(b"MSG _INBOX.1") == 1 and b"MSG _INBOX.2" not in delivered


def test_allow_responses_max_and_expiry(server: ConfServer) -> None:
    with user(server, "svc2") as svc, user(server, "free") as cli:
        svc.send(b"SUB req.> 1\r\nPING\r\n")
        svc.expect(b"PONG\r\n")
        _request(server, cli, "_INBOX.3")
        _request(server, cli, "_INBOX.4")
        svc.send(b"PUB _INBOX.3 0\r\n\r\n" * 3 + b"PUB other 0\r\n\r\nPING\r\n")
        assert until_pong(svc) == (
            b"MSG req.x 1 _INBOX.3 2\r\nhi\r\nMSG req.x 1 _INBOX.4 2\r\nhi\r\n" +
            pub_denied("_INBOX.3") + pub_denied("other") + b"PONG\r\n")  # the third answer
        time.sleep(1.2)  # past "expires: 1s"
        svc.send(b"PUB _INBOX.4 0\r\n\r\nPING\r\n")
        answer = until_pong(svc)
        assert answer == pub_denied("_INBOX.4") + b"PONG\r\n"


# -- logs ---------------------------------------------------------------------------------


def test_violation_logs_match_reference(tmp_path_factory: pytest.TempPathFactory) -> None:
    seen = []
    for kind in KINDS:
        path = tmp_path_factory.mktemp("logs") / "server.conf"
        with ConfServer(kind, path, CONF) as server, user(server, "sub") as sub:
            mark = len(server.server.lines)
            sub.send(b"SUB foo.secret 7\r\nSUB q.a others 8\r\nPUB x 0\r\n\r\n"
                     b"PUB _INBOX.x _R_.y 0\r\n\r\nPING\r\n")
            sub.expect(sub_denied("foo.secret"))
            server.wait_for("Publish Violation - Reply", mark)
            seen.append([m for m in server.messages(mark) if m[0] == "ERR"])
    assert seen[0] == seen[1] == [
        ("ERR", '"$G/user:sub" - Subscription Violation - Subject "foo.secret", SID 7'),
        ("ERR", '"$G/user:sub" - Subscription Violation - Subject "q.a", Queue: "others", '
                'SID 8'),
        ("ERR", '"$G/user:sub" - Publish Violation - Reply "_R_.y"'),
    ]


# -- nats-py ------------------------------------------------------------------------------


def test_natspy_sees_violations_and_stays_connected(server: ConfServer) -> None:
    async def scenario() -> None:
        errors: list[Exception] = []

        async def on_error(exc: Exception) -> None:
            errors.append(exc)

        url = f"nats://pub:p@127.0.0.1:{server.port}"
        nc = await nats.connect(url, error_cb=on_error, allow_reconnect=False)
        await nc.publish("other", b"x")
        await nc.flush()
        for _ in range(50):
            if errors:
                break
            await asyncio.sleep(0.05)
        assert [str(e) for e in errors] == ['nats: permissions violation for publish to "other"']
        assert nc.is_connected
        await nc.close()

    asyncio.run(scenario())


def test_natspy_request_reply_with_allow_responses(server: ConfServer) -> None:
    async def scenario() -> None:
        base = f"127.0.0.1:{server.port}"
        service = await nats.connect(f"nats://svc:p@{base}", allow_reconnect=False)

        async def answer(msg: Msg) -> None:
            await msg.respond(b"pong:" + msg.data)

        await service.subscribe("req.ping", cb=answer)
        await service.flush()
        client = await nats.connect(f"nats://free:p@{base}", allow_reconnect=False)
        reply = await client.request("req.ping", b"1", timeout=5)
        assert reply.data == b"pong:1"
        await client.close()
        await service.close()

    asyncio.run(scenario())


# -- the compiled permissions, without a server -------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def compiled(publish: SubjectPermission | None = None,
             subscribe: SubjectPermission | None = None,
             responses: ResponsePermission | None = None,
             clock: Clock | None = None) -> ClientPermissions:
    return ClientPermissions(Permissions(publish, subscribe, responses), clock or Clock())


def test_publish_rules() -> None:
    perms = compiled(SubjectPermission(allow=("a.*", "b.>"), deny=("a.x",)))
    assert perms.restricts_publish
    assert [perms.may_publish(s) for s in (b"a.y", b"a.x", b"b.c.d", b"b", b"c")] == [
        True, False, True, False, False]
    deny_only = compiled(SubjectPermission(deny=(">",)))
    assert not deny_only.may_publish(b"anything")
    assert not compiled(subscribe=SubjectPermission(allow=("x",))).restricts_publish


def test_publish_cache_is_bounded() -> None:
    perms = compiled(SubjectPermission(allow=("a.*",)))
    for i in range(PUB_CACHE_MAX * 3):
        assert perms.may_publish(b"a.%d" % i)
    assert len(perms._pub_cache) <= PUB_CACHE_MAX


def test_subscribe_rules() -> None:
    perms = compiled(subscribe=SubjectPermission(allow=("a.*", "q.* w", "q.v v.*"),
                                                 deny=("a.x", "d.* bad")))
    assert perms.may_subscribe(b"a.y") and perms.may_subscribe(b"a.>")
    assert not perms.may_subscribe(b"a.x") and not perms.may_subscribe(b">")
    assert perms.may_subscribe(b"q.z", b"w") and not perms.may_subscribe(b"q.z", b"x")
    assert not perms.may_subscribe(b"q.z")
    assert perms.may_subscribe(b"q.v", b"v.1") and not perms.may_subscribe(b"q.v", b"w2")
    deny = compiled(subscribe=SubjectPermission(deny=("d.* bad", "e")))
    assert deny.may_subscribe(b"d.x") and deny.may_subscribe(b"d.x", b"good")
    assert not deny.may_subscribe(b"d.x", b"bad") and not deny.may_subscribe(b"e")


def test_delivery_filter_rules() -> None:
    perms = compiled(subscribe=SubjectPermission(allow=(">",), deny=("s.secret", "a.>")))
    assert perms.needs_delivery_filter(b"s.*") and perms.needs_delivery_filter(b">")
    assert perms.needs_delivery_filter(b"*.b")  # overlaps a.> (a.b)
    assert not perms.needs_delivery_filter(b"s.x") and not perms.needs_delivery_filter(b"b.*")
    assert perms.denies_delivery(b"s.secret") and perms.denies_delivery(b"a.b")
    assert not perms.denies_delivery(b"s.public")


def test_responses() -> None:
    clock = Clock()
    perms = compiled(responses=ResponsePermission(max_msgs=2, expires=10.0), clock=clock)
    assert perms.restricts_publish and not perms.may_publish(b"r.1")
    perms.received_reply(b"r.1")
    assert perms.may_publish(b"r.1") and perms.may_publish(b"r.1")
    assert not perms.may_publish(b"r.1")
    perms.received_reply(b"r.2")
    clock.now = 10.5
    assert not perms.may_publish(b"r.2")
    defaults = compiled(responses=ResponsePermission(max_msgs=0, expires=0.0), clock=clock)
    defaults.received_reply(b"r.3")
    clock.now += 119
    assert defaults.may_publish(b"r.3") and not defaults.may_publish(b"r.3")
    allowed = compiled(SubjectPermission(allow=("r.*",)), responses=ResponsePermission())
    allowed.received_reply(b"r.4")  # already allowed: nothing to track
    assert allowed._replies == {}


@pytest.mark.parametrize(("subject", "pattern", "expected"), [
    (b"foo.bar", b"foo.*", True), (b"foo.*", b"foo.*", True), (b"foo.*", b"foo.>", True),
    (b"foo.>", b"foo.*", False), (b"a.>", b"*.b", False), (b"foo", b"foo.>", False),
    (b"foo.bar", b"foo.bar", True), (b"foo.bar", b"foo.baz", False), (b"*.b", b">", True),
    (b"foo.*", b"foo.bar", False), (b"a.b.c", b"a.*", False),
])
def test_is_subset(subject: bytes, pattern: bytes, expected: bool) -> None:
    assert is_subset(subject, pattern) is expected


@pytest.mark.parametrize(("first", "second", "expected"), [
    (b"a.>", b"*.b", True), (b"foo.*", b"foo.bar", True), (b"foo.*", b"bar.*", False),
    (b">", b"x", True), (b"a.b", b"a.b.c", False), (b"a.*.c", b"a.b.*", True),
    (b"a.>", b"a", False), (b"*", b"a.b", False),
])
def test_subjects_collide(first: bytes, second: bytes, expected: bool) -> None:
    assert subjects_collide(first, second) is expected
    assert subjects_collide(second, first) is expected
