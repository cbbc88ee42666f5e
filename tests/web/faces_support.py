"""Testing one browser face on its own: a tiny loopback server and a page that records trouble.

The one face server and page helper for every face's tests (tests/web/conftest.py registers
the fixtures). The real server (deeting_tui.web) serves faces under a secret token; a face's
own tests need only the same layout and the same policy, so this serves the checkout's
``renderers/`` at ``/T/renderers/`` and the built libraries at ``/T/vendor/``, every response
with the renderer CSP and the common headers: a face that needs an inline script, a remote
image or a fetch fails here as it would in the product. A face opened top-level exposes
``DeetingFace.drawForTest``.

``open_face`` gives a page whose console errors and warnings, page errors and CSP violations
land in a list the test asserts is empty, and which records every request that left the
server's origin. Nothing is tolerated, vendor files included.
"""

from __future__ import annotations

import mimetypes
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from deeting_tui.web.policy import COMMON_HEADERS, renderer_policy

ROOT = Path(__file__).resolve().parents[2]
RENDERERS = ROOT / "renderers"
VENDOR = ROOT / "deeting_tui" / "web" / "vendor"
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".json": "application/json",
}


def resolve(path: str) -> Path | None:
    """The file ``/T/renderers/...`` or ``/T/vendor/...`` names, or None. A renderer without
    index.html gets the ``_fallback`` face's files, as from the real server."""
    parts = [unquote(p) for p in urlsplit(path).path.split("/") if p]
    if len(parts) < 3 or parts[0] != "T" or any(p in (".", "..") or "\\" in p for p in parts):
        return None
    if parts[1] == "vendor":
        base = VENDOR
    elif parts[1] == "renderers":
        base = RENDERERS
        if len(parts) == 4 and _faceless(parts[2]):
            stand_in = RENDERERS / "_fallback" / parts[3]
            if stand_in.is_file():
                return stand_in
    else:
        return None
    target = base.joinpath(*parts[2:])
    return target if target.is_file() else None


def _faceless(folder: str) -> bool:
    """A renderer (not _shared or _fallback) with no index.html of its own. Unlike the real
    server this includes names with no folder at all, so the fallback can be tested under a
    renderer's name once every core renderer has a face."""
    return not folder.startswith("_") and not (RENDERERS / folder / "index.html").is_file()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        target = resolve(self.path)
        origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        body = target.read_bytes() if target else b"not found\n"
        kind = TYPES.get(target.suffix) if target else None
        kind = kind or (mimetypes.guess_type(target.name)[0] if target else None) or "text/plain"
        self.send_response(200 if target else 404)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", renderer_policy(origin))
        for name, value in COMMON_HEADERS:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test's output is its assertions."""


# tests/web/conftest.py imports these, which registers them under their names; their Python
# names differ so that a test's parameter does not shadow an import.
@pytest.fixture(scope="session", name="face_server")
def face_server_fixture() -> Iterator[str]:
    """The base URL (``http://127.0.0.1:PORT/T/``) of a server for the checkout's faces."""
    if not (VENDOR / "mcp-app.js").is_file():
        pytest.skip("the front-end libraries are not built: run ./dev.sh test (or build.mjs)")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="face-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/T/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class FacePage:
    """A face opened top-level, and what went wrong on it."""

    page: Any
    origin: str
    problems: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def draw(self, payload: Any, theme: str | None = None) -> int:
        """Draw ``payload`` as a stream frame would, wait until it is counted, and return the
        count (``body.dataset.updates``) after it."""
        before = int(self.page.evaluate("document.body.dataset.updates || '0'"))
        self.page.evaluate("([p, t]) => DeetingFace.drawForTest(p, t)", [payload, theme])
        self.page.wait_for_function(f"Number(document.body.dataset.updates) > {before}")
        return int(self.page.evaluate("document.body.dataset.updates"))

    def draw_js(self, expression: str, theme: str | None = None) -> None:
        """Draw the payload a JavaScript ``expression`` builds in the page (data too deep or
        too big to send from Python comfortably), and wait until it is counted."""
        before = int(self.page.evaluate("document.body.dataset.updates || '0'"))
        self.page.evaluate(f"(t) => DeetingFace.drawForTest(({expression}), t)", theme)
        self.page.wait_for_function(f"Number(document.body.dataset.updates) > {before}")

    def text(self, selector: str = "body") -> str:
        return str(self.page.inner_text(selector))

    def failure(self) -> str | None:
        """The escaped failure text guest.js shows when the face threw, else None."""
        box = self.page.query_selector(".face-failure")
        return box.text_content() if box else None

    def assert_clean(self) -> None:
        """No console error or warning, page error, CSP violation or request off the server."""
        assert self.problems == [], self.problems
        assert self.foreign == [], self.foreign


@pytest.fixture(name="open_face")
def open_face_fixture(browser: Any, face_server: str) -> Iterator[Callable[..., FacePage]]:
    """``open_face(NAME, width=800, height=700, **options)``: the face in a fresh browser
    context (``options`` are Playwright's new_context arguments), closed after the test."""
    contexts: list[Any] = []

    def opener(name: str, *, width: int = 800, height: int = 700, **options: Any) -> FacePage:
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        contexts.append(context)
        return _open(context, face_server, name)

    yield opener
    for context in contexts:
        context.close()


def _open(context: Any, base: str, name: str) -> FacePage:
    """Open ``renderers/NAME/index.html`` in ``context``, recording its trouble."""
    page = context.new_page()
    origin = base.split("/T/")[0]
    face = FacePage(page, origin)
    page.on(
        "console",
        lambda msg: (
            face.problems.append(f"console.{msg.type}: {msg.text}")
            if msg.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda err: face.problems.append(f"pageerror: {err}"))
    page.on(
        "request",
        lambda req: None if req.url.startswith(origin + "/") else face.foreign.append(req.url),
    )
    # CSP violations are console errors in Chromium too; this catches ones that are not.
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}"
        " from ${e.sourceFile}`));"
    )
    page.goto(f"{base}renderers/{name}/index.html")
    page.wait_for_function("window.DeetingFace && typeof DeetingFace.drawForTest === 'function'")
    return face
