"""clock: the current time, and timers that ring through ``system.tick`` (logic in handler.py)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from deeting_tui.sdk import Context, Result

try:
    from .handler import (
        LATE_AFTER,
        MAX_LABEL,
        TimerBook,
        clock_time,
        format_duration,
        now_info,
        parse_duration,
        split_label,
    )
except ImportError:  # imported as a plain module, with src/ on sys.path
    from handler import (  # type: ignore[no-redef,import-not-found]
        LATE_AFTER,
        MAX_LABEL,
        TimerBook,
        clock_time,
        format_duration,
        now_info,
        parse_duration,
        split_label,
    )

#: tool -> the arguments it accepts
TOOLS: dict[str, tuple[str, ...]] = {"now": (), "timer": ("duration", "label"), "timers": ()}
STREAM_TOPIC = "clock.timer"

# One worker serves one plugin, so this holds one book; keyed by folder for tests.
_books: dict[Path, TimerBook] = {}


def activate(ctx: Context) -> None:
    _book(ctx)


def deactivate(ctx: Context) -> None:
    _books.pop(Path(ctx.data_dir), None)


def invoke(ctx: Context, tool: str, args: dict[str, Any]) -> Result:
    _check_args(tool, args)
    now = time.time()
    if tool == "now":
        data, text = now_info(now)
        return Result(data=data, text=text, renderer="key-value")
    if tool == "timer":
        duration, label = _timer_args(args)
        seconds = parse_duration(duration)
        timer = _book(ctx, strict=True).add(seconds, label, now)
        due = clock_time(timer.due_epoch, now)
        return Result(
            data={
                "id": timer.id,
                "label": timer.label,
                "due_epoch": timer.due_epoch,
                "seconds": timer.seconds,
            },
            text=f"{timer.name()} set for {format_duration(seconds)} (due {due})",
            renderer="key-value",
        )
    pending = _book(ctx, strict=True).pending()
    rows = [
        [t.id, t.label or "", clock_time(t.due_epoch, now), format_duration(t.due_epoch - now)]
        for t in pending
    ]
    lines = [
        f"{t.name()}: due {clock_time(t.due_epoch, now)}, in {format_duration(t.due_epoch - now)}"
        for t in pending
    ]
    return Result(
        data={"columns": ["id", "label", "due", "remaining"], "rows": rows},
        text="\n".join(lines) if lines else "No timers pending.",
        renderer="table",
    )


def on_event(ctx: Context, topic: str, payload: dict[str, Any]) -> bool:
    """Ring every timer that is due at the tick's time. Ticks are broadcast: never handled."""
    if topic != "system.tick":
        return False
    now = _tick_time(payload)
    book = _book(ctx)
    due = book.take_due(now)
    if not due:
        return False
    try:
        book.save()
    except OSError as error:
        ctx.log.warning("could not save %s: %s", book.path, error)
    for timer in due:
        text = f"\N{ALARM CLOCK} {timer.name()} is done"
        if now - timer.due_epoch > LATE_AFTER:
            text += f" (it was due {clock_time(timer.due_epoch, now)})"
        ctx.push_stream(
            STREAM_TOPIC,
            {
                "id": timer.id,
                "label": timer.label,
                "due_epoch": timer.due_epoch,
                "fired_epoch": now,
                "text": text,
            },
            renderer="notice",
        )
    return False


def _book(ctx: Context, strict: bool = False) -> TimerBook:
    """The folder's timer book, loaded on first use (activate, a call or a tick)."""
    folder = Path(ctx.data_dir)
    book = _books.get(folder)
    if book is None:
        book = TimerBook(folder)
        warning = book.load()
        _books[folder] = book
        if warning is not None:
            ctx.log.warning("%s", warning)
            if strict:
                raise ValueError(f"{warning}. Please try again.")
            ctx.push_stream("clock.warning", {"text": warning}, renderer="notice")
    return book


def _check_args(tool: str, args: Any) -> None:
    if tool not in TOOLS:
        raise ValueError(f"clock has no tool {tool!r} (tools: {', '.join(TOOLS)})")
    if not isinstance(args, dict):
        raise ValueError(f"{tool}: arguments must be an object")
    unknown = sorted(set(args) - set(TOOLS[tool]))
    if unknown:
        expected = ", ".join(TOOLS[tool]) or "none"
        raise ValueError(f"{tool}: unknown argument(s) {', '.join(unknown)} (expected: {expected})")


def _timer_args(args: dict[str, Any]) -> tuple[str, str | None]:
    duration, label = args.get("duration"), args.get("label")
    if duration is None:
        raise ValueError('timer: missing argument "duration" (like "5m" or "1h30m")')
    if not isinstance(duration, str):
        raise ValueError(f"timer: duration must be a string, not {type(duration).__name__}")
    if label is not None:
        if not isinstance(label, str):
            raise ValueError(f"timer: label must be a string, not {type(label).__name__}")
        if len(label.strip()) > MAX_LABEL:
            raise ValueError(f"timer: label is too long (at most {MAX_LABEL} characters)")
    duration, label = split_label(duration.strip(), label.strip() if label else None)
    return duration, label


def _tick_time(payload: Any) -> float:
    ts = payload.get("ts") if isinstance(payload, dict) else None
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        return time.time()
    return float(ts)
