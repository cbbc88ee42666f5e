"""Renderer schemas are found in a checkout and inside an installed wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from deeting_tui import resources
from deeting_tui.render import RENDERERS_DIR, names

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_reads_the_repository_folder() -> None:
    assert RENDERERS_DIR == ROOT / "renderers"
    for name in names():
        assert (RENDERERS_DIR / name / "schema.json").is_file(), name


def test_an_installed_copy_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site-packages" / "deeting_tui"
    (package / "renderers").mkdir(parents=True)
    (tmp_path / "site-packages" / "renderers").mkdir()  # a stray folder beside the package
    monkeypatch.setattr(resources, "_PACKAGE", package)
    assert resources.core_renderers_dir() == package / "renderers"


def test_the_wheel_carries_the_renderers_inside_the_package() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include["renderers"] == "deeting_tui/renderers"
