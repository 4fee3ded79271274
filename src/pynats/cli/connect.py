"""Connection options shared by every command, and named contexts.

Theory of operation
-------------------
natscli resolves a connection in layers, and so do we, lowest first:

1. defaults (``nats://127.0.0.1:4222``);
2. a *context*: a JSON file ``$XDG_CONFIG_HOME/pynats/context/NAME.json`` (default
   ``~/.config/pynats/context/``), chosen by ``--context``, ``NATS_CONTEXT`` or the name
   saved by ``pynats context select`` in ``$XDG_CONFIG_HOME/pynats/context.txt``. Its
   keys are natscli's (``url``, ``user``, ``password``, ``token``, ``creds``, ``nkey``,
   ``cert``, ``key``, ``ca``, ``description``) so a natscli context file can be copied in;
3. environment variables ``NATS_URL``, ``NATS_USER``, ``NATS_PASSWORD``, ``NATS_TOKEN``,
   ``NATS_CREDS``, ``NATS_NKEY``, ``NATS_CERT``, ``NATS_KEY``, ``NATS_CA``;
4. command-line flags.

The result is a :class:`ConnSpec`: plain strings, so it can be saved as a context and
pickled to benchmark worker processes, each of which builds its own
:class:`~pynats.client.ConnectOptions` (an ``SSLContext`` cannot cross a process
boundary). :func:`client_error` turns library exceptions into one-line
:class:`~pynats.cli.output.CliError`\\ s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pynats import errors
from pynats.cli.output import CliError
from pynats.client import Client, ConnectOptions, ReconnectOptions, connect

DEFAULT_URL = "nats://127.0.0.1:4222"

#: ConnSpec field -> (flag, environment variable, natscli context key)
FIELDS: dict[str, tuple[str, str, str]] = {
    "url": ("--server", "NATS_URL", "url"),
    "user": ("--user", "NATS_USER", "user"),
    "password": ("--password", "NATS_PASSWORD", "password"),
    "token": ("--token", "NATS_TOKEN", "token"),
    "creds": ("--creds", "NATS_CREDS", "creds"),
    "nkey": ("--nkey", "NATS_NKEY", "nkey"),
    "tlscert": ("--tlscert", "NATS_CERT", "cert"),
    "tlskey": ("--tlskey", "NATS_KEY", "key"),
    "tlsca": ("--tlsca", "NATS_CA", "ca"),
}


@dataclass(frozen=True, slots=True)
class ConnSpec:
    """Where and how to connect, as the user gave it (all strings, picklable).

    Attributes:
        url: comma-separated server URLs.
        user: user name.
        password: password.
        token: authentication token.
        creds: path of a ``.creds`` file.
        nkey: path of a file holding an nkey seed.
        tlscert: client certificate (PEM file).
        tlskey: client certificate's private key (PEM file).
        tlsca: CA certificates to verify the server with (PEM file).
        timeout: connect timeout in seconds.
        name: client name shown in the server's monitoring.
    """

    url: str = DEFAULT_URL
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    nkey: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None
    tlsca: str | None = None
    timeout: float = 5.0
    name: str = "pynats cli"

    @property
    def servers(self) -> list[str]:
        """The server URLs."""
        return [u.strip() for u in self.url.split(",") if u.strip()]


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the shared connection flags to ``parser``.

    Defaults are suppressed so that the same flags can be given before or after the
    command name (``pynats -s URL pub ...`` and ``pynats pub -s URL ...``).
    """
    group = parser.add_argument_group("connection options")
    sup = argparse.SUPPRESS
    group.add_argument("-s", "--server", dest="url", default=sup, metavar="URL",
                       help="NATS server URLs, comma separated (env NATS_URL)")
    group.add_argument("--user", default=sup, help="user name (env NATS_USER)")
    group.add_argument("--password", default=sup, help="password (env NATS_PASSWORD)")
    group.add_argument("--token", default=sup, help="authentication token (env NATS_TOKEN)")
    group.add_argument("--creds", default=sup, metavar="FILE",
                       help="user credentials (.creds) file (env NATS_CREDS)")
    group.add_argument("--nkey", default=sup, metavar="FILE",
                       help="file holding a user nkey seed (env NATS_NKEY)")
    group.add_argument("--tlscert", default=sup, metavar="FILE",
                       help="TLS client certificate (env NATS_CERT)")
    group.add_argument("--tlskey", default=sup, metavar="FILE",
                       help="TLS client key (env NATS_KEY)")
    group.add_argument("--tlsca", default=sup, metavar="FILE",
                       help="CA to verify the server's certificate (env NATS_CA)")
    group.add_argument("--context", default=sup, metavar="NAME",
                       help="use this saved context (env NATS_CONTEXT)")
    group.add_argument("--connect-timeout", dest="connect_timeout", default=sup,
                       type=float, metavar="SECONDS", help="connect timeout (default 5)")


# -- contexts -------------------------------------------------------------------------------
def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/pynats`` (default ``~/.config/pynats``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "pynats"


def context_dir() -> Path:
    """The directory holding one ``NAME.json`` per context."""
    return config_dir() / "context"


def check_context_name(name: str) -> str:
    """Reject names that cannot be a file name (``/``, ``..``, empty)."""
    if not name or name.startswith(".") or any(c in name for c in "/\\\0"):
        raise CliError(f"invalid context name {name!r}")
    return name


def context_path(name: str) -> Path:
    """The file of context ``name``."""
    return context_dir() / f"{check_context_name(name)}.json"


def selected_context() -> str | None:
    """The name saved by ``pynats context select``, if any."""
    try:
        name = (config_dir() / "context.txt").read_text().strip()
    except OSError:
        return None
    return name or None


def load_context(name: str) -> dict[str, Any]:
    """The JSON object of context ``name``.

    Raises:
        CliError: no such context, or the file is not a JSON object.
    """
    path = context_path(name)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"unknown context {name!r} (no {path})") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read context {name!r}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"context {name!r} ({path}) is not a JSON object")
    return data


