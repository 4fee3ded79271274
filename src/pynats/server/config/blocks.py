"""Configuration blocks: authorization, permissions, accounts, TLS, cluster, websocket.

Theory of operation
-------------------
Each ``parse_*`` function takes one block of the generic tree (a :class:`Node` holding a
map) and returns the frozen dataclass of ``options.py`` for it, recording problems in a
:class:`~pynats.server.config.values.Problems` instead of raising, so that a file with
several mistakes reports all of them (as nats-server does). Keys are matched
case-insensitively with nats-server's aliases (``user``/``username``, ``pub``/
``publish``/``import``...). Unknown keys inside these blocks are errors, as in
nats-server; a type error in one key is reported at that value and the rest of the
block still loads.

Passwords and tokens are kept as written: a bcrypt hash stays a hash, and the
authentication code compares against it (SERVER.md section 10).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pynats.nkeys import Prefix, is_valid_public_key
from pynats.protocol.subjects import is_valid_subscription
from pynats.server import tls as tls_policy
from pynats.server.config.imports import check_imports, duplicate_service
from pynats.server.config.options import (
    DEFAULT_RESPONSE_THRESHOLD,
    Account,
    Authorization,
    ClusterOptions,
    Export,
    Import,
    Permissions,
    ResponsePermission,
    RoutePermissions,
    SubjectPermission,
    TLSOptions,
    User,
    WebsocketOptions,
)
from pynats.server.config.parser import Node
from pynats.server.config.values import (
    Mismatch,
    Problems,
    duration_or_seconds,
    go_type,
    parse_duration,
    parse_listen,
    want_bool,
    want_int,
    want_list,
    want_map,
    want_seconds,
    want_str,
    want_strings,
)
from pynats.server.log import go_quote

#: Default ``allow_responses`` limits (``DEFAULT_ALLOW_RESPONSE_*``).
DEFAULT_RESPONSE_MAX_MSGS = 1
DEFAULT_RESPONSE_EXPIRES = 0.0
#: Service export response types, by their lower-case spelling.
RESPONSE_TYPES = {"singleton": "Singleton", "stream": "Stream", "chunked": "Chunked"}
#: Account names nats-server reserves.
RESERVED_ACCOUNTS = frozenset({"$G"})


def entries(node: Node) -> list[tuple[str, Node]]:
    """The ``(lowercased key, value)`` pairs of a map node, in file order."""
    return [(key.lower(), value) for key, value in want_map(node).items()]


# -- permissions -----------------------------------------------------------------------

def parse_permissions(node: Node, problems: Problems) -> Permissions | None:
    """A ``permissions`` block (user, default or account permissions)."""
    if not isinstance(node.value, dict):
        problems.error(node, f"Expected permissions to be a map/struct, got {_go_plain(node)}")
        return None
    publish: SubjectPermission | None = None
    subscribe: SubjectPermission | None = None
    responses: ResponsePermission | None = None
    for key, value in entries(node):
        if key in ("pub", "publish", "import"):
            publish = _subject_permission(value, problems) or publish
        elif key in ("sub", "subscribe", "export"):
            subscribe = _subject_permission(value, problems) or subscribe
        elif key in ("publish_allow_responses", "allow_responses"):
            responses = _allow_responses(value, problems)
        elif not value.used_variable:
            problems.error(value, f"Unknown field {go_quote(key)} parsing permissions")
    if responses is not None and publish is None:
        publish = SubjectPermission()
    return Permissions(publish, subscribe, responses)


def _subject_permission(node: Node, problems: Problems) -> SubjectPermission | None:
    if not isinstance(node.value, dict):
        # nats-server checks the old style (a subject or a list) on the bare value, so
        # its messages carry no position.
        subjects = _subjects(node, problems, located=False)
        return None if subjects is None else SubjectPermission(allow=subjects)
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    for key, value in entries(node):
        if key == "allow":
            allow = _subjects(value, problems) or ()
        elif key == "deny":
            deny = _subjects(value, problems) or ()
        elif not value.used_variable:
            problems.error(value, f"Unknown field name {go_quote(key)} parsing subject "
                                  "permissions, only 'allow' or 'deny' are permitted")
    return SubjectPermission(allow, deny)


def _subjects(node: Node, problems: Problems, *, located: bool = True
              ) -> tuple[str, ...] | None:
    value = node.value
    at = node if located else None
    if isinstance(value, str):
        subjects: list[str] = [value]
    elif isinstance(value, list):
        subjects = []
        for item in value:
            if not isinstance(item.value, str):
                problems.error(item, "Subject in permissions array cannot be cast to string")
                return None
            subjects.append(item.value)
    else:
        problems.error(at, "Expected subject permissions to be a subject, or array of "
                             f"subjects, got {_go_type_name(node)}")
        return None
    for subject in subjects:
        if not is_valid_subscription(subject.split(" ")[0].encode()):
            problems.error(at, f"subject {go_quote(subject)} is not a valid subject")
            return None
    return tuple(subjects)


def _allow_responses(node: Node, problems: Problems) -> ResponsePermission | None:
    if isinstance(node.value, bool):
        return ResponsePermission() if node.value else None
    if not isinstance(node.value, dict):
        problems.error(node, "error parsing response permissions, expected a boolean or a map")
        return None
    max_msgs, expires = DEFAULT_RESPONSE_MAX_MSGS, DEFAULT_RESPONSE_EXPIRES
    for key, value in entries(node):
        if key in ("max", "max_msgs", "max_messages", "max_responses"):
            max_msgs = want_int(value) or max_msgs
        elif key in ("expires", "expiration", "ttl"):
            if not isinstance(value.value, str):
                problems.error(value, "error parsing expires, not a duration string")
                return None
            try:
                expires = parse_duration(value.value) or expires
            except ValueError as exc:
                problems.error(value, f"error parsing expires: {exc}")
                return None
        elif not value.used_variable:
            problems.error(value, f"Unknown field {go_quote(key)} parsing permissions")
    return ResponsePermission(max_msgs, expires)


# -- users and authorization ---------------------------------------------------------------

_USER_STRINGS = {"nkey": "nkey", "user": "username", "username": "username",
                 "pass": "password", "password": "password"}
_AUTH_STRINGS = {"user": "username", "username": "username", "pass": "password",
                 "password": "password", "token": "token"}

def parse_users(node: Node, problems: Problems, account: str = "") -> tuple[User, ...]:
    """A ``users`` list: password users and nkey users."""
    if not isinstance(node.value, list):
        problems.error(node, f"Expected users field to be an array, got {_go_plain(node)}")
        return ()
    users: list[User] = []
    for item in node.value:
        if not isinstance(item.value, dict):
            problems.error(item, f"Expected user entry to be a map/struct, got {_go_plain(item)}")
            continue
        user = _user(item, problems, account)
        if user is not None:
            users.append(user)
    return tuple(users)


def _user(node: Node, problems: Problems, account: str) -> User | None:
    fields: dict[str, Any] = {"account": account}
    for key, value in entries(node):
        if key in _USER_STRINGS:
            problems.read_into(fields, _USER_STRINGS[key], want_str, value)
        elif key in ("permission", "permissions", "authorization"):
            fields["permissions"] = parse_permissions(value, problems)
        elif key == "allowed_connection_types":
            problems.read_into(fields, "allowed_connection_types", want_strings, value)
        elif key not in ("proxy_required",):
            problems.unknown(key, value)
    user = User(**fields)
    # nats-server reports these at the entry's last key, the last token it read.
    last = list(want_map(node).values())[-1] if node.value else node
    if not user.nkey and not user.username:
        problems.error(last, "User entry requires a user")
        return None
    if user.nkey and not is_valid_public_key(user.nkey, Prefix.USER):
        problems.error(last, "Not a valid public nkey for a user")
        return None
    if user.nkey and (user.username or user.password):
        problems.error(last, "Nkey users do not take usernames or passwords")
        return None
    return user


def parse_authorization(node: Node, problems: Problems) -> Authorization:
    """An ``authorization`` block (client port, cluster or websocket)."""
    fields: dict[str, Any] = {}
    users: tuple[User, ...] | None = None
    for key, value in entries(node):
        if key in _AUTH_STRINGS:
            problems.read_into(fields, _AUTH_STRINGS[key], want_str, value)
        elif key == "timeout":
            fields["timeout"] = _auth_timeout(value)
        elif key == "users":
            users = parse_users(value, problems)
        elif key in ("default_permission", "default_permissions", "permissions"):
            fields["default_permissions"] = parse_permissions(value, problems)
        elif key != "auth_callout":
            problems.unknown(key, value)
    auth = Authorization(**fields, users=_with_defaults(users or (), fields))
    _check_authorization(node, auth, users is not None, problems)
    return auth


def _auth_timeout(node: Node) -> float:
    value = node.value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return 1.0
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return 1.0


def _with_defaults(users: tuple[User, ...], fields: dict[str, Any]) -> tuple[User, ...]:
    defaults = fields.get("default_permissions")
    if defaults is None:
        return users
    return tuple(u if u.permissions is not None else _replace_perms(u, defaults) for u in users)


def _replace_perms(user: User, permissions: Permissions) -> User:
    return User(user.username, user.password, user.nkey, permissions,
                user.allowed_connection_types, user.account)


def _check_authorization(node: Node, auth: Authorization, has_users: bool,
                         problems: Problems) -> None:
    if (auth.username or auth.password) and auth.token:
        problems.error(node, "Cannot have a user/pass and token")
    elif has_users and auth.username:
        problems.error(node, "Can not have a single user/pass and a users array")
    elif has_users and auth.token:
        problems.error(node, "Can not have a token and a users array")
    seen: set[str] = set()
    for user in auth.users:
        name = user.nkey or user.username
        if name in seen:
            kind = "nkey" if user.nkey else "user"
            problems.error(node, f"Duplicate {kind} {go_quote(name)} detected")
        seen.add(name)


# -- accounts --------------------------------------------------------------------------

def parse_accounts(node: Node, problems: Problems) -> tuple[Account, ...]:
    """The ``accounts`` block: a list of names or a map of account definitions."""
    if isinstance(node.value, list):
        return tuple(Account(want_str(item)) for item in node.value
                     if _account_name_ok(item, want_str(item), problems))
    accounts: list[Account] = []
    errors = len(problems.errors)
    for name, value in want_map(node).items():
        if value.used_variable:
            continue
        if not isinstance(value.value, dict):
            problems.error(value, "Expected map entries for accounts")
            continue
        if _account_name_ok(value, name, problems):
            accounts.append(_account(name, value, problems))
    if len(problems.errors) == errors:  # nats-server wires imports of a clean block only
        check_imports(accounts, node, problems)
    return tuple(accounts)


def _account_name_ok(node: Node, name: str, problems: Problems) -> bool:
    if name in RESERVED_ACCOUNTS:
        problems.error(node, f"{go_quote(name)} is a Reserved Account")
        return False
    return True


def _account(name: str, node: Node, problems: Problems) -> Account:
    users: tuple[User, ...] = ()
    exports: list[Export] = []
    imports: list[Import] = []
    mappings: tuple[tuple[str, str], ...] = ()
    defaults: Permissions | None = None
    for key, value in entries(node):
        if key == "users":
            users = parse_users(value, problems, account=name)
        elif key == "exports":
            exports.extend(_exports(value, problems))
        elif key == "imports":
            imports.extend(_imports(value, problems))
        elif key in ("mappings", "maps"):
            mappings = parse_mappings(value, problems)
        elif key == "default_permissions":
            defaults = parse_permissions(value, problems)
        elif key not in ("nkey", "jetstream", "limits"):
            problems.unknown(key, value)
    if defaults is not None:
        users = _with_defaults(users, {"default_permissions": defaults})
    return Account(name, users, tuple(exports), tuple(imports), mappings)


def _exports(node: Node, problems: Problems) -> list[Export]:
    found: list[Export] = []
    for item in want_list(node):
        fields = {key.lower(): value for key, value in want_map(item).items()}
        kind: Literal["stream", "service"] = "service" if "service" in fields else "stream"
        if kind not in fields:
            problems.error(item, "Expected a stream or service export")
            continue
        accounts = want_strings(fields["accounts"]) if "accounts" in fields else ()
        response = _response_type(fields, problems)
        threshold = _response_threshold(fields, problems)
        if response is not None and threshold is not None:
            found.append(Export(kind, want_str(fields[kind]), accounts, response, threshold))
    return found


def _response_threshold(fields: dict[str, Node], problems: Problems) -> float | None:
    """A service export's ``response_threshold``; None (with an error) if unparseable."""
    node = fields.get("response_threshold")
    if node is None:
        return DEFAULT_RESPONSE_THRESHOLD
    text = want_str(node)
    try:
        return parse_duration(text)
    except ValueError:
        problems.error(node, "Expected response threshold to be a parseable time duration, "
                             f"got {go_quote(text)}")
        return None


