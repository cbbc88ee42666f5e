"""Which file a request path names: the host page, a renderer's face, or a built library.

Files come from three fixed folders only, each path's real location checked to stay inside
its folder (no ``..``, no link out, no encoded separator or NUL), and only of the types a
page needs. A renderer with no browser face of its own gets the ``_fallback`` face's files.
Each file is paired with the policy its document runs under (policy.py).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from deeting_tui.resources import core_renderers_dir

from .cards import FALLBACK
from .policy import host_policy, renderer_policy

__all__ = ["PAGE_DIR", "VENDOR_DIR", "FaceFiles", "content_type", "missing_libraries", "segments"]

_PACKAGE = Path(__file__).resolve().parent
PAGE_DIR = _PACKAGE / "page"
VENDOR_DIR = _PACKAGE / "vendor"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".woff2": "font/woff2",
}
#: Percent-escapes that would smuggle a separator, a NUL or a backslash into one segment.
_SMUGGLED = ("%2f", "%5c", "%00", "%2e")


#: What every page needs from the built libraries (frontend/build.mjs).
LIBRARIES = ("mcp-host.js", "mcp-app.js")


def missing_libraries(vendor_dir: Path | None = None) -> str | None:
    """Why the pages cannot work here, or None: a checkout whose front-end libraries were
    never built (no Node.js when ./dev.sh ran) would serve pages that stay blank."""
    folder = VENDOR_DIR if vendor_dir is None else vendor_dir
    if all((folder / name).is_file() for name in LIBRARIES):
        return None
    return (
        f"the browser pages' libraries are not built ({folder} lacks "
        f"{', '.join(n for n in LIBRARIES if not (folder / n).is_file())}) — in a checkout, "
        "install Node.js 20+ and npm, then run ./dev.sh run (it builds them); an installed "
        "deeting carries them: reinstall it"
    )


def content_type(path: Path) -> str:
    """The Content-Type of a file :class:`FaceFiles` found (only known types are found)."""
    return _TYPES[path.suffix]


class FaceFiles:
    """The three folders a server serves from, for pages of one origin."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.renderers_dir = core_renderers_dir().resolve()
        self.page_dir = PAGE_DIR.resolve()
        self.vendor_dir = VENDOR_DIR.resolve()

    def find(self, rest: list[str]) -> tuple[Path, str] | None:
        """The file a path names (inside one of the three folders), and its policy."""
        if not rest:
            return None
        if rest == [""]:
            return _pair(self._inside(self.page_dir, ["index.html"]), host_policy())
        head, tail = rest[0], rest[1:]
        if head == "page" and tail:
            return _pair(self._inside(self.page_dir, tail), host_policy())
        if head == "vendor" and tail:
            return _pair(self._inside(self.vendor_dir, tail), host_policy())
        if head == "renderers" and len(tail) >= 2:
            name, inner = tail[0], tail[1:]
            folder = self._inside_dir(self.renderers_dir, name)
            if folder is None:
                return None
            if not name.startswith("_") and not (folder / "index.html").is_file():
                folder = (self.renderers_dir / FALLBACK).resolve()  # no face of its own
            return _pair(self._inside(folder, inner), renderer_policy(self.origin))
        return None

    @staticmethod
    def _inside_dir(base: Path, name: str) -> Path | None:
        candidate = (base / name).resolve()
        if candidate.parent != base or not candidate.is_dir():
            return None
        return candidate

    @staticmethod
    def _inside(base: Path, parts: list[str]) -> Path | None:
        """``base/parts`` if it is a regular file whose real path stays inside base."""
        if any(part in ("", ".", "..") for part in parts):
            return None
        candidate = base.joinpath(*parts)
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(base.resolve()) or not real.is_file():
            return None
        if real.suffix not in _TYPES:
            return None
        return real


def segments(path: str) -> list[str] | None:
    """The path's segments, decoded; None for anything that could step out of a folder or
    hide a separator (``..``, ``.``, an encoded slash, backslash or dot, a NUL)."""
    if not path.startswith("/") or "\\" in path or "\0" in path:
        return None
    lowered = path.lower()
    if any(bad in lowered for bad in _SMUGGLED):
        return None
    try:
        parts = [unquote(part, errors="strict") for part in path[1:].split("/")]
    except UnicodeDecodeError:
        return None
    for index, part in enumerate(parts):
        if part in (".", "..") or "\0" in part or "/" in part or "\\" in part:
            return None
        if part == "" and index != len(parts) - 1:
            return None  # '//' inside a path
    return parts


def _pair(path: Path | None, policy: str) -> tuple[Path, str] | None:
    return None if path is None else (path, policy)
