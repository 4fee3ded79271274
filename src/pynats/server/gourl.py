"""Go's URL and address parsing, with Go's error messages.

Theory of operation
-------------------
nats-server reads ``--cluster nats://user:pass@host:port`` in three Go steps, and prints
whichever error comes first as is: ``url.Parse`` (:func:`parse_url`), then
``net.SplitHostPort`` on the URL's host (:func:`split_host_port`), then ``fmt.Sscan``
of the port (:func:`scan_int`). This module reproduces the three for what a command line
can carry, with their messages, so that pynats refuses the same URLs with the same words:

* :func:`parse_url` follows ``url.Parse`` of Go 1.25+: the scheme, ``?query`` and
  ``#fragment`` are split off, ``//authority`` is split into user information and host,
  a host in brackets must be an IPv6 address (:func:`parse_addr`, ``netip.ParseAddr``),
  a port must be digits, and ``%XX`` escapes are decoded where Go decodes them. Go works
  on bytes, so the text is handled as UTF-8 bytes (``surrogateescape`` keeps bytes that
  are not UTF-8) and the results are decoded back the same way.
* :func:`split_host_port` is ``net.SplitHostPort`` (``address h: missing port in
  address``).
* :func:`scan_int` is ``fmt.Sscan`` into an ``int``: a leading ``0`` means octal and the
  scan stops at the first digit that does not fit (``089`` reads as 0), an empty string is
  ``EOF``.

Every error is a :class:`ValueError` whose text is Go's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from pynats.server.gotext import go_quote

_INT64_MAX = (1 << 63) - 1
_HEX = b"0123456789abcdefABCDEF"
#: ASCII bytes Go allows unescaped in a host besides letters and digits.
_HOST_OK = frozenset(b"-_.~!$&'()*+,;=:[]<>\"")
#: ASCII bytes Go allows in user information besides letters and digits.
_USERINFO_OK = frozenset("-._:~!$&'()*+,;=%@")


class _Mode(Enum):
    """The part of a URL being unescaped (Go's ``encoding`` modes that matter here)."""

    PATH = "path"
    HOST = "host"
    ZONE = "zone"
    USER = "user"
    FRAGMENT = "fragment"


@dataclass(frozen=True, slots=True)
class URL:
    """What ``url.Parse`` found in a URL.

    Attributes:
        scheme: Lower-cased (``nats``), ``""`` without one.
        opaque: The rest of a URL whose scheme is not followed by ``/`` (``nats:x``).
        username: ``None`` without user information, else the decoded user name.
        password: ``None`` when no ``:password`` was given, else the decoded password.
        host: ``host``, ``host:port`` or ``[ipv6]:port``, decoded.
        path: Decoded path.
        query: Raw query, without ``?``.
        fragment: Decoded fragment, without ``#``.
    """

    scheme: str = ""
    opaque: str = ""
    username: str | None = None
    password: str | None = None
    host: str = ""
    path: str = ""
    query: str = ""
    fragment: str = ""


def parse_url(raw: str) -> URL:
    """Parse ``raw`` like Go's ``url.Parse``.

    Args:
        raw: The URL text.

    Returns:
        Its parts.

    Raises:
        ValueError: Go's ``*url.Error`` text, e.g. ``parse "nats://h:x": invalid port
            ":x" after host``.
    """
    data = _bytes(raw)
    head, _, fragment = data.partition(b"#")
    try:
        url = _parse(head)
    except ValueError as exc:
        raise ValueError(f"parse {_quote(head)}: {exc}") from None
    if not fragment:
        return url
    try:
        decoded = _unescape(fragment, _Mode.FRAGMENT)
    except ValueError as exc:
        raise ValueError(f"parse {_quote(data)}: {exc}") from None
    return replace(url, fragment=_text(decoded))


def _parse(data: bytes) -> URL:
    """Go's ``parse(rawURL, viaRequest=false)`` (everything before ``#``)."""
    if any(byte < 0x20 or byte == 0x7F for byte in data):
        raise ValueError("net/url: invalid control character in URL")
    if data == b"*":
        return URL(path="*")
    scheme, rest = _scheme(data)
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        rest, query = rest[:-1], b""
    else:
        rest, _, query = rest.partition(b"?")
    if not rest.startswith(b"/"):
        if scheme:
            return URL(scheme=_text(scheme), opaque=_text(rest), query=_text(query))
        if b":" in rest.partition(b"/")[0]:
            raise ValueError("first path segment in URL cannot contain colon")
    username = password = None
    host = b""
    if rest.startswith(b"//") and (scheme or not rest.startswith(b"///")):
        authority, slash, path = rest[2:].partition(b"/")
        rest = slash + path
        username, password, host = _authority(authority)
    return URL(scheme=_text(scheme), username=username, password=password, host=_text(host),
               path=_text(_unescape(rest, _Mode.PATH)), query=_text(query))


def _scheme(data: bytes) -> tuple[bytes, bytes]:
    """Split ``scheme:`` off (lower-cased); no valid scheme gives ``b""`` and all of it."""
    for i, byte in enumerate(data):
        char = chr(byte)
        if char.isascii() and char.isalpha():
            continue
        if char.isascii() and (char.isdigit() or char in "+-."):
            if i == 0:
                return b"", data
            continue
        if char == ":":
            if i == 0:
                raise ValueError("missing protocol scheme")
            return data[:i].lower(), data[i + 1:]
        return b"", data
    return b"", data


def _authority(authority: bytes) -> tuple[str | None, str | None, bytes]:
    """``[user[:password]@]host``: the decoded user name and password, and the host."""
    at = authority.rfind(b"@")
    host = _host(authority[at + 1:])
    if at < 0:
        return None, None, host
    userinfo = authority[:at]
    text = userinfo.decode("utf-8", "replace")
    if not all((c.isascii() and c.isalnum()) or c in _USERINFO_OK for c in text):
        raise ValueError("net/url: invalid userinfo")
    name, colon, secret = userinfo.partition(b":")
    password = _text(_unescape(secret, _Mode.USER)) if colon else None
    return _text(_unescape(name, _Mode.USER)), password, host


def _host(host: bytes) -> bytes:
    """Go's ``parseHost``: ``host[:port]`` or ``[ipv6[%25zone]][:port]``, decoded."""
    bracket = host.rfind(b"[")
    if bracket > 0:
        raise ValueError("invalid IP-literal")
    if bracket == 0:
        return _ip_literal(host)
    colon = host.rfind(b":")
    if colon >= 0:
        _check_port(host[colon:])
    return _unescape(host, _Mode.HOST)


def _ip_literal(host: bytes) -> bytes:
    """``[addr]`` with an optional ``:port``: the address must be IPv6 (RFC 3986)."""
    close = host.rfind(b"]")
    if close < 0:
        raise ValueError("missing ']' in host")
    colon_port = host[close + 1:]
    _check_port(colon_port)
    inside = host[1:close]
    zone = inside.find(b"%25")
    if zone >= 0:
        address = _unescape(inside[:zone], _Mode.HOST) + _unescape(inside[zone:], _Mode.ZONE)
    else:
        address = _unescape(inside, _Mode.HOST)
    try:
        is_ipv4 = parse_addr(_text(address))
    except ValueError as exc:
        raise ValueError(f"invalid host: {exc}") from None
    if is_ipv4:
        raise ValueError("invalid IP-literal")
    return b"[" + address + b"]" + colon_port


def _check_port(colon_port: bytes) -> None:
    """A port after a host is empty or ``:`` and digits."""
    if colon_port and (colon_port[:1] != b":" or not all(
            0x30 <= byte <= 0x39 for byte in colon_port[1:])):
        raise ValueError(f"invalid port {_quote(colon_port)} after host")


def _unescape(data: bytes, mode: _Mode) -> bytes:
    """Decode ``%XX`` escapes, refusing what Go refuses in ``mode``."""
    i = 0
    while i < len(data):
        if data[i] == 0x25:  # %
            _check_escape(data, i, mode)
            i += 3
            continue
        if mode in (_Mode.HOST, _Mode.ZONE) and data[i] < 0x80 and not _host_byte(data[i]):
            raise ValueError(f"invalid character {_quote(data[i:i + 1])} in host name")
        i += 1
    return _decode_escapes(data)


def _check_escape(data: bytes, i: int, mode: _Mode) -> None:
    """The escape at ``data[i]`` must be ``%`` and two hex digits allowed in ``mode``."""
    code = data[i:i + 3]
    if len(code) < 3 or code[1] not in _HEX or code[2] not in _HEX:
        raise ValueError(f"invalid URL escape {_quote(code)}")
    if code == b"%25":
        return
    value = int(code[1:], 16)
    # In a host only non-ASCII bytes may be escaped; in a zone, bytes a host allows.
    if (mode is _Mode.HOST and value < 0x80) or (
            mode is _Mode.ZONE and value != 0x20 and not _host_byte(value)):
        raise ValueError(f"invalid URL escape {_quote(code)}")


def _decode_escapes(data: bytes) -> bytes:
    """Replace each (already checked) ``%XX`` with its byte."""
    parts = data.split(b"%")
    return parts[0] + b"".join(bytes([int(part[:2], 16)]) + part[2:] for part in parts[1:])


def _host_byte(byte: int) -> bool:
    """Whether Go leaves the ASCII ``byte`` unescaped in a host."""
    char = chr(byte)
    return (char.isascii() and char.isalnum()) or byte in _HOST_OK


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort``: ``host:port`` or ``[host]:port`` into host and port.

    Raises:
        ValueError: Go's ``*net.AddrError`` text, e.g. ``address h: missing port in
            address``.
    """
    colon = hostport.rfind(":")
    if colon < 0:
        raise _addr_error(hostport, "missing port in address")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _addr_error(hostport, "missing ']' in address")
        if end + 1 == len(hostport):
            raise _addr_error(hostport, "missing port in address")
        if end + 1 != colon:
            why = "too many colons in address" if hostport[end + 1] == ":" else (
                "missing port in address")
            raise _addr_error(hostport, why)
        host, after_open, after_close = hostport[1:end], 1, end + 1
    else:
        host, after_open, after_close = hostport[:colon], 0, 0
        if ":" in host:
            raise _addr_error(hostport, "too many colons in address")
    if "[" in hostport[after_open:]:
        raise _addr_error(hostport, "unexpected '[' in address")
    if "]" in hostport[after_close:]:
        raise _addr_error(hostport, "unexpected ']' in address")
    return host, hostport[colon + 1:]


def _addr_error(address: str, why: str) -> ValueError:
    """Go's ``AddrError.Error()``: the address is shown unless empty."""
    return ValueError(f"address {address}: {why}" if address else why)


def scan_int(text: str) -> int:
    """Go's ``fmt.Sscan(text, &n)`` into an ``int``, for what a URL's port can hold.

    That is an optional ``-`` and decimal digits. As in Go, a leading ``0`` makes the
    number octal and the scan stops at the first digit that does not fit (``089`` reads
    as 0); what follows the number is ignored.

    Raises:
        ValueError: ``EOF`` (nothing to read), ``expected integer``, or
            ``strconv.ParseInt``'s out-of-range message.
    """
    sign = text[:1] if text[:1] in ("+", "-") else ""
    body = text[len(sign):]
    if not body:
        raise ValueError("EOF")
    if body.startswith("0"):
        base, digits = 8, "0" + _leading(body[1:], "01234567")
    else:
        base, digits = 10, _leading(body, "0123456789")
    if not digits:
        raise ValueError("expected integer")
    token = sign + digits
    value = int(token, base)
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(token)}: value out of range")
    return value


