"""Atomic file writes for the kernel's state: the shared writer plus a JSON form of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from deeting_tui.atomic import fsync_dir, write_bytes_atomic

__all__ = ["fsync_dir", "write_bytes_atomic", "write_json_atomic"]


def write_json_atomic(path: Path, value: Any) -> None:
    write_bytes_atomic(path, orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
