"""The client's side of HTTP/1.x: the request head read and checked, and a refusal's words.

The proxy decides on what this module makes of the request line (the CONNECT target or the
absolute URI, never the Host header), so parsing is strict and ambiguity is an error: one
spelling per host, one framing per body (how requests are smuggled), bounded lines and
header blocks. Everything here raises ``HttpError`` before any byte goes upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from dataclasses import dataclass

__all__ = [
    "MAX_HEADERS",
    "MAX_REASON",
    "MAX_REQUEST_LINE",
    "HttpError",
    "Target",
    "body_length",
    "canonical_host",
    "origin_form_head",
    "read_head",
    "reason_phrase",
    "request_target",
]


MAX_REQUEST_LINE = 8 * 1024
MAX_HEADERS = 64 * 1024


#: Longest refusal reason put in a status line (the body has the whole message).
MAX_REASON = 400

_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_REQUEST_LINE = re.compile(rf"({_TOKEN}) ([\x21-\x7e]+) (HTTP/1\.[01])")
_HEADER_NAME = re.compile(_TOKEN)
_NAME_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
# A last label like this makes getaddrinfo read the name as an IPv4 address ("127.1",
# "2130706433", "0x7f.1"): such names are refused so an address cannot hide as a name.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


# Hop-by-hop headers describe the client's connection to the proxy, not the request.
_HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "proxy-authorization", "keep-alive", "te", "upgrade"}
)
# Never dropped even when listed in Connection: losing them would change where the body ends.
_FRAMING = frozenset({"content-length", "transfer-encoding"})


class HttpError(Exception):
    """Ends a connection with an error status; raised before any byte went upstream."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Target:
    host: str  # lower-case name, dotted IPv4 or bracketed, compressed IPv6
    port: int

    @property
    def connect_host(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class _Head:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]


def canonical_host(text: str) -> str:
    """One spelling per host, so the grant check compares like with like."""
    host = text.lower()
    if host.startswith("["):
        inner = host[1:-1] if host.endswith("]") else ""
        if "%" in inner:
            raise HttpError(400, f"bad host {text!r}: IPv6 zone ids are not supported")
        try:
            return f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            raise HttpError(400, f"bad host {text!r}: not an IPv6 address") from None
    host = host.removesuffix(".")
    with contextlib.suppress(ValueError):
        return str(ipaddress.IPv4Address(host))
    labels = host.split(".")
    if (
        not host
        or len(host) > 253
        or not all(_NAME_LABEL.fullmatch(label) for label in labels)
        or _NUMERIC_LABEL.fullmatch(labels[-1])
    ):
        raise HttpError(400, f"bad host {text!r}: not a host name or IP address")
    return host


