"""A minimal server for a face's own browser tests: the repo's ``renderers/`` at
``/T/renderers/`` and the built libraries at ``/T/vendor/``, with the renderer CSP and the common
headers the real server sends, so a face that breaks the policy fails here too."""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from deeting_tui.web.policy import COMMON_HEADERS, renderer_policy

ROOT = Path(__file__).resolve().parents[2]
MOUNTS = {
    "/T/renderers/": ROOT / "renderers",
    "/T/vendor/": ROOT / "deeting_tui" / "web" / "vendor",
}
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        for prefix, folder in MOUNTS.items():
            if path.startswith(prefix):
                target = (folder / path[len(prefix) :]).resolve()
                if target.is_relative_to(folder.resolve()) and target.is_file():
                    self._send(target)
                    return
        self.send_error(404)

    def _send(self, target: Path) -> None:
        body = target.read_bytes()
        kind = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "text/plain"
        host, port = self.server.server_address[:2]
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", renderer_policy(f"http://{host}:{port}"))
        for name, value in COMMON_HEADERS:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@contextmanager
def serve_faces() -> Iterator[str]:
    """Serve until the block ends; yields the base URL (``http://127.0.0.1:PORT/T/``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/T/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
