"""nats-server's command line, parsed with Go ``flag`` package semantics.

Theory of operation
-------------------
Every flag the server understands is one row of :data:`FLAGS`: its names (dashed as
the help shows them; either dash form is accepted), its kind, the
:class:`~pynats.server.config.options.ServerOptions` fields it sets, and its help text.
Adding a flag is adding a row; sections print in :data:`SECTIONS` order, empty ones
are skipped.

:func:`parse_args` walks ``argv`` the way Go's ``flag.FlagSet.Parse`` does:

* ``-name`` and ``--name`` are the same flag; ``-name=value`` or ``-name value``.
* A boolean flag takes a value only with ``=`` (``-T=false``); bare, it means true, so
  in ``-T false`` the word ``false`` is a positional argument.
* A flag needing a value swallows the next argument whatever it looks like
  (``-p -1`` is port -1).
* Parsing stops at ``--`` or at the first argument that is not a flag (``-`` alone
  is not a flag). Later occurrences of a flag override earlier ones.
* Integers follow Go's ``strconv.ParseInt(s, 0, 64)``: sign, ``0x``/``0o``/``0b``
  prefixes, a bare leading ``0`` for octal, ``_`` between digits.

The TLS flags write ``tls.*`` values that :func:`parse_args` gathers into one
:class:`~pynats.server.config.options.TLSOptions` (explicit field ``tls``): any of them
turns TLS on with what the flags say, and ``--tls=false`` turns it off, whatever the
others say (Go visits ``tls`` first). How they lay over a file's ``tls`` block is
``config.load.merge_tls``.

The cluster flags write ``cluster.*`` fields; two need more than a row, as in
nats-server's ``overrideCluster`` and ``RoutesFromStr``:

* ``--cluster`` / ``--cluster_listen`` (one value, the last given wins) is a URL,
  ``nats://[user:pass@]host:port`` with any scheme: it sets the cluster's host, port
  (``-1``: a free one), and user name and password (cleared when the URL has none).
  An empty URL sets port 0, which turns clustering off. A URL Go cannot parse is not an
  error here: nats-server reports it only after loading the configuration file, so it
  goes to :attr:`CommandLine.late_errors` (``config.load.resolve`` raises it).
* ``--routes`` is a comma-separated list of URLs, each trimmed; an empty string means
  no routes (and clears the file's). A route Go cannot parse is a late error too, with
  the message nats-server gives for it in a file (nats-server itself crashes on it).

The check that ``--routes`` has a cluster to solicit from needs the file's options as
well, so it is ``config.load.check_flag_routes``.

Rows whose kind is ``"late"`` (``-DV``, ``-DVV``, ``-VV``) are applied after every
other flag, in name order, and set all their fields to their value: this is what
nats-server does, so ``-DV -D=false`` keeps debug on and ``-D -DV=false`` turns it off.

After the flags, ``-v`` wins over ``-h``; without either, the first positional word
decides: ``version`` or ``help`` (any case), anything else is an error.

Errors raise :class:`FlagError` (a :class:`~pynats.errors.ConfigError`) with Go's
message; nats-server prints that message and the usage text, then exits 0. An
unknown positional word raises a plain :class:`~pynats.errors.ConfigError`
(nats-server prints ``nats-server: unrecognized command: "foo"`` and exits 1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pynats.errors import ConfigError
from pynats.server.config.load import UNSUPPORTED, set_fields
from pynats.server.config.options import DEFAULT_HOST, ServerOptions, TLSOptions
from pynats.server.gotext import go_bool, go_quote
from pynats.server.gourl import parse_url, scan_int, split_host_port

Kind = Literal["str", "int", "bool", "late", "action", "meta"]
Action = Literal["run", "version", "help"]

#: The warning added (once) when a JetStream flag is given.
JETSTREAM_WARNING = UNSUPPORTED["jetstream"]

#: Help sections in the order nats-server prints them; empty ones are skipped.
SECTIONS = (
    "Server Options",
    "Logging Options",
    "JetStream Options",
    "Authorization Options",
    "TLS Options",
    "Cluster Options",
    "Profiling Options",
    "Common Options",
)

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1
#: Column where a help line's description starts (nats-server's layout).
_HELP_COLUMN = 37
#: Short names nats-server's help writes without a space after the comma (-ms,--https_port).
_TIGHT_HELP = frozenset({"-ms", "-sl"})
#: What Go's ``strings.TrimSpace`` trims (``unicode.IsSpace``), for ``--routes``.
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006" \
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


class FlagError(ConfigError):
    """A malformed command line (unknown flag, missing or bad value).

    The message is Go's, e.g. ``flag provided but not defined: -xyz``. nats-server
    prints it to stderr, prints the usage text to stdout and exits 0.
    """


@dataclass(frozen=True, slots=True)
class Flag:
    """One command-line flag: a row of :data:`FLAGS`.

    Attributes:
        names: Spellings as the help shows them, in help order (``("-p", "--port")``);
            either dash form is accepted for each.
        kind: ``str``/``int``/``bool`` set ``fields`` directly; ``late`` is a boolean
            applied after all other flags to every field; ``action`` selects
            :attr:`CommandLine.action` (``fields`` holds the action name); ``meta``
            sets the :class:`CommandLine` attribute named in ``fields`` to the flag's
            string value (``-sl``) or to true (``-t``, which takes no value).
        fields: ServerOptions fields written (or the action for ``action``); a dotted
            name is a field of a nested block (``authorization.username``). ``tls.*``
            and ``cluster.listen`` are gathered into real fields after parsing.
        section: Help section (one of :data:`SECTIONS`).
        text: Help text.
        arg: Placeholder shown after the names in the help (``<port>``).
    """

    names: tuple[str, ...]
    kind: Kind
    fields: tuple[str, ...]
    section: str
    text: str
    arg: str = ""

    @property
    def takes_value(self) -> bool:
        """Whether the flag needs a value (``-p 4222``) rather than being a switch."""
        return self.kind in ("str", "int") or self.fields == ("signal",)


def _f(names: str, kind: Kind, fields: str, section: str, text: str, arg: str = "") -> Flag:
    """Build a :class:`Flag` from space-separated ``names`` and ``fields``."""
    return Flag(tuple(names.split()), kind, tuple(fields.split()), section, text, arg)


_SRV, _LOG, _JS, _COM = "Server Options", "Logging Options", "JetStream Options", "Common Options"
_AUTH, _TLS, _CLU = "Authorization Options", "TLS Options", "Cluster Options"

#: Every supported flag. Adding one is adding a row.
FLAGS: tuple[Flag, ...] = (
    _f("-a --addr --net", "str", "host", _SRV, "Bind to host address (default: 0.0.0.0)", "<host>"),
    _f("-p --port", "int", "port", _SRV, "Use port for clients (default: 4222)", "<port>"),
    _f("-n --name --server_name", "str", "server_name", _SRV, "Server name (default: auto)",
       "<server_name>"),
    _f("-P --pid", "str", "pid_file", _SRV, "File to store PID", "<file>"),
    _f("-m --http_port", "int", "http_port", _SRV, "Use port for http monitoring", "<port>"),
    _f("-ms --https_port", "int", "https_port", _SRV, "Use port for https monitoring",
       "<port>"),
    _f("-c --config", "str", "config_file", _SRV, "Configuration file", "<file>"),
    _f("-t", "meta", "check_config", _SRV, "Test configuration and exit"),
    _f("-sl --signal", "meta", "signal", _SRV,
       "Send signal to nats-server process (ldm, stop, quit, term, reopen, reload)",
       "<signal>[=<pid>]"),
    _f("--client_advertise", "str", "client_advertise", _SRV,
       "Client URL to advertise to other servers", "<string>"),
    _f("--ports_file_dir", "str", "ports_file_dir", _SRV,
       "Creates a ports file in the specified directory (<executable_name>_<pid>.ports).",
       "<dir>"),
    _f("-l --log", "str", "log_file", _LOG, "File to redirect log output", "<file>"),
    _f("-T --logtime", "bool", "logtime", _LOG, "Timestamp log entries (default: true)"),
    _f("--logtime_utc", "bool", "logtime_utc", _LOG,
       "Timestamps in UTC instead of local timezone (default: false)"),
    _f("-s --syslog", "bool", "syslog", _LOG, "Log to syslog or windows event log"),
    _f("-r --remote_syslog", "str", "remote_syslog", _LOG,
       "Syslog server addr (udp://localhost:514)", "<addr>"),
    _f("-D --debug", "bool", "debug", _LOG, "Enable debugging output"),
    _f("-V --trace", "bool", "trace", _LOG, "Trace the raw protocol"),
    _f("-VV", "late", "trace", _LOG, "Verbose trace (same as -V here)"),
    _f("-DV", "late", "debug trace", _LOG, "Debug and trace"),
    _f("-DVV", "late", "debug trace", _LOG, "Debug and verbose trace (same as -DV here)"),
    _f("--log_size_limit", "int", "log_size_limit", _LOG,
       "Logfile size limit (default: auto)", "<limit>"),
    _f("--max_traced_msg_len", "int", "max_traced_msg_len", _LOG,
       "Maximum printable length for traced messages (default: unlimited)", "<len>"),
    _f("-js --jetstream", "bool", "jetstream", _JS, "Accepted, but JetStream is not supported"),
    _f("-sd --store_dir", "str", "store_dir", _JS, "Accepted, but JetStream is not supported",
       "<dir>"),
    _f("--user", "str", "authorization.username", _AUTH, "User required for connections",
       "<user>"),
    _f("--pass", "str", "authorization.password", _AUTH, "Password required for connections",
       "<password>"),
    _f("--auth", "str", "authorization.token", _AUTH,
       "Authorization token required for connections", "<token>"),
    _f("--tls", "bool", "tls.enabled", _TLS, "Enable TLS, do not verify clients (default: false)"),
    _f("--tlscert", "str", "tls.cert_file", _TLS, "Server certificate file", "<file>"),
    _f("--tlskey", "str", "tls.key_file", _TLS, "Private key for server certificate", "<file>"),
    _f("--tlsverify", "bool", "tls.verify", _TLS, "Enable TLS, verify client certificates"),
    _f("--tlscacert", "str", "tls.ca_file", _TLS, "Client certificate CA for verification",
       "<file>"),
    _f("--routes", "str", "cluster.routes", _CLU, "Routes to solicit and connect",
       "<rurl-1, rurl-2>"),
    _f("--cluster", "str", "cluster.listen", _CLU, "Cluster URL for solicited routes",
       "<cluster-url>"),
    _f("--cluster_name", "str", "cluster.name", _CLU,
       "Cluster Name, if not set one will be dynamically generated", "<string>"),
    _f("--no_advertise", "bool", "cluster.no_advertise", _CLU,
       "Do not advertise known cluster information to clients", "<bool>"),
    _f("--cluster_advertise", "str", "cluster.advertise", _CLU,
       "Cluster URL to advertise to other servers", "<string>"),
    _f("--connect_retries", "int", "cluster.connect_retries", _CLU,
       "For implicit routes, number of connect retries", "<number>"),
    _f("--cluster_listen", "str", "cluster.listen", _CLU,
       "Cluster url from which members can solicit routes", "<url>"),
    _f("-h --help", "action", "help", _COM, "Show this message"),
    _f("-v --version", "action", "version", _COM, "Show version"),
)

_BY_NAME: dict[str, Flag] = {name.lstrip("-"): flag for flag in FLAGS for name in flag.names}


@dataclass(frozen=True)
class CommandLine:
    """The result of parsing a command line.

    Attributes:
        options: Defaults overridden by the flags given.
        explicit: Names of ServerOptions fields set on the command line (dotted for
            nested blocks), so that they can override a configuration file loaded later.
        action: ``run``, or ``version``/``help`` when the server should print and exit.
        warnings: Messages to log as warnings at start-up.
        check_config: ``-t``: check the configuration file and exit.
        signal: ``-sl``: the command to send to a running server (``reload=<pid>``...).
        late_errors: Bad flag values that nats-server reports only once the
            configuration file has loaded (a ``--cluster`` URL it cannot parse), with its
            messages; ``config.load.resolve`` raises the first. ``-t``, ``-sl``, ``-h``
            and ``-v`` never see them.
    """

    options: ServerOptions
    explicit: frozenset[str]
    action: Action
    warnings: tuple[str, ...]
    check_config: bool = False
    signal: str = ""
    late_errors: tuple[str, ...] = ()


@dataclass(slots=True)
class _State:
    """What the walk over argv has collected so far."""

    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    late: dict[str, bool] = dataclasses.field(default_factory=dict)
    actions: dict[str, bool] = dataclasses.field(default_factory=dict)
    explicit: set[str] = dataclasses.field(default_factory=set)
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    late_errors: list[str] = dataclasses.field(default_factory=list)


def parse_args(argv: Sequence[str]) -> CommandLine:
    """Parse nats-server's command line (without the program name).

    Args:
        argv: The arguments, e.g. ``sys.argv[1:]``.

    Returns:
        The options, which of their fields were given, the action and any warnings.

    Raises:
        FlagError: A flag is unknown, lacks its value or has a bad one (Go's message).
        ConfigError: A positional word other than ``version`` or ``help``.
    """
    state = _State()
    rest = _parse_flags(list(argv), state)
    _apply_late(state)
    _gather_tls(state)
    _gather_cluster(state)
    options = set_fields(ServerOptions(), state.values)
    action = _action(state.actions, rest)
    return CommandLine(options, frozenset(state.explicit), action, _warnings(options),
                       check_config=bool(state.meta.get("check_config")),
                       signal=str(state.meta.get("signal", "")),
                       late_errors=tuple(state.late_errors))


def _parse_flags(args: list[str], state: _State) -> list[str]:
    """Consume flags from the front of ``args`` into ``state``; return the rest."""
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        del args[0]
        if arg == "--":
            break
        name, value = _split_flag(arg)
        flag = _BY_NAME.get(name)
        if flag is None:
            raise FlagError(f"flag provided but not defined: -{name}")
        if value is None and flag.takes_value:
            value = _take_value(args, name)
        _set(state, flag, name, value)
    return args


def _split_flag(arg: str) -> tuple[str, str | None]:
    """Split ``-name=value`` / ``--name`` into the name and the value (None if none)."""
    body = arg[2:] if arg.startswith("--") else arg[1:]
    if not body or body[0] in "-=":
        raise FlagError(f"bad flag syntax: {arg}")
    name, sep, value = body.partition("=")
    return name, value if sep else None


def _take_value(args: list[str], name: str) -> str:
    """Pop the next argument as the value of flag ``name``."""
    if not args:
        raise FlagError(f"flag needs an argument: -{name}")
    return args.pop(0)


def _set(state: _State, flag: Flag, name: str, value: str | None) -> None:
    """Record one occurrence of ``flag`` (written as ``name``) with its raw value."""
    if flag.kind == "meta":
        state.meta[flag.fields[0]] = value if flag.fields == ("signal",) else (
            True if value is None else _convert_bool(value, name))
        return
    if flag.kind == "str":
        converted: object = value
    elif flag.kind == "int":
        converted = _convert_int(value or "", name)
    else:
        converted = True if value is None else _convert_bool(value, name)
    if flag.kind == "action":
        state.actions[flag.fields[0]] = bool(converted)
        return
    if flag.kind == "late":
        state.late[flag.names[0].lstrip("-")] = bool(converted)
    else:
        state.values.update(dict.fromkeys(flag.fields, converted))
    state.explicit.update(flag.fields)


def _apply_late(state: _State) -> None:
    """Apply ``-DV``-style flags after the others, in name order (Go's ``Visit``)."""
    for name in sorted(state.late):
        state.values.update(dict.fromkeys(_BY_NAME[name].fields, state.late[name]))


def _gather_tls(state: _State) -> None:
    """Turn the ``tls.*`` flag values into one ``tls`` field (None for ``--tls=false``)."""
    given = {name.removeprefix("tls."): state.values.pop(name)
             for name in list(state.values) if name.startswith("tls.")}
    if not given:
        return
    enabled = given.pop("enabled", True)
    state.values["tls"] = TLSOptions(**given) if enabled else None
    state.explicit = {name for name in state.explicit if not name.startswith("tls.")}
    state.explicit.add("tls")


def _gather_cluster(state: _State) -> None:
    """Turn the ``--cluster`` URL and the ``--routes`` list into cluster fields."""
    if "cluster.listen" in state.values:
        state.explicit.discard("cluster.listen")
        _set_cluster_url(state, str(state.values.pop("cluster.listen")))
    if "cluster.routes" in state.values:
        routes = routes_from_str(str(state.values["cluster.routes"]))
        state.values["cluster.routes"] = routes
        state.late_errors.extend(_route_errors(routes))


def _set_cluster_url(state: _State, url: str) -> None:
    """Record the fields ``--cluster url`` sets, or the error nats-server will report."""
    if not url:
        fields: dict[str, object] = {"cluster.port": 0}
    else:
        try:
            host, port, username, password = parse_cluster_url(url)
        except ValueError as exc:
            state.late_errors.append(str(exc))
            return
        fields = {"cluster.host": host, "cluster.port": port,
                  "cluster.username": username, "cluster.password": password}
    state.values.update(fields)
    state.explicit.update(fields)


def _route_errors(routes: Sequence[str]) -> Iterator[str]:
    """The routes Go's ``url.Parse`` refuses, in the words of a file's ``routes``.

    nats-server keeps such a route as a nil URL and crashes when it dials it; refusing
    to start is the closest sane behaviour.
    """
    for route in routes:
        try:
            parse_url(route)
        except ValueError:
            yield f"error parsing route url [{go_quote(route)}]"


def parse_cluster_url(text: str) -> tuple[str, int, str, str]:
    """Read ``--cluster``'s URL as nats-server does (``overrideCluster``).

    Args:
        text: ``nats://[user:pass@]host:port``; any scheme, or none (``//host:port``),
            is accepted, and a path, query or fragment is ignored.

    Returns:
        The host (all interfaces when empty), the port (``-1`` when the text ends with
        ``:-1``: a free port), and the user name and password ("" without user
        information).

    Raises:
        ValueError: nats-server's message: Go's ``url.Parse``, ``net.SplitHostPort`` or
            ``fmt.Sscan`` error, or ``expected cluster password to be set``.
    """
    random = text.endswith(":-1")
    if random:  # url.Parse refuses a negative port: Go parses ":0" and puts -1 back
        text = text[:-3] + ":0"
    url = parse_url(text)
    host, port = split_host_port(url.host)
    number = -1 if random else scan_int(port)
    if url.username is None:
        return host or DEFAULT_HOST, number, "", ""
    if url.password is None:
        raise ValueError("expected cluster password to be set")
    return host or DEFAULT_HOST, number, url.username, url.password


def routes_from_str(text: str) -> tuple[str, ...]:
    """Split ``--routes`` as nats-server does (``RoutesFromStr``).

    Args:
        text: Comma-separated route URLs.

    Returns:
        Each URL with surrounding white space trimmed, empty ones kept (``","`` is two
        empty routes); an empty ``text`` is no route at all.
    """
    if not text:
        return ()
    return tuple(route.strip(_GO_SPACE) for route in text.split(","))


def _action(actions: dict[str, bool], rest: list[str]) -> Action:
    """Decide the action: ``-v`` beats ``-h``; otherwise the first positional word."""
    if actions.get("version"):
        return "version"
    if actions.get("help"):
        return "help"
    if not rest:
        return "run"
    word = rest[0].lower()
    if word in ("version", "help"):
        return "version" if word == "version" else "help"
    raise ConfigError(f"unrecognized command: {go_quote(rest[0])}")


def _warnings(options: ServerOptions) -> tuple[str, ...]:
    """Start-up warnings implied by the options (JetStream flags, once)."""
    if options.jetstream or options.store_dir:
        return (JETSTREAM_WARNING,)
    return ()


def _convert_bool(value: str, name: str) -> bool:
    """Go's ``strconv.ParseBool`` as the ``flag`` package reports it."""
    decoded = go_bool(value)
    if decoded is not None:
        return decoded
    raise FlagError(f"invalid boolean value {go_quote(value)} for -{name}: parse error")


def _convert_int(value: str, name: str) -> int:
    """Go's ``strconv.ParseInt(value, 0, 64)`` as the ``flag`` package reports it."""
    try:
        return parse_go_int(value)
    except ValueError as exc:
        raise FlagError(f"invalid value {go_quote(value)} for flag -{name}: {exc}") from None


def parse_go_int(text: str) -> int:
    """Parse an integer like Go's ``strconv.ParseInt(text, 0, 64)``.

    Args:
        text: Optional sign, then decimal, ``0x``/``0o``/``0b`` prefixed, or ``0``-led
            octal digits, with ``_`` allowed between digits.

    Returns:
        The value.

    Raises:
        ValueError: ``parse error`` or ``value out of range`` (Go's wording).
    """
    negative = text[:1] == "-"
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body:
        raise ValueError("parse error")
    base, digits = _go_base(body)
    magnitude = _go_digits(digits, base)
    if "_" in digits and not _underscores_ok(body):
        raise ValueError("parse error")
    value = -magnitude if negative else magnitude
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError("value out of range")
    return value


def _go_base(body: str) -> tuple[int, str]:
    """The base a Go base-0 literal selects, and its digits after the prefix."""
    if body[0] != "0":
        return 10, body
    prefix = body[1:2].lower()
    if len(body) >= 3 and prefix in ("b", "o", "x"):
        return {"b": 2, "o": 8, "x": 16}[prefix], body[2:]
    return 8, body[1:]


def _go_digits(digits: str, base: int) -> int:
    """Accumulate ``digits`` in ``base``; Go reports overflow before later bad digits."""
    value = 0
    for char in digits:
        if char == "_":
            continue
        digit = int(char, 36) if char.isascii() and char.isalnum() else base
        if digit >= base:
            raise ValueError("parse error")
        value = value * base + digit
        if value > _UINT64_MAX:
            raise ValueError("value out of range")
    return value


def _underscores_ok(body: str) -> bool:
    """Go's rule: ``_`` only between digits, or right after a base prefix."""
    saw, start = "^", 0
    hex_digits = len(body) >= 2 and body[0] == "0" and body[1].lower() == "x"
    if len(body) >= 2 and body[0] == "0" and body[1].lower() in "box":
        saw, start = "0", 2
    for char in body[start:]:
        if char.isdigit() or (hex_digits and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        else:
            if saw == "_":
                return False
            saw = "!"
    return saw != "_"


def usage(program: str = "nats-server") -> str:
    """The ``-h`` text, laid out like nats-server's, listing the supported flags.

    Args:
        program: The name shown after ``Usage:``.

    Returns:
        The text, beginning with a blank line and ending with a newline.
    """
    parts = [f"\nUsage: {program} [options]\n"]
    for section in SECTIONS:
        lines = [line for flag in FLAGS if flag.section == section for line in _help_lines(flag)]
        if lines:
            parts.append(f"\n{section}:\n" + "".join(line + "\n" for line in lines))
    return "".join(parts)


def _help_lines(flag: Flag) -> Iterator[str]:
    """The help line(s) of one flag; overlong name lists wrap like ``-n``'s does."""
    spelled = list(flag.names)
    arg = f" {flag.arg}" if flag.arg else ""
    indent = " " * (8 if spelled[0].startswith("--") else 4)
    first_sep = "," if spelled[0] in _TIGHT_HELP else ", "
    left = indent + first_sep.join(spelled[:2]) + "".join(", " + s for s in spelled[2:]) + arg
    if len(left) > _HELP_COLUMN - 2 and len(spelled) > 1:
        yield indent + ", ".join(spelled[:-1])
        left = " " * 8 + spelled[-1] + arg
    yield left.ljust(_HELP_COLUMN - 1) + " " + flag.text
