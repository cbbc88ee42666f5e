"""Drawing a browser face on its own, for screenshot references and the README's pictures.

The face is served and opened by faces_support (``face_server``, ``open_face``: the card
server's URL layout and the production CSP, so a face that needs an inline script or style
fails here too). Opened top-level (no parent), a face exposes
``DeetingFace.drawForTest(payload, theme)``; :func:`screenshot` draws through it and waits on
the page contract (``body.dataset.updates``), the fonts and two animation frames — never on
time — so a loaded machine only makes it slower, not different.

Pictures are compared with a tolerance (:func:`compare`): fonts and antialiasing differ
between machines, a layout change does not hide in a few pixels.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web.faces_support import FacePage

from deeting_tui.resources import core_renderers_dir

REFERENCES = Path(__file__).resolve().parent / "references"

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


#: Resolves once the drawn payload is on the page, the fonts are in, and two frames have
#: been painted after it (a canvas face — the chart — paints in requestAnimationFrame).
_SETTLE = """async () => {
  await document.fonts.ready;
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return document.body.dataset.updates;
}"""


def screenshot(open_face: Callable[..., FacePage], shot: Shot, payload: Any) -> bytes:
    """The face drawn in a fresh context at ``shot``'s viewport: PNG bytes.

    The payload is drawn in ``shot.theme``, then the page waits until settled. Anything
    open_face records (a console error or warning, a page error, a CSP refusal, a request off
    the server) or a failure the face shows fails the drawing: a face that needs something the
    policy refuses must not get a reference that hides it.
    """
    face = open_face(
        shot.face,
        width=shot.width,
        height=shot.height,
        device_scale_factor=1,
        reduced_motion="reduce",
        color_scheme=shot.theme,
    )
    face.draw(payload, shot.theme)
    face.page.evaluate(_SETTLE)
    failure = face.failure()
    assert failure is None, f"{shot.key}: the face showed a failure: {failure}"
    assert face.problems == [] and face.foreign == [], f"{shot.key}: {face.problems + face.foreign}"
    png: bytes = face.page.screenshot(animations="disabled", caret="hide")
    return png


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
