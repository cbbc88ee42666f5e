"""``registry sync`` against a registry folder (file://): trust on first use of a pinned
root, then every attack on the index is refused and leaves the stored state as it was."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from registry_support import NOW, PLUGIN, TestRegistry, client_at, installed_of, stored

from deeting_tui.command_output import error_line
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.store.errors import StoreError
from deeting_tui.store.lock import updater_lock


async def first_sync(kernel: Kernel, registry: TestRegistry) -> None:
    await client_at(kernel.paths.config_dir).sync(
        installed_of(kernel), registry.url, registry.root_file
    )


async def refused(kernel: Kernel, registry: TestRegistry, *words: str, days: float = 0) -> None:
    before = stored(kernel.paths.config_dir)
    with pytest.raises(StoreError) as caught:
        await client_at(kernel.paths.config_dir, days).sync(installed_of(kernel), registry.url)
    message = str(caught.value)
    for word in words:
        assert word in message, message
    assert stored(kernel.paths.config_dir) == before


async def test_without_root_the_first_sync_trusts_the_registrys_own_root(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    report = await client_at(cli_kernel.paths.config_dir).sync(
        installed_of(cli_kernel), registry.url
    )
    assert report.root_on_first_use and report.version == 1
    assert stored(cli_kernel.paths.config_dir)["root.json"] == registry.root_bytes
    # From then on that root is the anchor: a root.json swapped on the server changes nothing.
    registry.make_root([SigningKey.generate()], 1, signers=[SigningKey.generate()])
    again = await client_at(cli_kernel.paths.config_dir).sync(installed_of(cli_kernel))
    assert not again.root_on_first_use
    assert stored(cli_kernel.paths.config_dir)["root.json"] == registry.root_bytes


async def test_a_first_sync_with_no_root_anywhere(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    registry.root_file.unlink()
    with pytest.raises(StoreError, match=r"no registry root is pinned yet") as refused:
        await client_at(cli_kernel.paths.config_dir).sync(installed_of(cli_kernel), registry.url)
    assert error_line(refused.value).endswith(
        "— run: deeting registry sync --url URL --root root.json"
    )
    assert stored(cli_kernel.paths.config_dir) == {}
    # A root.json that does not verify (signed by a key it does not list) is refused too.
    registry.root_file.write_bytes(
        registry.make_root(registry.keys, 1, signers=[SigningKey.generate()])
    )
    with pytest.raises(StoreError, match="0 valid signatures"):
        await client_at(cli_kernel.paths.config_dir).sync(installed_of(cli_kernel), registry.url)
    assert stored(cli_kernel.paths.config_dir) == {}


async def test_a_sync_pins_the_root_and_stores_what_verified(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    client = client_at(cli_kernel.paths.config_dir)
    report = await client.sync(installed_of(cli_kernel), registry.url, registry.root_file)
    assert (report.version, report.plugins, report.root_pinned) == (1, 1, True)
    files = stored(cli_kernel.paths.config_dir)
    assert files["root.json"] == registry.root_bytes
    assert files["registry.json"] == (registry.folder / "registry.json").read_bytes()
    assert client.registry().find(PLUGIN).version == "1.0.0"
    # The URL is remembered; a repeat without --url or --root just re-verifies.
    again = await client.sync(installed_of(cli_kernel))
    assert again.version == 1 and not again.root_pinned


async def test_no_url_ever_given(cli_kernel: Kernel, registry: TestRegistry) -> None:
    # No URL given or followed: the official registry (tests point it at a missing file).
    with pytest.raises(StoreError, match="nonexistent/deeting-official"):
        await client_at(cli_kernel.paths.config_dir).sync(
            installed_of(cli_kernel), None, registry.root_file
        )


async def test_a_registry_signed_by_an_unknown_key(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    await first_sync(cli_kernel, registry)
    registry.publish(signers=[SigningKey.generate()])
    await refused(cli_kernel, registry, "0 valid signatures", "1 needed")


async def test_a_registry_edited_after_signing(cli_kernel: Kernel, registry: TestRegistry) -> None:
    await first_sync(cli_kernel, registry)
    raw = registry.publish()
    path = registry.folder / "registry.json"
    path.write_bytes(raw.replace(b'\\"version\\": 2', b'\\"version\\": 9'))
    assert path.read_bytes() != raw
    await refused(cli_kernel, registry, "changed after signing")


async def test_a_duplicated_signature_or_a_key_under_two_ids_is_one_signature(
    tmp_path: Path, cli_kernel: Kernel
) -> None:
    registry = TestRegistry(tmp_path / "two", keys=2, threshold=2)
    registry.add("1.0.0")
    registry.publish()
    await first_sync(cli_kernel, registry)
    only = registry.keys[0]

    def doubled(raw: bytes) -> bytes:
        import orjson

        outer = orjson.loads(raw)
        outer["signatures"] = [outer["signatures"][0], outer["signatures"][0]]
        return orjson.dumps(outer)

    raw = registry.publish(signers=[only])
    (registry.folder / "registry.json").write_bytes(doubled(raw))
    await refused(cli_kernel, registry, "1 valid signature", "2 needed")


async def test_an_older_registry_is_never_accepted_again(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    old = (registry.folder / "registry.json").read_bytes()  # version 1, valid for 30 days
    await first_sync(cli_kernel, registry)
    registry.add("1.1.0")
    registry.publish(expires=NOW + timedelta(days=10))  # version 2
    await first_sync(cli_kernel, registry)
    (registry.folder / "registry.json").write_bytes(old)
    await refused(cli_kernel, registry, "older than version 2", "rollback")
    # Also once the stored version 2 has expired (day 20; version 1 is still valid) …
    await refused(cli_kernel, registry, "older than version 2", days=20)
    # … and when the stored copy is gone: the highest version is kept apart from it.
    (cli_kernel.paths.data_dir / "registry" / "registry.json").unlink()
    await refused(cli_kernel, registry, "older than version 2", days=20)


async def test_same_version_other_bytes(cli_kernel: Kernel, registry: TestRegistry) -> None:
    await first_sync(cli_kernel, registry)
    registry.add("1.1.0")
    registry.publish(version=1)
    await refused(cli_kernel, registry, "differs from the copy already seen")


async def test_an_expired_registry(cli_kernel: Kernel, registry: TestRegistry) -> None:
    await first_sync(cli_kernel, registry)
    await refused(cli_kernel, registry, "expired at", "freeze", days=31)
    # Installing from the stored copy is refused the same way.
    with pytest.raises(StoreError, match="expired"):
        client_at(cli_kernel.paths.config_dir, days=31).registry()


async def test_root_rotation_is_followed_when_both_key_sets_sign(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    await first_sync(cli_kernel, registry)
    old, new = registry.keys, [SigningKey.generate()]
    registry.make_root(new, 1, signers=[*old, *new])
    registry.keys = new
    registry.publish()
    report = await client_at(cli_kernel.paths.config_dir).sync(installed_of(cli_kernel))
    assert report.rotated_to == 2
    assert stored(cli_kernel.paths.config_dir)["root.json"] == registry.root_file.read_bytes()
    # The old key alone no longer signs a registry the client accepts.
    registry.publish(signers=old)
    await refused(cli_kernel, registry, "0 valid signatures")


async def test_a_rotation_signed_by_the_new_keys_only(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    await first_sync(cli_kernel, registry)
    new = [SigningKey.generate()]
    registry.make_root(new, 1, signers=new)
    registry.keys = new
    registry.publish()
    await refused(cli_kernel, registry, "root 2", "old root's keys")


async def test_hostile_plugin_names_in_the_index(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    await first_sync(cli_kernel, registry)
    for name in ("../../x", "/etc", "a/b", "%2e%2e"):

        def rename(document: dict[str, Any], bad: str = name) -> None:
            document["plugins"][bad] = document["plugins"].pop(PLUGIN)

        registry.publish(edit=rename)
        await refused(cli_kernel, registry, "not a valid plugin name")


async def test_an_oversized_registry(cli_kernel: Kernel, registry: TestRegistry) -> None:
    await first_sync(cli_kernel, registry)
    registry.publish()
    before = stored(cli_kernel.paths.config_dir)
    client = client_at(cli_kernel.paths.config_dir, registry_max_bytes=100)
    with pytest.raises(StoreError):
        await client.sync(installed_of(cli_kernel))
    assert stored(cli_kernel.paths.config_dir) == before


async def test_a_second_updater_is_turned_away(cli_kernel: Kernel, registry: TestRegistry) -> None:
    await first_sync(cli_kernel, registry)
    registry.publish()
    before = stored(cli_kernel.paths.config_dir)
    lock = updater_lock(cli_kernel.paths.plugins_dir / ".updater.lock")
    with lock, pytest.raises(StoreError, match="another deeting update is running"):
        await client_at(cli_kernel.paths.config_dir).sync(installed_of(cli_kernel))
    assert stored(cli_kernel.paths.config_dir) == before
    await client_at(cli_kernel.paths.config_dir).sync(installed_of(cli_kernel))  # free again


async def test_a_damaged_state_file(cli_kernel: Kernel, registry: TestRegistry) -> None:
    await first_sync(cli_kernel, registry)
    (cli_kernel.paths.data_dir / "registry" / "state.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"state\.json is damaged.*remove the folder"):
        await client_at(cli_kernel.paths.config_dir).sync(installed_of(cli_kernel))


async def test_an_expired_registry_is_refused_even_when_the_server_says_304(
    cli_kernel: Kernel, registry: TestRegistry
) -> None:
    """A freeze: the server keeps answering "not modified" to an index that has expired."""
    from registry_tools import serve

    home = cli_kernel.paths.config_dir
    with serve.start(registry.folder) as server:
        url = server.url + "registry.json"
        await client_at(home).sync(installed_of(cli_kernel), url, registry.root_file)
        before = stored(home)
        server.server.served.clear()
        with pytest.raises(StoreError, match="expired at"):
            await client_at(home, days=31).sync(installed_of(cli_kernel))
        assert server.server.served == [("GET", "/registry.json", 304)]
    assert stored(home) == before
