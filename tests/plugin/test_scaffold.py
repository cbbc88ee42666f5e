from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from deeting_tui.plugin.checker import check_plugin
from deeting_tui.plugin.scaffold import scaffold
from deeting_tui.sdk import Result


def test_scaffold_passes_the_checker(tmp_path: Path) -> None:
    root = scaffold("my-plugin", tmp_path / "my-plugin")
    assert root == tmp_path / "my-plugin"
    spec, problems = check_plugin(root)
    assert problems == []
    assert spec is not None and spec.name == "my-plugin" and spec.version == "0.1.0"
    assert [tool.name for tool in spec.tools] == ["hello"]
    assert "name" in spec.tools[0].parameters["properties"]
    files = ("package.json", "kimai.json", "llm-tool.yaml", "examples.yaml", "src/index.py")
    for rel in (*files, "README.md"):
        assert (root / rel).is_file()


def test_scaffolded_code_runs(tmp_path: Path) -> None:
    root = scaffold("greeter", tmp_path / "g")
    invoke = runpy.run_path(str(root / "src" / "index.py"))["invoke"]
    result = invoke(None, "hello", {"name": "Ada"})
    assert isinstance(result, Result)
    assert result.text == "Hello, Ada!" and result.data == {"greeting": "Hello, Ada!"}
    with pytest.raises(ValueError, match="greeter has no tool 'nope'"):
        invoke(None, "nope", {})


def test_empty_existing_folder_is_fine(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    assert check_plugin(scaffold("p", tmp_path / "p"))[1] == []


@pytest.mark.parametrize("name", ["", "My-Plugin", "-x", "has space", "a" * 65, "x_y"])
def test_refuses_bad_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="is not a valid plugin name"):
        scaffold(name, tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="already exists and is not empty"):
        scaffold("p", tmp_path / "p")
    assert [p.name for p in (tmp_path / "p").iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="already exists"):
        scaffold("p", tmp_path / "file")