def _leading(text: str, allowed: str) -> str:
    """The longest prefix of ``text`` made of ``allowed`` characters."""
    return text[:len(text) - len(text.lstrip(allowed))]


def parse_addr(text: str) -> bool:
    """Go's ``netip.ParseAddr``; returns whether the address is IPv4.

    Raises:
        ValueError: Go's ``ParseAddr("x"): reason (at "rest")`` text.
    """
    for char in text:
        if char == ".":
            _ipv4_fields(text, text)
            return True
        if char == ":":
            _ipv6(text)
            return False
        if char == "%":
            raise _addr_parse_error(text, "missing IPv6 address")
    raise _addr_parse_error(text, "unable to parse IP")


def _addr_parse_error(text: str, why: str, at: str = "") -> ValueError:
    """Go's ``parseAddrError.Error()``."""
    where = f" (at {go_quote(at)})" if at else ""
    return ValueError(f"ParseAddr({go_quote(text)}): {why}{where}")


def _ipv4_fields(whole: str, part: str) -> None:
    """Go's ``parseIPv4Fields`` over ``part`` (a tail of ``whole``, the text quoted)."""
    value, fields, digits = 0, 0, 0
    for i, char in enumerate(part):
        if "0" <= char <= "9":
            if digits == 1 and value == 0:
                raise _addr_parse_error(whole, "IPv4 field has octet with leading zero")
            value, digits = value * 10 + int(char), digits + 1
            if value > 255:
                raise _addr_parse_error(whole, "IPv4 field has value >255")
        elif char == ".":
            if i == 0 or i == len(part) - 1 or part[i - 1] == ".":
                raise _addr_parse_error(whole, "IPv4 field must have at least one digit",
                                        part[i:])
            if fields == 3:
                raise _addr_parse_error(whole, "IPv4 address too long")
            value, fields, digits = 0, fields + 1, 0
        else:
            raise _addr_parse_error(whole, "unexpected character", part[i:])
    if fields < 3:
        raise _addr_parse_error(whole, "IPv4 address too short")


