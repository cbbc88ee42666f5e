"""Publisher-side tools for a Deeting plugin registry: keys, a signed index, a test server.

``keys`` makes Ed25519 keys and the ``root.json`` that names them, ``gen_registry`` turns a
folder of plugin sources into reproducible zips and a signed ``registry.json``, and ``serve``
hands such a folder to clients over loopback HTTP. The formats and every check are
``deeting_tui.store.trust``'s, so what these tools write is exactly what the client verifies.

Only the two things every tool needs live here: the error type the CLIs turn into one line on
stderr, and the atomic write that keeps a half-written file from ever being published.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["ToolError", "write_atomic"]


class ToolError(Exception):
    """A refusal with one line saying what is wrong and what to do; nothing was written."""


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Temp file beside ``path``, fsync, rename, fsync the folder: readers (a web server, a
    client syncing mid-publish) see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """The rename is only durable once the folder's entry is on disk too."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