def _response_type(fields: dict[str, Node], problems: Problems) -> str | None:
    """A service export's ``response``/``response_type``; None (with an error) if unknown."""
    node = fields.get("response_type", fields.get("response"))
    if node is None:
        return "Singleton"
    text = want_str(node)
    canonical = RESPONSE_TYPES.get(text.lower())
    if canonical is None:
        problems.error(node, f"Unknown response type: {go_quote(text)}")
    return canonical


def _imports(node: Node, problems: Problems) -> list[Import]:
    found: list[Import] = []
    services: dict[str, Import] = {}
    for item in want_list(node):
        fields = want_map(item)
        kind: Literal["stream", "service"] = "service" if "service" in fields else "stream"
        if kind not in fields:
            problems.error(item, "Expected a stream or service import")
            continue
        source = want_map(fields[kind])
        if "account" not in source:
            problems.error(item, "Expect an account name and a subject")
            continue
        subject = want_str(source["subject"]) if "subject" in source else ""
        prefix = want_str(fields["prefix"]) if "prefix" in fields else ""
        to = want_str(fields["to"]) if "to" in fields else ""
        share = want_bool(fields["share"]) if "share" in fields else False
        imp = Import(kind, want_str(source["account"]), subject, prefix, to, share)
        duplicate = duplicate_service(imp, services) if kind == "service" else ""
        if duplicate:
            problems.error(item, duplicate)
            continue
        found.append(imp)
    return found


