"""Raw client-port wire cases shared by the raw-socket tests and the differential tests.

Every case is one byte stream sent on a fresh connection (after its INFO has been read)
together with the exact bytes the reference nats-server answers, and whether the server
closes the connection. The expectations were recorded from nats-server 2.15 by hand and
are asserted byte for byte by ``tests/server/test_wire_raw.py`` (whole and one byte at a
time); ``tests/interop/test_differential.py`` replays the same streams against pynats and
the reference and compares the transcripts.

Cases that stay open are checked by appending ``PING\\r\\n`` and expecting
``expect + PONG\\r\\n`` (a PONG proves all earlier output was sent); cases that close are
checked by reading until EOF.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# -- server configurations -------------------------------------------------------------
#: Server options per configuration name; "default" is a server with no options at all.
CONFIGS: dict[str, dict[str, object]] = {
    "default": {},
    # Default options, but a server started for the one case alone: for cases whose
    # outcome depends on server-wide interest (no-responders, queue groups). A shared
    # server may still hold a subscription of an earlier test's connection whose close
    # it has not processed yet, which would swallow the message.
    "fresh": {},
    "limits": {"max_payload": 1024, "max_control_line": 128, "max_subscriptions": 3},
}

# -- client protocol building blocks ---------------------------------------------------
QUIET = b'CONNECT {"verbose":false}\r\n'
QUIET_HEADERS = b'CONNECT {"verbose":false,"headers":true}\r\n'
QUIET_NO_RESPONDERS = b'CONNECT {"verbose":false,"headers":true,"no_responders":true}\r\n'
QUIET_NOT_PEDANTIC = b'CONNECT {"verbose":false,"pedantic":false}\r\n'
QUIET_NO_ECHO = b'CONNECT {"verbose":false,"echo":false}\r\n'

OK = b"+OK\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"

#: The minimal header block.
EMPTY_HEADERS = b"NATS/1.0\r\n\r\n"


def err(text: str) -> bytes:
    """``-ERR '<text>'`` as the server sends it."""
    return b"-ERR '" + text.encode() + b"'\r\n"


UNKNOWN_OP = err("Unknown Protocol Operation")
INVALID_SUBJECT = err("Invalid Subject")
INVALID_PUBLISH_SUBJECT = err("Invalid Publish Subject")
MAX_PAYLOAD = err("Maximum Payload Violation")
MAX_CONTROL_LINE = err("maximum control line exceeded")
MAX_SUBSCRIPTIONS = err("maximum subscriptions exceeded")
MAX_CONNECTIONS = err("maximum connections exceeded")
STALE = err("Stale Connection")
INVALID_PROTOCOL = err("invalid client protocol")
NO_RESPONDERS_NEEDS_HEADERS = err("no responders requires headers support")
AUTHORIZATION = err("Authorization Violation")


def pub_denied(subject: str) -> bytes:
    return err(f'Permissions Violation for Publish to "{subject}"')


def reply_denied(reply: str) -> bytes:
    return err(f'Permissions Violation for Publish with Reply of "{reply}"')


def headers(*lines: str, status: str = "") -> bytes:
    """A header block: ``NATS/1.0[ status]`` then ``Name: value`` lines, then a blank line."""
    first = "NATS/1.0" + (f" {status}" if status else "")
    return "".join(f"{line}\r\n" for line in (first, *lines)).encode() + b"\r\n"


def _reply(reply: str | None) -> bytes:
    return b"" if reply is None else reply.encode() + b" "


def pub(subject: str, payload: bytes = b"", reply: str | None = None) -> bytes:
    return b"PUB %s %s%d\r\n%s\r\n" % (subject.encode(), _reply(reply), len(payload), payload)


def hpub(subject: str, hdr: bytes, payload: bytes = b"", reply: str | None = None) -> bytes:
    return b"HPUB %s %s%d %d\r\n%s%s\r\n" % (
        subject.encode(), _reply(reply), len(hdr), len(hdr) + len(payload), hdr, payload)


def msg(subject: str, sid: str | int, payload: bytes = b"", reply: str | None = None) -> bytes:
    return b"MSG %s %s %s%d\r\n%s\r\n" % (
        subject.encode(), str(sid).encode(), _reply(reply), len(payload), payload)


def hmsg(subject: str, sid: str | int, hdr: bytes, payload: bytes = b"",
         reply: str | None = None) -> bytes:
    return b"HMSG %s %s %s%d %d\r\n%s%s\r\n" % (
        subject.encode(), str(sid).encode(), _reply(reply), len(hdr), len(hdr) + len(payload),
        hdr, payload)


def no_responders(reply: str, sid: str | int, subject: str) -> bytes:
    """The 503 status message the server generates (PROTOCOL.md section 6.3)."""
    return hmsg(reply, sid, headers(f"Nats-Subject: {subject}", status="503"))


def sub(subject: str, sid: str | int, queue: str | None = None) -> bytes:
    q = b"" if queue is None else queue.encode() + b" "
    return b"SUB %s %s%s\r\n" % (subject.encode(), q, str(sid).encode())


# -- the case table --------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One wire exchange on a fresh connection (INFO already read)."""

    id: str
    send: bytes
    expect: bytes
    closes: bool = False
    config: str = "default"


