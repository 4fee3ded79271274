"""Real-world configuration files (see corpus/README.md for where each comes from).

Every file must parse. The strong check: for every file ``nats-server -t`` accepts, our
digest equals the one it prints. The files it rejects are listed in ``NOT_VALID`` with
the exact lines it prints; they fail its *option* checks, not its parser (include
fragments whose keys only make sense where they are included, and two upstream files
with deliberate or accidental option errors), and we check that each reported position
is the ``key_pos`` of a node of our tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pynats.errors import ConfigError
from pynats.server.config.load import load_file
from pynats.server.config.parser import Node, digest, parse_file

from .reference import Job, Verdict, needs_reference, run_many

CORPUS = Path(__file__).parent / "corpus"

#: Files nats-server rejects, with what it prints when run from CORPUS (order ignored).
NOT_VALID: dict[str, set[str]] = {
    # Syntax-only: upstream test files that fail nats-server's option checks.
    "accounts.conf": {'accounts.conf:44:29: Unknown response type: "singelton"'},
    "dynamic_user.conf": {'dynamic_user.conf:50:22: unknown field "authenticator"'},
    # Include fragments: parsed on their own, their keys are unknown at top level.
    "cncf_includes.conf": {'cncf_includes.conf:2:3: unknown field "cncf"'},
    "gws.conf": {'gws.conf:1:0: unknown field "gateways"'},
    "include_conf_check_b.conf": {'include_conf_check_b.conf:1:0: unknown field "monitoring_port"'},
    "includes/passwords.conf": {
        'includes/passwords.conf:2:1: unknown field "ALICE_PASS"',
        'includes/passwords.conf:3:1: unknown field "BOB_PASS"',
    },
    "includes/users.conf": {'includes/users.conf:5:1: unknown field "users"'},
    "nats_io_includes.conf": {'nats_io_includes.conf:4:1: unknown field "nats"'},
    "synadia_includes.conf": {'synadia_includes.conf:4:3: unknown field "synadia"'},
    "users/cncf_users.conf": {'users/cncf_users.conf:1:0: unknown field "users"'},
    "users/nats_io_users.conf": {'users/nats_io_users.conf:1:0: unknown field "users"'},
    "users/synadia_users.conf": {'users/synadia_users.conf:1:0: unknown field "users"'},
}

FILES = sorted(path.relative_to(CORPUS).as_posix() for path in CORPUS.rglob("*.conf"))


@pytest.fixture
def in_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths in the corpus (certificates, includes) are relative to its top directory."""
    monkeypatch.chdir(CORPUS)


@pytest.fixture(scope="module")
def verdicts() -> dict[str, Verdict]:
    return dict(zip(FILES, run_many(Job(CORPUS, name) for name in FILES), strict=True))


def walk(node: Node) -> Iterator[Node]:
    yield node
    children = node.value.values() if isinstance(node.value, dict) else node.value
    if isinstance(children, list) or isinstance(node.value, dict):
        for child in children:
            assert isinstance(child, Node)
            yield from walk(child)


def test_corpus_size() -> None:
    assert 30 <= len(FILES) <= 60
    assert set(NOT_VALID) <= set(FILES)


def test_readme_lists_every_file() -> None:
    readme = (CORPUS / "README.md").read_text(encoding="utf-8")
    missing = [name for name in FILES if f"`{name}`" not in readme]
    assert not missing


@pytest.mark.usefixtures("in_corpus")
@pytest.mark.parametrize("name", FILES)
def test_file_parses(name: str) -> None:
    root = parse_file(name)
    assert isinstance(root.value, dict)
    assert root.value


@needs_reference
@pytest.mark.interop
@pytest.mark.usefixtures("in_corpus")
@pytest.mark.parametrize("name", FILES)
def test_digest_or_rejection_matches_reference(name: str, verdicts: dict[str, Verdict]) -> None:
    verdict = verdicts[name]
    if name not in NOT_VALID:
        assert verdict.digest is not None, verdict.message
        assert digest(name) == verdict.digest
        return
    assert verdict.digest is None
    assert set(verdict.lines) == NOT_VALID[name]


@pytest.mark.usefixtures("in_corpus")
@pytest.mark.parametrize("name", sorted(NOT_VALID))
def test_rejection_positions_are_key_positions(name: str) -> None:
    key_positions = {str(node.key_pos) for node in walk(parse_file(name)) if node.key_pos}
    for line in NOT_VALID[name]:
        position = line.split(": ", 1)[0]
        assert position in key_positions, line


def test_digest_does_not_depend_on_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS / "users")
    here = digest(os.path.join("..", "included_files_with_includes.conf"))
    monkeypatch.chdir(CORPUS)
    assert here == digest("included_files_with_includes.conf")


@pytest.mark.usefixtures("in_corpus")
@pytest.mark.parametrize("name", FILES)
def test_options_layer_gives_the_reference_verdict(name: str) -> None:
    """The whole load (tree to options), not just the parser: same digest, same errors."""
    if name not in NOT_VALID:
        loaded = load_file(name)
        assert loaded.digest == digest(name)
        assert loaded.warnings == ()
        return
    with pytest.raises(ConfigError) as info:
        load_file(name)
    assert set(str(info.value).splitlines()) == NOT_VALID[name]
