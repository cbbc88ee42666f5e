"""A loopback static server for a registry folder: ``python -m registry_tools.serve DIR``.

For newcomers and tests, not for production: it serves the files ``gen_registry`` wrote, with
a strong ETag (the file's SHA-256) so a client's conditional GET gets ``304 Not Modified``
when nothing changed, and an exact Content-Length. It lists no folders, serves no dotfiles
(the temp files of an atomic write among them), and refuses ``..`` however it is spelled and
any path that resolves outside DIR.

In-process use (tests, scripts)::

    with start(folder) as server:
        httpx.get(server.url + "registry.json")
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import mimetypes
import os
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from urllib.parse import unquote, urlsplit

from registry_tools import ToolError

__all__ = ["RegistryHTTPServer", "RunningServer", "main", "make_server", "start"]

CONTENT_TYPES = {".json": "application/json", ".zip": "application/zip"}


class RegistryHTTPServer(ThreadingHTTPServer):
    """Serves one folder; remembers each file's ETag by (inode, size, mtime) so a 304 costs
    a stat, not a re-hash."""

    daemon_threads = True

    def __init__(self, directory: Path, host: str, port: int, *, log_requests: bool) -> None:
        self.root = directory.resolve()
        self.log_requests = log_requests
        self._etags: dict[tuple[int, int, int, int], str] = {}
        #: Every request answered, as (method, path, status): what a sync really cost.
        self.served: list[tuple[str, str, int]] = []
        self._etag_lock = threading.Lock()
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        # HTTPServer's version asks DNS for the host's full name, which can stall offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_name
        return (
            f"http://[{host}]:{self.server_port}/"
            if ":" in host
            else (f"http://{host}:{self.server_port}/")
        )

    def etag(self, fd: int, data: bytes) -> str:
        info = os.fstat(fd)
        key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
        with self._etag_lock:
            known = self._etags.get(key)
        if known is None:
            known = f'"{hashlib.sha256(data).hexdigest()}"'
            with self._etag_lock:
                self._etags[key] = known
        return known


class _Handler(BaseHTTPRequestHandler):
    server: RegistryHTTPServer
    server_version = "deeting-registry-serve"
    timeout = 30  # an idle or trickling client cannot hold a thread for ever

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def _serve(self, *, send_body: bool) -> None:
        path = self._resolve()
        if path is None:
            return
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            self._fail(HTTPStatus.NOT_FOUND, "no such file")
            return
        with os.fdopen(fd, "rb") as handle:  # one open file: the ETag matches the body sent
            data = handle.read()
            etag = self.server.etag(handle.fileno(), data)
        if _matches(self.headers.get("If-None-Match"), etag):
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        kind = CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        self.send_header("Content-Type", kind or "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.send_header("Cache-Control", "no-cache")  # always revalidate: cheap with ETags
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def _resolve(self) -> Path | None:
        """A regular file inside the root, or None after an error reply."""
        text = unquote(urlsplit(self.path).path)
        if not text.startswith("/") or "\\" in text or "\0" in text:
            self._fail(HTTPStatus.BAD_REQUEST, "malformed path")
            return None
        parts = [part for part in text.split("/") if part not in ("", ".")]
        if ".." in parts:
            self._fail(HTTPStatus.BAD_REQUEST, "'..' is not allowed in a path")
            return None
        if any(part.startswith(".") for part in parts):
            self._fail(HTTPStatus.NOT_FOUND, "no such file")
            return None
        real = self.server.root.joinpath(*parts).resolve()
        if not real.is_relative_to(self.server.root):
            self._fail(HTTPStatus.FORBIDDEN, "outside the served folder")
            return None
        if not real.is_file():  # folders too: there are no listings
            self._fail(HTTPStatus.NOT_FOUND, "no such file")
            return None
        return real

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        status = int(code) if str(code).isdigit() else 0
        with self.server._etag_lock:
            self.server.served.append((self.command or "", self.path, status))
        super().log_request(code, size)

    def _fail(self, status: HTTPStatus, why: str) -> None:
        self.send_error(status, why)

    def log_message(self, format: str, *args: object) -> None:
        if self.server.log_requests:
            super().log_message(format, *args)


def _matches(header: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/ is ignored."""
    if not header:
        return False
    candidates = [item.strip() for item in header.split(",")]
    return "*" in candidates or any(item.removeprefix("W/") == etag for item in candidates)


class RunningServer:
    """A server on a background thread; ``stop()`` (or leaving the ``with``) ends it."""

    def __init__(self, server: RegistryHTTPServer) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
            self._thread.join()
        self.server.server_close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def make_server(
    directory: Path, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = False
) -> RegistryHTTPServer:
    if not Path(directory).is_dir():
        raise ToolError(f"{directory} is not a folder — give the folder that holds registry.json")
    try:
        return RegistryHTTPServer(Path(directory), host, port, log_requests=log_requests)
    except OSError as error:
        if error.errno == 98:  # EADDRINUSE
            raise ToolError(
                f"port {port} on {host} is in use — pick another with --port, or 0 for any free one"
            ) from None
        raise ToolError(f"cannot listen on {host}:{port} ({error.strerror or error})") from None


def start(
    directory: Path, host: str = "127.0.0.1", port: int = 0, *, log_requests: bool = False
) -> RunningServer:
    """Serve ``directory`` on a thread; the returned server's ``url`` ends with '/'."""
    return RunningServer(make_server(directory, host, port, log_requests=log_requests))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m registry_tools.serve",
        description="Serve a registry folder over loopback HTTP, with ETags (for local testing).",
    )
    parser.add_argument("directory", type=Path, metavar="DIR", help="the registry folder")
    parser.add_argument("--port", type=int, default=0, help="0 (default): any free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not _is_loopback(args.host):
        print(
            f"serve: warning: {args.host} is not a loopback address; this server is for "
            "local testing, publish with a real web server",
            file=sys.stderr,
        )
    try:
        server = make_server(args.directory, args.host, args.port, log_requests=not args.quiet)
    except ToolError as error:
        print(f"serve: error: {error}", file=sys.stderr)
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"serving {args.directory} at {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
