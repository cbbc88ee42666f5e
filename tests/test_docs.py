"""The repository documents itself: nothing in it points at documents a clone does not hold,
and every relative link in README.md and docs/*.md leads somewhere that exists.

A docstring citing a design note that lives outside the repository sends a newcomer to a
file they cannot open; a guide's broken link does the same. Both are checked here rather than
by review, because they creep back one line at a time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Folders that are not the repository's own content (tools, caches, environments).
SKIP_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".cache",  # tests/mcp_support.py's stock MCP servers and their pip/npm caches
        "build",
        "dist",
    }
)

# Built from pieces so this file does not match itself.
SECTION = "\N{SECTION SIGN}"
OUTSIDE_REFERENCES = (
    "DESIGN " + SECTION,
    "STYLE " + SECTION,
    "Seed " + SECTION,
    "../" + "shared",
    "/" + "work/",
)

_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def repo_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*"):
        relative = path.relative_to(ROOT)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if path.is_file() and not path.is_symlink():
            files.append(path)
    return files


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to '-'."""
    text = _INLINE_CODE.sub(lambda m: m.group(0).strip("`"), heading).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    text = _FENCE.sub("", markdown)
    found: set[str] = set()
    for heading in _HEADING.findall(text):
        base = slug(heading)
        anchor, n = base, 0
        while anchor in found:  # GitHub numbers repeated headings: x, x-1, x-2 …
            n += 1
            anchor = f"{base}-{n}"
        found.add(anchor)
    return found


def links(markdown: str) -> list[str]:
    text = _INLINE_CODE.sub("", _FENCE.sub("", markdown))
    return _LINK.findall(text)


def test_nothing_points_outside_the_repository() -> None:
    found = []
    for path in repo_files():
        data = path.read_bytes()
        for needle in OUTSIDE_REFERENCES:
            if needle.encode() not in data:
                continue
            text = data.decode("utf-8", "replace")
            for number, line in enumerate(text.splitlines(), 1):
                if needle in line:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "references to documents outside the repository:\n" + "\n".join(found)


def test_the_docs_exist() -> None:
    for name in ("plugins.md", "architecture.md"):
        assert (ROOT / "docs" / name).is_file(), f"docs/{name} is missing"


@pytest.mark.parametrize("document", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_somewhere(document: Path) -> None:
    broken = []
    for target in links(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: …
            continue
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
            continue
        if not linked.is_relative_to(ROOT):
            broken.append(f"{target}: outside the repository")
            continue
        headings = anchors(linked.read_text(encoding="utf-8")) if linked.suffix == ".md" else None
        if anchor and headings is not None and anchor not in headings:
            broken.append(f"{target}: {linked.name} has no heading for #{anchor}")
    assert not broken, f"{document.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_docstrings_anchors_into_the_docs_exist() -> None:
    """Code points into docs/*.md by anchor (``docs/plugins.md#streams``): each must exist."""
    wanted = re.compile(r"docs/([a-z-]+\.md)#([a-z0-9_-]+)")
    broken = []
    for path in repo_files():
        if path.suffix != ".py":
            continue
        for name, anchor in wanted.findall(path.read_text(encoding="utf-8", errors="replace")):
            document = ROOT / "docs" / name
            if not document.is_file() or anchor not in anchors(document.read_text("utf-8")):
                broken.append(f"{path.relative_to(ROOT)}: docs/{name}#{anchor}")
    assert not broken, "anchors that lead nowhere:\n" + "\n".join(broken)


def test_slug_follows_github() -> None:
    assert slug("The manifest: kimai.json") == "the-manifest-kimaijson"
    assert slug("Tools: llm-tool.yaml") == "tools-llm-toolyaml"
    assert slug("The entry point: `src/index.py`") == "the-entry-point-srcindexpy"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}
