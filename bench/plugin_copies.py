"""Installable copies of the official calc plugin, for measuring what the number of installed
plugins costs (the scale bench, the chat's launch with ``--copies``).

A copy is calc under another name (``calc-007``), with its own tool (``calc-007``), its own
trigger (``^calc-007\\s+(?P<expr>.+)$``) and its own description, so no two copies collide
(the kernel refuses two plugins offering the same tool) and a tool budget has something to
tell them apart by.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import orjson

from .common import REPO_ROOT

__all__ = ["OFFICIAL", "copy_name", "generate_copies"]

OFFICIAL = REPO_ROOT / "plugins"

#: What each copy's description says it is for: words a tool budget can match a message on.
TOPICS = (
    "mortgage",
    "recipe",
    "fuel",
    "tax",
    "garden",
    "fitness",
    "travel",
    "invoice",
    "grade",
    "paint",
    "tile",
    "currency",
    "loan",
    "calorie",
    "tip",
    "rent",
    "budget",
    "concrete",
    "fabric",
    "timber",
)


def copy_name(n: int) -> str:
    return f"calc-{n:03d}"


def generate_copies(into: Path, count: int) -> list[Path]:
    """``count`` plugin folders, copies of calc with distinct names, tools, triggers and
    descriptions; their paths, in order."""
    source = OFFICIAL / "calc"
    folders = []
    for n in range(1, count + 1):
        name = copy_name(n)
        topic = TOPICS[n % len(TOPICS)]
        folder = into / name
        shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__"))
        description = (
            f"Arithmetic for {topic} figures (copy {n:03d} of calc): numbers, operators "
            "and a few math functions, never eval"
        )
        for manifest in ("kimai.json", "package.json"):
            data = orjson.loads((folder / manifest).read_bytes())
            data["name"] = name
            data["description"] = description
            if "trigger" in data:
                data["trigger"] = {
                    "regex": rf"^{name}\s+(?P<expr>.+)$",
                    "tool": name,
                    "priority": 60,
                    "examples": [f"{name} 2+3"],
                }
            (folder / manifest).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        tools = (folder / "llm-tool.yaml").read_text()
        tools = tools.replace("- name: calc\n", f"- name: {name}\n", 1)
        tools = tools.replace(
            "Evaluate an arithmetic expression",
            f"Evaluate an arithmetic expression for {topic} figures",
            1,
        )
        (folder / "llm-tool.yaml").write_text(tools)
        examples = (folder / "examples.yaml").read_text()
        (folder / "examples.yaml").write_text(examples.replace("tool: calc", f"tool: {name}"))
        index = folder / "src" / "index.py"
        code = index.read_text()
        # The tool's name where the handler checks it: ("calc",), tool != "calc".
        code = re.sub(r'(?<=[(= ])"calc"', f'"{name}"', code)
        index.write_text(code)
        folders.append(folder)
    return folders
