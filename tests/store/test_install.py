"""Install, upgrade and roll back from a registry; every tampering with an artifact is refused
and leaves the installed state byte for byte as it was."""

from __future__ import annotations

import io
import shutil
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from registry_support import (
    PLUGIN,
    TestRegistry,
    client_at,
    installed_of,
    plugin_source,
    plugins_with,
    source,
    zip_plugin,
)

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.store.errors import StoreError
from deeting_tui.store.lock import updater_lock
from deeting_tui.store.signing import artifact_message, signatures_for


def installed_state(kernel: Kernel) -> dict[str, bytes]:
    """Every file under the plugins folder (code, staging, state.json) and the grants."""
    root = kernel.paths.plugins_dir
    files = {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".updater.lock"
    }
    grants = kernel.paths.grants_file
    files["grants"] = grants.read_bytes() if grants.exists() else b""
    return files


async def synced(kernel: Kernel, registry: TestRegistry) -> None:
    await client_at(kernel.paths.config_dir).sync(
        installed_of(kernel), registry.url, registry.root_file
    )


async def install(kernel: Kernel, name: str = PLUGIN, version: str | None = None) -> Any:
    return await plugins_with(kernel, client_at(kernel.paths.config_dir)).install(
        source(name, version)
    )


async def upgrade(kernel: Kernel, version: str | None = None, **options: Any) -> Any:
    client = client_at(kernel.paths.config_dir)
    return await plugins_with(kernel, client).upgrade(PLUGIN, version, **options)


async def refused_install(kernel: Kernel, *words: str, name: str = PLUGIN) -> None:
    before = installed_state(kernel)
    with pytest.raises((StoreError, PluginError)) as caught:
        await install(kernel, name)
    for word in words:
        assert word in str(caught.value), str(caught.value)
    assert installed_state(kernel) == before
    assert kernel.installed.get(name) is None


async def echo(kernel: Kernel) -> str:
    outcome = await kernel.call_tool(kernel.open_session().id, "echo", {"text": "hi"})
    assert outcome.ok, outcome.error
    return outcome.summary()


# -- the good path ------------------------------------------------------------------------------


