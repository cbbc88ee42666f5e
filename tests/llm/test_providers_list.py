"""One list of providers: --provider, config.toml and llm.select accept exactly the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from deeting_tui.cli import build_parser
from deeting_tui.llm.select import choose
from deeting_tui.paths import PROVIDERS, ConfigError, load_config, resolve_paths


def _provider_choices() -> tuple[str, ...]:
    for action in build_parser()._actions:
        if "--provider" in action.option_strings:
            assert action.choices is not None
            return tuple(action.choices)
    raise AssertionError("no --provider flag")


@pytest.mark.parametrize("name", [*PROVIDERS, "gemini"])
def test_every_door_agrees(name: str, tmp_path: Path) -> None:
    paths = resolve_paths({"DEETING_HOME": str(tmp_path)})
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(f'provider = "{name}"\n', encoding="utf-8")
    known = name in PROVIDERS
    assert (name in _provider_choices()) is known
    if known:
        assert load_config(paths).provider == name
        assert choose(name, None, None, None, env={}).provider == name
    else:
        with pytest.raises(ConfigError):
            load_config(paths)
        with pytest.raises(ValueError):
            choose(name, None, None, None, env={})