def parse_mappings(node: Node, problems: Problems) -> tuple[tuple[str, str], ...]:
    """``mappings``: subject to destination (weighted destinations are not supported)."""
    found: list[tuple[str, str]] = []
    for subject, value in want_map(node).items():
        if not is_valid_subscription(subject.encode()):
            problems.error(node, f"Subject {go_quote(subject)} is not a valid subject")
        elif isinstance(value.value, str):
            found.append((subject, value.value))
        else:
            problems.error(value, "weighted subject mappings are not supported by pynats")
    return tuple(found)


# -- TLS -------------------------------------------------------------------------------

_TLS_BOOLS = {"verify": "verify", "verify_and_map": "verify_and_map",
              "verify_cert_and_check_known_urls": "verify_cert_and_check_known_urls",
              "insecure": "insecure"}
_TLS_STRINGS = {"cert_file": "cert_file", "key_file": "key_file", "ca_file": "ca_file",
                "min_version": "min_version"}
_TLS_LISTS = {"cipher_suites": "cipher_suites", "curve_preferences": "curve_preferences",
              "pinned_certs": "pinned_certs"}
_TLS_IGNORED = frozenset({"cert_store", "cert_match_by", "cert_match", "ocsp_peer", "certs",
                          "connection_rate_limit", "cert_match_skip_invalid", "ca_certs_match"})


