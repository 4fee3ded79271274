"""Checks of the ``accounts`` block's imports against the accounts and their exports.

nats-server wires imports once every account of the block is parsed, and refuses the
file when one names an account that is not there, is not covered by an export to the
importer, or (for a service) maps its subjects in a way it cannot reverse. The errors
are reported at the ``accounts`` key, with nats-server's texts.
"""

from __future__ import annotations

from collections.abc import Iterable

from pynats.server.config.options import Account, Export, Import
from pynats.server.config.parser import Node
from pynats.server.config.values import Problems
from pynats.server.log import go_quote
from pynats.server.permissions import is_subset
from pynats.server.transform import TransformError, compile_import


def exports_allow(exports: Iterable[Export], imp: Import, importer: str) -> bool:
    """Whether one of ``exports`` lets account ``importer`` import ``imp``."""
    subject = imp.subject.encode()
    return any(exp.kind == imp.kind and is_subset(subject, exp.subject.encode()) and (
        not exp.accounts or importer in exp.accounts) for exp in exports)


def check_imports(accounts: Iterable[Account], node: Node, problems: Problems) -> None:
    """Record an error at ``node`` for every import nats-server would refuse."""
    by_name = {account.name: account for account in accounts}
    for account in by_name.values():
        for imp in account.imports:
            reason = _refusal(imp, account.name, by_name)
            if reason:
                problems.error(node, reason)


def _refusal(imp: Import, importer: str, accounts: dict[str, Account]) -> str:
    """Why nats-server refuses ``imp`` ("" when it does not)."""
    exporter = accounts.get(imp.account)
    if exporter is None:
        return f"{go_quote(imp.account)} account not defined for {imp.kind} import"
    adding = f"Error adding {imp.kind} import {go_quote(imp.subject)}"
    if not exports_allow(exporter.exports, imp, importer):
        return f"{adding}: {imp.kind} import not authorized"
    if imp.kind == "service":
        try:
            compile_import(imp.to or imp.subject, imp.subject)
        except TransformError as exc:
            return f"{adding}: {exc}"
    return ""


def duplicate_service(imp: Import, seen: dict[str, Import]) -> str:
    """nats-server's error for a second service import on one local subject, or ""."""
    local = imp.to or imp.subject
    first = seen.setdefault(local, imp)
    if first is imp:
        return ""
    return (f"Duplicate service import subject {go_quote(local)}, previously used in import "
            f"for account {go_quote(first.account)}, subject {go_quote(first.subject)}")


__all__ = ["check_imports", "duplicate_service", "exports_allow"]
