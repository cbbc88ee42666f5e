"""The per-plugin forward proxy: the only way out of a sandboxed worker onto the network.

The OS sandbox lets a worker open TCP connections to one loopback port and nothing else, so
``network:HOST`` grants are enforced here, in the kernel, where the plugin cannot tamper with
the check. The decision uses only the CONNECT target or the absolute request URI: the Host
header is the client's word and a plugin controls the client. Names are resolved here too,
because the worker has no UDP, and an IP literal is allowed only when that literal is granted,
so a grant for a name never becomes a grant for whatever addresses it resolves to.

Everything a connection does is caught and logged: a hostile plugin must not be able to take
down the kernel's event loop by sending a strange request.

This module is the listener and one connection's life (accept, decide, connect, refuse,
close); reading the request is request.py, the grants are grants.py and moving the bytes is
relay.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Sequence
from typing import Any

from .addresses import vet
from .grants import grant_text, is_literal, parse_grant
from .relay import (
    CHUNK,
    LINGER_BYTES,
    LINGER_SECONDS,
    Idle,
    cancel,
    close_writer,
    pipe,
    send_body,
)
from .request import (
    MAX_HEADERS,
    HttpError,
    Target,
    body_length,
    canonical_host,
    origin_form_head,
    read_head,
    reason_phrase,
    request_target,
)

__all__ = ["HostProxy", "resolve"]

log = logging.getLogger("deeting.netproxy")


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
        self._grant_texts = [grant_text(host) for host in hosts]
        self._grants = [grant for text in self._grant_texts if (grant := parse_grant(text))]
        # The addresses the grants name literally: only these may be reached off the public
        # internet (a name that resolves to a private address is refused, see addresses.py).
        self._literals = [
            grant.host.strip("[]") for grant in self._grants if is_literal(grant.host)
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
            canonical = canonical_host(host)
        except HttpError:
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
                await self._refuse(reader, writer, HttpError(503, message))
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
                await close_writer(writer)
            finally:
                self._tasks.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(read_head(reader), self._idle_timeout)
            if head is None:
                return  # connected and left without a word
            target = request_target(head)
            length = 0 if head.method == "CONNECT" else body_length(head)
            if not self.allows(target.host, target.port):
                raise self._denied(target)
            upstream = await self._connect(target)
        except HttpError as error:
            await self._refuse(reader, writer, error)
            return
        up_reader, up_writer = upstream
        try:
            if head.method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await self._tunnel(reader, writer, up_reader, up_writer)
            else:
                up_writer.write(origin_form_head(head, target))
                await self._forward(length, reader, writer, up_reader, up_writer)
        finally:
            await close_writer(up_writer)

    def _denied(self, target: Target) -> HttpError:
        granted = ", ".join(f"network:{text}" for text in self._grant_texts)
        return self._refusal(
            target,
            f"plugin {self._plugin!r} may not connect to {target} — "
            f"it was granted {granted or 'no network hosts'}; network:{target} would allow it",
        )

    async def _connect(self, target: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self._connect_timeout):
                addresses = await self._addresses(target)
                return await _open_first(addresses, target.port)
        except TimeoutError:
            raise HttpError(
                504, f"connecting to {target} took longer than {self._connect_timeout:g}s"
            ) from None
        except OSError as error:
            raise HttpError(502, f"cannot connect to {target}: {_why(error)}") from None

    async def _addresses(self, target: Target) -> list[str]:
        """Where to connect for ``target``: an IP literal as it is; a name resolved here and
        each answer vetted (DNS rebinding: a name must not lead to the user's own machine or
        network), so the connection goes to an address that was checked, not re-resolved."""
        if is_literal(target.host):
            return [target.connect_host]
        usable, why = vet(target.host, await resolve(target.host, target.port), self._literals)
        if not usable:
            raise self._refused(target, why or f"{target.host} did not resolve")
        if why is not None:
            log.info("plugin %r: %s (other answers used)", self._plugin, why)
        return usable

    def _refused(self, target: Target, why: str) -> HttpError:
        return self._refusal(target, f"plugin {self._plugin!r} may not connect to {target}: {why}")

    def _refusal(self, target: Target, message: str) -> HttpError:
        """Log a refusal, tell the kernel (the plugin's log, the user), answer 403."""
        log.info("%s", message)
        if self._on_denied is not None:
            try:
                self._on_denied(str(target), message)
            except Exception:
                log.exception("on_denied callback failed for plugin %r", self._plugin)
        return HttpError(403, message)

    async def _tunnel(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        idle = Idle(self._idle_timeout)
        pipes = [
            asyncio.create_task(pipe(reader, up_writer, idle)),
            asyncio.create_task(pipe(up_reader, writer, idle)),
        ]
        try:
            done, _ = await asyncio.wait(pipes, return_when=asyncio.FIRST_EXCEPTION)
            errors = [error for pipe in done if (error := pipe.exception()) is not None]
            if errors:
                log.debug("plugin %r tunnel ended: %r", self._plugin, errors[0])
        finally:
            await cancel(pipes)

    async def _forward(
        self,
        length: int | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        idle = Idle(self._idle_timeout)
        body = asyncio.create_task(send_body(length, reader, up_writer, idle))
        # The response is relayed while the body is still going up: a server may answer
        # "100 Continue" first, or refuse early and close.
        response = asyncio.create_task(pipe(up_reader, writer, idle))
        try:
            done, _ = await asyncio.wait([body, response], return_when=asyncio.FIRST_COMPLETED)
            if body in done and response not in done:
                if (error := body.exception()) is not None:
                    log.info("plugin %r request body failed: %r", self._plugin, error)
                    return
                await response
        finally:
            await cancel([body, response])

    async def _refuse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, error: HttpError
    ) -> None:
        body = f"{error.message}\n".encode()
        head = (
            f"HTTP/1.1 {error.status} {reason_phrase(error)}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        if error.status != 403:  # a denial was logged when it was decided
            level = logging.WARNING if error.status == 503 else logging.INFO
            log.log(level, "plugin %r: %d %s", self._plugin, error.status, error.message)
        writer.write(head.encode("ascii") + body)
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(LINGER_SECONDS):
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                dropped = 0
                while dropped < LINGER_BYTES:
                    data = await reader.read(CHUNK)
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


def _why(error: OSError) -> str:
    """The resolver's or the kernel's own words, not asyncio's wrapper text."""
    if isinstance(error, socket.gaierror) and error.strerror:
        return error.strerror
    if error.errno:
        return os.strerror(error.errno).lower()
    return str(error) or type(error).__name__
