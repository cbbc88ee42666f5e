"""Serving browser faces to a real Chromium for the faces' own tests (table, search, weather).

A small threaded ``http.server`` on 127.0.0.1 serves the repo's ``renderers/`` under
``/T/renderers/`` and the built ``deeting_tui/web/vendor`` under ``/T/vendor/`` with the renderer
CSP from ``deeting_tui.web.policy``: a face that needs an inline script, a remote image or a
fetch fails here as it would in the product. ``open_face`` opens a face top-level (so
``DeetingFace.drawForTest`` exists) and records console errors and CSP violations.
"""

from __future__ import annotations

import mimetypes
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from deeting_tui.web.policy import COMMON_HEADERS, renderer_policy

ROOT = Path(__file__).resolve().parents[2]
MOUNTS = {
    "/T/renderers/": ROOT / "renderers",
    "/T/vendor/": ROOT / "deeting_tui" / "web" / "vendor",
}
#: Zod (inside the MCP App SDK) probes ``new Function("")`` once while mcp-app.js loads, before
#: the App sets ``jitless``; the CSP refuses it (as it should) and the probe catches the error.
#: Every face shows this one report, so it is not the face's fault; nothing else is tolerated.
KNOWN_VENDOR_REPORT = re.compile(r"^CSP violation: script-src eval from \S+/T/vendor/mcp-app\.js$")
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        for prefix, base in MOUNTS.items():
            if path.startswith(prefix):
                target = (base / path[len(prefix) :]).resolve()
                if target.is_relative_to(base.resolve()) and target.is_file():
                    self._send(target)
                    return
        self.send_error(404)

    def _send(self, target: Path) -> None:
        body = target.read_bytes()
        kind = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        host = self.server.server_address
        self.send_header("Content-Security-Policy", renderer_policy(f"http://{host[0]}:{host[1]}"))
        for name, value in COMMON_HEADERS:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def face_server() -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT/T/``) of a server for this module's tests."""
    if not (MOUNTS["/T/vendor/"] / "mcp-app.js").is_file():
        pytest.skip("deeting_tui/web/vendor is not built: run ./dev.sh test (it builds frontend/)")
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


@dataclass
class Face:
    """An open face page and what its console said."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def draw(self, payload: Any, theme: str = "light") -> int:
        """Draw ``payload`` through the face's test hook; returns body.dataset.updates after."""
        self.page.evaluate("([p, t]) => DeetingFace.drawForTest(p, t)", [payload, theme])
        return int(self.page.evaluate("document.body.dataset.updates"))

    def failure(self) -> str | None:
        """The escaped failure text guest.js shows when the face threw, else None."""
        box = self.page.query_selector(".face-failure")
        return box.text_content() if box else None


def open_face(browser: Any, base: str, name: str, width: int = 800) -> Iterator[Face]:
    """Open ``renderers/NAME/index.html`` top-level in a fresh context, ``width`` px wide."""
    context = browser.new_context(viewport={"width": width, "height": 700})
    page = context.new_page()
    face = Face(page)
    page.on(
        "console",
        lambda msg: (
            face.errors.append(msg.text)
            if msg.type == "error" and not KNOWN_VENDOR_REPORT.match(msg.text)
            else None
        ),
    )
    page.on("pageerror", lambda err: face.errors.append(str(err)))
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', e => "
        "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI"
        " + ' from ' + e.sourceFile))"
    )
    page.goto(f"{base}renderers/{name}/index.html")
    page.wait_for_function(
        "() => window.DeetingFace && typeof DeetingFace.drawForTest === 'function'"
    )
    try:
        yield face
    finally:
        context.close()
