"""The notes plugin: add, list, search, persistence, a corrupt file, argument checks."""

from __future__ import annotations

import json
import re
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
    stored = json.loads((make_ctx("notes").data_dir / "notes.json").read_text())
    assert stored["notes"][0]["text"] == "remember me"
    assert stored["next_id"] == 2


def test_file_is_written_atomically(notes: Any) -> None:
    notes("note_add", text="hello")
    folder = notes.ctx.data_dir
    assert sorted(p.name for p in folder.iterdir()) == ["notes.json"]  # no temp file left


def test_unicode_survives(notes: Any) -> None:
    notes("note_add", text="café ☕ 日本")
    assert notes("note_search", query="CAFÉ")["data"]["rows"][0][2] == "café ☕ 日本"


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b'{"notes": [{"id": "x"}]}', b"\xff\xfe"]
)
def test_corrupt_file_is_moved_aside_once(notes: Any, content: bytes) -> None:
    folder: Path = notes.ctx.data_dir
    folder.mkdir(parents=True)
    (folder / "notes.json").write_bytes(content)
    with pytest.raises(ValueError, match="unreadable") as caught:
        notes("note_list")
    aside = list(folder.glob("notes.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == content
    assert str(aside[0]) in str(caught.value)
    assert not (folder / "notes.json").exists()
    assert notes("note_add", text="fresh start")["data"]["id"] == 1
    assert notes("note_list")["data"]["rows"][0][2] == "fresh start"
    assert len(list(folder.glob("notes.json.corrupt-*"))) == 1


def test_validation_happens_before_touching_the_file(notes: Any) -> None:
    folder: Path = notes.ctx.data_dir
    folder.mkdir(parents=True)
    (folder / "notes.json").write_text("{not json")
    with pytest.raises(ValueError, match="text is empty"):
        notes("note_add", text="")
    assert (folder / "notes.json").exists()


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("note_add", {}, "missing argument 'text'"),
        ("note_add", {"text": None}, "missing argument 'text'"),
        ("note_add", {"text": 5}, "text must be a string, not int"),
        ("note_add", {"text": "   "}, "text is empty"),
        ("note_add", {"text": "x" * 5001}, "too long (5001 characters, at most 5000)"),
        ("note_add", {"text": "a", "tags": []}, "unknown argument(s) tags"),
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
