"""Fixtures of the reliability suite: ``scale`` (smoke or full) and ``record``.

Every test takes ``scale``, parametrized as ``smoke`` and ``full``. The ``full`` variant
carries the ``reliability`` marker, which ``addopts`` in pyproject.toml deselects
(``-m "not reliability"``), so ``python -m pytest`` runs the smoke variants only and
``python -m pytest -m reliability`` (a ``-m`` given on the command line replaces the
one in addopts) runs the full ones only. ``PYNATS_RELIABILITY_SCALE`` multiplies the
durations and counts of full runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support import Recorder, Scale, keep, scale_factor, write_results


@pytest.fixture(params=["smoke", pytest.param("full", marks=pytest.mark.reliability)])
def scale(request: pytest.FixtureRequest) -> Scale:
    return Scale(request.param, scale_factor() if request.param == "full" else 1.0)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Iterator[Recorder]:
    """Figures of this test; kept for the JSON results file even when the test fails."""
    recorder = Recorder(request.node.nodeid)
    yield recorder
    keep(recorder)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = write_results()
    if path is not None:
        print(f"\nreliability figures written to {path}")
