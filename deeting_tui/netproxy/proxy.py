"""The per-plugin forward proxy: the only way out of a sandboxed worker onto the network.

The OS sandbox lets a worker open TCP connections to one loopback port and nothing else, so
``network:HOST`` grants are enforced here, in the kernel, where the plugin cannot tamper with
the check. The decision uses only the CONNECT target or the absolute request URI: the Host
header is the client's word and a plugin controls the client. Names are resolved here too,
because the worker has no UDP, and an IP literal is allowed only when that literal is granted,
so a grant for a name never becomes a grant for whatever addresses it resolves to.

Everything a connection does is caught and logged: a hostile plugin must not be able to take
down the kernel's event loop by sending a strange request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from deeting_tui.plugin.scopes import parse_scope

from .addresses import vet

__all__ = ["MAX_HEADERS", "MAX_REQUEST_LINE", "HostProxy"]

log = logging.getLogger("deeting.netproxy")

MAX_REQUEST_LINE = 8 * 1024
MAX_HEADERS = 64 * 1024

_CHUNK = 64 * 1024
# After a refusal, what the client still sends is read and dropped for a moment: closing a
# socket with unread input makes the kernel send a reset, which can destroy the reply in flight.
_LINGER_SECONDS = 2.0
_LINGER_BYTES = 1024 * 1024

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
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")

# Hop-by-hop headers describe the client's connection to the proxy, not the request.
_HOP_BY_HOP = frozenset(
    {"connection", "proxy-connection", "proxy-authorization", "keep-alive", "te", "upgrade"}
)
# Never dropped even when listed in Connection: losing them would change where the body ends.
_FRAMING = frozenset({"content-length", "transfer-encoding"})

_T = TypeVar("_T")


class _HttpError(Exception):
    """Ends a connection with an error status; raised before any byte went upstream."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _BadBody(Exception):
    """The request body breaks its own framing after the request was sent upstream."""


@dataclass(frozen=True)
class _Target:
    host: str  # lower-case name, dotted IPv4 or bracketed, compressed IPv6
    port: int

    @property
    def connect_host(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class _Grant:
    host: str  # canonical like _Target.host, or "*.name"
    port: int | None

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host.startswith("*."):
            return host.endswith(self.host[1:]) and not host.startswith("[")
        return host == self.host


@dataclass(frozen=True)
class _Head:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]


