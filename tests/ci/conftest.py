"""Fixtures for the plugin pipeline's tests: plugins built from a known-good one."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def make_plugin(tmp_path: Path) -> Callable[..., Path]:
    """``make_plugin(files={...}, permissions=[...], examples=...)`` → a copy of the probe
    fixture with files added or replaced, its permissions set, and examples.yaml replaced
    (``examples=None`` removes it)."""
    count = 0

    def make(
        *,
        files: dict[str, str] | None = None,
        permissions: list[str] | None = None,
        examples: str | bool | None = True,
    ) -> Path:
        nonlocal count
        count += 1
        root = tmp_path / f"plugin{count}"
        shutil.copytree(FIXTURES / "probe", root)
        for rel, text in (files or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        if permissions is not None:
            kimai = json.loads((root / "kimai.json").read_text("utf-8"))
            kimai["permissions"] = permissions
            (root / "kimai.json").write_text(json.dumps(kimai), encoding="utf-8")
        if examples is None:
            (root / "examples.yaml").unlink()
        elif isinstance(examples, str):
            (root / "examples.yaml").write_text(examples, encoding="utf-8")
        return root

    return make
