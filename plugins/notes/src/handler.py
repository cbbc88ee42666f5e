"""The notebook: a JSON file in the plugin's data folder, rewritten atomically on every change.

File shape: ``{"version": 1, "next_id": 4, "notes": [{"id": 1, "text": "…", "created": "…"}]}``.
A file that cannot be read as that shape is never overwritten: it is moved aside to
``notes.json.corrupt-<timestamp>`` and the call fails once with a message saying where it went;
the next call starts a fresh notebook.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deeting_tui.sdk import write_text_atomic

__all__ = [
    "DEFAULT_LIMIT",
    "FILE_NAME",
    "MAX_LIMIT",
    "MAX_QUERY",
    "MAX_TEXT",
    "Note",
    "NoteBook",
    "NotesError",
    "preview",
    "summary",
    "table",
]

FILE_NAME = "notes.json"
FORMAT_VERSION = 1
MAX_TEXT = 5000
MAX_QUERY = 200
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
COLUMNS = ["id", "created", "text"]
PREVIEW = 120


class NotesError(ValueError):
    """A call cannot be served; the message says why and what to do."""


@dataclass(frozen=True)
class Note:
    id: int
    text: str
    created: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "created": self.created}


class NoteBook:
    """All notes of one data folder. Loaded per call: the file is small and calls are rare."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.notes: list[Note] = []
        self.next_id = 1

    def load(self) -> NoteBook:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return self
        except OSError as error:
            raise NotesError(f"cannot read {self.path}: {error.strerror or error}") from None
        try:
            self.notes, self.next_id = _parse(json.loads(raw.decode("utf-8")))
        except (ValueError, TypeError, KeyError) as error:
            moved = self._move_aside()
            raise NotesError(
                f"{self.path} was unreadable ({_reason(error)}); it was moved to {moved} "
                "and a new, empty notebook starts with the next call. Please try again."
            ) from None
        return self

    def add(self, text: str, now: float) -> Note:
        created = datetime.fromtimestamp(now).astimezone().isoformat(timespec="seconds")
        note = Note(id=self.next_id, text=text, created=created)
        self.notes.append(note)
        self.next_id += 1
        self.save()
        return note

    def recent(self, limit: int) -> list[Note]:
        """The ``limit`` newest notes, newest first."""
        return list(reversed(self.notes))[:limit]

    def search(self, query: str) -> list[Note]:
        """Notes containing ``query`` regardless of case, newest first."""
        needle = query.casefold()
        return [note for note in reversed(self.notes) if needle in note.text.casefold()]

    def save(self) -> None:
        document = {
            "version": FORMAT_VERSION,
            "next_id": self.next_id,
            "notes": [note.as_dict() for note in self.notes],
        }
        write_text_atomic(self.path, json.dumps(document, ensure_ascii=False, indent=1) + "\n")

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        count = 1
        while target.exists():
            count += 1
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{count}")
        try:
            os.replace(self.path, target)
        except OSError as error:
            raise NotesError(
                f"{self.path} is unreadable and could not be moved aside "
                f"({error.strerror or error}); move or delete it by hand"
            ) from None
        return target


def _parse(document: Any) -> tuple[list[Note], int]:
    if not isinstance(document, dict) or not isinstance(document.get("notes"), list):
        raise ValueError('expected an object with a "notes" list')
    notes: list[Note] = []
    for index, entry in enumerate(document["notes"]):
        if not isinstance(entry, dict):
            raise ValueError(f"note {index} is not an object")
        note_id, text, created = entry.get("id"), entry.get("text"), entry.get("created")
        if isinstance(note_id, bool) or not isinstance(note_id, int) or note_id < 1:
            raise ValueError(f"note {index} has no valid id")
        if not isinstance(text, str) or not isinstance(created, str):
            raise ValueError(f"note {index} needs text and created strings")
        notes.append(Note(id=note_id, text=text, created=created))
    highest = max((note.id for note in notes), default=0)
    next_id = document.get("next_id", highest + 1)
    if isinstance(next_id, bool) or not isinstance(next_id, int):
        raise ValueError("next_id is not an integer")
    return notes, max(next_id, highest + 1)


def _reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON: {error.msg} at line {error.lineno}"
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    return str(error)


def preview(text: str, width: int = PREVIEW) -> str:
    """One line of at most ``width`` characters, for summaries the model reads."""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1].rstrip() + "…"


def table(notes: list[Note]) -> dict[str, Any]:
    """The ``table`` renderer's payload."""
    return {"columns": list(COLUMNS), "rows": [[n.id, n.created, n.text] for n in notes]}


def summary(notes: list[Note]) -> str:
    """One note per line: ``#3 2026-11-25 14:03  text``."""
    return "\n".join(
        f"#{n.id} {n.created[:16].replace('T', ' ')}  {preview(n.text)}" for n in notes
    )
