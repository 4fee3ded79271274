"""HTTP/1.1 messages for the monitoring listener: request heads in, responses out.

Theory of operation
-------------------
Pure functions and records, no I/O: :func:`parse_head` turns the lines of a request
head into a :class:`Request` or raises :class:`BadRequest` with the status Go's
``net/http`` would answer; :func:`encode_response` serialises a :class:`Response` the
way Go writes it (status line, the handler's headers, ``Date``, ``Content-Length``,
then the sniffed ``Content-Type`` when the handler set none); :func:`go_json` encodes
like Go's ``encoding/json``; :func:`clean_path` is Go's ``cleanPath`` used by its mux
to redirect ``//varz`` to ``/varz``. ``http.py`` does the reading, writing and routing.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Final
from urllib.parse import parse_qsl, quote, urlsplit

REASONS: Final = {200: "OK", 307: "Temporary Redirect", 400: "Bad Request",
                  404: "Not Found", 431: "Request Header Fields Too Large",
                  500: "Internal Server Error", 505: "HTTP Version Not Supported"}
TEXT: Final = "text/plain; charset=utf-8"
HTML: Final = "text/html; charset=utf-8"
JSON_HEADERS: Final = (("Access-Control-Allow-Origin", "*"), ("Content-Type", "application/json"))
_TOKEN_RE: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION_RE: Final = re.compile(r"HTTP/([0-9])\.[0-9]")
# Characters Go's JSON encoder escapes that Python's (ensure_ascii=False) writes raw.
_GO_JSON_RE: Final = re.compile("[<>&\u2028\u2029\ud800-\udfff]")
_GO_JSON_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                           "\u2028": "\\u2028", "\u2029": "\\u2029"}


class BadRequest(Exception):
    """A request that cannot be answered normally; the connection closes after it.

    Args:
        status: 400, 431 or 505.
        reason: The status text (Go puts details there: ``Bad Request: missing
            required Host header``).
    """

    def __init__(self, status: int = 400, reason: str = "Bad Request"):
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def to_bytes(self) -> bytes:
        """Go's answer to an unparseable request: no Date, no length, then close."""
        return (f"HTTP/1.1 {self.status} {self.reason}\r\nContent-Type: {TEXT}\r\n"
                f"Connection: close\r\n\r\n{self.status} {self.reason}").encode("latin-1")


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request head. Header names are lower case; the first value wins."""

    method: str
    target: str
    version: str
    headers: Mapping[str, str]

    @property
    def raw_path(self) -> str:
        """The path as sent, still percent-encoded."""
        if self.target.startswith("/"):
            return self.target.partition("?")[0]
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> str:
        """The query string as sent (without ``?``)."""
        if self.target.startswith("/"):
            return self.target.partition("?")[2]
        return urlsplit(self.target).query

    @property
    def keep_alive(self) -> bool:
        """Whether the client lets the connection stay open after the response."""
        tokens = {t.strip().lower() for t in self.headers.get("connection", "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens

    def params(self) -> dict[str, str]:
        """Query parameters, first value of each (Go's ``URL.Query().Get``)."""
        params: dict[str, str] = {}
        for key, value in parse_qsl(self.query, keep_blank_values=True):
            params.setdefault(key, value)
        return params


def parse_head(lines: list[bytes]) -> Request:
    """Parse a request line and header lines (line endings already removed).

    Args:
        lines: The request line, then one line per header.

    Returns:
        The request.

    Raises:
        BadRequest: Malformed (an absolute target that is no URL, such as
            ``http://[``, included), conflicting ``Content-Length`` headers, or HTTP/1.1
            without a ``Host`` header.
    """
    try:
        method, target, version = lines[0].decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        raise BadRequest() from None
    major = _VERSION_RE.fullmatch(version)
    if not major or not _TOKEN_RE.fullmatch(method) or not target.startswith(
            ("/", "http://", "https://")):
        raise BadRequest()
    if major.group(1) != "1":
        raise BadRequest(505, "HTTP Version Not Supported: unsupported protocol version")
    if not target.startswith("/"):
        try:
            urlsplit(target)  # an absolute URL Go's ParseRequestURI refuses: 400
        except ValueError:
            raise BadRequest() from None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or not _TOKEN_RE.fullmatch(name):
            raise BadRequest()
        key, value = name.lower(), value.strip(" \t")
        if key == "content-length" and headers.get(key, value) != value:
            raise BadRequest()  # conflicting lengths: the body's end is ambiguous
        headers.setdefault(key, value)
    if version != "HTTP/1.0" and "host" not in headers:
        raise BadRequest(reason="Bad Request: missing required Host header")
    return Request(method, target, version, headers)


def clean_path(path: str) -> str:
    """Go's ``cleanPath``: resolve ``.``, ``..`` and repeated slashes, keep a trailing one.

    Args:
        path: A decoded URL path.

    Returns:
        The canonical path, always starting with ``/``.
    """
    parts: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if parts:
                parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


@dataclass(frozen=True, slots=True)
class Response:
    """An answer. ``headers`` come first; ``sniffed`` is the Content-Type Go adds last."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    sniffed: str = ""


def go_json(value: Any, *, indent: bool = True) -> bytes:
    """Encode like Go's ``json.MarshalIndent(v, "", "  ")`` (or ``json.Marshal``).

    Args:
        value: JSON-ready data.
        indent: Two-space indentation; compact when false.

    Returns:
        UTF-8 JSON with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as Go escapes
        them and unpaired surrogates replaced by ``\\ufffd``.
    """
    if indent:
        text = json.dumps(value, ensure_ascii=False, indent=2)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _GO_JSON_RE.sub(lambda m: _GO_JSON_ESCAPES.get(m.group(), "\\ufffd"), text).encode()


def json_response(value: Any, *, status: int = 200, indent: bool = True) -> Response:
    """A JSON answer with nats-server's headers."""
    return Response(status, go_json(value, indent=indent), JSON_HEADERS)


def text_response(status: int, text: str) -> Response:
    """A plain-text answer (query errors, internal errors)."""
    return Response(status, text.encode(), sniffed=TEXT)


NOT_FOUND: Final = Response(404, b"404 page not found\n",
                            (("Content-Type", TEXT), ("X-Content-Type-Options", "nosniff")))


def redirect(path: str, query: str) -> Response:
    """Go's ``307`` to the clean form of a path."""
    location = quote(path, safe="/:@!$&'()*+,;=-._~") + (f"?{query}" if query else "")
    body = f'<a href="{html.escape(location)}">Temporary Redirect</a>.\n\n'.encode()
    return Response(307, body, (("Content-Type", HTML), ("Location", location)))


def encode_response(response: Response, request: Request, *, keep_alive: bool) -> bytes:
    """Serialise ``response`` to ``request`` (HEAD: headers only).

    Args:
        response: The answer.
        request: The request it answers (its version and method matter).
        keep_alive: Whether the connection stays open afterwards.

    Returns:
        The bytes to write.
    """
    version = "HTTP/1.0" if request.version == "HTTP/1.0" else "HTTP/1.1"
    lines = [f"{version} {response.status} {REASONS[response.status]}"]
    lines += [f"{name}: {value}" for name, value in response.headers]
    lines.append(f"Date: {formatdate(usegmt=True)}")
    lines.append(f"Content-Length: {len(response.body)}")
    if response.sniffed:
        lines.append(f"Content-Type: {response.sniffed}")
    if version == "HTTP/1.1" and not keep_alive:
        lines.append("Connection: close")
    elif version == "HTTP/1.0" and keep_alive:
        lines.append("Connection: keep-alive")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if request.method == "HEAD" else head + response.body


__all__ = [
    "HTML", "JSON_HEADERS", "NOT_FOUND", "REASONS", "TEXT", "BadRequest", "Request",
    "Response", "clean_path", "encode_response", "go_json", "json_response", "parse_head",
    "redirect", "text_response",
]