class _Idle:
    """One inactivity clock for both directions of a relay.

    A download is silent from the client's side for as long as it lasts; timing each direction
    on its own would cut it off, so any byte moved in either direction keeps both alive.
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._last = time.monotonic()

    def touch(self) -> None:
        self._last = time.monotonic()

    async def wait(self, step: Callable[[], Awaitable[_T]]) -> _T:
        while True:
            remaining = self._last + self._seconds - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no traffic for {self._seconds:g}s")
            deadline = asyncio.timeout(remaining)
            try:
                async with deadline:
                    return await step()
            except TimeoutError:
                if not deadline.expired():
                    raise  # the socket's own ETIMEDOUT: retrying would spin on a dead socket
                # else the other direction may have moved bytes meanwhile: look again


class HostProxy:
    """HTTP(S) forward proxy on 127.0.0.1 for one plugin, allowing only its granted hosts."""

    def __init__(
        self,
        plugin: str,
        hosts: Sequence[str],
        *,
        on_denied: Callable[[str, str], None] | None = None,
        connect_timeout: float = 10.0,
        idle_timeout: float = 300.0,
        max_connections: int = 64,
    ) -> None:
        self._plugin = plugin
        self._grant_texts = [_grant_text(host) for host in hosts]
        self._grants = [grant for text in self._grant_texts if (grant := _parse_grant(text))]
        # The addresses the grants name literally: only these may be reached off the public
        # internet (a name that resolves to a private address is refused, see addresses.py).
        self._literals = [
            grant.host.strip("[]") for grant in self._grants if _is_literal(grant.host)
        ]
        self._on_denied = on_denied
        self._connect_timeout = connect_timeout
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._adopted: set[asyncio.Server] = set()
        self._port: int | None = None
        self._closing = False
        self._active = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> int:
        if self._server is not None or self._closing:
            raise RuntimeError(f"the network proxy for {self._plugin!r} was already started")
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=MAX_HEADERS)
        self._port = int(self._server.sockets[0].getsockname()[1])
        log.debug("network proxy for %r on port %d", self._plugin, self._port)
        return self._port

    async def adopt(self, listener: socket.socket) -> asyncio.Server:
        """Serve a listening socket made elsewhere: the one a worker made inside its private
        network namespace, taken over by the kernel. Its connections get exactly the same
        checks as those on the loopback port."""
        if self._closing:
            listener.close()
            raise RuntimeError(f"the network proxy for {self._plugin!r} is closed")
        server = await asyncio.start_server(self._handle, sock=listener, limit=MAX_HEADERS)
        self._adopted.add(server)
        return server

    def release(self, server: asyncio.Server) -> None:
        """Stop serving an adopted listener (its worker is gone)."""
        self._adopted.discard(server)
        server.close()

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError(f"the network proxy for {self._plugin!r} is not started")
        return f"http://127.0.0.1:{self._port}"

    def allows(self, host: str, port: int) -> bool:
        """Whether the grants cover ``host:port``; bad host text is simply not allowed."""
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        try:
            canonical = _canonical_host(host)
        except _HttpError:
            return False
        if not 1 <= port <= 65535:
            return False
        return any(grant.matches(canonical, port) for grant in self._grants)

    async def close(self) -> None:
        """Stop listening, then end every connection, tunnels included; safe to call twice."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for adopted in list(self._adopted):
            self.release(adopted)
        # Loop: a connection accepted just before the listener closed may register meanwhile.
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._connection(reader, writer)
        except asyncio.CancelledError:
            # close() cancels connections on purpose, and so does asyncio.run for whatever is
            # left when the program ends (the chat quit with a call in flight). Nobody awaits
            # this task, and Python 3.11's start_server reports a cancelled handler as an
            # "Exception in callback" traceback: a cancelled connection just ends.
            writer.transport.abort()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._closing or task is None:
            writer.transport.abort()
            return
        self._tasks.add(task)
        over_limit = self._active >= self._max_connections
        if not over_limit:
            self._active += 1
        try:
            if over_limit:
                message = (
                    f"plugin {self._plugin!r} already has {self._max_connections} "
                    "network connections open"
                )
                await self._refuse(reader, writer, _HttpError(503, message))
            else:
                await self._serve(reader, writer)
        except (OSError, TimeoutError) as error:
            # ConnectionError, and what a socket whose far end is gone says otherwise (ENOTCONN
            # on a half-close after a reset): the connection ended, nothing went wrong here.
            log.debug("plugin %r connection ended: %r", self._plugin, error)
        except Exception:
            log.exception("plugin %r: network proxy connection failed", self._plugin)
        finally:
            if not over_limit:
                self._active -= 1
            try:
                await _close_writer(writer)
            finally:
                self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(_read_head(reader), self._idle_timeout)
            if head is None:
                return  # connected and left without a word
            target = _request_target(head)
            length = 0 if head.method == "CONNECT" else _body_length(head)
            if not self.allows(target.host, target.port):
                raise self._denied(target)
            upstream = await self._connect(target)
        except _HttpError as error:
            await self._refuse(reader, writer, error)
            return
        up_reader, up_writer = upstream
        try:
            if head.method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await self._tunnel(reader, writer, up_reader, up_writer)
            else:
                up_writer.write(_origin_form_head(head, target))
                await self._forward(length, reader, writer, up_reader, up_writer)
        finally:
            await _close_writer(up_writer)

    def _denied(self, target: _Target) -> _HttpError:
        granted = ", ".join(f"network:{text}" for text in self._grant_texts)
        return self._refusal(
            target,
            f"plugin {self._plugin!r} may not connect to {target} — "
            f"it was granted {granted or 'no network hosts'}; network:{target} would allow it",
        )

    async def _connect(self, target: _Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self._connect_timeout):
                addresses = await self._addresses(target)
                return await _open_first(addresses, target.port)
        except TimeoutError:
            raise _HttpError(
                504, f"connecting to {target} took longer than {self._connect_timeout:g}s"
            ) from None
        except OSError as error:
            raise _HttpError(502, f"cannot connect to {target}: {_why(error)}") from None

    async def _addresses(self, target: _Target) -> list[str]:
        """Where to connect for ``target``: an IP literal as it is; a name resolved here and
        each answer vetted (DNS rebinding: a name must not lead to the user's own machine or
        network), so the connection goes to an address that was checked, not re-resolved."""
        if _is_literal(target.host):
            return [target.connect_host]
        usable, why = vet(target.host, await resolve(target.host, target.port), self._literals)
        if not usable:
            raise self._refused(target, why or f"{target.host} did not resolve")
        if why is not None:
            log.info("plugin %r: %s (other answers used)", self._plugin, why)
        return usable

    def _refused(self, target: _Target, why: str) -> _HttpError:
        return self._refusal(target, f"plugin {self._plugin!r} may not connect to {target}: {why}")

    def _refusal(self, target: _Target, message: str) -> _HttpError:
        """Log a refusal, tell the kernel (the plugin's log, the user), answer 403."""
        log.info("%s", message)
        if self._on_denied is not None:
            try:
                self._on_denied(str(target), message)
            except Exception:
                log.exception("on_denied callback failed for plugin %r", self._plugin)
        return _HttpError(403, message)

    async def _tunnel(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        idle = _Idle(self._idle_timeout)
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer, idle)),
            asyncio.create_task(_pipe(up_reader, writer, idle)),
        ]
        try:
            done, _ = await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
            errors = [error for pipe in done if (error := pipe.exception()) is not None]
            if errors:
                log.debug("plugin %r tunnel ended: %r", self._plugin, errors[0])
        finally:
            await _cancel(pipes)

    async def _forward(
        self,
        length: int | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        idle = _Idle(self._idle_timeout)
        body = asyncio.create_task(_send_body(length, reader, up_writer, idle))
        # The response is relayed while the body is still going up: a server may answer
        # "100 Continue" first, or refuse early and close.
        response = asyncio.create_task(_pipe(up_reader, writer, idle))
        try:
            done, _ = await asyncio.wait([body, response], return_when=asyncio.FIRST_COMPLETED)
            if body in done and response not in done:
                if (error := body.exception()) is not None:
                    log.info("plugin %r request body failed: %r", self._plugin, error)
                    return
                await response
        finally:
            await _cancel([body, response])

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, error: _HttpError
    ) -> None:
        body = f"{error.message}\n".encode()
        head = (
            f"HTTP/1.1 {error.status} {_reason_phrase(error)}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        if error.status != 403:  # a denial was logged when it was decided
            level = logging.WARNING if error.status == 503 else logging.INFO
            log.log(level, "plugin %r: %d %s", self._plugin, error.status, error.message)
        writer.write(head.encode("ascii") + body)
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(_LINGER_SECONDS):
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                dropped = 0
                while dropped < _LINGER_BYTES:
                    data = await reader.read(_CHUNK)
                    if not data:
                        break
                    dropped += len(data)


async def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to for TCP, in the resolver's order, each once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _open_first(
    addresses: list[str], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first address that answers; the last error if none does."""
    error: OSError | None = None
    for address in addresses:
        try:
            return await asyncio.open_connection(address, port)
        except OSError as failed:
            error = failed
    raise error or OSError("no address to connect to")


def _is_literal(host: str) -> bool:
    """A canonical host (see _canonical_host) that is an IP address, not a name."""
    if host.startswith("["):
        return True
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _why(error: OSError) -> str:
    """The resolver's or the kernel's own words, not asyncio's wrapper text."""
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    if error.errno:
        return os.strerror(error.errno).lower()
    return str(error) or type(error).__name__


def _grant_text(host: str) -> str:
    target = parse_scope(f"network:{host}").target
    if target is None:
        raise ValueError(f"{host!r} is not a host: a network grant here names one host")
    return target


def _parse_grant(text: str) -> _Grant | None:
    if text.startswith("["):
        host, _, rest = text.partition("]")
        host += "]"
        port = rest[1:]
    else:
        host, _, port = text.partition(":")
    if not host.startswith("*."):
        try:
            host = _canonical_host(host)
        except _HttpError as error:
            # The grammar allows names like "10.1" that the resolver would read as addresses;
            # honouring one would let a name grant reach an IP, so it never matches instead.
            log.warning("network grant %r is never honoured: %s", text, error.message)
            return None
    return _Grant(host, int(port) if port else None)


def _canonical_host(text: str) -> str:
    """One spelling per host, so the grant check compares like with like."""
    host = text.lower()
    if host.startswith("["):
        inner = host[1:-1] if host.endswith("]") else ""
        if "%" in inner:
            raise _HttpError(400, f"bad host {text!r}: IPv6 zone ids are not supported")
        try:
            return f"[{ipaddress.IPv6Address(inner).compressed}]"
        except ValueError:
            raise _HttpError(400, f"bad host {text!r}: not an IPv6 address") from None
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
        raise _HttpError(400, f"bad host {text!r}: not a host name or IP address")
    return host


def _parse_port(text: str, whole: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 5 or not 1 <= int(text) <= 65535:
        raise _HttpError(400, f"bad port in {whole!r}: a port is a number from 1 to 65535")
    return int(text)


def _parse_authority(text: str, default_port: int | None) -> _Target:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise _HttpError(400, f"bad host {text!r}: '[' without ']'")
        host, rest = text[: end + 1], text[end + 1 :]
    else:
        if text.count(":") > 1:
            raise _HttpError(400, f"bad host {text!r}: write IPv6 addresses in brackets")
        host, colon, port = text.partition(":")
        rest = colon + port
    if not host:
        raise _HttpError(400, f"no host in {text!r}")
    if rest in ("", ":") and default_port is not None:
        port_number = default_port
    elif not rest:
        raise _HttpError(400, f"missing port in CONNECT target {text!r}: write host:port")
    elif rest.startswith(":"):
        port_number = _parse_port(rest[1:], text)
    else:
        raise _HttpError(400, f"bad host {text!r}: expected ':PORT' after ']'")
    return _Target(_canonical_host(host), port_number)


def _request_target(head: _Head) -> _Target:
    if head.method == "CONNECT":
        if "/" in head.target:
            raise _HttpError(400, f"CONNECT takes host:port, not {head.target!r}")
        return _parse_authority(head.target, None)
    scheme, sep, rest = head.target.partition("://")
    if not sep:
        raise _HttpError(
            400,
            f"{head.method} {head.target[:200]} needs an absolute http:// URI: this is a proxy, "
            "not a web server",
        )
    if scheme.lower() != "http":
        raise _HttpError(400, f"{scheme}:// is not proxied as a request: use CONNECT")
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        raise _HttpError(400, "user names in proxied URLs are not supported")
    return _parse_authority(authority, 80)


def _origin_form_head(head: _Head, target: _Target) -> bytes:
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
        raise _HttpError(400, f"connection closed in the middle of the {what}") from None
    except asyncio.LimitOverrunError:
        raise _HttpError(400, f"{what} is longer than {limit} bytes") from None
    if len(line) > limit:
        raise _HttpError(400, f"{what} is longer than {limit} bytes")
    return line


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    line: bytes | None = b"\r\n"
    while line in (b"\r\n", b"\n"):  # stray blank lines before a request are allowed
        line = await _read_line(reader, "request line", MAX_REQUEST_LINE)
    if line is None:
        return None
    text = line.rstrip(b"\r\n").decode("latin-1")
    request = _REQUEST_LINE.fullmatch(text)
    if request is None:
        raise _HttpError(400, "not an HTTP/1.x request line")
    method, target, version = request.groups()
    headers: list[tuple[str, str]] = []
    total = 0
    while True:
        raw = await _read_line(reader, "header block", MAX_HEADERS)
        if raw is None:
            raise _HttpError(400, "connection closed in the middle of the header block")
        total += len(raw)
        if total > MAX_HEADERS:
            raise _HttpError(400, f"header block is longer than {MAX_HEADERS} bytes")
        if raw in (b"\r\n", b"\n"):
            break
        headers.append(_parse_header(raw.rstrip(b"\r\n").decode("latin-1")))
    return _Head(method, target, version, headers)


def _parse_header(text: str) -> tuple[str, str]:
    if text[:1] in (" ", "\t"):
        raise _HttpError(400, "folded header lines are not supported")
    name, colon, value = text.partition(":")
    if not colon or not _HEADER_NAME.fullmatch(name):
        raise _HttpError(400, f"bad header line {text[:80]!r}")
    value = value.strip(" \t")
    if any(char in value for char in "\r\n\0"):
        raise _HttpError(400, f"bad character in header {name!r}")
    return name, value


def _body_length(head: _Head) -> int | None:
    """The body's length, or None when chunked; ambiguous framing is how requests are smuggled."""
    encodings = [value for name, value in head.headers if name.lower() == "transfer-encoding"]
    lengths = {value for name, value in head.headers if name.lower() == "content-length"}
    if encodings:
        codings = [c.strip().lower() for value in encodings for c in value.split(",")]
        if lengths or codings[-1] != "chunked":
            raise _HttpError(
                400, "Transfer-Encoding must end in chunked and come without Content-Length"
            )
        return None
    if not lengths:
        return 0
    length = lengths.pop()
    if lengths or not length.isascii() or not length.isdigit():
        raise _HttpError(400, "conflicting or non-numeric Content-Length")
    return int(length)


async def _send_body(
    length: int | None,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    idle: _Idle,
) -> None:
    """Copy exactly the request body, so nothing after it reaches the server as a request."""
    if length is None:
        await _copy_chunked(reader, writer, idle)
    else:
        await _copy_exactly(reader, writer, length, idle)
    await idle.wait(writer.drain)


async def _copy_exactly(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: int, idle: _Idle
) -> None:
    while count > 0:
        data = await idle.wait(functools.partial(reader.read, min(count, _CHUNK)))
        if not data:
            raise _BadBody("the body ended early")
        idle.touch()
        count -= len(data)
        writer.write(data)
        await idle.wait(writer.drain)


async def _copy_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: _Idle
) -> None:
    while True:
        line = await idle.wait(lambda: reader.readuntil(b"\n"))
        size = line.split(b";", 1)[0].strip()
        if not _CHUNK_SIZE.fullmatch(size):
            raise _BadBody(f"bad chunk size {size[:20]!r}")
        writer.write(line)
        if int(size, 16) == 0:
            break
        await _copy_exactly(reader, writer, int(size, 16) + 2, idle)  # data and its CRLF
    while True:  # trailer fields, up to the blank line
        line = await idle.wait(lambda: reader.readuntil(b"\n"))
        writer.write(line)
        if line in (b"\r\n", b"\n"):
            break
    await idle.wait(writer.drain)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: _Idle) -> None:
    """Relay one direction; at its end pass the half-close on, as the sender meant it."""
    while True:
        data = await idle.wait(lambda: reader.read(_CHUNK))
        if not data:
            break
        idle.touch()
        writer.write(data)
        await idle.wait(writer.drain)
    if writer.can_write_eof() and not writer.is_closing():
        with contextlib.suppress(OSError):  # ENOTCONN: the other end is gone, nothing to tell
            writer.write_eof()


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _reason_phrase(error: _HttpError) -> str:
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


async def _close_writer(writer: asyncio.StreamWriter) -> None:
    """Close politely, but never wait forever on a peer that stopped reading."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), _LINGER_SECONDS)
    except asyncio.CancelledError:
        writer.transport.abort()
        raise
    except TimeoutError:
        writer.transport.abort()
    except OSError:
        pass
