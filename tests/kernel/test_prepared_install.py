"""Installing code the registry client put in place, and the record that points to it.

The client verifies, extracts and fsyncs a download into versions/NAME/VERSION, then hands
over to ``Loader.install_prepared``; these tests put fixture folders there the same way.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from support import FIXTURES, events_of

from deeting_tui.command_output import cli_hint, error_line
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.installed import InstalledPlugin, InstalledStore, StateFileError
from deeting_tui.kernel.plugins.loader import INSTALL_STEPS, PluginError
from deeting_tui.paths import Paths
from deeting_tui.plugin.scopes import Scope, parse_scope

NAME = "upgrade-fixture"
V1 = FIXTURES / "upgrade_v1"
V2 = FIXTURES / "upgrade_v2"
V3 = FIXTURES / "upgrade_v3_more_scopes"
PROC = parse_scope("filesystem:read:/proc")


def place(paths: Paths, source: Path, name: str = NAME, version: str | None = None) -> Path:
    """Where the registry client leaves verified code (by default: as its manifest says)."""
    version = version or orjson.loads((source / "kimai.json").read_bytes())["version"]
    target = paths.plugin_code(name, version)
    shutil.copytree(source, target)
    return target


def _state_bytes(kernel: Kernel) -> bytes | None:
    path = kernel.paths.plugin_state_file
    return path.read_bytes() if path.exists() else None


# -- install_prepared --------------------------------------------------------------------


async def test_prepared_code_installs_enables_and_serves(kernel: Kernel) -> None:
    place(kernel.paths, V1)
    steps: list[str] = []
    report = await kernel.loader.install_prepared(
        NAME, "1.0.0", "registry http://127.0.0.1/", on_step=lambda s, _f: steps.append(s)
    )
    assert report.enabled and report.problem is None and not report.dev
    assert steps == ["validating", "postinstall", "permissions", "starting", "done"]
    assert set(steps) - {"done"} <= set(INSTALL_STEPS)
    record = InstalledStore(kernel.paths.plugin_state_file).get(NAME)  # as on disk
    assert record is not None
    assert (record.version, record.source, record.dev, record.enabled, record.previous) == (
        "1.0.0",
        "registry http://127.0.0.1/",
        False,
        True,
        None,
    )
    session = kernel.open_session()
    outcome = await kernel.call_tool(session.id, "count", {})
    assert outcome.ok and outcome.data == {"version": "1.0.0", "count": 1}


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        (NAME, "1.0.1", r"manifest says 'upgrade-fixture' 1\.0\.0, not 'upgrade-fixture' 1\.0\.1"),
        ("other-name", "1.0.0", r"manifest says 'upgrade-fixture' 1\.0\.0, not 'other-name'"),
    ],
)
async def test_code_that_does_not_match_the_request_is_refused_and_left_in_place(
    kernel: Kernel, name: str, version: str, message: str
) -> None:
    target = place(kernel.paths, V1, name, version)
    with pytest.raises(PluginError, match=message):
        await kernel.loader.install_prepared(name, version, "registry test")
    assert kernel.installed.get(name) is None and _state_bytes(kernel) is None
    assert target.is_dir()  # the caller (the registry client) removes what it staged
    assert kernel.grants.granted(name) == [] and name not in kernel.loader.runtimes


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("../x", "1.0.0", "is not a plugin name"),
        ("a/b", "1.0.0", "is not a plugin name"),
        (NAME, "../../1.0.0", "is not a SemVer version"),
        (NAME, "1.0", "is not a SemVer version"),
        (NAME, "9.9.9", r"no such folder — the code of 'upgrade-fixture' 9\.9\.9 must be in place"),
    ],
)
async def test_bad_names_versions_and_missing_code_are_refused(
    kernel: Kernel, name: str, version: str, message: str
) -> None:
    with pytest.raises(PluginError, match=message):
        await kernel.loader.install_prepared(name, version, "registry test")
    assert _state_bytes(kernel) is None
    assert not (kernel.paths.plugins_dir / "versions").exists()


async def test_an_installed_name_is_refused_with_the_upgrade_command(kernel: Kernel) -> None:
    place(kernel.paths, V1)
    await kernel.loader.install_prepared(NAME, "1.0.0", "registry test")
    before = _state_bytes(kernel)
    place(kernel.paths, V2)
    with pytest.raises(PluginError) as refused:
        await kernel.loader.install_prepared(NAME, "2.0.0", "registry test")
    assert error_line(refused.value) == (
        "'upgrade-fixture' 1.0.0 is already installed — run: deeting plugin upgrade upgrade-fixture"
    )
    assert _state_bytes(kernel) == before
    assert kernel.loader.runtimes[NAME].spec.version == "1.0.0"


async def test_failing_postinstall_records_nothing(kernel: Kernel, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(V1, broken)
    with (broken / "src" / "index.py").open("a") as index:
        index.write("\n\ndef postinstall(ctx):\n    raise RuntimeError('no room here')\n")
    target = place(kernel.paths, broken)
    with pytest.raises(PluginError, match=r"'upgrade-fixture' postinstall failed: .*no room here"):
        await kernel.loader.install_prepared(NAME, "1.0.0", "registry test")
    assert kernel.installed.get(NAME) is None and _state_bytes(kernel) is None
    assert target.is_dir()
    assert not kernel.paths.plugin_data(NAME).exists()


async def test_scopes_are_settled_as_install_does(kernel: Kernel) -> None:
    place(kernel.paths, V3)
    asked: list[list[Scope]] = []

    async def deny(name: str, scopes: list[Scope]) -> list[Scope]:
        asked.append(scopes)
        return []

    report = await kernel.loader.install_prepared(NAME, "3.0.0", "registry test", ask_all=deny)
    assert asked == [[PROC]]
    assert not report.enabled
    assert report.problem and report.hint is not None
    assert cli_hint(report.hint).startswith("deeting plugin grant upgrade-fixture")
    assert kernel.installed.get(NAME) is not None  # installed, waiting for consent
    await kernel.loader.uninstall(NAME)

    place(kernel.paths, V3)
    with pytest.raises(PluginError, match="--grant network: 'upgrade-fixture' does not ask"):
        await kernel.loader.install_prepared(NAME, "3.0.0", "registry test", grant=["network"])
    report = await kernel.loader.install_prepared(
        NAME, "3.0.0", "registry test", grant=["filesystem:read:/proc"]
    )
    assert report.enabled and report.granted == [PROC]
    assert kernel.grants.granted(NAME) == [PROC]


async def test_an_install_is_told_to_listeners_only_through_the_result(kernel: Kernel) -> None:
    """install_prepared does not speak for the front end: no stray notices or errors."""
    seen = events_of(kernel)
    place(kernel.paths, V1)
    await kernel.loader.install_prepared(NAME, "1.0.0", "registry test")
    assert [e for e in seen if e["type"] in ("error", "plugin_notice")] == []


# -- the record: state.json as the active pointer ---------------------------------------


def test_a_state_file_from_before_previous_existed_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    entry = {"name": "calc", "version": "1.0.0", "source": "/src", "dev": True, "enabled": True}
    path.write_bytes(orjson.dumps({"plugins": {"calc": entry}}))
    record = InstalledStore(path).get("calc")
    assert record is not None and record.previous is None and record.enabled


def test_set_version_swaps_the_pointer_in_one_write(tmp_path: Path) -> None:
    store = InstalledStore(tmp_path / "state.json")
    store.put(InstalledPlugin("calc", "1.0.0", "registry", dev=False, enabled=True))
    store.set_version("calc", "1.1.0", previous="1.0.0")
    raw = orjson.loads((tmp_path / "state.json").read_bytes())["plugins"]["calc"]
    assert (raw["version"], raw["previous"], raw["enabled"]) == ("1.1.0", "1.0.0", True)
    with pytest.raises(KeyError):
        store.set_version("gone", "1.0.0", previous=None)


def test_reload_sees_another_writer_and_keeps_memory_on_a_damaged_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    mine = InstalledStore(path)
    mine.put(InstalledPlugin("calc", "1.0.0", "registry", dev=False))
    InstalledStore(path).set_version("calc", "1.1.0", previous="1.0.0")  # another process
    assert mine.get("calc").version == "1.0.0"  # type: ignore[union-attr]
    mine.reload()
    assert mine.get("calc").version == "1.1.0"  # type: ignore[union-attr]
    path.write_bytes(b"{ half a file")
    with pytest.raises(StateFileError, match=r"state\.json: unreadable"):
        mine.reload()
    assert mine.get("calc").version == "1.1.0"  # type: ignore[union-attr]


def test_two_writers_do_not_lose_each_others_changes(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    chat, updater = InstalledStore(path), InstalledStore(path)
    chat.put(InstalledPlugin("calc", "1.0.0", "registry", dev=False, enabled=True))
    updater.reload()
    updater.set_version("calc", "1.1.0", previous="1.0.0")
    chat.put(InstalledPlugin("notes", "1.0.0", "registry", dev=False))  # chat is stale
    chat.set_enabled("calc", False, "crashed")
    on_disk = InstalledStore(path)
    calc = on_disk.get("calc")
    assert calc is not None and (calc.version, calc.previous, calc.enabled) == (
        "1.1.0",
        "1.0.0",
        False,
    )
    assert on_disk.get("notes") is not None
    updater.remove("calc")
    chat.set_enabled("calc", True)  # removed meanwhile: nothing to record, no error
    assert InstalledStore(path).get("calc") is None
