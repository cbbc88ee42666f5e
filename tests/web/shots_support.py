"""Drawing a browser face on its own, for screenshot references and the README's pictures.

A small threaded ``http.server`` serves the renderer folders and the built libraries in the
card server's URL layout (``/TOKEN/renderers/NAME/…``, ``/TOKEN/vendor/…``), so a face's
relative links (``../_shared/guest.js``, ``../../vendor/mcp-app.js``) resolve as they do in
production, and every renderer document carries the production CSP (``renderer_policy``): a
face that needs an inline script or style fails here too. Opened top-level (no parent), a face
exposes ``DeetingFace.drawForTest(payload, theme)``; :func:`draw_face` calls it and waits on
the page contract (``body.dataset.updates``), the fonts and two animation frames — never on
time — so a loaded machine only makes it slower, not different.

Pictures are compared with a tolerance (:func:`compare`): fonts and antialiasing differ
between machines, a layout change does not hide in a few pixels.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import mimetypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from deeting_tui.resources import core_renderers_dir
from deeting_tui.web.policy import COMMON_HEADERS, renderer_policy

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCES = Path(__file__).resolve().parent / "references"
VENDOR = REPO_ROOT / "deeting_tui" / "web" / "vendor"
TOKEN = "shots"

#: The generic face: drawn for a renderer that has no browser face of its own.
FALLBACK = "_fallback"
#: What the fallback face is shown drawing when its folder has no example.json.
FALLBACK_EXAMPLE: dict[str, Any] = {
    "status": "ok",
    "items": [{"name": "alpha", "size": 1234}, {"name": "<b>not bold</b>", "size": None}],
    "note": "A renderer without a browser face: its data, escaped, as JSON.",
}

#: The environment variable that (re)writes the references instead of comparing.
UPDATE_ENV = "DEETING_UPDATE_SHOTS"
UPDATE_COMMAND = (
    f"{UPDATE_ENV}=1 PYTHONPATH=$PWD .venv/bin/python -m pytest -q -p no:cacheprovider "
    "tests/web/test_face_screenshots.py"
)

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Shot:
    """One picture: a face, a theme, a viewport; its reference file is ``key``.png."""

    face: str
    theme: str
    width: int
    height: int
    label: str = ""  # "" for the desktop size, "phone" for the narrow one

    @property
    def key(self) -> str:
        return "-".join(part for part in (self.face, self.theme, self.label) if part)

    @property
    def reference(self) -> Path:
        return REFERENCES / f"{self.key}.png"


def renderers_dir() -> Path:
    return core_renderers_dir()


def face_names() -> list[str]:
    """Every renderer with a browser face (an index.html), and the fallback face if built."""
    root = renderers_dir()
    names = sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and p.name[0] not in "._" and (p / "index.html").is_file()
    )
    if (root / FALLBACK / "index.html").is_file():
        names.append(FALLBACK)
    return names


def example_of(face: str) -> Any:
    path = renderers_dir() / face / "example.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    if face == FALLBACK:
        return FALLBACK_EXAMPLE
    raise FileNotFoundError(f"{path} is missing: every renderer has an example.json")


class _Handler(http.server.BaseHTTPRequestHandler):
    """GET only, from two folders, nothing outside them; the production headers."""

    server_version = "deeting-shots"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read no log
        return

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        parts = path.split("/")
        file: Path | None = None
        if len(parts) >= 4 and parts[0] == "" and parts[1] == TOKEN:
            if parts[2] == "renderers":
                file = _inside(renderers_dir(), parts[3:])
            elif parts[2] == "vendor":
                file = _inside(VENDOR, parts[3:])
        if file is None:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")
            return
        kind = _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "text/plain"
        self._send(200, file.read_bytes(), kind, html=file.suffix == ".html")

    def _send(self, status: int, body: bytes, kind: str, *, html: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in COMMON_HEADERS:
            self.send_header(name, value)
        if html:
            host, port = self.server.server_address[:2]
            self.send_header("Content-Security-Policy", renderer_policy(f"http://{host}:{port}"))
        self.end_headers()
        self.wfile.write(body)


def _inside(root: Path, parts: list[str]) -> Path | None:
    if not parts or any(p in ("", ".", "..") for p in parts):
        return None
    candidate = root.joinpath(*parts).resolve()
    base = root.resolve()
    if base not in candidate.parents or not candidate.is_file():
        return None
    return candidate


@contextlib.contextmanager
def face_server() -> Iterator[str]:
    """Serve the faces on 127.0.0.1; yields the base URL (``http://127.0.0.1:P/TOKEN/``)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="shots-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}/{TOKEN}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


#: Resolves once the drawn payload is on the page, the fonts are in, and two frames have
#: been painted after it (a canvas face — the chart — paints in requestAnimationFrame).
_SETTLE = """async () => {
  await document.fonts.ready;
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return document.body.dataset.updates;
}"""


def draw_face(page: Any, base: str, shot: Shot, payload: Any) -> None:
    """Open ``shot.face`` top-level, draw ``payload`` in ``shot.theme``, wait until settled.

    A console error or a page error (a CSP refusal among them) fails the drawing: a face that
    needs something the policy refuses must not get a reference that hides it.
    """
    problems: list[str] = []
    page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    page.on(
        "console",
        lambda msg: (
            problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None
        ),
    )
    page.goto(f"{base}renderers/{shot.face}/index.html", wait_until="load")
    page.wait_for_function("() => window.DeetingFace && window.DeetingFace.drawForTest")
    page.evaluate(
        "([payload, theme]) => DeetingFace.drawForTest(payload, theme)", [payload, shot.theme]
    )
    page.wait_for_function("() => document.body.dataset.updates === '1'")
    page.evaluate(_SETTLE)
    failure = page.query_selector(".face-failure")
    if failure is not None:
        problems.append(f"the face showed a failure: {failure.text_content()}")
    if problems:
        raise AssertionError(f"{shot.key}: " + "; ".join(problems))


def screenshot(browser: Any, base: str, shot: Shot, payload: Any) -> bytes:
    """The face drawn in a fresh context at ``shot``'s viewport: PNG bytes."""
    context = browser.new_context(
        viewport={"width": shot.width, "height": shot.height},
        device_scale_factor=1,
        reduced_motion="reduce",
        color_scheme=shot.theme,
    )
    try:
        page = context.new_page()
        draw_face(page, base, shot, payload)
        png: bytes = page.screenshot(animations="disabled", caret="hide")
        return png
    finally:
        context.close()


@dataclass
class Difference:
    """How two pictures differ: the share of pixels over the channel tolerance."""

    size_matches: bool
    differing: int
    total: int
    worst: int  # the largest channel delta seen

    @property
    def fraction(self) -> float:
        return self.differing / self.total if self.total else 1.0

    def describe(self) -> str:
        if not self.size_matches:
            return "the pictures differ in size"
        return (
            f"{self.differing} of {self.total} pixels ({self.fraction:.2%}) differ, "
            f"worst channel delta {self.worst}"
        )


def compare(actual: bytes, reference: Path, channel_delta: int) -> tuple[Difference, Any]:
    """Compare PNG bytes with a reference file; returns the figures and a diff picture
    (differing pixels in red over a faded copy of the reference), or None for a size change."""
    import io

    from PIL import Image, ImageChops

    mine = Image.open(io.BytesIO(actual)).convert("RGB")
    theirs = Image.open(reference).convert("RGB")
    if mine.size != theirs.size:
        total = mine.size[0] * mine.size[1]
        return Difference(False, total, total, 255), None
    delta = ImageChops.difference(mine, theirs)
    # A pixel differs when any channel moved by more than channel_delta.
    worst_channel = delta.getchannel(0)
    for band in (1, 2):
        worst_channel = ImageChops.lighter(worst_channel, delta.getchannel(band))
    mask = worst_channel.point(lambda v: 255 if v > channel_delta else 0)
    histogram = mask.histogram()
    differing = histogram[255]
    worst = max((v for v, n in enumerate(worst_channel.histogram()) if n), default=0)
    faded = Image.blend(theirs, Image.new("RGB", theirs.size, (255, 255, 255)), 0.7)
    faded.paste((255, 0, 0), mask=mask)
    return Difference(True, differing, mask.size[0] * mask.size[1], worst), faded
