"""Body and subject templates as natscli has them: ``{{Count}}``, ``{{Random 5 10}}``, ...

Theory of operation
-------------------
natscli renders message bodies (and subjects) with Go's ``text/template`` and a small
set of functions. We need only those functions, so instead of a template language a
single regular expression finds each ``{{ Name args }}`` action and replaces it with
the function's result; text outside actions is left alone, and an unknown function is
an error (as a Go template parse error would be) rather than silently kept.

Functions (names as natscli spells them, case-insensitive here):

* ``Count``: the message number, from 1;
* ``TimeStamp``: the time as RFC 3339 with nanoseconds (``2006-01-02T15:04:05.999999999Z07:00``);
* ``Unix`` / ``UnixNano``: seconds / nanoseconds since the epoch;
* ``Time``: the time of day, ``3:04PM`` (Go's ``time.Kitchen``);
* ``ID``: a unique id (a NUID);
* ``Random min max``: a random string of ``a-zA-Z0-9``, between ``min`` and ``max``
  characters long.

Request handlers (``reply``) also get ``Request`` (the request body) and
``Subject``/``1``...``9`` are not templates here but ``--command`` arguments.
"""

from __future__ import annotations

import random
import re
import string
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from pynats.client.nuid import Nuid

_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_LETTERS = string.ascii_letters + string.digits
_nuid = Nuid()


class TemplateError(ValueError):
    """A template uses an unknown function or wrong arguments."""


def random_string(shortest: int, longest: int) -> str:
    """A random ``a-zA-Z0-9`` string with a length in ``[shortest, longest]``."""
    if shortest > longest:
        shortest, longest = longest, shortest
    length = random.randint(max(0, shortest), max(0, longest))
    return "".join(random.choices(_LETTERS, k=length))


def _timestamp() -> str:
    now = datetime.now().astimezone()
    text = now.isoformat(timespec="microseconds")
    return text[:-6] + "Z" if now.utcoffset() == timedelta(0) else text


def _kitchen() -> str:
    return datetime.now().strftime("%I:%M%p").lstrip("0")


def _nuid_str() -> str:
    return _nuid.next_str()


def has_actions(text: str) -> bool:
    """True when ``text`` contains at least one ``{{ ... }}`` action."""
    return _ACTION.search(text) is not None


def render(text: str, count: int = 1, extra: Mapping[str, str] | None = None) -> str:
    """Render the template ``text`` for message number ``count``.

    Args:
        text: the template.
        count: value of ``{{Count}}``.
        extra: further zero-argument names (e.g. ``Request`` in reply bodies).

    Returns:
        The rendered text.

    Raises:
        TemplateError: an unknown function or bad arguments.
    """
    funcs: dict[str, Callable[[], str]] = {
        "count": lambda: str(count),
        "timestamp": _timestamp,
        "unix": lambda: str(int(time.time())),
        "unixnano": lambda: str(time.time_ns()),
        "time": _kitchen,
        "id": _nuid_str,
    }
    for name, value in (extra or {}).items():
        funcs[name.lower()] = lambda value=value: value  # type: ignore[misc]

    def action(match: re.Match[str]) -> str:
        words = match.group(1).split()
        if not words:
            raise TemplateError(f"empty template action {match.group(0)!r}")
        name, args = words[0].lstrip(".").lower(), words[1:]
        if name == "random":
            if len(args) != 2 or not all(a.isdigit() for a in args):
                raise TemplateError("Random takes two numbers: {{Random min max}}")
            return random_string(int(args[0]), int(args[1]))
        func = funcs.get(name)
        if func is None:
            raise TemplateError(f"unknown template function {words[0]!r} in {match.group(0)!r}")
        if args:
            raise TemplateError(f"{words[0]} takes no arguments")
        return func()

    return _ACTION.sub(action, text)
