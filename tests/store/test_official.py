"""The official registry by default (its root ships with deeting: no trust on first use), and
switching registries (nothing of one applies to another)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from nacl.signing import SigningKey
from registry_support import TestRegistry, client_at, stored

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.store.client import StoreError


@pytest.fixture
def official(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TestRegistry:
    """A registry standing in for the official one: its URL and the root deeting "ships"
    (a copy kept apart from the served folder) through the documented overrides."""
    made = TestRegistry(tmp_path / "official")
    made.add("1.0.0")
    made.publish()
    shipped = tmp_path / "shipped-root.json"
    shutil.copyfile(made.root_file, shipped)
    monkeypatch.setenv("DEETING_OFFICIAL_REGISTRY_URL", made.url)
    monkeypatch.setenv("DEETING_OFFICIAL_ROOT", str(shipped))
    return made


async def test_a_sync_with_no_url_follows_the_official_registry(
    cli_kernel: Kernel, official: TestRegistry
) -> None:
    home = cli_kernel.paths.config_dir
    # The server's root.json is swapped for an attacker's: the shipped root is what counts.
    official.root_file.write_bytes(
        official.make_root([SigningKey.generate()], 1, signers=[SigningKey.generate()])
    )
    report = await client_at(home).sync([])
    assert report.official and report.url == official.url
    assert not report.root_on_first_use and not report.root_pinned
    assert stored(home)["root.json"] == (official.folder / "roots" / "1.root.json").read_bytes()
    assert client_at(home).registry().find("echo-fixture").version == "1.0.0"


async def test_the_official_registry_signed_by_another_key_is_refused(
    cli_kernel: Kernel, official: TestRegistry
) -> None:
    """No trust on first use to fall back on: a registry the shipped root did not sign is
    refused, whatever root.json its server offers."""
    home = cli_kernel.paths.config_dir
    intruder = SigningKey.generate()
    official.root_file.write_bytes(official.make_root([intruder], 1, signers=[intruder]))
    official.publish(signers=[intruder])
    with pytest.raises(StoreError, match="valid signatures"):
        await client_at(home).sync([])
    assert stored(home) == {}


async def test_switching_registries_applies_nothing_of_the_old_one(
    cli_kernel: Kernel, tmp_path: Path
) -> None:
    home = cli_kernel.paths.config_dir
    first = TestRegistry(tmp_path / "first")
    first.add("1.0.0")
    for _ in range(5):
        first.publish()
    await client_at(home).sync([], first.url, first.root_file)
    second = TestRegistry(tmp_path / "second")
    second.add("2.0.0")
    second.publish()
    # Before: the first registry's seen version (5) refused the second's version 1 as a
    # rollback, and without --root its pinned root refused the second's signatures.
    report = await client_at(home).sync([], second.url)
    assert report.root_on_first_use and report.switched_from == first.url
    assert report.version == 1
    assert stored(home)["root.json"] == second.root_bytes
    assert client_at(home).registry().find("echo-fixture").version == "2.0.0"
    # Back to the first: its seen version was kept, so a replay of its version 3 is refused.
    first.publish(version=3)
    with pytest.raises(StoreError, match="older than version 5"):
        await client_at(home).sync([], first.url, first.root_file)
    first.publish(version=6)
    again = await client_at(home).sync([], first.url, first.root_file)
    assert again.version == 6 and again.switched_from == second.url


async def test_switching_to_the_official_registry_uses_the_shipped_root(
    cli_kernel: Kernel, official: TestRegistry, tmp_path: Path
) -> None:
    home = cli_kernel.paths.config_dir
    mine = TestRegistry(tmp_path / "mine")
    mine.add("1.0.0")
    mine.publish()
    await client_at(home).sync([], mine.url, mine.root_file)
    report = await client_at(home).sync([], official.url)
    assert report.official and not report.root_on_first_use
    assert stored(home)["root.json"] == official.root_bytes


def test_the_cli_syncs_the_official_registry_with_no_url(
    home: Path, official: TestRegistry
) -> None:
    from support import run_deeting

    done = run_deeting("registry", "sync", home=home, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "trusting the registry's own root.json on first use" not in done.stderr
    assert "the official registry, verified with the root of trust deeting ships" in done.stdout
    mine = TestRegistry(home.parent / "mine")
    mine.add("1.0.0")
    mine.publish()
    other = run_deeting("registry", "sync", "--url", mine.url, home=home, timeout=60)
    assert other.returncode == 0, other.stderr
    assert "on first use" in other.stderr  # another registry: today's --url/--root flow
    assert f"now following {mine.url} instead of {official.url}" in other.stdout
