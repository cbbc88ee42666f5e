from __future__ import annotations

from pathlib import Path

import pytest

from deeting_tui.kernel.plugins.installed import InstalledPlugin, InstalledStore, StateFileError
from deeting_tui.paths import ConfigError, load_config, resolve_paths


def test_installed_state_round_trips(tmp_path: Path) -> None:
    store = InstalledStore(tmp_path / "state.json")
    store.put(InstalledPlugin("calc", "1.0.0", "/src/calc", dev=True))
    store.set_enabled("calc", True)
    again = InstalledStore(tmp_path / "state.json")
    record = again.get("calc")
    assert record is not None and record.enabled and record.installed_at > 0
    again.set_enabled("calc", False, "crashed")
    assert InstalledStore(tmp_path / "state.json").get("calc").disabled_reason == "crashed"  # type: ignore[union-attr]
    again.remove("calc")
    assert InstalledStore(tmp_path / "state.json").all() == []


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"plugins": {"x": {"nope": 1}}}'])
def test_damaged_state_file_is_reported(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "state.json").write_bytes(content)
    with pytest.raises(StateFileError, match=r"state\.json"):
        InstalledStore(tmp_path / "state.json")


def test_a_key_a_newer_deeting_wrote_is_left_out_not_refused(tmp_path: Path) -> None:
    """Two deeting versions may share a home: an entry with a field this one does not know
    still loads (the field is dropped), where it made the whole state file 'malformed'."""
    path = tmp_path / "state.json"
    path.write_bytes(
        b'{"plugins": {"calc": {"name": "calc", "version": "1.0.0", "source": "x", '
        b'"dev": false, "enabled": true, "added_later": [1, 2]}}}'
    )
    record = InstalledStore(path).get("calc")
    assert record is not None and (record.version, record.enabled) == ("1.0.0", True)


def test_deeting_home_holds_everything(tmp_path: Path) -> None:
    paths = resolve_paths({"DEETING_HOME": str(tmp_path)})
    assert paths.config_file == tmp_path / "config.toml"
    assert paths.sessions_db.is_relative_to(tmp_path)
    assert paths.plugin_cache("x").is_relative_to(tmp_path)


def test_platformdirs_without_deeting_home() -> None:
    paths = resolve_paths({})
    assert "deeting" in str(paths.data_dir).lower()


def test_config_values_and_errors(tmp_path: Path) -> None:
    paths = resolve_paths({"DEETING_HOME": str(tmp_path)})
    assert load_config(paths).tick_interval == 1.0
    paths.config_file.write_text('tick_interval = 0.5\nprovider = "offline"\n')
    assert load_config(paths).tick_interval == 0.5
    assert load_config(paths).idle_stop == 300.0  # on-demand workers stop after 5 minutes
    paths.config_file.write_text("idle_stop = 0\n")
    assert load_config(paths).idle_stop == 0.0  # never
    for bad, message in [
        ("tick_interval = 'fast'", "tick_interval"),
        ("colour = 1", "unknown key 'colour'"),
        ("tick_interval = ", "not valid TOML"),
        ("provider = 3", "provider must be a string"),
        ('provider = "gpt"', "provider 'gpt' is not one of offline, anthropic, openai"),
        ("idle_stop = -1", "idle_stop must be a number of seconds in 0..86400"),
        ("idle_stop = 'never'", "idle_stop must be a number"),
        ("idle_stop = true", "idle_stop must be a number"),
    ]:
        paths.config_file.write_text(bad)
        with pytest.raises(ConfigError, match=message):
            load_config(paths)
