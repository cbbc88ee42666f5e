"""N installable copies of the official calc plugin (calc001, calc002, …), for measuring what
the number of installed plugins costs: each copy has its own name, tool and trigger word, so
they install side by side and none shadows another."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .common import REPO_ROOT

CALC = REPO_ROOT / "plugins" / "calc"
#: The files that name the plugin or its tool, and how each names it.
_RENAMED = {
    "kimai.json": re.compile(r"\bcalc\b"),
    "package.json": re.compile(r"\bcalc\b"),
    "llm-tool.yaml": re.compile(r"(?<=name: )calc\b"),
    "examples.yaml": re.compile(r"(?<=tool: )calc\b"),
    "src/index.py": re.compile(r"(?<=\")calc(?=\")"),
}


def calc_copies(folder: Path, count: int) -> list[Path]:
    """``count`` renamed copies of calc under ``folder``; their paths, in name order."""
    copies = []
    for number in range(1, count + 1):
        name = f"calc{number:03d}"
        copy = folder / name
        shutil.copytree(CALC, copy, ignore=shutil.ignore_patterns("__pycache__"))
        for relative, pattern in _RENAMED.items():
            path = copy / relative
            path.write_text(pattern.sub(name, path.read_text()))
        copies.append(copy)
    return copies
