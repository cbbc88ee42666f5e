"""Atomic file writes: a crash mid-write leaves the old file, never half a new one.

Stdlib only and below every layer, so the kernel, the SDK that plugins import and the
publisher's ``registry_tools`` share one implementation instead of keeping copies.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["fsync_dir", "fsync_tree", "write_bytes_atomic", "write_json_atomic"]


def write_bytes_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Temp file beside ``path``, fsync, rename, fsync the folder: readers see the old file or
    the new one. ``mode`` sets the permissions (the temp file starts private, 0o600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if mode is not None:
                os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable: without it a power cut can undo the rename."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # a platform without directory fds (Windows): nothing more can be done
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename itself stands
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Make every file and folder under ``root`` durable before it is renamed into place:
    a power cut after the rename then finds whole files, never empty ones."""
    for folder, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(folder))


def write_json_atomic(path: Path, value: object) -> None:
    """The state files' form: indented JSON with a final newline, written atomically."""
    import orjson  # here, not at the top: the SDK imports this module and needs only bytes

    write_bytes_atomic(path, orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n")
