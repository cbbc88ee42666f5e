"""One plugin-name rule (deeting_tui.plugin.names) for every place that checks a name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import deeting_tui.plugin
from deeting_tui.plugin.names import PLUGIN_NAME, PLUGIN_NAME_RE
from deeting_tui.plugin.scaffold import scaffold
from deeting_tui.store.names import split_source


def test_the_manifest_schema_spells_the_same_pattern() -> None:
    folder = Path(deeting_tui.plugin.__file__).parent / "schemas"
    schema = json.loads((folder / "kimai.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["name"]["pattern"] == f"^{PLUGIN_NAME}$"


@pytest.mark.parametrize("name", ["a", "weather", "my-plugin", "0x", "a" * 64])
def test_good_names(name: str) -> None:
    assert PLUGIN_NAME_RE.fullmatch(name)
    assert split_source(f"{name}@1.0.0") == (name, "1.0.0")


@pytest.mark.parametrize("name", ["", "-a", "A", "a_b", "a.b", "a" * 65, "abc\n"])
def test_bad_names(name: str, tmp_path: Path) -> None:
    assert not PLUGIN_NAME_RE.fullmatch(name)
    assert split_source(name) is None
    with pytest.raises(ValueError, match="not a valid plugin name"):
        scaffold(name, tmp_path / "new")
    assert not (tmp_path / "new").exists()