def spec_from_args(args: argparse.Namespace) -> ConnSpec:
    """Resolve context, environment and flags into a :class:`ConnSpec`.

    Raises:
        CliError: the named context does not exist or cannot be read.
    """
    values: dict[str, Any] = {}
    name = getattr(args, "context", None) or os.environ.get("NATS_CONTEXT") or \
        selected_context()
    if name:
        ctx = load_context(name)
        for field, (_flag, _env, key) in FIELDS.items():
            if isinstance(ctx.get(key), str) and ctx[key]:
                values[field] = ctx[key]
    for field, (_flag, env, _key) in FIELDS.items():
        if os.environ.get(env):
            values[field] = os.environ[env]
    for field in FIELDS:
        value = getattr(args, field, None)
        if value is not None:
            values[field] = value
    timeout = getattr(args, "connect_timeout", None)
    if timeout is not None:
        if timeout <= 0:
            raise CliError("--connect-timeout must be positive")
        values["timeout"] = timeout
    return ConnSpec(**values)


def context_from_spec(spec: ConnSpec, description: str = "") -> dict[str, str]:
    """The natscli-style JSON object saved for ``spec`` (empty fields left out)."""
    data = {"description": description} if description else {}
    for field, (_flag, _env, key) in FIELDS.items():
        value = getattr(spec, field)
        if value:
            data[key] = value
    return data


# -- connecting -----------------------------------------------------------------------------
def _read_nkey(path: str) -> str:
    try:
        lines = Path(path).read_text().split()
    except OSError as exc:
        raise CliError(f"cannot read nkey file {path}: {exc.strerror or exc}") from None
    for line in lines:
        if line.startswith("SU"):
            return line
    raise CliError(f"no user nkey seed (SU...) in {path}")


def _tls_context(spec: ConnSpec) -> ssl.SSLContext | None:
    if not (spec.tlsca or spec.tlscert or spec.tlskey):
        return None
    if bool(spec.tlscert) != bool(spec.tlskey):
        raise CliError("--tlscert and --tlskey go together")
    try:
        ctx = ssl.create_default_context(cafile=spec.tlsca)
        if spec.tlscert and spec.tlskey:
            ctx.load_cert_chain(spec.tlscert, spec.tlskey)
    except (OSError, ssl.SSLError) as exc:
        raise CliError(f"cannot load TLS files: {exc}") from None
    return ctx


def connect_options(spec: ConnSpec, **overrides: Any) -> ConnectOptions:
    """The client options for ``spec``.

    Raises:
        CliError: a file cannot be read or a value is invalid.
    """
    fields: dict[str, Any] = {
        "name": spec.name, "user": spec.user, "password": spec.password,
        "token": spec.token, "creds_file": spec.creds,
        "nkey_seed": _read_nkey(spec.nkey) if spec.nkey else None,
        "tls": _tls_context(spec), "connect_timeout": spec.timeout,
        "randomize": False,
    }
    fields.update(overrides)
    try:
        return ConnectOptions.build(spec.servers or [DEFAULT_URL], **fields)
    except errors.ConfigError as exc:
        raise CliError(str(exc)) from None


async def open_client(spec: ConnSpec, *, reconnect: bool = True, **overrides: Any) -> Client:
    """Connect as ``spec`` says.

    Args:
        spec: the connection.
        reconnect: keep reconnecting when the connection drops (for long-running
            commands such as ``sub`` and ``reply``).
        **overrides: further ConnectOptions fields.

    Raises:
        CliError: the server is down, refused the credentials, or did not answer.
    """
    opts = connect_options(spec, reconnect=ReconnectOptions(enabled=reconnect,
                                                            max_attempts=-1), **overrides)
    try:
        return await connect(options=opts)
    except BaseException as exc:
        error = client_error(exc, spec)
        if error is None:
            raise
        raise error from None


def client_error(exc: BaseException, spec: ConnSpec | None = None) -> CliError | None:
    """A one-line :class:`CliError` for a library error; None for anything unexpected."""
    where = spec.url if spec is not None else "the server"
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, errors.AuthorizationError):
        return CliError(f"{where}: authorization refused: {exc}")
    if isinstance(exc, errors.NoServersError):
        reasons = "; ".join(f"{url}: {_reason(err)}" for url, err in exc.errors) or str(exc)
        if any(isinstance(err, errors.AuthorizationError) for _u, err in exc.errors):
            return CliError(f"authorization refused: {reasons}")
        return CliError(f"could not connect to NATS: {reasons}")
    if isinstance(exc, errors.NoRespondersError):
        return CliError(f"no responders are available on {exc.subject!r}")
    if isinstance(exc, TimeoutError):
        return CliError(f"timeout: {exc}" if str(exc) else "timeout")
    if isinstance(exc, errors.SecureConnectionError | ssl.SSLError):
        return CliError(f"TLS: {exc}")
    if isinstance(exc, errors.PynatsError | OSError):
        return CliError(str(exc) or type(exc).__name__)
    return None


def _reason(err: BaseException) -> str:
    if isinstance(err, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return str(err) or type(err).__name__


def replace_spec(spec: ConnSpec, **changes: Any) -> ConnSpec:
    """``spec`` with some fields changed."""
    return dataclasses.replace(spec, **changes)
