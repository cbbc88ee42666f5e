"""Plugin folders for the format tests: a fresh copy of the good fixture, edited per test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GOOD = FIXTURES / "good_plugin"
BAD = FIXTURES / "bad_plugins"

MakePlugin = Callable[..., Path]


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def make_plugin(tmp_path: Path) -> MakePlugin:
    """Copy the good fixture and apply edits; ``None`` as a kimai/package value drops the key."""
    counter = iter(range(1000))

    def make(
        *,
        kimai: dict[str, Any] | None = None,
        package: dict[str, Any] | None = None,
        tools: str | None = None,
        files: dict[str, str] | None = None,
        remove: Iterable[str] = (),
    ) -> Path:
        root = tmp_path / f"plugin{next(counter)}"
        shutil.copytree(GOOD, root, ignore=shutil.ignore_patterns("__pycache__"))
        _update_json(root / "kimai.json", kimai or {})
        _update_json(root / "package.json", package or {})
        if tools is not None:
            (root / "llm-tool.yaml").write_text(tools)
        for rel, text in (files or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        for rel in remove:
            (root / rel).unlink()
        return root

    return make


def _update_json(path: Path, changes: dict[str, Any]) -> None:
    if not changes:
        return
    document = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            document.pop(key, None)
        else:
            document[key] = value
    path.write_text(json.dumps(document, indent=2))
