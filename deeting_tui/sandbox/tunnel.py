"""Transparent tunnels for plugins granted only some hosts.

Such a worker may open TCP connections to one place only: its proxy on loopback (Landlock
allows that one port). HTTP libraries find the proxy through ``HTTPS_PROXY``; everything else
— ``socket.create_connection``, ``http.client``, asyncio streams, database drivers — would
simply fail. So in these workers ``socket.socket.connect`` is wrapped: a TCP connect to any
other address connects to the proxy instead and asks it for ``CONNECT host:port``; the proxy
checks the host against the grants, and on success the socket is a byte-for-byte tunnel to
that host. This is a convenience, not a boundary: code that goes around it (``_socket``,
ctypes) meets Landlock, which still allows the proxy's port only.

The worker has no DNS (no UDP), so host names are resolved the way tun2socks does it: for a
name, ``getaddrinfo`` answers with a stand-in address from the reserved 240.0.0.0/4 range,
and a connect to a stand-in asks the proxy for the name itself — which then resolves it, and
checks it against the grants by name.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from typing import Any

from deeting_tui.terminal_text import one_line

from .guard import SandboxDenied

HANDSHAKE_TIMEOUT_S = 30.0
MAX_REPLY_BYTES = 16 * 1024
_LOOPBACK = ("127.0.0.1", "::1", "localhost")
_STAND_IN_BASE = int(ipaddress.IPv4Address("240.0.0.1"))


class TunnelRefused(SandboxDenied):
    """The proxy would not open the tunnel (the host is not granted, or it cannot be reached)."""


def install_tunnels(plugin: str, proxy_port: int) -> None:
    """Route this worker's TCP connects through its proxy (once; before plugin import)."""
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_getaddrinfo = socket.getaddrinfo
    lock = threading.Lock()
    names: dict[str, str] = {}  # stand-in address -> host name
    stand_ins: dict[str, str] = {}  # host name -> stand-in address

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, *args: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if not isinstance(name, str) or not name or _is_address(name):
            return original_getaddrinfo(host, port, family, type, *args)
        if family not in (0, socket.AF_INET) or type not in (0, socket.SOCK_STREAM):
            return original_getaddrinfo(host, port, family, type, *args)
        name = name.lower().rstrip(".")
        with lock:  # asyncio resolves in executor threads
            if name not in stand_ins:
                address = str(ipaddress.IPv4Address(_STAND_IN_BASE + len(stand_ins)))
                stand_ins[name], names[address] = address, name
            stand_in = stand_ins[name]
        tcp = socket.IPPROTO_TCP
        return [(socket.AF_INET, socket.SOCK_STREAM, tcp, "", (stand_in, _port(port)))]

    def through_proxy(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return False
        if not isinstance(address, tuple) or len(address) < 2:
            return False
        host, port = address[0], address[1]
        if host in _LOOPBACK and port == proxy_port:
            return False
        host = names.get(host, host)
        timeout = sock.gettimeout()
        # Non-blocking sockets (asyncio) get a short blocking handshake: the proxy is local.
        sock.settimeout(timeout or HANDSHAKE_TIMEOUT_S)
        try:
            original_connect(sock, ("127.0.0.1", proxy_port))
            target = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            status, why = _read_reply(sock)
        finally:
            sock.settimeout(timeout)
        if not status.startswith(("HTTP/1.1 200", "HTTP/1.0 200")):
            raise TunnelRefused(why or f"plugin '{plugin}' may not connect to {target}: {status}")
        return True

    def connect(self: socket.socket, address: Any) -> None:
        if not through_proxy(self, address):
            original_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        try:
            if through_proxy(self, address):
                return 0
        except OSError as exc:
            return exc.errno or 1
        return original_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]


def _port(port: Any) -> int:
    if isinstance(port, int):
        return port
    text = port.decode() if isinstance(port, bytes) else str(port or 0)
    return int(text) if text.isdigit() else socket.getservbyname(text, "tcp")


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _read_reply(sock: socket.socket) -> tuple[str, str]:
    """The proxy's status line, and for a refusal the proxy's one-line reason (its body).

    Reads byte by byte up to the blank line, so not one byte of a tunnelled stream is taken
    from the caller; only a refusal's body is read, and that connection is over anyway.
    """
    reply = bytearray()
    while not reply.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte or len(reply) > MAX_REPLY_BYTES:
            raise ConnectionError("the plugin's proxy closed the connection during CONNECT")
        reply += byte
    head = bytes(reply).decode("latin-1")
    status = head.partition("\r\n")[0].strip()
    if status.startswith(("HTTP/1.1 200", "HTTP/1.0 200")):
        return status, ""
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and value.strip().isdigit():
            length = min(int(value.strip()), MAX_REPLY_BYTES)
    body = bytearray()
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            break
        body += chunk
    return status, one_line(body.decode("utf-8", "replace"))
