"""Check a plugin folder, or a zip after a safe extraction, the way the kernel judges it at
install: one function that `ci/lint.py` prints and the registry generator refuses by, so the two
tools agree without importing each other."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.checker import check_plugin
from deeting_tui.plugin.manifest import PluginSpec, Problem

__all__ = ["lint_path"]


def lint_path(path: Path) -> tuple[PluginSpec | None, list[Problem]]:
    """Check one folder (an author's source: no ``wheels/`` nor ``deps/``), or one zip after a
    safe extraction (as an install would do; it may carry ``wheels/``)."""
    if not (path.is_file() and zipfile.is_zipfile(path)):
        return check_plugin(path, layout="source")
    with tempfile.TemporaryDirectory(prefix="deeting-lint-") as tmp:
        try:
            root = extract_zip(path, Path(tmp) / "plugin")
        except ArchiveError as error:
            return None, [Problem(path.name, "", f"refused archive: {error}")]
        spec, problems = check_plugin(root, layout="archive")
    return spec, problems
