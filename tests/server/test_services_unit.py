"""Response mappings of service exports (``services.py``), with a clock the test moves."""

from __future__ import annotations

from pynats.server.router import Router
from pynats.server.services import Responses, ServiceImport
from pynats.server.sublist import SubjectIndex
from pynats.server.transform import compile_import


def _setup(singleton: bool) -> tuple[Responses, Router, ServiceImport, list[float]]:
    now = [100.0]
    responses = Responses(clock=lambda: now[0])
    target = Router(SubjectIndex())
    service = ServiceImport(compile_import("svc", "svc"), target, singleton, threshold=2.0)
    return responses, target, service, now


def test_singleton_answers_once() -> None:
    responses, target, service, _ = _setup(singleton=True)
    subject = responses.open(target, b"_INBOX.1", service)
    assert responses.take(subject) is not None
    assert responses.take(subject) is None


def test_expired_mappings_deliver_nothing() -> None:
    for singleton in (True, False):
        responses, target, service, now = _setup(singleton)
        subject = responses.open(target, b"_INBOX.1", service)
        now[0] += 2.5  # past the 2 s threshold
        assert responses.take(subject) is None
        assert subject not in responses.pending


def test_stream_answers_until_the_threshold() -> None:
    responses, target, service, now = _setup(singleton=False)
    subject = responses.open(target, b"_INBOX.1", service)
    assert responses.take(subject) is not None
    now[0] += 1.0
    assert responses.take(subject) is not None