def _open(id: str, send: bytes, expect: bytes, config: str = "default") -> Case:
    return Case(id, send, expect, False, config)


def _closed(id: str, send: bytes, expect: bytes = b"", config: str = "default") -> Case:
    return Case(id, send, expect, True, config)


HI = b"hi"
H1 = headers("X: y")

OPEN_CASES: list[Case] = [
    # -- defaults before CONNECT: verbose and pedantic --------------------------------
    _open("defaults-verbose-before-connect",
          sub("foo", 1) + pub("foo", b"hello") + b"UNSUB 1\r\n" + pub("foo", b"x"),
          OK + OK + msg("foo", 1, b"hello") + OK + OK),
    _open("connect-empty-object-keeps-verbose", b"CONNECT {}\r\n" + sub("foo", 1), OK + OK),
    _open("connect-null-keeps-defaults", b"CONNECT null\r\n", OK),
    _open("connect-verbose-false", QUIET + sub("foo", 1) + pub("foo", HI),
          msg("foo", 1, HI)),
    _open("connect-unknown-keys-ignored",
          b'CONNECT {"verbose":false,"foo":1,"bar":{"x":[1,"y"]},"lang":"python",'
          b'"name":"n","version":"1.0","user":"u","pass":"p","auth_token":"t",'
          b'"tls_required":false,"protocol":0}\r\n', b""),
    _open("connect-keys-case-insensitive", b'CONNECT {"VERBOSE":false}\r\n' + sub("a", 1), b""),
    _open("connect-duplicate-key-last-wins", b'CONNECT {"verbose":true,"verbose":false}\r\n',
          b""),
    _open("connect-trailing-space", b'CONNECT {"verbose":false} \r\n', b""),
    _open("connect-without-space", b'CONNECT{"verbose":false}\r\n', b""),
    _open("connect-tab", b'CONNECT\t{"verbose":false}\r\n', b""),
    _open("connect-no-responders-false-without-headers",
          b'CONNECT {"no_responders":false,"headers":false}\r\n', OK),
    # -- case, whitespace and line endings --------------------------------------------
    _open("lowercase-ops",
          b"sub foo 1\r\npub foo 1\r\nx\r\nping\r\nunsub 1\r\npong\r\n",
          OK + OK + msg("foo", 1, b"x") + PONG + OK),
    _open("mixed-case-ops",
          b'CoNnEcT {"verbose":false,"headers":true}\r\nSuB foo 1\r\nPuB foo 1\r\nx\r\n'
          b"hPuB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPiNg\r\nUnSuB 1\r\n",
          msg("foo", 1, b"x") + hmsg("foo", 1, EMPTY_HEADERS, HI) + PONG),
    _open("tabs-and-runs-of-spaces",
          b"SUB\tfoo \t 1\r\nPUB  foo\t\tbar \t 1\r\nx\r\nSUB\t\tq.x  g\t2\r\n"
          b"PUB q.x 0\r\n\r\nUNSUB \t2\r\n",
          OK + OK + msg("foo", 1, b"x", reply="bar") + OK + OK + msg("q.x", 2) + OK),
    _open("trailing-whitespace", b"SUB foo 1 \r\nPUB foo 1\t\r\nx\r\nUNSUB 1 \r\n",
          OK + OK + msg("foo", 1, b"x") + OK),
    _open("bare-lf-line-endings", b"SUB foo 1\nPUB foo 1\nx\r\nPING\nUNSUB 1\n",
          OK + OK + msg("foo", 1, b"x") + PONG + OK),
    _open("ping-with-arguments", b"PING foo\r\nPINGX\r\nPING\t\r\n", PONG * 3),
    _open("pong-ok-info-from-client-ignored",
          b"PONG\r\nPONG foo\r\n+OK\r\n+OK bar\r\nINFO {}\r\nINFO {\"server_id\":\"x\"}\r\n", b""),
    # -- payload framing ---------------------------------------------------------------
    _open("zero-length-payload", QUIET + sub("a", 1) + b"PUB a 0\r\n\r\n", msg("a", 1)),
    _open("payload-with-crlf-and-ops",
          QUIET + sub("a", 1) + pub("a", b"PING\r\nPUB b 1\r\n"),
          msg("a", 1, b"PING\r\nPUB b 1\r\n")),
    _open("payload-binary", QUIET + sub("a", 1) + pub("a", bytes(range(256))),
          msg("a", 1, bytes(range(256)))),
    _open("size-field-echoed-verbatim",
          QUIET_HEADERS + sub("a", 1) + b"PUB a 01\r\nx\r\nPUB a r 000000002\r\nhi\r\n"
          b"HPUB a 012 014\r\nNATS/1.0\r\n\r\nhi\r\n",
          b"MSG a 1 01\r\nx\r\nMSG a 1 r 000000002\r\nhi\r\n"
          b"HMSG a 1 012 014\r\nNATS/1.0\r\n\r\nhi\r\n"),
    _open("payload-larger-than-a-read",
          QUIET + sub("big", 1) + pub("big", bytes(range(256)) * 20) + pub("big", b"next"),
          msg("big", 1, bytes(range(256)) * 20) + msg("big", 1, b"next")),
    _open("reply-subject-delivered", QUIET + sub("a", 1) + pub("a", HI, reply="_INBOX.x.y"),
          msg("a", 1, HI, reply="_INBOX.x.y")),
    _open("string-sid", QUIET + sub("a", "abc") + pub("a", HI), msg("a", "abc", HI)),
    # -- SUB subject validation (connection stays open) --------------------------------
    _open("invalid-subjects",
          sub("foo..bar", 1) + sub(".foo", 2) + sub("foo.", 3) + sub("foo.>.bar", 4)
          + sub(">.foo", 5) + sub(".", 6) + sub("foo..bar", 7, queue="q"),
          INVALID_SUBJECT * 7),
    _open("invalid-subject-then-valid", sub("a..b", 1) + sub("a.b", 2) + pub("a.b", HI),
          INVALID_SUBJECT + OK + OK + msg("a.b", 2, HI)),
    _open("wildcard-chars-inside-tokens-are-literal",
          QUIET + sub("foo*", 1) + sub("f>o", 2) + pub("foo*", b"1") + pub("fox", b"2")
          + pub("f>o", b"3"),
          msg("foo*", 1, b"1") + msg("f>o", 2, b"3")),
    _open("queue-name-not-validated", QUIET + sub("a", 1, queue="q.*") + pub("a", HI),
          msg("a", 1, HI)),
    _open("reserved-queue-name", sub("foo", 1, queue="_sys_") + sub("foo", 2, queue="sys"),
          err('Permissions Violation for Subscription to "foo" using queue "_sys_"') + OK),
    # -- pedantic publish subjects ------------------------------------------------------
    _open("pedantic-invalid-publish-subjects",
          pub("foo.*", b"x") + pub("foo.>", b"x") + pub("foo..bar", b"x") + pub(".foo", b"x")
          + pub("foo.", b"x") + pub("*", b"x") + pub(">", b"x") + pub(".", b"x"),
          (INVALID_PUBLISH_SUBJECT + OK) * 8),
    _open("pedantic-wildcard-publish-still-delivered-to-gt",
          sub(">", 1) + pub("foo.*", b"x"),
          OK + INVALID_PUBLISH_SUBJECT + OK + msg("foo.*", 1, b"x")),
    _open("pedantic-wildcard-publish-still-delivered-to-star",
          QUIET + sub("foo.*", 7) + pub("foo.*", b"x") + pub("foo.>", b"y"),
          INVALID_PUBLISH_SUBJECT + msg("foo.*", 7, b"x") + INVALID_PUBLISH_SUBJECT
          + msg("foo.>", 7, b"y")),
    _open("pedantic-empty-token-publish-matches-nothing",
          QUIET + sub(">", 1) + pub("foo..bar", b"x") + pub("foo.", b"x") + pub("a", b"y"),
          INVALID_PUBLISH_SUBJECT * 2 + msg("a", 1, b"y")),
    _open("pedantic-hpub-invalid-subject",
          QUIET_HEADERS + sub(">", 1) + hpub("foo.*", EMPTY_HEADERS, HI),
          INVALID_PUBLISH_SUBJECT + hmsg("foo.*", 1, EMPTY_HEADERS, HI)),
    _open("pedantic-reply-not-checked", QUIET + sub(">", 1) + pub("foo", b"x", reply="bar.*"),
          msg("foo", 1, b"x", reply="bar.*")),
    _open("pedantic-from-connect-default",
          b'CONNECT {"verbose":false}\r\n' + sub(">", 1) + pub("foo.*", b"x"),
          INVALID_PUBLISH_SUBJECT + msg("foo.*", 1, b"x")),
    _open("not-pedantic-no-publish-checks",
          QUIET_NOT_PEDANTIC + sub(">", 1) + pub("foo.*", b"x") + pub("a..b", b"y")
          + pub(".a", b"y") + pub("a.", b"y"),
          msg("foo.*", 1, b"x")),
    # -- reserved publish subjects / reply subjects -------------------------------------
    _open("reserved-subjects-denied-and-dropped",
          sub(">", 1) + pub("_GR_.a.b", b"x") + pub("$NRG.x", b"x")
          + pub("a", b"x", reply="_R_.b") + pub("a", b"x", reply="$JS.ACK.b")
          + pub("a", b"x", reply="_GR_.b"),
          OK + pub_denied("_GR_.a.b") + pub_denied("$NRG.x") + reply_denied("_R_.b")
          + reply_denied("$JS.ACK.b") + reply_denied("_GR_.b")),
    _open("reserved-subjects-denied-when-not-pedantic",
          QUIET_NOT_PEDANTIC + sub(">", 1) + pub("_GR_.a", b"x") + pub("a", b"x", reply="_R_.b"),
          pub_denied("_GR_.a") + reply_denied("_R_.b")),
    _open("reserved-hpub-denied",
          QUIET_HEADERS + sub(">", 1) + hpub("_GR_.a", EMPTY_HEADERS)
          + hpub("a", EMPTY_HEADERS, reply="_R_.b"),
          pub_denied("_GR_.a") + reply_denied("_R_.b")),
    _open("reserved-lookalikes-allowed",
          QUIET + sub(">", 1) + pub("_GR_", b"1") + pub("_gr_.a", b"2") + pub("_R_.a", b"3")
          + pub("a", b"4", reply="_R_") + pub("a", b"5", reply="$js.ack.b")
          + pub("$NRG", b"6"),
          msg("_GR_", 1, b"1") + msg("_gr_.a", 1, b"2") + msg("_R_.a", 1, b"3")
          + msg("a", 1, b"4", reply="_R_") + msg("a", 1, b"5", reply="$js.ack.b")
          + msg("$NRG", 1, b"6")),
    _open("subscribe-to-reserved-allowed", sub("_GR_.>", 1) + sub("$NRG.>", 2), OK + OK),
    # -- headers ------------------------------------------------------------------------
    _open("hpub-delivered-as-hmsg",
          QUIET_HEADERS + sub("foo", 1) + hpub("foo", H1, HI) + hpub("foo", H1, HI, reply="r")
          + hpub("foo", EMPTY_HEADERS),
          hmsg("foo", 1, H1, HI) + hmsg("foo", 1, H1, HI, reply="r")
          + hmsg("foo", 1, EMPTY_HEADERS)),
    _open("hpub-verbose", b'CONNECT {"headers":true}\r\n' + sub("foo", 1) + hpub("foo", H1, HI),
          OK + OK + OK + hmsg("foo", 1, H1, HI)),
    _open("hpub-zero-header-size-is-plain-msg",
          QUIET_HEADERS + sub("foo", 1) + b"HPUB foo 0 2\r\nhi\r\n", msg("foo", 1, HI)),
    _open("hpub-header-bytes-not-validated",
          QUIET_HEADERS + sub("foo", 1) + b"HPUB foo 3 5\r\nabchi\r\n",
          b"HMSG foo 1 3 5\r\nabchi\r\n"),
    _open("pub-to-header-subscriber-is-msg", QUIET_HEADERS + sub("foo", 1) + pub("foo", HI),
          msg("foo", 1, HI)),
    # -- no responders ------------------------------------------------------------------
    _open("no-responders-503-exact-bytes",
          QUIET_NO_RESPONDERS + sub("reply", 1) + pub("foo", HI, reply="reply"),
          b"HMSG reply 1 35 35\r\nNATS/1.0 503\r\nNats-Subject: foo\r\n\r\n\r\n"),
    _open("no-responders-503-long-subject",
          QUIET_NO_RESPONDERS + sub("_INBOX.abc.*", 9)
          + pub("svc.a.b.c", b"", reply="_INBOX.abc.1"),
          no_responders("_INBOX.abc.1", 9, "svc.a.b.c")),
    _open("no-responders-503-for-hpub",
          QUIET_NO_RESPONDERS + sub("r", 1) + hpub("foo", H1, HI, reply="r"),
          no_responders("r", 1, "foo")),
    _open("no-responders-verbose",
          b'CONNECT {"headers":true,"no_responders":true}\r\n' + sub("r", 1)
          + pub("foo", HI, reply="r"),
          OK + OK + OK + no_responders("r", 1, "foo")),
    _open("no-responders-none-without-own-reply-sub",
          QUIET_NO_RESPONDERS + pub("foo", HI, reply="r") + sub("r2", 1)
          + pub("foo", HI, reply="r"), b""),
    _open("no-responders-none-for-queue-reply-sub",
          QUIET_NO_RESPONDERS + sub("r", 1, queue="q") + pub("foo", HI, reply="r"), b""),
    _open("no-responders-none-without-reply",
          QUIET_NO_RESPONDERS + sub("r", 1) + pub("foo", HI), b""),
    _open("no-responders-none-when-not-requested",
          QUIET_HEADERS + sub("r", 1) + pub("foo", HI, reply="r"), b""),
    _open("no-responders-none-when-delivered",
          QUIET_NO_RESPONDERS + sub("r", 1) + sub("foo", 2) + pub("foo", HI, reply="r"),
          msg("foo", 2, HI, reply="r")),
    _open("no-responders-none-when-delivered-to-queue",
          QUIET_NO_RESPONDERS + sub("r", 1) + sub("foo", 2, queue="q") + pub("foo", HI, reply="r"),
          msg("foo", 2, HI, reply="r")),
    _open("no-responders-own-echo-off-sub-does-not-count",
          b'CONNECT {"verbose":false,"headers":true,"no_responders":true,"echo":false}\r\n'
          + sub("r", 1) + sub("foo", 2) + pub("foo", HI, reply="r"),
          no_responders("r", 1, "foo")),
    _open("no-responders-after-auto-unsubscribe",
          QUIET_NO_RESPONDERS + sub("r", 1) + sub("foo", 2) + b"UNSUB 2 1\r\n"
          + pub("foo", b"1", reply="r") + pub("foo", b"2", reply="r"),
          msg("foo", 2, b"1", reply="r") + no_responders("r", 1, "foo")),
    # -- echo -----------------------------------------------------------------------------
    _open("echo-false-skips-own-subscription",
          QUIET_NO_ECHO + sub("foo", 1) + pub("foo", HI), b""),
    _open("echo-default-delivers-to-own-subscription",
          QUIET + sub("foo", 1) + pub("foo", HI), msg("foo", 1, HI)),
    # -- wildcards ------------------------------------------------------------------------
    _open("wildcard-star",
          QUIET + sub("foo.*", 1) + pub("foo", b"1") + pub("foo.bar", b"2")
          + pub("foo.bar.baz", b"3") + pub("bar.foo", b"4"),
          msg("foo.bar", 1, b"2")),
    _open("wildcard-gt-needs-a-token",
          QUIET + sub("foo.>", 1) + pub("foo", b"1") + pub("foo.bar", b"2")
          + pub("foo.bar.baz", b"3") + pub("foobar.x", b"4"),
          msg("foo.bar", 1, b"2") + msg("foo.bar.baz", 1, b"3")),
    _open("wildcard-gt-alone-matches-everything",
          QUIET + sub(">", 1) + pub("foo", b"1") + pub("a.b.c.d", b"2") + pub("$SYS.x", b"3"),
          msg("foo", 1, b"1") + msg("a.b.c.d", 1, b"2") + msg("$SYS.x", 1, b"3")),
    _open("wildcard-star-alone-one-token",
          QUIET + sub("*", 1) + pub("foo", b"1") + pub("foo.bar", b"2"), msg("foo", 1, b"1")),
    _open("wildcard-mixed",
          QUIET + sub("*.bar.>", 1) + pub("foo.bar", b"1") + pub("foo.bar.baz", b"2")
          + pub("x.bar.y.z", b"3") + pub("foo.baz.bar", b"4"),
          msg("foo.bar.baz", 1, b"2") + msg("x.bar.y.z", 1, b"3")),
    _open("wildcard-star-middle",
          QUIET + sub("a.*.c", 1) + pub("a.b.c", b"1") + pub("a.c", b"2") + pub("a.b.b.c", b"3"),
          msg("a.b.c", 1, b"1")),
    _open("subjects-case-sensitive",
          QUIET + sub("Foo", 1) + pub("foo", b"1") + pub("Foo", b"2"), msg("Foo", 1, b"2")),
    # -- queue subscriptions (one member) -------------------------------------------------
    _open("queue-single-member",
          QUIET + sub("foo", 1, queue="q") + pub("foo", b"1") + pub("foo", b"2"),
          msg("foo", 1, b"1") + msg("foo", 1, b"2")),
    # -- UNSUB / auto-unsubscribe ---------------------------------------------------------
    _open("unsub-max-counts-from-now",
          QUIET + sub("foo", 1) + b"UNSUB 1 2\r\n" + pub("foo", b"a") + pub("foo", b"b")
          + pub("foo", b"c"),
          msg("foo", 1, b"a") + msg("foo", 1, b"b")),
    _open("unsub-max-includes-already-delivered",
          QUIET + sub("foo", 1) + pub("foo", b"a") + b"UNSUB 1 3\r\n" + pub("foo", b"b")
          + pub("foo", b"c") + pub("foo", b"d"),
          msg("foo", 1, b"a") + msg("foo", 1, b"b") + msg("foo", 1, b"c")),
    _open("unsub-max-reached-removes-now",
          QUIET + sub("foo", 1) + pub("foo", b"a") + pub("foo", b"b") + b"UNSUB 1 2\r\n"
          + pub("foo", b"c"),
          msg("foo", 1, b"a") + msg("foo", 1, b"b")),
    _open("unsub-max-zero-removes-now",
          QUIET + sub("foo", 1) + b"UNSUB 1 0\r\n" + pub("foo", b"a"), b""),
    _open("unsub-max-replaced-by-later-unsub",
          QUIET + sub("foo", 1) + b"UNSUB 1 1\r\nUNSUB 1 3\r\n" + pub("foo", b"a")
          + pub("foo", b"b") + sub("bar", 2) + b"UNSUB 2 5\r\nUNSUB 2 1\r\n" + pub("bar", b"c")
          + pub("bar", b"d"),
          msg("foo", 1, b"a") + msg("foo", 1, b"b") + msg("bar", 2, b"c")),
    _open("unsub-max-not-a-number-removes-now",
          QUIET + sub("a", 1) + sub("b", 2) + sub("c", 3) + b"UNSUB 1 x\r\nUNSUB 2 -1\r\n"
          + b"UNSUB 3 1234567890\r\n" + pub("a", b"1") + pub("b", b"2") + pub("c", b"3"), b""),
    _open("unsub-verbose", sub("foo", 1) + b"UNSUB 1\r\nUNSUB 1\r\nUNSUB 99 5\r\n", OK * 4),
    _open("unsub-unknown-sid", QUIET + b"UNSUB 99\r\nUNSUB 98 3\r\nUNSUB abc\r\n", b""),
    _open("unsub-then-resubscribe-same-sid",
          QUIET + sub("foo", 1) + b"UNSUB 1\r\n" + sub("bar", 1) + pub("foo", b"a")
          + pub("bar", b"b"),
          msg("bar", 1, b"b")),
    _open("auto-unsub-then-resubscribe-same-sid",
          QUIET + sub("foo", 1) + b"UNSUB 1 1\r\n" + pub("foo", b"a") + sub("bar", 1)
          + pub("bar", b"b"),
          msg("foo", 1, b"a") + msg("bar", 1, b"b")),
    _open("duplicate-sid-ignored",
          sub("foo", 1) + sub("bar", 1) + pub("foo", b"a") + pub("bar", b"b"),
          OK + OK + OK + msg("foo", 1, b"a") + OK),
    _open("duplicate-sid-before-auto-unsub-ends",
          QUIET + sub("foo", 1) + b"UNSUB 1 1\r\n" + sub("bar", 1) + pub("foo", b"a")
          + pub("bar", b"b") + pub("foo", b"c"),
          msg("foo", 1, b"a")),
    # -- CONNECT again ----------------------------------------------------------------
    _open("subscriptions-before-first-connect-kept",
          sub("a", 1) + b"CONNECT {}\r\n" + pub("a", b"x"), OK + OK + OK + msg("a", 1, b"x")),
    _open("second-connect-drops-subscriptions",
          QUIET + sub("a", 1) + QUIET + pub("a", b"x") + sub("b", 1) + pub("b", b"y"),
          msg("b", 1, b"y")),
    # -- limits server: max_payload 1024, max_control_line 128, max_subscriptions 3 ------
    _open("max-payload-exactly", QUIET + sub("a", 1) + pub("a", b"x" * 1024),
          msg("a", 1, b"x" * 1024), config="limits"),
    _open("max-payload-hpub-exactly",
          QUIET_HEADERS + sub("a", 1) + hpub("a", EMPTY_HEADERS, b"x" * (1024 - 12)),
          hmsg("a", 1, EMPTY_HEADERS, b"x" * (1024 - 12)), config="limits"),
    _open("max-control-line-exactly",
          QUIET + sub("a" * 126, 1) + b"UNSUB " + b"9" * 126 + b" 1\r\n"
          + pub("b" * 126, b"x") + b'CONNECT {"verbose":false' + b" " * 111 + b"}\r\n",
          b"", config="limits"),
    _open("control-line-limit-not-applied-to-ping-pong-ok",
          b"PING " + b"x" * 300 + b"\r\nPONG " + b"x" * 300 + b"\r\n+OK " + b"x" * 300 + b"\r\n",
          PONG, config="limits"),
    _open("max-subscriptions",
          sub("a", 1) + sub("b", 2) + sub("c", 3) + sub("d", 4) + sub("e", 5),
          OK * 3 + MAX_SUBSCRIPTIONS * 2, config="limits"),
    _open("max-subscriptions-checked-before-subject-and-sid",
          QUIET + sub("a", 1) + sub("b", 2) + sub("c", 3) + sub("a..b", 4) + sub("x", 1),
          MAX_SUBSCRIPTIONS * 2, config="limits"),
    _open("max-subscriptions-freed-by-unsub",
          sub("a", 1) + sub("b", 2) + sub("c", 3) + sub("d", 4) + b"UNSUB 1\r\n" + sub("d", 4)
          + pub("d", b"x"),
          OK * 3 + MAX_SUBSCRIPTIONS + OK + OK + OK + msg("d", 4, b"x"), config="limits"),
    _open("max-subscriptions-freed-by-auto-unsub",
          QUIET + sub("a", 1) + sub("b", 2) + sub("c", 3) + b"UNSUB 1 1\r\n" + pub("a", b"x")
          + sub("d", 4) + pub("d", b"y"),
          msg("a", 1, b"x") + msg("d", 4, b"y"), config="limits"),
]