#: Checks of list items (by Go's name tables), and the prefix of their messages.
_TLS_ITEM_CHECKS: dict[str, tuple[Callable[[str], None], str]] = {
    "cipher_suites": (tls_policy.check_cipher, ""),
    "curve_preferences": (tls_policy.check_curve, ""),
    "pinned_certs": (tls_policy.check_pinned, "error parsing tls config, "),
}


def parse_tls(node: Node, problems: Problems) -> TLSOptions | None:
    """A ``tls`` block; its files are loaded as nats-server's ``GenTLSConfig`` does."""
    if not isinstance(node.value, dict):
        problems.error(node, f"Expected map to define tls, got {_go_type_name(node)}")
        return None
    fields: dict[str, Any] = {}
    errors = len(problems.errors)
    for key, value in entries(node):
        problems.guard(_tls_entry, key, value, fields, problems)
    tls = TLSOptions(**fields)
    if bool(tls.cert_file) != bool(tls.key_file):
        missing = "key_file" if tls.cert_file else "cert_file"
        problems.error(node, f"missing '{missing}' in TLS configuration")
    elif len(problems.errors) == errors:
        try:
            tls_policy.server_context(tls)
        except tls_policy.TLSConfigError as exc:
            problems.error(node, str(exc))
    return tls


def _tls_entry(key: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    if key in _TLS_BOOLS:
        fields[_TLS_BOOLS[key]] = want_bool(value)
    elif key == "min_version":
        fields["min_version"] = _min_version(value)
    elif key in _TLS_STRINGS:
        fields[_TLS_STRINGS[key]] = want_str(value)
    elif key in _TLS_LISTS:
        fields[_TLS_LISTS[key]] = want_strings(value)
        _check_tls_items(key, value, problems)
    elif key == "timeout":
        fields["timeout"] = _tls_timeout(value)
    elif key in ("handshake_first", "first", "immediate"):
        fields["handshake_first"] = _handshake_first(value)
    elif key not in _TLS_IGNORED:
        problems.error(value, f"error parsing tls config, unknown field [{go_quote(key)}]")


def _min_version(node: Node) -> str:
    text = want_str(node)
    try:
        tls_policy.check_min_version(text)
    except ValueError as exc:
        raise Mismatch(node, f"error parsing tls config: {exc}") from None
    return text


def _check_tls_items(key: str, node: Node, problems: Problems) -> None:
    """Each cipher, curve or pin must be one nats-server knows (reported at the item)."""
    check, prefix = _TLS_ITEM_CHECKS[key]
    items = node.value if isinstance(node.value, list) else [node]
    for item in items:
        try:
            check(want_str(item))
        except ValueError as exc:
            problems.error(item, prefix + str(exc))


def _tls_timeout(node: Node) -> float:
    if isinstance(node.value, str):
        try:
            return parse_duration(node.value)
        except ValueError as exc:
            raise Mismatch(node, f"error parsing tls config, 'timeout' {exc}") from None
    return want_seconds(node)


def _handshake_first(node: Node) -> bool | float:
    value = node.value
    if isinstance(value, bool):
        return value
    text = want_str(node)
    if text.lower() in ("auto", "auto_fallback"):
        return tls_policy.DEFAULT_FALLBACK
    try:
        return parse_duration(text)
    except ValueError:
        raise Mismatch(node, f'field "handshake_first"\'s value {go_quote(text)} is invalid'
                       ) from None


# -- cluster ----------------------------------------------------------------------------

_CLUSTER_IGNORED = frozenset({"pool_size", "accounts", "compression", "write_timeout",
                              "pinned_accounts"})


def parse_cluster(node: Node, problems: Problems) -> ClusterOptions:
    """The ``cluster`` block."""
    if not isinstance(node.value, dict):
        problems.error(node, f"Expected map to define cluster, got {_go_type_name(node)}")
        return ClusterOptions()
    fields: dict[str, Any] = {}
    for key, value in entries(node):
        problems.guard(_cluster_entry, key, value, fields, problems)
    return ClusterOptions(**fields)


def _cluster_entry(key: str, value: Node, fields: dict[str, Any], problems: Problems) -> None:
    simple: dict[str, tuple[str, Callable[[Node], object]]] = {
        "name": ("name", want_str), "port": ("port", want_int),
        "host": ("host", want_str), "net": ("host", want_str),
        "advertise": ("advertise", want_str), "cluster_advertise": ("advertise", want_str),
        "no_advertise": ("no_advertise", want_bool),
        "connect_retries": ("connect_retries", want_int),
        "connect_backoff": ("connect_backoff", want_bool), "ping_max": ("ping_max", want_int),
    }
    if key in simple:
        name, read = simple[key]
        fields[name] = read(value)
    elif key == "listen":
        _listen_into(value, fields, problems)
    elif key == "routes":
        fields["routes"] = _routes(value, problems)
    elif key == "authorization":
        _cluster_auth(value, fields, problems)
    elif key == "tls":
        fields["tls"] = parse_tls(value, problems)
    elif key == "permissions":
        perms = parse_permissions(value, problems)
        if perms is not None and perms.allow_responses is not None:
            problems.error(value, "Cluster permissions do not support dynamic responses")
        elif perms is not None:
            fields["permissions"] = RoutePermissions(perms.publish, perms.subscribe)
    elif key in ("ping_interval", "write_deadline"):
        fields[key] = duration_or_seconds(key, value, problems)
    elif key not in _CLUSTER_IGNORED:
        problems.unknown(key, value)


def _listen_into(node: Node, fields: dict[str, Any], problems: Problems) -> None:
    try:
        host, port = parse_listen(node)
    except ValueError as exc:
        problems.error(node, str(exc))
        return
    fields["port"] = port
    if host:
        fields["host"] = host


def _routes(node: Node, problems: Problems) -> tuple[str, ...]:
    routes: list[str] = []
    for item in want_list(node):
        url = want_str(item).strip()
        if url in routes:
            problems.warn(item, url, "Duplicate route entry detected")
            continue
        routes.append(url)
    return tuple(routes)


def _cluster_auth(node: Node, fields: dict[str, Any], problems: Problems) -> None:
    auth = parse_authorization(node, problems)
    if auth.users:
        problems.error(node, "Cluster authorization does not allow multiple users")
    elif auth.token:
        problems.error(node, "Cluster authorization does not support tokens")
    else:
        fields.update(username=auth.username, password=auth.password,
                      auth_timeout=auth.timeout)


# -- websocket --------------------------------------------------------------------------

_WS_STRINGS = {"host": "host", "net": "host", "advertise": "advertise",
               "no_auth_user": "no_auth_user", "jwt_cookie": "jwt_cookie",
               "user_cookie": "user_cookie", "pass_cookie": "pass_cookie",
               "token_cookie": "token_cookie"}
_WS_BOOLS = {"no_tls": "no_tls", "same_origin": "same_origin", "compression": "compression"}


def parse_websocket(node: Node, problems: Problems) -> WebsocketOptions:
    """The ``websocket`` block."""
    if not isinstance(node.value, dict):
        problems.error(node, f"Expected websocket to be a map, got {_go_type_name(node)}")
        return WebsocketOptions()
    fields: dict[str, Any] = {}
    for key, value in entries(node):
        problems.guard(_websocket_entry, key, value, fields, problems)
    return WebsocketOptions(**fields)


def _websocket_entry(key: str, value: Node, fields: dict[str, Any],
                     problems: Problems) -> None:
    if key in _WS_STRINGS:
        fields[_WS_STRINGS[key]] = want_str(value)
    elif key in _WS_BOOLS:
        fields[_WS_BOOLS[key]] = want_bool(value)
    elif key == "port":
        fields["port"] = want_int(value)
    elif key == "listen":
        _listen_into(value, fields, problems)
    elif key == "tls":
        fields["tls"] = parse_tls(value, problems)
    elif key in ("allowed_origins", "allowed_origin", "allow_origins", "allow_origin",
                 "origins", "origin"):
        fields["allowed_origins"] = want_strings(value)
    elif key == "handshake_timeout":
        fields["handshake_timeout"] = duration_or_seconds(key, value, problems)
    elif key == "authorization":
        fields["authorization"] = parse_authorization(value, problems)
    elif key not in ("ping_interval", "headers"):
        problems.unknown(key, value)


# -- Go formatting of values ------------------------------------------------------------

def _go_type_name(node: Node) -> str:
    return go_type(node.value)


def _go_plain(node: Node) -> str:
    """Go's ``%v`` of a scalar value, good enough for error messages."""
    value = node.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return "[...]" if isinstance(value, list) else "map[...]"
    return str(value)