def _ipv6(text: str) -> None:
    """Go's ``parseIPv6`` checks (the address itself is not needed)."""
    rest, percent, zone = text.partition("%")
    if percent and not zone:
        raise _addr_parse_error(text, "zone must be a non-empty string")
    ellipsis = -1
    if rest.startswith("::"):
        ellipsis, rest = 0, rest[2:]
        if not rest:
            return
    filled = 0
    while filled < 16:
        digits = _hex_group(text, rest)
        after = rest[digits:]
        if after.startswith("."):
            _embedded_ipv4(text, rest, filled, ellipsis)
            rest, filled = "", filled + 4
            break
        filled, rest = filled + 2, after
        if not rest:
            break
        if rest[0] != ":":
            raise _addr_parse_error(text, "unexpected character, want colon", rest)
        if len(rest) == 1:
            raise _addr_parse_error(text, "colon must be followed by more characters", rest)
        rest = rest[1:]
        if rest.startswith(":"):
            if ellipsis >= 0:
                raise _addr_parse_error(text, "multiple :: in address", rest)
            ellipsis, rest = filled, rest[1:]
            if not rest:
                break
    _ipv6_end(text, rest, filled, ellipsis)


def _hex_group(text: str, rest: str) -> int:
    """The number of hex digits starting ``rest`` (1 to 4), or Go's error."""
    count, value = 0, 0
    for char in rest:
        if not (char.isascii() and char in "0123456789abcdefABCDEF"):
            break
        value = value * 16 + int(char, 16)
        if count > 3:
            raise _addr_parse_error(text, "each group must have 4 or less digits", rest)
        if value > 0xFFFF:
            raise _addr_parse_error(text, "IPv6 field has value >=2^16", rest)
        count += 1
    if count == 0:
        raise _addr_parse_error(
            text, "each colon-separated field must have at least one digit", rest)
    return count


