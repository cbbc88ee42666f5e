"""Durations, time formatting and the timer book (``timers.json`` in the data folder).

Every function that needs "now" takes it as an argument, so tests can be exact. The timer book
is the worker's in-memory truth; each change is written through atomically so timers survive a
worker restart. A file that cannot be read is moved aside (``timers.json.corrupt-<stamp>``)
instead of being overwritten.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from deeting_tui.sdk import write_text_atomic

__all__ = [
    "FILE_NAME",
    "LATE_AFTER",
    "MAX_LABEL",
    "MAX_SECONDS",
    "MAX_TIMERS",
    "ClockError",
    "Timer",
    "TimerBook",
    "clock_time",
    "format_duration",
    "now_info",
    "parse_duration",
    "split_label",
]

FILE_NAME = "timers.json"
FORMAT_VERSION = 1
MAX_SECONDS = 7 * 24 * 3600
MAX_LABEL = 200
MAX_TIMERS = 100
#: A timer that rings later than this (the worker was down) says when it was due.
LATE_AFTER = 60.0

_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(
    r"""
    (?:(?P<d>\d{1,9})\s*(?:days?|d)\s*)?
    (?:(?P<h>\d{1,9})\s*(?:hours?|hrs?|h)\s*)?
    (?:(?P<m>\d{1,9})\s*(?:minutes?|mins?|m)\s*)?
    (?:(?P<s>\d{1,9})\s*(?:seconds?|secs?|s))?
    """,
    re.VERBOSE | re.ASCII,
)
_LABEL_PREFIX = re.compile(r"^(?:to|for)\s+", re.IGNORECASE)
_DURATION_HELP = 'use whole numbers with d, h, m, s, like "90s", "5m", "1h30m", or "2" (seconds)'


class ClockError(ValueError):
    """A call cannot be served; the message says why and what to write instead."""


def parse_duration(text: str) -> int:
    """``"1h30m"`` → 5400. Strict: whole numbers, units in order d h m s, 1 s to 7 days."""
    if not isinstance(text, str):
        raise ClockError(f"duration must be a string, not {type(text).__name__}")
    spec = text.strip().lower()
    if not spec:
        raise ClockError(f"duration is empty: {_DURATION_HELP}")
    if spec.isdigit() and spec.isascii():
        if len(spec) > 9:
            raise ClockError(f"duration {text.strip()!r} is longer than 7 days")
        seconds = int(spec)
    else:
        match = _DURATION.fullmatch(spec)
        if match is None or not any(match.groupdict().values()):
            raise ClockError(f"cannot read duration {text.strip()!r}: {_DURATION_HELP}")
        seconds = sum(
            int(value) * _UNITS[unit] for unit, value in match.groupdict().items() if value
        )
    if seconds < 1:
        raise ClockError(f"duration {text.strip()!r} is too short (at least 1 second)")
    if seconds > MAX_SECONDS:
        raise ClockError(f"duration {text.strip()!r} is longer than 7 days")
    return seconds


def split_label(duration: str, label: str | None) -> tuple[str, str | None]:
    """Move words that continue the duration out of the label.

    The trigger takes one word as the duration, so "remind me in 5 minutes to stretch" arrives
    as duration "5", label "minutes to stretch"; this gives ("5 minutes", "stretch").
    """
    if not label:
        return duration, label
    words = label.split()
    while words:
        candidate = f"{duration} {words[0]}"
        try:
            parse_duration(candidate)
        except ClockError:
            break
        duration = candidate
        words.pop(0)
    rest = " ".join(words)
    return duration, _LABEL_PREFIX.sub("", rest).strip() or None


def format_duration(seconds: float) -> str:
    """5400 → ``1h30m``; 90 → ``1m30s``; 0 → ``0s``."""
    left = max(0, math.ceil(seconds))
    parts = []
    for unit, size in _UNITS.items():
        amount, left = divmod(left, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"


def _local(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch).astimezone()


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset()
    minutes = round(offset.total_seconds() / 60) if offset is not None else 0
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{mins:02d}"


def _date(moment: datetime) -> str:
    return f"{moment:%a} {moment.day} {moment:%b %Y}"


def clock_time(epoch: float, now: float) -> str:
    """``14:08:12`` when ``epoch`` is today, else ``Thu 26 Nov 2026 14:08:12``."""
    moment = _local(epoch)
    if moment.date() == _local(now).date():
        return f"{moment:%H:%M:%S}"
    return f"{_date(moment)} {moment:%H:%M:%S}"


def now_info(now: float) -> tuple[dict[str, Any], str]:
    """The ``now`` tool's data and its one-line summary."""
    moment = _local(now)
    data = {
        "iso": moment.isoformat(timespec="seconds"),
        "epoch": round(now, 3),
        "timezone": moment.tzname() or _offset(moment),
    }
    return data, f"It is {moment:%H:%M:%S} ({_date(moment)}, {_offset(moment)})"


