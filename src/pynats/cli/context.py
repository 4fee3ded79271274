"""``pynats context save|select|ls|show|rm``: named connection profiles.

A context is the connection flags of :mod:`pynats.cli.connect` saved as a JSON file
``$XDG_CONFIG_HOME/pynats/context/NAME.json`` with natscli's keys; ``select`` writes
the name to ``$XDG_CONFIG_HOME/pynats/context.txt`` and every later command uses it
unless ``--context`` or ``NATS_CONTEXT`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from pynats.cli.connect import (
    FIELDS,
    ConnSpec,
    check_context_name,
    config_dir,
    context_dir,
    context_from_spec,
    context_path,
    load_context,
    selected_context,
)
from pynats.cli.output import CliError, print_json


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``context`` command group."""
    parser = commands.add_parser("context", help="manage saved connection contexts",
                                 description=__doc__)
    sub = parser.add_subparsers(dest="context_command", metavar="ACTION", required=True)
    save = sub.add_parser("save", parents=[common], help="save the connection flags as NAME",
                          description="Save the connection flags given (on top of the "
                                      "environment) as a named context.")
    save.add_argument("name", metavar="NAME")
    save.add_argument("--description", default="", help="a description shown by ls")
    save.add_argument("--select", action="store_true", help="also select it")
    save.set_defaults(func=cmd_save)
    select = sub.add_parser("select", help="make NAME the default context")
    select.add_argument("name", metavar="NAME")
    select.set_defaults(func=cmd_select)
    ls = sub.add_parser("ls", help="list the saved contexts")
    ls.add_argument("--json", action="store_true", help="JSON output")
    ls.set_defaults(func=cmd_ls)
    show = sub.add_parser("show", help="print a context (default: the selected one)")
    show.add_argument("name", metavar="NAME", nargs="?")
    show.set_defaults(func=cmd_show)
    rm = sub.add_parser("rm", help="delete a context")
    rm.add_argument("name", metavar="NAME")
    rm.set_defaults(func=cmd_rm)


def _flags_spec(args: argparse.Namespace) -> ConnSpec:
    """Flags and environment only: a saved context never copies another one."""
    values: dict[str, Any] = {}
    for field, (_flag, env, _key) in FIELDS.items():
        value = getattr(args, field, None) or os.environ.get(env)
        if value:
            values[field] = value
    return ConnSpec(**values)


def cmd_save(args: argparse.Namespace) -> int:
    """Write the context file."""
    path = context_path(args.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = context_from_spec(_flags_spec(args), args.description)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.chmod(tmp, 0o600)  # it may hold a password
    tmp.replace(path)
    print(f"Saved context {args.name!r} in {path}")
    if args.select:
        return cmd_select(args)
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    """Record the default context."""
    if not context_path(args.name).exists():
        raise CliError(f"unknown context {args.name!r}")
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "context.txt").write_text(check_context_name(args.name) + "\n")
    print(f"Selected context {args.name!r}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """List the contexts, marking the selected one."""
    chosen = selected_context()
    names = sorted(p.stem for p in context_dir().glob("*.json")) if context_dir().is_dir() \
        else []
    rows = []
    for name in names:
        try:
            data = load_context(name)
        except CliError:
            data = {}
        rows.append({"name": name, "selected": name == chosen,
                     "url": data.get("url", ""), "description": data.get("description", "")})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("No contexts saved (pynats context save NAME --server URL ...)")
        return 0
    width = max(len(r["name"]) for r in rows) + 2
    for row in rows:
        mark = "*" if row["selected"] else " "
        print(f"{mark} {row['name']:<{width}}{row['url']:<30} {row['description']}".rstrip())
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print one context's JSON."""
    name = args.name or selected_context()
    if not name:
        raise CliError("no context selected")
    print_json(load_context(name))
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    """Delete a context (and unselect it)."""
    path = context_path(args.name)
    if not path.exists():
        raise CliError(f"unknown context {args.name!r}")
    path.unlink()
    if selected_context() == args.name:
        (config_dir() / "context.txt").unlink()
    print(f"Removed context {args.name!r}")
    return 0
