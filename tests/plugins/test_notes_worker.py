"""notes through the real kernel and its sandboxed worker: SQLite (with its WAL files) works
under Landlock and the import isolation, and an upgrade from 1.0.0 keeps every note — hot
(``postupgrade`` imports in the new worker before it takes over) and cold (the first call
after the upgrade imports)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from support import FIXTURES, OFFICIAL

from deeting_tui.kernel.kernel import Kernel

NOTES_1_0_0 = FIXTURES / "notes_1_0_0"
TEXTS = ("buy oat milk", "café ☕ 日本", "the wifi password is on the fridge")


async def call(kernel: Kernel, tool: str, **args: Any) -> Any:
    outcome = await kernel.call_tool(kernel.open_session().id, tool, args)
    assert outcome.ok, outcome
    return outcome


async def install_1_0_0_with_notes(kernel: Kernel) -> list[list[Any]]:
    """A used home: notes 1.0.0 installed (as from the registry) and three notes in its JSON."""
    shutil.copytree(NOTES_1_0_0, kernel.paths.plugin_code("notes", "1.0.0"))
    report = await kernel.loader.install_prepared("notes", "1.0.0", "registry test")
    assert report.enabled, report.problem
    for text in TEXTS:
        await call(kernel, "note_add", text=text)
    assert (kernel.paths.plugin_data("notes") / "notes.json").is_file()
    rows: list[list[Any]] = (await call(kernel, "note_list")).data["rows"]
    assert [row[0] for row in rows] == [3, 2, 1]
    return rows


def place_1_1_0(kernel: Kernel) -> None:
    shutil.copytree(OFFICIAL / "notes", kernel.paths.plugin_code("notes", "1.1.0"))


async def test_notes_keep_their_store_in_sqlite_inside_the_sandbox(kernel: Kernel) -> None:
    assert (await kernel.loader.install(OFFICIAL / "notes")).enabled
    for text in TEXTS:
        await call(kernel, "note_add", text=text)
    listed = await call(kernel, "note_list", limit=2)
    assert [row[2] for row in listed.data["rows"]] == [TEXTS[2], TEXTS[1]]
    found = await call(kernel, "note_search", query="CAFÉ")
    assert [row[0] for row in found.data["rows"]] == [2]
    data: Path = kernel.paths.plugin_data("notes")
    assert {"notes.db", "notes.db-wal", "notes.db-shm"} <= {p.name for p in data.iterdir()}


async def test_a_hot_upgrade_from_1_0_0_imports_every_note_before_the_switch(
    kernel: Kernel,
) -> None:
    before = await install_1_0_0_with_notes(kernel)
    place_1_1_0(kernel)
    report = await kernel.loader.upgrade("notes", "1.1.0")
    assert report.hot
    data: Path = kernel.paths.plugin_data("notes")
    # postupgrade already imported, in the new worker, before any call reached it.
    assert (data / "notes.json.migrated").is_file() and not (data / "notes.json").exists()
    assert (await call(kernel, "note_list")).data["rows"] == before
    assert (await call(kernel, "note_add", text="after")).data["id"] == 4


async def test_a_cold_upgrade_from_1_0_0_imports_on_the_first_call(kernel: Kernel) -> None:
    before = await install_1_0_0_with_notes(kernel)
    await kernel.loader.disable("notes")
    place_1_1_0(kernel)
    report = await kernel.loader.upgrade("notes", "1.1.0")
    assert not report.hot
    data: Path = kernel.paths.plugin_data("notes")
    assert (data / "notes.json").is_file()  # untouched until 1.1.0 first opens its notebook
    await kernel.loader.enable("notes")
    assert (await call(kernel, "note_list")).data["rows"] == before
    assert (data / "notes.json.migrated").is_file() and not (data / "notes.json").exists()
    found = await call(kernel, "note_search", query="wifi")
    assert found.data["rows"] == [before[0]]
