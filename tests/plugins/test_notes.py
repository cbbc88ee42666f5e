"""The notes plugin: add, list, search, persistence in SQLite, the import of 1.0.0's JSON
notebook (crash-safe, idempotent, never losing a note), argument checks."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from deeting_tui.sdk import normalize_result

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture
def notes(load_plugin: Any, make_ctx: Any) -> Any:
    index = load_plugin("notes")
    ctx = make_ctx("notes")

    def run(tool: str, **args: Any) -> dict[str, Any]:
        return normalize_result(index.invoke(ctx, tool, args))

    run.ctx = ctx  # type: ignore[attr-defined]
    run.index = index  # type: ignore[attr-defined]
    return run


def test_add_returns_the_note(notes: Any) -> None:
    out = notes("note_add", text="  buy oat milk  ")
    assert out["renderer"] == "key-value"
    assert out["text"] == "Saved note #1: buy oat milk"
    data = out["data"]
    assert set(data) == {"id", "text", "created"}
    assert data["id"] == 1 and data["text"] == "buy oat milk"
    assert datetime.fromisoformat(data["created"]).tzinfo is not None
    assert notes("note_add", text="second")["data"]["id"] == 2


def test_list_is_a_table_newest_first(notes: Any) -> None:
    for text in ("one", "two", "three"):
        notes("note_add", text=text)
    out = notes("note_list")
    assert out["renderer"] == "table"
    assert out["data"]["columns"] == ["id", "created", "text"]
    assert [row[0] for row in out["data"]["rows"]] == [3, 2, 1]
    assert [row[2] for row in out["data"]["rows"]] == ["three", "two", "one"]
    lines = out["text"].splitlines()
    assert lines[0] == "3 notes:"
    assert re.fullmatch(r"#3 \d{4}-\d\d-\d\d \d\d:\d\d  three", lines[1])
    assert len(lines) == 4


def test_list_limit(notes: Any) -> None:
    for number in range(5):
        notes("note_add", text=f"note {number}")
    out = notes("note_list", limit=2)
    assert [row[2] for row in out["data"]["rows"]] == ["note 4", "note 3"]
    assert out["text"].splitlines()[0] == "5 notes, newest 2 shown:"


def test_empty_list(notes: Any) -> None:
    out = notes("note_list")
    assert out == {
        "data": {"columns": ["id", "created", "text"], "rows": []},
        "text": "No notes yet.",
        "renderer": "table",
    }


def test_search_is_case_insensitive(notes: Any) -> None:
    notes("note_add", text="Buy OAT milk")
    notes("note_add", text="call the plumber")
    notes("note_add", text="oatmeal recipe")
    out = notes("note_search", query="oat")
    assert out["renderer"] == "table"
    assert [row[2] for row in out["data"]["rows"]] == ["oatmeal recipe", "Buy OAT milk"]
    assert out["text"].startswith("2 notes match 'oat':")
    missing = notes("note_search", query="zebra")
    assert missing["text"] == "No notes match 'zebra'."
    assert missing["data"]["rows"] == []


def test_notes_persist_across_contexts_and_restarts(load_plugin: Any, make_ctx: Any) -> None:
    first = load_plugin("notes")
    first.invoke(make_ctx("notes"), "note_add", {"text": "remember me"})
    second = load_plugin("notes")  # a restarted worker
    out = normalize_result(second.invoke(make_ctx("notes"), "note_list", {}))
    assert [row[2] for row in out["data"]["rows"]] == ["remember me"]
    folder = make_ctx("notes").data_dir
    with closing(sqlite3.connect(folder / "notes.db")) as db:
        assert db.execute("SELECT id, text FROM notes").fetchall() == [(1, "remember me")]
    assert not (folder / "notes.json").exists()


def test_the_store_is_sqlite_in_wal_mode(notes: Any) -> None:
    notes("note_add", text="hello")
    folder: Path = notes.ctx.data_dir
    assert {p.name for p in folder.iterdir()} <= {"notes.db", "notes.db-wal", "notes.db-shm"}
    with closing(sqlite3.connect(folder / "notes.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_note_survives_a_kill_right_after_it_was_acknowledged(tmp_path: Path) -> None:
    """A separate process adds a note and is SIGKILLed as soon as note_add has answered:
    the note is in the database (the commit happened before the answer)."""
    code = (
        "import os, signal, sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from handler import NoteBook; NoteBook(Path(sys.argv[2])).add('kept', 0.0);"
        "os.kill(os.getpid(), signal.SIGKILL)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(PLUGINS / "notes" / "src"), str(tmp_path)], check=False
    )
    assert done.returncode == -signal.SIGKILL
    with closing(sqlite3.connect(tmp_path / "notes.db")) as db:
        assert db.execute("SELECT text FROM notes").fetchall() == [("kept",)]


def test_unicode_survives(notes: Any) -> None:
    notes("note_add", text="café ☕ 日本")
    assert notes("note_search", query="CAFÉ")["data"]["rows"][0][2] == "café ☕ 日本"


def test_search_treats_wildcards_as_text(notes: Any) -> None:
    notes("note_add", text="100% sure")
    notes("note_add", text="a_b")
    notes("note_add", text="plain")
    assert [r[2] for r in notes("note_search", query="%")["data"]["rows"]] == ["100% sure"]
    assert [r[2] for r in notes("note_search", query="_")["data"]["rows"]] == ["a_b"]


def test_search_counts_every_match_but_shows_the_newest_500(notes: Any) -> None:
    for number in range(503):
        notes("note_add", text=f"milk {number}")
    out = notes("note_search", query="MILK")
    assert len(out["data"]["rows"]) == 500 and out["data"]["rows"][0][2] == "milk 502"
    assert out["text"].splitlines()[0] == "503 notes match 'MILK', newest 500 shown:"


# -- migration from 1.0.0's notes.json ---------------------------------------------------

V1_NOTES = [
    {"id": 1, "text": "buy oat milk", "created": "2026-11-25T14:03:00+01:00"},
    {"id": 2, "text": "Café ☕", "created": "2026-11-25T15:00:00+01:00"},
    {"id": 4, "text": "after a gap", "created": "2026-11-26T09:30:00+01:00"},
]


def write_v1(folder: Path, notes: list[dict[str, Any]] = V1_NOTES, next_id: int = 7) -> bytes:
    """A notes.json exactly as 1.0.0 wrote it."""
    folder.mkdir(parents=True, exist_ok=True)
    document = {"version": 1, "next_id": next_id, "notes": notes}
    raw = (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode()
    (folder / "notes.json").write_bytes(raw)
    return raw


def test_a_v1_notebook_is_imported_with_ids_order_and_times(notes: Any) -> None:
    folder: Path = notes.ctx.data_dir
    raw = write_v1(folder)
    rows = notes("note_list")["data"]["rows"]
    assert rows == [[n["id"], n["created"], n["text"]] for n in reversed(V1_NOTES)]
    assert notes("note_search", query="café")["data"]["rows"][0][0] == 2
    assert notes("note_add", text="new")["data"]["id"] == 7  # 1.0.0's next_id carries on
    assert not (folder / "notes.json").exists()
    assert (folder / "notes.json.migrated").read_bytes() == raw  # kept, byte for byte


def test_the_import_runs_once(notes: Any) -> None:
    folder: Path = notes.ctx.data_dir
    write_v1(folder)
    notes("note_list")
    assert len(notes("note_list")["data"]["rows"]) == 3
    assert sorted(p.name for p in folder.glob("notes.json*")) == ["notes.json.migrated"]


def test_a_crash_before_the_commit_leaves_the_json_authoritative(
    notes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder: Path = notes.ctx.data_dir
    raw = write_v1(folder)
    handler = sys.modules[notes.index.__name__.rpartition(".")[0] + ".handler"]
    real_import = handler._import

    def crash(db: sqlite3.Connection, *args: Any) -> None:
        real_import(db, *args)  # every row inserted, then the process "dies" before COMMIT
        raise KeyboardInterrupt

    monkeypatch.setattr(handler, "_import", crash)
    with pytest.raises(KeyboardInterrupt):
        notes("note_list")
    assert (folder / "notes.json").read_bytes() == raw
    with closing(sqlite3.connect(folder / "notes.db")) as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM imports").fetchone() == (0,)
    monkeypatch.setattr(handler, "_import", real_import)
    assert len(notes("note_list")["data"]["rows"]) == 3  # the next open imports again


def test_a_crash_after_the_commit_only_renames_on_the_next_open(
    notes: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder: Path = notes.ctx.data_dir
    raw = write_v1(folder)
    handler = sys.modules[notes.index.__name__.rpartition(".")[0] + ".handler"]
    real_set_aside = handler._set_aside

    def crash(source: Path, name: str) -> Path:
        raise KeyboardInterrupt

    monkeypatch.setattr(handler, "_set_aside", crash)
    with pytest.raises(KeyboardInterrupt):
        notes("note_list")
    assert (folder / "notes.json").read_bytes() == raw
    monkeypatch.setattr(handler, "_set_aside", real_set_aside)
    assert [r[0] for r in notes("note_list")["data"]["rows"]] == [4, 2, 1]  # no duplicates
    assert (folder / "notes.json.migrated").read_bytes() == raw


def test_a_json_written_after_the_import_is_merged_without_loss(notes: Any) -> None:
    """The 1.0.0 worker finishing a call during a hot upgrade rewrites notes.json with its
    whole notebook plus one note whose id 1.1.0 may have given to another note meanwhile."""
    folder: Path = notes.ctx.data_dir
    write_v1(folder)
    assert notes("note_add", text="added by 1.1.0")["data"]["id"] == 7
    late = {"id": 7, "text": "added by 1.0.0", "created": "2026-11-27T10:00:00+01:00"}
    write_v1(folder, [*V1_NOTES, late], next_id=8)
    rows = notes("note_list")["data"]["rows"]
    assert [(r[0], r[2]) for r in rows] == [
        (8, "added by 1.0.0"),
        (7, "added by 1.1.0"),
        (4, "after a gap"),
        (2, "Café ☕"),
        (1, "buy oat milk"),
    ]
    assert rows[0][1] == late["created"]
    assert sorted(p.name for p in folder.glob("notes.json*")) == [
        "notes.json.migrated",
        "notes.json.migrated-2",
    ]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[1, 2]", b'{"notes": [{"id": "x"}]}', b"\xff\xfe", b"[" * 100_000],
    ids=["not-json", "wrong-shape", "bad-id", "not-utf8", "nested-too-deep"],
)
def test_an_unreadable_v1_file_is_kept_aside_once(notes: Any, content: bytes) -> None:
    folder: Path = notes.ctx.data_dir
    notes("note_add", text="already here")
    (folder / "notes.json").write_bytes(content)
    with pytest.raises(ValueError, match="could not be imported") as caught:
        notes("note_list")
    aside = list(folder.glob("notes.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == content
    assert str(aside[0]) in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1
    assert not (folder / "notes.json").exists()
    assert [r[2] for r in notes("note_list")["data"]["rows"]] == ["already here"]
    assert notes("note_add", text="fresh")["data"]["id"] == 2
    assert len(list(folder.glob("notes.json.corrupt-*"))) == 1


def test_a_huge_v1_file_is_kept_aside_unread(notes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    folder: Path = notes.ctx.data_dir
    raw = write_v1(folder)
    handler = sys.modules[notes.index.__name__.rpartition(".")[0] + ".handler"]
    monkeypatch.setattr(handler, "MAX_JSON_BYTES", len(raw) - 1)
    with pytest.raises(ValueError, match=f"{len(raw)} bytes, more than"):
        notes("note_list")
    assert [p.read_bytes() for p in folder.glob("notes.json.corrupt-*")] == [raw]
    assert notes("note_list")["text"] == "No notes yet."


def test_postupgrade_imports_and_never_fails(notes: Any, caplog: pytest.LogCaptureFixture) -> None:
    folder: Path = notes.ctx.data_dir
    write_v1(folder)
    notes.index.postupgrade(notes.ctx, {})
    assert (folder / "notes.json.migrated").exists()
    with closing(sqlite3.connect(folder / "notes.db")) as db:
        assert db.execute("SELECT count(*) FROM notes").fetchone() == (3,)
    (folder / "notes.json").write_bytes(b"\xff")
    notes.index.postupgrade(notes.ctx, {})  # logs, does not raise
    assert "could not be imported" in caplog.text


def test_validation_happens_before_touching_the_file(notes: Any) -> None:
    folder: Path = notes.ctx.data_dir
    folder.mkdir(parents=True)
    (folder / "notes.json").write_text("{not json")
    with pytest.raises(ValueError, match="text is empty"):
        notes("note_add", text="")
    assert sorted(p.name for p in folder.iterdir()) == ["notes.json"]


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("note_add", {}, "missing argument 'text'"),
        ("note_add", {"text": None}, "missing argument 'text'"),
        ("note_add", {"text": 5}, "text must be a string, not int"),
        ("note_add", {"text": "   "}, "text is empty"),
        ("note_add", {"text": "x" * 5001}, "too long (5001 characters, at most 5000)"),
        ("note_add", {"text": "a", "tags": []}, "unknown argument(s) tags"),
        ("note_add", {"text": "a\ud800b"}, "text is not valid text (a lone surrogate)"),
        ("note_search", {"query": "\udcff"}, "query is not valid text (a lone surrogate)"),
        ("note_list", {"limit": 0}, "between 1 and 500"),
        ("note_list", {"limit": 501}, "between 1 and 500"),
        ("note_list", {"limit": "10"}, "whole number"),
        ("note_list", {"limit": True}, "whole number"),
        ("note_list", {"limit": 2.5}, "whole number"),
        ("note_search", {}, "missing argument 'query'"),
        ("note_search", {"query": ""}, "query is empty"),
        ("note_search", {"query": "q" * 201}, "too long"),
        ("note_delete", {}, "no tool 'note_delete'"),
    ],
)
def test_validates_arguments(
    load_plugin: Any, make_ctx: Any, tool: str, args: dict[str, Any], message: str
) -> None:
    index = load_plugin("notes")
    with pytest.raises(ValueError, match=re.escape(message)):
        index.invoke(make_ctx("notes"), tool, args)


def test_limits_at_the_edges(notes: Any) -> None:
    assert notes("note_add", text="x" * 5000)["data"]["id"] == 1
    assert len(notes("note_list", limit=500)["data"]["rows"]) == 1
    assert len(notes("note_list", limit=1.0)["data"]["rows"]) == 1
    assert notes("note_list", limit=None)["data"]["rows"]


def test_long_notes_are_shortened_in_the_summary_only(notes: Any) -> None:
    text = "word " * 200
    out = notes("note_add", text=text)
    assert out["data"]["text"] == text.strip()
    assert len(out["text"]) < 200 and out["text"].endswith("…")


def test_trigger() -> None:
    spec = json.loads((PLUGINS / "notes" / "kimai.json").read_text())["trigger"]
    pattern = re.compile(spec["regex"])
    match = pattern.match("note: buy oat milk")
    assert match is not None and match.groupdict() == {"text": "buy oat milk"}
    assert spec["tool"] == "note_add"
    assert pattern.match("notes are nice") is None


def test_a_damaged_database_is_reported_and_left_as_it_is(notes: Any) -> None:
    folder: Path = notes.ctx.data_dir
    folder.mkdir(parents=True)
    (folder / "notes.db").write_bytes(b"this is not a database" * 100)
    for tool, args in (("note_add", {"text": "x"}), ("note_list", {})):
        with pytest.raises(ValueError, match=r"notes\.db: file is not a database") as caught:
            notes(tool, **args)
        assert len(str(caught.value).splitlines()) == 1
    assert (folder / "notes.db").read_bytes() == b"this is not a database" * 100