def _embedded_ipv4(text: str, rest: str, filled: int, ellipsis: int) -> None:
    """A dotted IPv4 address inside an IPv6 one: only as its last 32 bits."""
    if ellipsis < 0 and filled != 12:
        raise _addr_parse_error(
            text, "embedded IPv4 address must replace the final 2 fields of the address",
            rest)
    if filled + 4 > 16:
        raise _addr_parse_error(
            text, "too many hex fields to fit an embedded IPv4 at the end of the address",
            rest)
    _ipv4_fields(text, rest)


def _ipv6_end(text: str, rest: str, filled: int, ellipsis: int) -> None:
    """After the groups: nothing may be left, and ``::`` must stand for some zeros."""
    if rest:
        raise _addr_parse_error(text, "trailing garbage after address", rest)
    if filled < 16 and ellipsis < 0:
        raise _addr_parse_error(text, "address string too short")
    if filled == 16 and ellipsis >= 0:
        raise _addr_parse_error(text, "the :: must expand to at least one field of zeros")


def _bytes(text: str) -> bytes:
    """``text`` as the bytes Go would see (bytes that are not UTF-8 kept)."""
    return text.encode("utf-8", "surrogateescape")


def _text(data: bytes) -> str:
    """Bytes back to text, the inverse of :func:`_bytes`."""
    return data.decode("utf-8", "surrogateescape")


def _quote(data: bytes) -> str:
    """Go's ``%q`` of a byte string."""
    return go_quote(_text(data))


__all__ = ["URL", "parse_addr", "parse_url", "scan_int", "split_host_port"]