#: Cases that depend on server-wide interest (see CONFIGS["fresh"]).
_FRESH = {"tabs-and-runs-of-spaces", "queue-name-not-validated", "queue-single-member"}
OPEN_CASES = [replace(c, config="fresh") if c.id in _FRESH or c.id.startswith("no-responders")
              else c for c in OPEN_CASES]

CLOSED_CASES: list[Case] = [
    # -- Unknown Protocol Operation -------------------------------------------------------
    _closed("unknown-op", b"FOO bar\r\n", UNKNOWN_OP),
    _closed("client-sends-msg", b"MSG foo 1 1\r\nx\r\n", UNKNOWN_OP),
    _closed("client-sends-hmsg", b"HMSG foo 1 12 12\r\n", UNKNOWN_OP),
    _closed("client-sends-rs-plus", b"RS+ $G foo\r\n", UNKNOWN_OP),
    _closed("client-sends-rs-minus", b"RS- $G foo\r\n", UNKNOWN_OP),
    _closed("client-sends-rmsg", b"RMSG $G foo 1\r\n", UNKNOWN_OP),
    _closed("client-sends-ls-plus", b"LS+ $G foo\r\n", UNKNOWN_OP),
    _closed("client-sends-a-plus", b"A+ foo\r\n", UNKNOWN_OP),
    _closed("leading-space", b" PING\r\n", UNKNOWN_OP),
    _closed("empty-line", b"\r\n", UNKNOWN_OP),
    _closed("op-glued-to-argument", b"PUBfoo 1\r\n", UNKNOWN_OP),
    _closed("op-with-extra-letter", b"SUBX foo 1\r\n", UNKNOWN_OP),
    _closed("op-truncated-pin", b"PIN\r\n", UNKNOWN_OP),
    _closed("op-truncated-plus-o", b"+O\r\n", UNKNOWN_OP),
    _closed("op-truncated-minus-er", b"-ER\r\n", UNKNOWN_OP),
    _closed("pub-without-arguments", b"PUB\r\n", UNKNOWN_OP),
    _closed("hpub-without-arguments", QUIET_HEADERS + b"HPUB\r\n", UNKNOWN_OP),
    _closed("sub-without-arguments", b"SUB\r\n", UNKNOWN_OP),
    _closed("unsub-without-arguments", b"UNSUB\r\n", UNKNOWN_OP),
    _closed("minus-err-without-arguments", b"-ERR\r\n", UNKNOWN_OP),
    _closed("payload-longer-than-announced", b"PUB foo 1\r\nxy", UNKNOWN_OP),
    _closed("payload-followed-by-cr-garbage", b"PUB foo 1\r\nx\rx", UNKNOWN_OP),
    _closed("payload-followed-by-bare-lf", sub("foo", 1) + b"PUB foo 1\r\nx\n", OK + UNKNOWN_OP),
    _closed("hpub-payload-longer-than-announced",
            QUIET_HEADERS + b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\nX", UNKNOWN_OP),
    _closed("garbage-after-valid-ops", QUIET + sub("a", 1) + pub("a", b"x") + b"XYZ\r\n",
            msg("a", 1, b"x") + UNKNOWN_OP),
    # -- CONNECT errors ---------------------------------------------------------------------
    _closed("connect-protocol-2", b'CONNECT {"protocol":2}\r\n', INVALID_PROTOCOL),
    _closed("connect-protocol-negative", b'CONNECT {"verbose":false,"protocol":-1}\r\n',
            INVALID_PROTOCOL),
    _closed("connect-protocol-checked-before-no-responders",
            b'CONNECT {"protocol":2,"no_responders":true}\r\n', INVALID_PROTOCOL),
    _closed("connect-no-responders-without-headers", b'CONNECT {"no_responders":true}\r\n',
            NO_RESPONDERS_NEEDS_HEADERS),
    _closed("connect-no-responders-headers-false",
            b'CONNECT {"verbose":false,"no_responders":true,"headers":false}\r\n',
            NO_RESPONDERS_NEEDS_HEADERS),
    _closed("connect-account-field", b'CONNECT {"account":"A"}\r\n', AUTHORIZATION),
    _closed("connect-new-account-field", b'CONNECT {"new_account":true}\r\n', AUTHORIZATION),
    # -- maximum payload (default 1 MiB) -----------------------------------------------------
    _closed("max-payload-pub-70mb", b"PUB foo 70000000\r\n", MAX_PAYLOAD),
    _closed("max-payload-pub-one-over", b"PUB foo bar 1048577\r\n", MAX_PAYLOAD),
    _closed("max-payload-pub-nine-digits", b"PUB foo 999999999\r\n", MAX_PAYLOAD),
    _closed("max-payload-hpub-one-over", QUIET_HEADERS + b"HPUB foo 12 1048577\r\n", MAX_PAYLOAD),
    _closed("max-payload-limits-pub", b"PUB foo 1025\r\n", MAX_PAYLOAD, config="limits"),
    _closed("max-payload-limits-after-valid", QUIET + sub("a", 1) + pub("a", b"x")
            + b"PUB a 1025\r\n", msg("a", 1, b"x") + MAX_PAYLOAD, config="limits"),
    _closed("max-payload-limits-hpub-total", QUIET_HEADERS + b"HPUB foo 12 1025\r\n",
            MAX_PAYLOAD, config="limits"),
    _closed("max-payload-limits-hpub-header", QUIET_HEADERS + b"HPUB foo r 1025 1025\r\n",
            MAX_PAYLOAD, config="limits"),
    # -- maximum control line ----------------------------------------------------------------
    _closed("max-control-line-default", b"SUB " + b"a" * 4095 + b" 1\r\n", MAX_CONTROL_LINE),
    _closed("max-control-line-sub", QUIET + sub("a" * 127, 1), MAX_CONTROL_LINE,
            config="limits"),
    _closed("max-control-line-pub", b"PUB " + b"a" * 127 + b" 1\r\n", MAX_CONTROL_LINE,
            config="limits"),
    _closed("max-control-line-hpub", QUIET_HEADERS + b"HPUB " + b"a" * 125 + b" 1 1\r\n",
            MAX_CONTROL_LINE, config="limits"),
    _closed("max-control-line-unsub", b"UNSUB " + b"1" * 127 + b" 1\r\n", MAX_CONTROL_LINE,
            config="limits"),
    _closed("max-control-line-connect", b'CONNECT {"verbose":false' + b" " * 112 + b"}\r\n",
            MAX_CONTROL_LINE, config="limits"),
    _closed("max-control-line-client-info", b"INFO {" + b" " * 200 + b"}\r\n",
            MAX_CONTROL_LINE, config="limits"),
    _closed("max-control-line-bare-lf", b"SUB " + b"a" * 127 + b" 1\n", MAX_CONTROL_LINE,
            config="limits"),
    _closed("max-control-line-partial-sub", b"SUB " + b"a" * 129, MAX_CONTROL_LINE,
            config="limits"),
    _closed("max-control-line-partial-pub", b"PUB foo " + b"9" * 130, MAX_CONTROL_LINE,
            config="limits"),
    _closed("max-control-line-partial-connect", b"CONNECT {" + b" " * 200, MAX_CONTROL_LINE,
            config="limits"),
    # -- silent closes: malformed arguments ---------------------------------------------------
    _closed("pub-blank-arguments", b"PUB \r\n"),
    _closed("pub-one-argument", b"PUB foo\r\n"),
    _closed("pub-four-arguments", b"PUB foo a b 1\r\n"),
    _closed("pub-size-not-a-number", b"PUB foo x\r\n"),
    _closed("pub-size-negative", b"PUB foo -1\r\n"),
    _closed("pub-size-plus-sign", b"PUB foo +1\r\n"),
    _closed("pub-size-exponent", b"PUB foo 1e3\r\n"),
    _closed("pub-size-hex", b"PUB foo 0x1\r\n"),
    _closed("pub-size-ten-digits", b"PUB foo 0000000001\r\n"),
    _closed("pub-size-overflow", b"PUB foo 99999999999999999999999\r\n"),
    _closed("pub-size-over-max-but-malformed", b"PUB foo 1234567890\r\n"),
    _closed("hpub-blank-arguments", QUIET_HEADERS + b"HPUB \r\n"),
    _closed("hpub-two-arguments", QUIET_HEADERS + b"HPUB foo 12\r\n"),
    _closed("hpub-five-arguments", QUIET_HEADERS + b"HPUB foo a b 12 12\r\n"),
    _closed("hpub-header-size-not-a-number", QUIET_HEADERS + b"HPUB foo x 12\r\n"),
    _closed("hpub-total-size-not-a-number", QUIET_HEADERS + b"HPUB foo 12 x\r\n"),
    _closed("hpub-header-size-negative", QUIET_HEADERS + b"HPUB foo -1 12\r\n"),
    _closed("hpub-header-larger-than-total", QUIET_HEADERS + b"HPUB foo 5 2\r\n"),
    _closed("hpub-header-larger-than-total-over-max", QUIET_HEADERS + b"HPUB foo 3000 2000\r\n",
            config="limits"),
    _closed("hpub-without-connect", b"HPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n"),
    _closed("hpub-without-headers-in-connect", QUIET + b"HPUB foo 12 12\r\n"),
    _closed("hpub-with-headers-false", b'CONNECT {"headers":false}\r\nHPUB foo 12 12\r\n', OK),
    _closed("sub-blank-arguments", b"SUB \r\n"),
    _closed("sub-one-argument", b"SUB foo\r\n"),
    _closed("sub-empty-subject", b"SUB  1\r\n"),
    _closed("sub-four-arguments", b"SUB foo q 1 2\r\n"),
    _closed("unsub-blank-arguments", b"UNSUB \r\n"),
    _closed("unsub-three-arguments", b"UNSUB 1 2 3\r\n"),
    # -- silent closes: CONNECT / INFO / -ERR from the client -----------------------------
    _closed("connect-bad-json", b"CONNECT {bad\r\n"),
    _closed("connect-empty", b"CONNECT\r\n"),
    _closed("connect-blank", b"CONNECT \r\n"),
    _closed("connect-array", b"CONNECT []\r\n"),
    _closed("connect-trailing-garbage", b'CONNECT {"verbose":false} x\r\n'),
    _closed("connect-verbose-string", b'CONNECT {"verbose":"false"}\r\n'),
    _closed("connect-verbose-number", b'CONNECT {"verbose":0}\r\n'),
    _closed("connect-protocol-string", b'CONNECT {"protocol":"1"}\r\n'),
    _closed("connect-op-with-extra-letter", b"CONNECTX {}\r\n"),
    _closed("connect-bad-json-after-valid", QUIET + sub("a", 1) + pub("a", b"x")
            + b"CONNECT {\r\n", msg("a", 1, b"x")),
    _closed("client-info-not-json", b"INFO foo\r\n"),
    _closed("client-info-empty", b"INFO\r\n"),
    _closed("client-err", b"-ERR 'x'\r\n"),
]

ALL_CASES: list[Case] = OPEN_CASES + CLOSED_CASES


def collapse_repeated_invalid_publish_subject(data: bytes) -> bytes:
    """Fold runs of ``-ERR 'Invalid Publish Subject'`` into one.

    nats-server quirk: when a pedantic PUB/HPUB control line arrives in one read and its
    payload does not, the parser re-runs the argument processing to copy the arguments
    out of the read buffer (``clonePubArg``), and the subject check sends the -ERR a
    second time. Which reads the server gets is up to TCP, so whenever input may be
    split, one or two copies are both the reference behaviour.
    """
    while INVALID_PUBLISH_SUBJECT * 2 in data:
        data = data.replace(INVALID_PUBLISH_SUBJECT * 2, INVALID_PUBLISH_SUBJECT)
    return data


def count_pings(data: bytes) -> int:
    """How many PING commands a client byte stream contains (payloads skipped).

    Used to know how many PONGs to wait for. Stops at the first line it cannot frame
    (such input closes the connection anyway).
    """
    count = 0
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            return count
        line = data[pos:end].rstrip(b"\r")
        pos = end + 1
        op = line.split(None, 1)[0].upper() if line.split() else b""
        if line[:4].upper() == b"PING":
            count += 1
        elif op in (b"PUB", b"HPUB"):
            try:
                pos += int(line.split()[-1]) + 2
            except ValueError:
                return count
