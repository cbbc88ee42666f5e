"""An event loop that reaches loopback only, so ``ci/smoke.py`` runs plugins offline.

A plugin granted ``network:HOST`` answers the same on a laptop, in CI and on a runner that
happens to have a connection: its proxied requests fail as they would with no network.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from typing import Any

__all__ = ["OfflineEventLoop"]


class OfflineEventLoop(asyncio.SelectorEventLoop):
    """The kernel's loop for an offline run: it looks up and reaches loopback only.

    A plugin granted ``network:HOST`` reaches the internet only through the kernel's proxy,
    and the proxy resolves and connects from this loop; refusing here makes the proxy answer
    "bad gateway", as it would on a machine without a network. The name lookup is refused
    too: resolving a plugin's host is itself a query on the network. (A plugin granted bare
    ``network`` connects by itself, from its worker: the offline run does not start those.)
    """

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        host = kwargs.get("host", args[1] if len(args) > 1 else None)
        if host is not None and not _is_loopback(host):
            raise OSError(errno.ENETUNREACH, f"smoke run is offline: no route to {host}")
        return await super().create_connection(*args, **kwargs)

    async def getaddrinfo(self, host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise socket.gaierror(socket.EAI_NONAME, f"smoke run is offline: {host} not looked up")
        return await super().getaddrinfo(host, *args, **kwargs)

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise OSError(errno.ENETUNREACH, f"smoke run is offline: no route to {address[0]}")
        return await super().sock_connect(sock, address)

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> Any:
        remote = kwargs.get("remote_addr")
        if remote is not None and not _is_loopback(remote[0]):
            raise OSError(errno.ENETUNREACH, f"smoke run is offline: no route to {remote[0]}")
        return await super().create_datagram_endpoint(*args, **kwargs)


def _is_loopback(host: Any) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
