"""The README's pictures of the browser faces, made from the screenshot references.

``python tests/web/readme_pictures.py`` writes ``docs/images/faces/NAME-light.png`` and
``NAME-dark.png`` for every face that has desktop references in ``tests/web/references``
(so the README shows exactly what the screenshot tests hold a face to), each reduced to a
palette PNG to stay under ``MAX_BYTES``, and removes pictures of faces that have none.
Rewrite the references first (``DEETING_UPDATE_SHOTS=1``, see test_face_screenshots.py).
It also rewrites the README's picture table (between ``<!-- faces:start -->`` and
``<!-- faces:end -->``): a face's light picture, and a dark one for ``DARK_FACES``.
``--check`` changes nothing and exits 1 when a picture is missing, stale in size, or too big,
or the README's table is not the one this would write.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
REFERENCES = HERE / "references"
PICTURES = REPO_ROOT / "docs" / "images" / "faces"
#: A README picture's limit: the page loads them all.
MAX_BYTES = 60_000
THEMES = ("light", "dark")
README = REPO_ROOT / "README.md"
START, END = "<!-- faces:start -->", "<!-- faces:end -->"
#: Faces shown in the dark theme too (a few: every face has a dark reference).
DARK_FACES = ("text", "chart", "table", "weather-cards")
#: One line under each picture; a face not named here gets its name only.
CAPTIONS = {
    "text": "text: plain text, newlines kept",
    "markdown": "markdown: sanitised (markdown-it, DOMPurify)",
    "table": "table: sortable, sticky header, virtualised",
    "key-value": "key-value: labelled values",
    "chart": "chart: line, area, bars, candles; live",
    "weather-cards": "weather-cards: a forecast",
    "search-cards": "search-cards: results, links in a new tab",
    "progress": "progress: a task's progress",
    "error": "error: a failed call",
    "notice": "notice: info, success, warning",
    "_fallback": "_fallback: any data, escaped JSON",
}


def desktop_references() -> dict[str, Path]:
    """``NAME-THEME`` → its reference, for the desktop pictures (not the phone ones)."""
    found = {}
    for path in sorted(REFERENCES.glob("*.png")):
        stem = path.stem
        if stem.endswith(tuple(f"-{theme}" for theme in THEMES)):
            found[stem] = path
    return found


#: Background kept below a face's drawing when the picture is cut to it.
MARGIN = 12


def small_png(reference: Path) -> bytes:
    """The reference as a palette PNG, cut below the drawing (a face fills the width, rarely
    the height): a face is a few flat colours and antialiased text, so 256 colours keep it
    legible at a fraction of the bytes."""
    from PIL import Image, ImageChops

    with Image.open(reference) as image:
        rgb = image.convert("RGB")
    background = Image.new("RGB", rgb.size, rgb.getpixel((rgb.width - 1, rgb.height - 1)))
    box = ImageChops.difference(rgb, background).getbbox()
    if box is not None:
        rgb = rgb.crop((0, 0, rgb.width, min(rgb.height, box[3] + MARGIN)))
    palette = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def readme_block() -> str:
    """The README's picture table for the faces that have pictures, two to a row."""
    stems = desktop_references()
    faces = [stem.removesuffix("-light") for stem in stems if stem.endswith("-light")]
    faces.sort(key=lambda face: (face.startswith("_"), face))  # the fallback comes last
    cells = [(face, "light") for face in faces]
    cells += [(face, "dark") for face in faces if face in DARK_FACES]
    lines = [START, "<table>"]
    for row in range(0, len(cells), 2):
        lines.append("<tr>")
        for face, theme in cells[row : row + 2]:
            caption = CAPTIONS.get(face, face) + (" (dark)" if theme == "dark" else "")
            lines.append(
                f'<td width="50%"><img src="docs/images/faces/{face}-{theme}.png" '
                f'alt="the {face} face, {theme}"><br>{caption}</td>'
            )
        lines.append("</tr>")
    lines += ["</table>", END]
    return "\n".join(lines)


def readme_with_block(text: str) -> str:
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise SystemExit(f"README.md has no {START} … {END} block for the pictures")
    return before + readme_block() + after


def problems() -> list[str]:
    """What --check finds wrong, one line each."""
    found = []
    wanted = desktop_references()
    for stem, reference in wanted.items():
        picture = PICTURES / f"{stem}.png"
        if not picture.is_file():
            found.append(f"{picture.relative_to(REPO_ROOT)} is missing")
            continue
        if picture.stat().st_size > MAX_BYTES:
            found.append(f"{picture.name} is {picture.stat().st_size} bytes (max {MAX_BYTES})")
        from PIL import Image

        with Image.open(picture) as small, Image.open(reference) as big:
            if small.width != big.width or small.height > big.height:
                found.append(f"{picture.name} is {small.size}, its reference {big.size}")
    for picture in sorted(PICTURES.glob("*.png")):
        if picture.stem not in wanted:
            found.append(f"{picture.name} has no reference in {REFERENCES.relative_to(REPO_ROOT)}")
    text = README.read_text(encoding="utf-8")
    if readme_with_block(text) != text:
        found.append("README.md's picture table is not the one for these pictures")
    return found


def write() -> list[str]:
    PICTURES.mkdir(parents=True, exist_ok=True)
    wanted = desktop_references()
    lines = []
    for stem, reference in wanted.items():
        data = small_png(reference)
        if len(data) > MAX_BYTES:
            raise SystemExit(f"{stem}: {len(data)} bytes even as a palette PNG (max {MAX_BYTES})")
        (PICTURES / f"{stem}.png").write_bytes(data)
        lines.append(f"{stem}.png: {len(data)} bytes")
    for picture in sorted(PICTURES.glob("*.png")):
        if picture.stem not in wanted:
            picture.unlink()
            lines.append(f"{picture.name}: removed (no reference)")
    text = README.read_text(encoding="utf-8")
    updated = readme_with_block(text)
    if updated != text:
        README.write_text(updated, encoding="utf-8")
        lines.append("README.md: picture table rewritten")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; report problems")
    options = parser.parse_args(argv)
    if options.check:
        found = problems()
        for line in found:
            print(line, file=sys.stderr)
        return 1 if found else 0
    for line in write():
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
