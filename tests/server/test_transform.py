"""Service import subject transforms (``transform.py``): how local subjects map.

The refusals and their texts are compared with nats-server in
``test_config_check.py``; here the mappings themselves.
"""

from __future__ import annotations

import pytest

from pynats.server.transform import TransformError, compile_import

CASES = [
    # local pattern, exported subject, published subject, subject in the exporter
    ("svc.x", "svc.x", b"svc.x", b"svc.x"),
    ("b.svc.>", "svc.>", b"b.svc.add.one", b"svc.add.one"),
    ("b.*.svc.>", "svc.*.>", b"b.q.svc.y.z", b"svc.q.y.z"),
    ("b.$2.$1", "svc.*.*", b"b.X.Y", b"svc.Y.X"),
    ("b.{{wildcard(2)}}.{{ wildcard(1) }}", "svc.*.*", b"b.X.Y", b"svc.Y.X"),
    ("b.*.>", "svc", b"b.any.thing.else", b"svc"),
    ("a.*", "svc.x", b"a.z", b"svc.x"),
    ("svc.*.>", "svc.*.>", b"svc.1.2.3", b"svc.1.2.3"),
]


@pytest.mark.parametrize(("local", "remote", "published", "mapped"), CASES)
def test_mapping(local: str, remote: str, published: bytes, mapped: bytes) -> None:
    assert compile_import(local, remote).apply(published) == mapped


def test_placeholders_become_wildcards_in_the_local_pattern() -> None:
    assert compile_import("b.$2.{{wildcard(1)}}", "svc.*.*").local == b"b.*.*"


@pytest.mark.parametrize(("local", "remote"), [
    ("b.svc", "svc.*.>"), ("b.*", "svc.*.*"), ("b.$2", "svc.*"), ("b.*", "svc.>"),
    ("b..*", "svc.*"), ("b.$1.$1", "svc.*.*"), ("b.{{split(1,-)}}", "svc.*"),
])
def test_refused(local: str, remote: str) -> None:
    with pytest.raises(TransformError):
        compile_import(local, remote)
