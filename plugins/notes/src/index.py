"""notes: save, list and search short notes (storage in handler.py: SQLite, with 1.0.0's JSON
notebook imported on the first open after the upgrade, or by ``postupgrade`` when hot)."""

from __future__ import annotations

import time
from typing import Any

from deeting_tui.sdk import Context, Result

try:
    from .handler import (
        DEFAULT_LIMIT,
        MAX_LIMIT,
        MAX_QUERY,
        MAX_TEXT,
        NoteBook,
        NotesError,
        close_all,
        preview,
        summary,
        table,
    )
except ImportError:  # imported as a plain module, with src/ on sys.path
    from handler import (  # type: ignore[no-redef,import-not-found]
        DEFAULT_LIMIT,
        MAX_LIMIT,
        MAX_QUERY,
        MAX_TEXT,
        NoteBook,
        NotesError,
        close_all,
        preview,
        summary,
        table,
    )

#: tool -> the arguments it accepts
TOOLS: dict[str, tuple[str, ...]] = {
    "note_add": ("text",),
    "note_list": ("limit",),
    "note_search": ("query",),
}


def deactivate(ctx: Context) -> None:
    """Close the notebook: the last connection checkpoints the WAL into notes.db."""
    close_all()


def postupgrade(ctx: Context, state: dict[str, Any]) -> None:
    """Import 1.0.0's notes now, in the new worker, before it takes over: the first call
    after a hot upgrade then pays nothing, and a file that cannot be imported is reported in
    the log at upgrade time. Never fails the upgrade: the next call imports (or reports)
    again."""
    try:
        NoteBook(ctx.data_dir).migrate()
    except NotesError as error:
        ctx.log.warning("%s", error)


def invoke(ctx: Context, tool: str, args: dict[str, Any]) -> Result:
    _check_args(tool, args)
    if tool == "note_add":
        return _add(NoteBook(ctx.data_dir), _text(tool, args, "text", MAX_TEXT))
    if tool == "note_list":
        return _list(NoteBook(ctx.data_dir), _limit(args.get("limit")))
    return _search(NoteBook(ctx.data_dir), _text(tool, args, "query", MAX_QUERY))


def _add(book: NoteBook, text: str) -> Result:
    note = book.add(text, time.time())
    return Result(
        data=note.as_dict(),
        text=f"Saved note #{note.id}: {preview(note.text)}",
        renderer="key-value",
    )


def _list(book: NoteBook, limit: int) -> Result:
    notes, total = book.recent(limit)
    if not notes:
        return Result(data=table([]), text="No notes yet.", renderer="table")
    shown = f", newest {len(notes)} shown" if len(notes) < total else ""
    heading = f"{total} note{'s' * (total != 1)}{shown}:"
    return Result(data=table(notes), text=f"{heading}\n{summary(notes)}", renderer="table")


def _search(book: NoteBook, query: str) -> Result:
    matches, total = book.search(query, MAX_LIMIT)
    if not matches:
        return Result(data=table([]), text=f"No notes match {query!r}.", renderer="table")
    shown = f", newest {len(matches)} shown" if len(matches) < total else ""
    heading = f"{total} note{'s' * (total != 1)} match {query!r}{shown}:"
    return Result(data=table(matches), text=f"{heading}\n{summary(matches)}", renderer="table")


def _check_args(tool: str, args: Any) -> None:
    if tool not in TOOLS:
        raise ValueError(f"notes has no tool {tool!r} (tools: {', '.join(TOOLS)})")
    if not isinstance(args, dict):
        raise ValueError(f"{tool}: arguments must be an object")
    unknown = sorted(set(args) - set(TOOLS[tool]))
    if unknown:
        expected = ", ".join(TOOLS[tool])
        raise ValueError(f"{tool}: unknown argument(s) {', '.join(unknown)} (expected: {expected})")


def _text(tool: str, args: dict[str, Any], name: str, longest: int) -> str:
    value = args.get(name)
    if value is None:
        raise ValueError(f"{tool}: missing argument {name!r}")
    if not isinstance(value, str):
        raise ValueError(f"{tool}: {name} must be a string, not {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{tool}: {name} is not valid text (a lone surrogate)") from None
    value = value.strip()
    if not value:
        raise ValueError(f"{tool}: {name} is empty")
    if len(value) > longest:
        raise ValueError(f"{tool}: {name} is too long ({len(value)} characters, at most {longest})")
    return value


def _limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"note_list: limit must be a whole number, not {value!r}")
    if not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"note_list: limit must be between 1 and {MAX_LIMIT}, not {value}")
    return value
