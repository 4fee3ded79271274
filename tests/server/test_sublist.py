"""SubjectIndex against the reference matcher, with hypothesis."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pynats.protocol.subjects import is_valid_subscription, matches
from pynats.server.sublist import CACHE_MAX, SubjectIndex


class Sub:
    def __init__(self, subject: bytes, queue: bytes = b""):
        self.subject = subject
        self.queue = queue

    def __repr__(self) -> str:
        return f"Sub({self.subject!r}, {self.queue!r})"


token = st.sampled_from([b"a", b"b", b"c", b"foo"])
pattern_token = st.sampled_from([b"a", b"b", b"c", b"foo", b"*", b">"])
patterns = st.lists(pattern_token, min_size=1, max_size=4).map(b".".join).filter(
    is_valid_subscription)
literals = st.lists(st.sampled_from([b"a", b"b", b"c", b"foo", b"*", b">", b""]),
                    min_size=1, max_size=4).map(b".".join)
queues = st.sampled_from([b"", b"", b"q1", b"q2"])


def expected(subs: list[Sub], subject: bytes) -> tuple[set[int], dict[bytes, set[int]]]:
    plain: set[int] = set()
    groups: dict[bytes, set[int]] = {}
    if all(subject.split(b".")):
        for s in subs:
            if matches(s.subject, subject):
                if s.queue:
                    groups.setdefault(s.queue, set()).add(id(s))
                else:
                    plain.add(id(s))
    return plain, groups


def actual(index: SubjectIndex[Sub], subject: bytes) -> tuple[set[int], dict[bytes, set[int]]]:
    result = index.match(subject)
    groups = {members[0].queue: {id(m) for m in members} for members in result.queues}
    assert all(len({m.queue for m in members}) == 1 for members in result.queues)
    return {id(s) for s in result.plain}, groups


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(patterns, queues), max_size=20), st.lists(literals, max_size=10),
       st.data())
def test_match_agrees_with_reference(entries: list[tuple[bytes, bytes]], probes: list[bytes],
                                     data: st.DataObject) -> None:
    index: SubjectIndex[Sub] = SubjectIndex()
    subs = [Sub(p, q) for p, q in entries]
    for s in subs:
        index.insert(s)
    for subject in probes:  # fill the cache, then change the index under it
        assert actual(index, subject) == expected(subs, subject)
    removed = data.draw(st.lists(st.sampled_from(subs), unique_by=id) if subs else st.just([]))
    for s in removed:
        assert index.remove(s)
        assert not index.remove(s)
    live = [s for s in subs if s not in removed]
    extra = [Sub(p, q) for p, q in data.draw(st.lists(st.tuples(patterns, queues), max_size=5))]
    for s in extra:
        index.insert(s)
    live += extra
    for subject in probes:
        assert actual(index, subject) == expected(live, subject)
    assert index.count == len(live)
    assert sorted(map(id, index.all())) == sorted(map(id, live))


def test_literal_wildcard_tokens_in_published_subject() -> None:
    index: SubjectIndex[Sub] = SubjectIndex()
    star, full, lit = Sub(b"foo.*"), Sub(b"foo.>"), Sub(b"foo.bar")
    for s in (star, full, lit):
        index.insert(s)
    assert set(index.match(b"foo.*").plain) == {star, full}
    assert set(index.match(b"foo.bar").plain) == {star, full, lit}
    assert index.match(b"foo").plain == ()


def test_cache_is_bounded_and_empty_nodes_are_pruned() -> None:
    index: SubjectIndex[Sub] = SubjectIndex()
    sub = Sub(b"a.>")
    index.insert(sub)
    for i in range(CACHE_MAX * 2):
        assert index.match(b"a.%d" % i).plain == (sub,)
    assert index.cache_size <= CACHE_MAX
    index.remove(sub)
    assert index.match(b"a.1").plain == ()
    assert index.all() == []


def test_cache_can_be_disabled() -> None:
    index: SubjectIndex[Sub] = SubjectIndex(cache=False)
    index.insert(Sub(b"x"))
    index.match(b"x")
    assert index.cache_size == 0