@dataclass(frozen=True)
class Timer:
    id: int
    label: str | None
    due_epoch: float
    seconds: int

    def name(self) -> str:
        return f"Timer #{self.id}" + (f" ({self.label})" if self.label else "")


class TimerBook:
    """The pending timers of one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.timers: list[Timer] = []
        self.next_id = 1

    def load(self) -> str | None:
        """Read the file; return a warning if it was unreadable and has been moved aside."""
        self.timers, self.next_id = [], 1
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ClockError(f"cannot read {self.path}: {error.strerror or error}") from None
        try:
            self.timers, self.next_id = _parse(json.loads(raw.decode("utf-8")))
        except (ValueError, TypeError) as error:
            moved = _move_aside(self.path)
            return (
                f"{self.path} was unreadable ({error}); it was moved to {moved} "
                "and the clock starts with no timers"
            )
        return None

    def add(self, seconds: int, label: str | None, now: float) -> Timer:
        if len(self.timers) >= MAX_TIMERS:
            raise ClockError(f"too many pending timers (at most {MAX_TIMERS})")
        timer = Timer(id=self.next_id, label=label, due_epoch=now + seconds, seconds=seconds)
        self.timers.append(timer)
        self.next_id += 1
        self.save()
        return timer

    def pending(self) -> list[Timer]:
        return sorted(self.timers, key=lambda t: (t.due_epoch, t.id))

    def take_due(self, now: float) -> list[Timer]:
        """Remove and return the timers due at ``now``, soonest first; the caller saves."""
        due = [t for t in self.pending() if t.due_epoch <= now]
        if due:
            self.timers = [t for t in self.timers if t.due_epoch > now]
        return due

    def save(self) -> None:
        document = {
            "version": FORMAT_VERSION,
            "next_id": self.next_id,
            "timers": [asdict(t) for t in self.timers],
        }
        write_text_atomic(self.path, json.dumps(document, ensure_ascii=False, indent=1) + "\n")


def _parse(document: Any) -> tuple[list[Timer], int]:
    if not isinstance(document, dict) or not isinstance(document.get("timers"), list):
        raise ValueError('expected an object with a "timers" list')
    timers = []
    for index, entry in enumerate(document["timers"]):
        if not isinstance(entry, dict):
            raise ValueError(f"timer {index} is not an object")
        timer_id, label = entry.get("id"), entry.get("label")
        due, seconds = entry.get("due_epoch"), entry.get("seconds")
        if isinstance(timer_id, bool) or not isinstance(timer_id, int) or timer_id < 1:
            raise ValueError(f"timer {index} has no valid id")
        if label is not None and not isinstance(label, str):
            raise ValueError(f"timer {index} has a label that is not a string")
        if isinstance(due, bool) or not isinstance(due, int | float) or not math.isfinite(due):
            raise ValueError(f"timer {index} has no valid due_epoch")
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise ValueError(f"timer {index} has no valid seconds")
        timers.append(Timer(id=timer_id, label=label, due_epoch=float(due), seconds=seconds))
    highest = max((t.id for t in timers), default=0)
    next_id = document.get("next_id", highest + 1)
    if isinstance(next_id, bool) or not isinstance(next_id, int):
        raise ValueError("next_id is not an integer")
    return timers, max(next_id, highest + 1)


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    count = 1
    while target.exists():
        count += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{count}")
    try:
        os.replace(path, target)
    except OSError as error:
        raise ClockError(
            f"{path} is unreadable and could not be moved aside ({error.strerror or error}); "
            "move or delete it by hand"
        ) from None
    return target