def _parse_port(text: str, whole: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise HttpError(400, f"bad port in {whole!r}: a port is a number from 1 to 65535")
    return int(text)


def _parse_authority(text: str, default_port: int | None) -> Target:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise HttpError(400, f"bad host {text!r}: '[' without ']'")
        host, rest = text[: end + 1], text[end + 1 :]
    else:
        if text.count(":") > 1:
            raise HttpError(400, f"bad host {text!r}: write IPv6 addresses in brackets")
        host, colon, port = text.partition(":")
        rest = colon + port
    if not host:
        raise HttpError(400, f"no host in {text!r}")
    if rest in ("", ":") and default_port is not None:
        port_number = default_port
    elif not rest:
        raise HttpError(400, f"missing port in CONNECT target {text!r}: write host:port")
    elif rest.startswith(":"):
        port_number = _parse_port(rest[1:], text)
    else:
        raise HttpError(400, f"bad host {text!r}: expected ':PORT' after ']'")
    return Target(canonical_host(host), port_number)


def request_target(head: _Head) -> Target:
    if head.method == "CONNECT":
        if "/" in head.target:
            raise HttpError(400, f"CONNECT takes host:port, not {head.target!r}")
        return _parse_authority(head.target, None)
    scheme, sep, rest = head.target.partition("://")
    if not sep:
        raise HttpError(
            400,
            f"{head.method} {head.target[:200]} needs an absolute http:// URI: this is a proxy, "
            "not a web server",
        )
    if scheme.lower() != "http":
        raise HttpError(400, f"{scheme}:// is not proxied as a request: use CONNECT")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        raise HttpError(400, "user names in proxied URLs are not supported")
    return _parse_authority(authority, 80)


def origin_form_head(head: _Head, target: Target) -> bytes:
    """The request as the origin server expects it: a path, its real Host, no keep-alive.

    Host is rewritten from the URI because a CDN serves many sites on one address: passing the
    client's Host would let a granted address front for a host that was never granted.
    """
    rest = head.target.partition("://")[2]
    cut = re.search(r"[/?#]", rest)
    path = rest[cut.start() :] if cut else "/"
    path = path.partition("#")[0]
    if not path.startswith("/"):
        path = f"/{path}"
    authority = target.host if target.port == 80 else str(target)
    named = {
        token.strip().lower()
        for name, value in head.headers
        if name.lower() == "connection"
        for token in value.split(",")
    }
    dropped = (_HOP_BY_HOP | named | {"host"}) - _FRAMING
    lines = [f"{head.method} {path} {head.version}", f"Host: {authority}"]
    lines += [f"{name}: {value}" for name, value in head.headers if name.lower() not in dropped]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_line(reader: asyncio.StreamReader, what: str, limit: int) -> bytes | None:
    """One line with its ending, or None at a clean end of input."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise HttpError(400, f"connection closed in the middle of the {what}") from None
    except asyncio.LimitOverrunError:
        raise HttpError(400, f"{what} is longer than {limit} bytes") from None
    if len(line) > limit:
        raise HttpError(400, f"{what} is longer than {limit} bytes")
    return line


async def read_head(reader: asyncio.StreamReader) -> _Head | None:
    line: bytes | None = b"\r\n"
    while line in (b"\r\n", b"\n"):  # stray blank lines before a request are allowed
        line = await _read_line(reader, "request line", MAX_REQUEST_LINE)
    if line is None:
        return None
    text = line.rstrip(b"\r\n").decode("latin-1")
    request = _REQUEST_LINE.fullmatch(text)
    if request is None:
        raise HttpError(400, "not an HTTP/1.x request line")
    method, target, version = request.groups()
    headers: list[tuple[str, str]] = []
    total = 0
    while True:
        raw = await _read_line(reader, "header block", MAX_HEADERS)
        if raw is None:
            raise HttpError(400, "connection closed in the middle of the header block")
        total += len(raw)
        if total > MAX_HEADERS:
            raise HttpError(400, f"header block is longer than {MAX_HEADERS} bytes")
        if raw in (b"\r\n", b"\n"):
            break
        headers.append(_parse_header(raw.rstrip(b"\r\n").decode("latin-1")))
    return _Head(method, target, version, headers)


def _parse_header(text: str) -> tuple[str, str]:
    if text[:1] in (" ", "\t"):
        raise HttpError(400, "folded header lines are not supported")
    name, colon, value = text.partition(":")
    if not colon or not _HEADER_NAME.fullmatch(name):
        raise HttpError(400, f"bad header line {text[:80]!r}")
    value = value.strip(" \t")
    if any(char in value for char in "\r\n\0"):
        raise HttpError(400, f"bad character in header {name!r}")
    return name, value


def body_length(head: _Head) -> int | None:
    """The body's length, or None when chunked; ambiguous framing is how requests are smuggled."""
    encodings = [value for name, value in head.headers if name.lower() == "transfer-encoding"]
    lengths = {value for name, value in head.headers if name.lower() == "content-length"}
    if encodings:
        codings = [c.strip().lower() for value in encodings for c in value.split(",")]
        if lengths or codings[-1] != "chunked":
            raise HttpError(
                400, "Transfer-Encoding must end in chunked and come without Content-Length"
            )
        return None
    if not lengths:
        return 0
    length = lengths.pop()
    if lengths or not length.isascii() or not length.isdigit():
        raise HttpError(400, "conflicting or non-numeric Content-Length")
    return int(length)


def reason_phrase(error: HttpError) -> str:
    """The status line's words. A refusal carries its reason there too: clients that never
    read a 403's body still show the status line (urllib's "HTTP Error 403: …", the
    "Tunnel connection failed: 403 …" of a CONNECT), so the plugin's error names the host
    and the grant that would allow it. Printable ASCII only, as a status line must be."""
    words = _REASONS[error.status]
    if error.status != 403:
        return words
    reason = error.message.replace("\u2014", "-")
    reason = "".join(c if " " <= c <= "~" else "?" for c in " ".join(reason.split()))
    return f"{words}: {reason[:MAX_REASON]}" if reason else words
