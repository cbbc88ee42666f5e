"""Reproducible plugin zips: the same files give the same bytes, on any machine, any day.

A published version never changes, so ``gen_registry`` must be able to rebuild a zip and
compare it byte for byte with the one already published; that needs sorted entries, one top
folder, fixed timestamps, normalised modes and a fixed deflate level. Links and devices are
refused here because the client's extractor refuses them: an install must not fail late.
"""

from __future__ import annotations

import fnmatch
import io
import os
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path

from registry_tools import ToolError

__all__ = ["IGNORED", "build_zip", "is_ignored"]

# What the kernel's folder install skips (loader.COPY_IGNORE), plus other tools' debris.
IGNORED = (
    *("__pycache__", "*.pyc", ".git", ".DS_Store"),
    *("*.pyo", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache", "Thumbs.db"),
)
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
DEFLATE_LEVEL = 9
UNIX = 3  # ZipInfo.create_system: the high 16 bits of external_attr are a Unix st_mode


# -- reproducible zips --------------------------------------------------------------------


def is_ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED)


def build_zip(folder: Path, top: str, extra: Sequence[tuple[str, Path]] = ()) -> bytes:
    """Same files and contents → same bytes, whatever the clock, umask, mtimes or walk order
    (a given zlib's deflate at a fixed level is deterministic).

    ``extra`` adds files that are not in ``folder`` (relative name, file): the vendored wheels,
    ``wheels/NAME.whl``. A wheel is stored, not deflated: it is a zip already, so its bytes
    in the archive are the downloaded ones, and no zlib version can change them."""
    entries = [(f"{top}/", None, 0o755)] + [
        (f"{top}/{rel}", path, mode) for rel, path, mode in _source_entries(folder)
    ]
    folders = {f"{top}/{rel.rsplit('/', 1)[0]}/" for rel, _path in extra if "/" in rel}
    entries += [(name, None, 0o755) for name in sorted(folders)]
    entries += [(f"{top}/{rel}", path, 0o644) for rel, path in extra]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for arcname, path, mode in sorted(entries, key=lambda entry: entry[0]):
            info = zipfile.ZipInfo(arcname, ZIP_EPOCH)
            info.create_system = UNIX
            if path is None:
                info.external_attr = ((stat.S_IFDIR | mode) << 16) | 0x10  # + MS-DOS dir flag
                archive.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
            else:
                info.external_attr = (stat.S_IFREG | mode) << 16
                stored = arcname.endswith(".whl")
                archive.writestr(
                    info,
                    path.read_bytes(),
                    compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED,
                    compresslevel=None if stored else DEFLATE_LEVEL,
                )
    return buffer.getvalue()


def _source_entries(folder: Path) -> list[tuple[str, Path | None, int]]:
    """(relative path with '/' for folders, file or None, mode); links and devices refused,
    because the client's extractor refuses them and an install must not fail late."""
    out: list[tuple[str, Path | None, int]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        dirnames[:] = [name for name in dirnames if not is_ignored(name)]
        for name in [*dirnames, *filenames]:
            if is_ignored(name):
                continue
            path = here / name
            rel = path.relative_to(folder).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                raise ToolError(
                    f"{rel}: a symlink cannot go into a plugin archive (clients refuse "
                    "links) — replace it with the file itself"
                )
            if stat.S_ISDIR(mode):
                out.append((f"{rel}/", None, 0o755))
            elif stat.S_ISREG(mode):
                out.append((rel, path, 0o755 if mode & 0o111 else 0o644))
            else:
                raise ToolError(f"{rel}: not a regular file or folder")
    return out