async def test_install_the_newest_or_a_pinned_version(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    registry.add("1.1.0")
    registry.publish()
    await synced(cli_kernel, registry)
    report = await install(cli_kernel, PLUGIN, "1.0.0")
    assert report.enabled
    record = cli_kernel.installed.get(PLUGIN)
    assert record is not None and (record.version, record.dev) == ("1.0.0", False)
    assert record.source.startswith("registry file://")
    assert (cli_kernel.paths.plugin_code(PLUGIN, "1.0.0") / "kimai.json").is_file()
    assert not any((cli_kernel.paths.plugins_dir / ".staging").iterdir())
    with pytest.raises(PluginError, match="already installed"):  # the service's refusal
        await install(cli_kernel)


async def test_install_needs_a_sync_and_a_known_name(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    with pytest.raises(StoreError, match="no registry synced yet"):
        await install(cli_kernel)
    await synced(cli_kernel, registry)
    await refused_install(cli_kernel, "no plugin 'nope'", name="nope")
    with pytest.raises(StoreError, match=r"no 'echo-fixture' 9\.9\.9 \(it has: 1\.0\.0\)"):
        await install(cli_kernel, PLUGIN, "9.9.9")


# -- tampering with the artifact ----------------------------------------------------------------


def artifact_path(registry: TestRegistry, version: str = "1.0.0", name: str = PLUGIN) -> Path:
    return registry.folder / "artifacts" / f"{name}-{version}.zip"


async def test_one_flipped_byte(cli_kernel: Kernel, registry: TestRegistry) -> None:
    await synced(cli_kernel, registry)
    path = artifact_path(registry)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    await refused_install(cli_kernel, "does not match the registry's", "altered")


async def test_a_truncated_body_under_the_right_hash(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    await synced(cli_kernel, registry)
    path = artifact_path(registry)
    path.write_bytes(path.read_bytes()[:-100])
    await refused_install(cli_kernel, "echo-fixture 1.0.0")


async def test_an_artifact_signed_by_an_unknown_key(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    registry.add("1.0.0", signers=[SigningKey.generate()])  # the index itself is well signed
    registry.publish()
    await synced(cli_kernel, registry)
    await refused_install(cli_kernel, "artifact: 0 valid signatures")


async def test_an_artifact_from_a_previous_registry_version(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    """Mix and match: the index lists 1.1.0, the server hands out 1.0.0's bytes."""
    registry.add("1.1.0")
    registry.publish()
    await synced(cli_kernel, registry)
    shutil.copy(artifact_path(registry, "1.0.0"), artifact_path(registry, "1.1.0"))
    await refused_install(cli_kernel)
    # Nor may an index entry be moved to another version: its signature names the version.
    old_entry = registry.entries[PLUGIN]["1.0.0"]
    registry.entries[PLUGIN]["1.1.0"] = dict(old_entry)
    registry.publish()
    await synced(cli_kernel, registry)
    await refused_install(cli_kernel, "1.1.0 artifact: 0 valid signatures")


async def test_plugin_b_served_as_a(cli_kernel: Kernel, registry: TestRegistry) -> None:
    registry.add("1.0.0", name="other-plugin")
    registry.publish()
    await synced(cli_kernel, registry)
    shutil.copy(artifact_path(registry, name="other-plugin"), artifact_path(registry))
    await refused_install(cli_kernel, "does not match")
    # B's whole (valid) entry listed under A: B's signature does not cover A's name.
    registry.entries[PLUGIN]["1.0.0"] = dict(registry.entries["other-plugin"]["1.0.0"])
    registry.publish()
    await synced(cli_kernel, registry)
    await refused_install(cli_kernel, "artifact: 0 valid signatures")


def signed_as(registry: TestRegistry, data: bytes, version: str = "1.0.0") -> None:
    """List ``data`` as echo-fixture ``version``, correctly hashed and signed: the registry's
    own keys vouch for it, so only the unpacking can catch what is wrong inside."""
    registry.add(version, data=data)
    registry.publish()


async def test_a_signed_archive_holding_another_plugin(
    cli_kernel: Kernel, registry: TestRegistry, tmp_path: Path
) -> None:
    other = zip_plugin(plugin_source(tmp_path, "1.0.0", name="other-plugin"))
    signed_as(registry, other)
    await synced(cli_kernel, registry)
    await refused_install(cli_kernel, "holds other-plugin 1.0.0", "substituted")


def hostile_zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we mean to write
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for info, data in entries:
                archive.writestr(info, data)
    return buffer.getvalue()


def _with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def _good_entries(tmp_path: Path) -> list[tuple[zipfile.ZipInfo | str, bytes]]:
    source = plugin_source(tmp_path, "1.0.0")
    return [
        (str(p.relative_to(source)), p.read_bytes())
        for p in sorted(source.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    ]


HOSTILE: dict[str, Callable[[list[Any]], list[Any]]] = {
    "dot-dot": lambda good: [*good, ("../evil.py", b"x")],
    "absolute": lambda good: [*good, ("/tmp/evil.py", b"x")],
    "drive letter": lambda good: [*good, ("C:/evil.py", b"x")],
    "symlink": lambda good: [*good, (_with_mode("src/link", stat.S_IFLNK | 0o777), b"/etc")],
    "duplicate": lambda good: [*good, good[0]],
    "case collision": lambda good: [*good, ("README.MD", b"x")],
    "setuid mode": lambda good: [*good, (_with_mode("src/run.py", stat.S_IFREG | 0o4777), b"")],
    "bomb": lambda good: [*good, ("src/bomb.txt", b"\0" * (60 * 2**20))],
}


@pytest.mark.parametrize("attack", HOSTILE, ids=HOSTILE)
async def test_a_signed_but_hostile_archive(
    cli_kernel: Kernel, registry: TestRegistry, tmp_path: Path, attack: str
) -> None:
    signed_as(registry, hostile_zip(HOSTILE[attack](_good_entries(tmp_path))))
    await synced(cli_kernel, registry)
    await refused_install(cli_kernel, "archive refused")


# -- upgrade, downgrade, rollback ---------------------------------------------------------------


async def test_upgrade_keeps_the_previous_version_and_rollback_returns_to_it(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    await synced(cli_kernel, registry)
    await install(cli_kernel)
    registry.add("1.1.0")
    registry.publish()
    report = await client_at(cli_kernel.paths.config_dir).sync(installed_of(cli_kernel))
    assert [(u.name, u.installed, u.available) for u in report.updates] == [
        (PLUGIN, "1.0.0", "1.1.0")
    ]
    upgraded = await upgrade(cli_kernel)
    assert (upgraded.old, upgraded.new) == ("1.0.0", "1.1.0")
    record = cli_kernel.installed.get(PLUGIN)
    assert record is not None and (record.version, record.previous) == ("1.1.0", "1.0.0")
    assert cli_kernel.paths.plugin_code(PLUGIN, "1.0.0").is_dir()
    assert await upgrade(cli_kernel) is None  # already the newest
    back = await cli_kernel.plugins.rollback(PLUGIN)
    assert (back.old, back.new) == ("1.1.0", "1.0.0")
    record = cli_kernel.installed.get(PLUGIN)
    assert record is not None and (record.version, record.previous) == ("1.0.0", "1.1.0")
    # Forward again: 1.1.0 is still on disk, so nothing is downloaded (the file may go).
    artifact_path(registry, "1.1.0").unlink()
    assert (await upgrade(cli_kernel)).new == "1.1.0"


async def test_a_downgrade_needs_allow_downgrade(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    registry.add("1.1.0")
    registry.add("1.2.0")
    registry.publish()
    await synced(cli_kernel, registry)
    await install(cli_kernel, PLUGIN, "1.1.0")
    before = installed_state(cli_kernel)
    with pytest.raises(StoreError, match=r"refusing a downgrade.*--allow-downgrade"):
        await upgrade(cli_kernel, "1.0.0")
    assert installed_state(cli_kernel) == before
    report = await upgrade(cli_kernel, "1.0.0", allow_downgrade=True)
    assert (report.old, report.new) == ("1.1.0", "1.0.0")


async def test_a_tampered_upgrade_leaves_the_old_version_active(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    await synced(cli_kernel, registry)
    await install(cli_kernel)
    registry.add("1.1.0")
    registry.publish()
    await synced(cli_kernel, registry)
    path = artifact_path(registry, "1.1.0")
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    before = installed_state(cli_kernel)
    with pytest.raises(StoreError, match="does not match"):
        await upgrade(cli_kernel)
    assert installed_state(cli_kernel) == before
    assert "hi" in await echo(cli_kernel)


async def test_a_dev_install_is_not_upgraded_from_the_registry(
    cli_kernel: Kernel, registry: TestRegistry, tmp_path: Path
) -> None:
    await cli_kernel.loader.install(plugin_source(tmp_path, "0.9.0"))
    await synced(cli_kernel, registry)
    with pytest.raises(PluginError, match="local dev install"):
        await upgrade(cli_kernel)


async def test_two_updaters_at_once(cli_kernel: Kernel, registry: TestRegistry) -> None:
    await synced(cli_kernel, registry)
    before = installed_state(cli_kernel)
    lock = updater_lock(cli_kernel.paths.plugins_dir / ".updater.lock")
    with lock, pytest.raises(StoreError, match="another deeting update is running"):
        await install(cli_kernel)
    assert installed_state(cli_kernel) == before
    await install(cli_kernel)


async def test_signatures_are_over_the_exact_artifact_message() -> None:
    """The message format is part of the contract between gen_registry and the client."""
    key = SigningKey.generate()
    [entry] = signatures_for(artifact_message("a", "1.0.0", "ab" * 32, 3), [key])
    key.verify_key.verify(b"a@1.0.0:" + b"ab" * 32 + b":3", bytes.fromhex(entry["sig"]))
