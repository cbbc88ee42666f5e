"""The plugin service (kernel/plugins.py): one state, one origin and one cause per plugin, and
every operation refusing bad input with one DeetingError that changes nothing."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import FIXTURES, HOSTILE, OFFICIAL

import deeting_tui.kernel.plugins.install as install_module
from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.kernel.events import PluginNotice
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins import Origin, PluginState
from deeting_tui.kernel.plugins.installed import Cause, InstalledPlugin, InstalledStore
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.plugin.scopes import Scope

UPGRADE = "upgrade-fixture"


def state_bytes(kernel: Kernel) -> dict[str, bytes]:
    """state.json, grants.json and the code folders: what a refused step must not touch."""
    paths = kernel.paths
    files = {}
    for path in (paths.plugin_state_file, paths.grants_file):
        files[path.name] = path.read_bytes() if path.exists() else b""
    versions = paths.plugins_dir / "versions"
    files["versions"] = "\n".join(
        sorted(str(p.relative_to(versions)) for p in versions.rglob("*"))
    ).encode()
    return files


@dataclass(frozen=True)
class Staged:
    name: str
    version: str
    source: str
    code: Path
    fresh: bool = True

    def discard(self) -> None:
        if self.fresh:
            shutil.rmtree(self.code, ignore_errors=True)


class FakeRegistry:
    """A RegistryPort serving plugin folders (name → version → folder) with no network."""

    def __init__(self, kernel: Kernel, folders: dict[str, dict[str, Path]]) -> None:
        self.kernel = kernel
        self.folders = folders
        self.unreachable = False

    def updating(self) -> AbstractContextManager[None]:
        return nullcontext()

    def updates(self, installed: Sequence[tuple[str, str]]) -> list[Any]:
        return []

    async def stage(
        self, name: str, version: str | None, *, kept: Sequence[tuple[str, str]], **options: Any
    ) -> Staged | None:
        if self.unreachable:
            raise DeetingError("https://registry.test/registry.json: unreachable", Hint(Fix.SYNC))
        versions = self.folders.get(name)
        if not versions:
            raise DeetingError(f"the registry has no plugin '{name}'")
        version = version or max(versions)
        if options.get("current") == version:
            return None
        target = self.kernel.paths.plugin_code(name, version)
        shutil.copytree(versions[version], target)
        return Staged(name, version, "registry https://registry.test", target)


@pytest.fixture
def registry(kernel: Kernel) -> FakeRegistry:
    fake = FakeRegistry(
        kernel,
        {UPGRADE: {"1.0.0": FIXTURES / "upgrade_v1", "2.0.0": FIXTURES / "upgrade_v2"}},
    )
    kernel.plugins.registry = fake
    return fake


def notices(kernel: Kernel) -> Iterator[list[str]]:
    seen: list[str] = []
    kernel.add_listener(lambda e: seen.append(e.message) if isinstance(e, PluginNotice) else None)
    yield seen


# -- states ----------------------------------------------------------------------------------


async def test_states_and_the_health_line(kernel: Kernel) -> None:
    plugins = kernel.plugins
    assert plugins.health_line() == "0 running"
    await kernel.loader.install(FIXTURES / "good_plugin")
    await kernel.loader.install(OFFICIAL / "weather")  # asks for network: not granted
    await kernel.loader.install(OFFICIAL / "calc")
    await kernel.loader.disable("calc")
    assert plugins.state("echo-fixture") is PluginState.ENABLED
    assert plugins.state("weather") is PluginState.NEEDS_CONSENT
    assert plugins.state("calc") is PluginState.DISABLED
    assert plugins.health_line() == "1 running · 1 awaiting consent"
    weather = plugins.info("weather")
    assert weather.missing == weather.permissions and weather.cause is Cause.NOT_GRANTED
    assert weather.origin is Origin.FOLDER and weather.dev


async def test_a_crash_loop_reads_as_crashed_from_the_stored_cause(kernel: Kernel) -> None:
    await kernel.loader.install(HOSTILE / "faulty", yes=True)
    session = kernel.open_session()
    for _ in range(3):
        await kernel.submit(session.id, "fault exit")
    assert kernel.plugins.state("faulty") is PluginState.CRASHED
    assert kernel.plugins.health_line() == "0 running · 1 crashed"
    stored = orjson.loads(kernel.paths.plugin_state_file.read_bytes())["plugins"]["faulty"]
    assert stored["disabled_cause"] == "crashed"


async def test_the_state_comes_from_the_cause_not_from_the_words(kernel: Kernel) -> None:
    """A reason that says 'crashed' is not a crash; a crash cause with other words is."""
    await kernel.loader.install(OFFICIAL / "calc")
    await kernel.loader.disable("calc")
    kernel.installed.set_enabled("calc", False, "plugin 'calc' crashed 3 times (a lie)")
    assert kernel.plugins.state("calc") is PluginState.DISABLED
    kernel.installed.set_enabled("calc", False, "worn out", Cause.CRASHED)
    assert kernel.plugins.state("calc") is PluginState.CRASHED
    info = kernel.plugins.info("calc")
    assert (info.reason, info.cause) == ("worn out", Cause.CRASHED)


async def test_a_state_file_without_causes_still_loads(kernel: Kernel) -> None:
    """state.json written before causes were stored: every cause reads as none."""
    await kernel.loader.install(OFFICIAL / "calc")
    data = orjson.loads(kernel.paths.plugin_state_file.read_bytes())
    data["plugins"]["calc"].pop("disabled_cause")
    kernel.paths.plugin_state_file.write_bytes(orjson.dumps(data))
    record = InstalledStore(kernel.paths.plugin_state_file).get("calc")
    assert record is not None and record.cause is None


async def test_revoking_and_missing_grants_store_their_causes(kernel: Kernel) -> None:
    await kernel.loader.install(OFFICIAL / "weather", yes=True)
    scope = kernel.plugins.info("weather").permissions[0]
    report = await kernel.plugins.revoke("weather", str(scope))
    assert report.disabled and kernel.plugins.info("weather").cause is Cause.REVOKED
    with pytest.raises(PluginError) as refused:
        await kernel.plugins.enable("weather")
    assert refused.value.hint == Hint(Fix.GRANT, "weather", str(scope))
    assert kernel.plugins.info("weather").cause is Cause.NOT_GRANTED


async def test_a_damaged_install_reads_as_damaged(kernel: Kernel) -> None:
    await kernel.loader.install(OFFICIAL / "calc")
    await kernel.loader.disable("calc")
    record = kernel.installed.get("calc")
    assert record is not None
    (kernel.paths.plugin_code("calc", record.version) / "kimai.json").write_text("{")
    info = kernel.plugins.info("calc")
    assert info.state is PluginState.DAMAGED and info.spec is None
    assert info.problem is not None and "damaged" in info.problem
    assert kernel.plugins.health_line() == "0 running · 1 damaged"


def test_origins_read_from_the_record() -> None:
    from deeting_tui.kernel.plugins import origin_of

    assert origin_of(InstalledPlugin("a", "1.0.0", "/x", dev=True)) is Origin.FOLDER
    assert origin_of(InstalledPlugin("a", "1.0.0", "/x/a.zip", dev=False)) is Origin.ZIP
    registry = InstalledPlugin("a", "1.0.0", "registry https://r", dev=False)
    assert origin_of(registry) is Origin.REGISTRY
    assert Origin.REGISTRY.words == "from the registry (verified)"
    assert Origin.ZIP.words == "(from an archive)"


# -- operations, and refusals that change nothing ---------------------------------------------


async def test_enable_disable_grant_revoke_uninstall(kernel: Kernel) -> None:
    plugins = kernel.plugins
    await plugins.install(str(OFFICIAL / "weather"))
    *first, last = plugins.info("weather").permissions
    for scope in first:
        assert not (await plugins.grant("weather", str(scope))).enabled
    report = await plugins.grant("weather", str(last))
    assert report.added == [last] and report.enabled and plugins.info("weather").running
    assert await plugins.disable("weather") and not await plugins.disable("weather")
    assert plugins.state("weather") is PluginState.DISABLED
    info = await plugins.enable("weather")
    assert info.state is PluginState.ENABLED
    removed = await plugins.uninstall("weather")
    assert removed.name == "weather" and plugins.names() == []


async def test_enable_asks_and_a_refusal_changes_nothing(kernel: Kernel) -> None:
    await kernel.plugins.install(str(OFFICIAL / "weather"))
    before = state_bytes(kernel)

    async def deny(_name: str, _scopes: list[Scope]) -> list[Scope]:
        return []

    with pytest.raises(PluginError, match="stays disabled"):
        await kernel.plugins.enable("weather", ask_all=deny)
    assert state_bytes(kernel) == before

    async def allow(_name: str, scopes: list[Scope]) -> list[Scope]:
        return scopes

    assert (await kernel.plugins.enable("weather", ask_all=allow)).running


@pytest.mark.parametrize(
    "operation",
    ["info", "enable", "disable", "grant", "revoke", "uninstall", "upgrade", "rollback"],
)
async def test_an_unknown_plugin_is_one_clear_error(
    kernel: Kernel, registry: FakeRegistry, operation: str
) -> None:
    await kernel.plugins.install(str(OFFICIAL / "calc"))
    before = state_bytes(kernel)
    plugins = kernel.plugins
    calls = {
        "info": lambda: _now(plugins.info("nope")),
        "enable": lambda: plugins.enable("nope"),
        "disable": lambda: plugins.disable("nope"),
        "grant": lambda: plugins.grant("nope", "shell"),
        "revoke": lambda: plugins.revoke("nope", "shell"),
        "uninstall": lambda: plugins.uninstall("nope"),
        "upgrade": lambda: plugins.upgrade("nope"),
        "rollback": lambda: plugins.rollback("nope"),
    }
    with pytest.raises(PluginError) as refused:
        await calls[operation]()
    assert refused.value.message == "no plugin 'nope' is installed"
    assert refused.value.hint == Hint(Fix.LIST)
    assert state_bytes(kernel) == before


async def _now(value: object) -> object:
    return value


@pytest.mark.parametrize(
    ("scope", "words"),
    [("netwrk", "'netwrk' is not a scope"), ("gpu", "does not ask for 'gpu'")],
)
async def test_a_bad_scope_is_refused_and_nothing_granted(
    kernel: Kernel, scope: str, words: str
) -> None:
    await kernel.plugins.install(str(OFFICIAL / "weather"))
    before = state_bytes(kernel)
    for step in (kernel.plugins.grant, kernel.plugins.revoke):
        with pytest.raises(PluginError, match=words):
            await step("weather", scope)
    assert state_bytes(kernel) == before


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("weather@1.x", "'1.x' is not a SemVer version"),
        ("/no/such/folder", "no such folder or zip"),
        ("Not A Name", "no such folder or zip"),
    ],
)
async def test_a_bad_source_is_refused_and_nothing_installed(
    kernel: Kernel, registry: FakeRegistry, source: str, words: str
) -> None:
    before = state_bytes(kernel)
    with pytest.raises(PluginError, match=words):
        await kernel.plugins.install(source)
    assert state_bytes(kernel) == before and kernel.plugins.names() == []


async def test_a_bad_upgrade_version_is_refused(kernel: Kernel, registry: FakeRegistry) -> None:
    await kernel.plugins.install(UPGRADE)
    before = state_bytes(kernel)
    with pytest.raises(PluginError, match="'latest' is not a SemVer version"):
        await kernel.plugins.upgrade(UPGRADE, "latest")
    assert state_bytes(kernel) == before


async def test_an_unreachable_registry_changes_nothing(
    kernel: Kernel, registry: FakeRegistry
) -> None:
    await kernel.plugins.install(UPGRADE + "@1.0.0")
    registry.unreachable = True
    before = state_bytes(kernel)
    for attempt in (kernel.plugins.install("calc"), kernel.plugins.upgrade(UPGRADE)):
        with pytest.raises(DeetingError, match="unreachable") as refused:
            await attempt
        assert refused.value.hint == Hint(Fix.SYNC)
    assert state_bytes(kernel) == before


async def test_without_a_registry_a_name_install_says_so(kernel: Kernel) -> None:
    with pytest.raises(PluginError, match="no registry"):
        await kernel.plugins.install("calc")


async def test_a_registry_install_says_where_it_came_from(
    kernel: Kernel, registry: FakeRegistry
) -> None:
    report = await kernel.plugins.install(UPGRADE + "@1.0.0")
    info = kernel.plugins.info(UPGRADE)
    assert report.enabled and info.origin is Origin.REGISTRY
    assert info.installed_words == f"installed {UPGRADE} 1.0.0 from the registry (verified)"
    with pytest.raises(PluginError, match="already installed") as again:
        await kernel.plugins.install(UPGRADE)
    assert again.value.hint == Hint(Fix.UPGRADE, UPGRADE)


async def test_upgrade_and_rollback_are_told_as_plugin_notices(
    kernel: Kernel, registry: FakeRegistry
) -> None:
    await kernel.plugins.install(UPGRADE + "@1.0.0")
    seen = next(notices(kernel))
    report = await kernel.plugins.upgrade(UPGRADE)
    assert report is not None and (report.old, report.new) == ("1.0.0", "2.0.0")
    assert await kernel.plugins.upgrade(UPGRADE) is None  # already the newest
    back = await kernel.plugins.rollback(UPGRADE)
    assert (back.old, back.new) == ("2.0.0", "1.0.0")
    assert seen == [
        f"upgraded {UPGRADE} 1.0.0 → 2.0.0",
        f"upgraded {UPGRADE} 2.0.0 → 1.0.0",
    ]


async def test_a_folder_install_is_synced_before_it_is_renamed_into_place(
    kernel: Kernel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same durability as a registry install: every file and folder of the copy is
    fsynced before the rename, and the folder it is renamed into after it."""
    trees: list[Path] = []
    folders: list[Path] = []
    target = kernel.paths.plugin_code("calc", "1.0.0")

    def fsync_tree(root: Path) -> None:
        assert not target.exists(), "synced after the rename"
        trees.append(root)
        assert (root / "kimai.json").is_file()

    monkeypatch.setattr(install_module, "fsync_tree", fsync_tree)
    monkeypatch.setattr(install_module, "fsync_dir", folders.append)
    await kernel.plugins.install(str(OFFICIAL / "calc"))
    assert len(trees) == 1 and trees[0].name == "copy"
    assert folders == [target.parent]
