"""The files a plugin's processes hold open for writing in its folders, read from /proc.

inotify tells of a write once it has returned, and of a file only while it has a name. What
a plugin writes meanwhile — many large write() calls in flight in many threads, or a file
unlinked while open, or made nameless from the start (O_TMPFILE) — is on disk all the same.
Its open files show it: ``/proc/PID/fd/N`` names each one (even without a name: "(deleted)",
"#INODE"), its link's permission bits say whether it is open for writing, and a stat()
through it gives the blocks it holds now, in the middle of a write.

``/proc/PID/io``'s ``write_bytes`` grows as pages are dirtied, during a write too: one read
per process tells cheaply whether a plugin holding files open is writing at all.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence

Key = tuple[int, int]  # (st_dev, st_ino)

_DELETED = " (deleted)"


def inside(path: str, roots: Sequence[str]) -> bool:
    if path.endswith(_DELETED):
        path = path[: -len(_DELETED)]
    return any(path.startswith(root + "/") for root in roots)


def writable_files(pids: Iterable[int], roots: Sequence[str]) -> dict[Key, os.stat_result]:
    """Regular files under ``roots`` that ``pids`` hold open for writing, named or not.
    Processes that are gone or that we may not look at are skipped."""
    found: dict[Key, os.stat_result] = {}
    for pid in pids:
        folder = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(folder)
        except OSError:
            continue
        for fd in fds:
            link = f"{folder}/{fd}"
            try:
                target = os.readlink(link)
                if not target.startswith("/") or not inside(target, roots):
                    continue  # pipes, sockets, the log, files elsewhere
                if not os.lstat(link).st_mode & stat.S_IWUSR:
                    continue  # open for reading only
                info = os.stat(link)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found[(info.st_dev, info.st_ino)] = info
    return found


def write_bytes(pids: Iterable[int]) -> int | None:
    """Bytes ``pids`` have dirtied in the page cache so far (their ``write_bytes``), or None
    where /proc cannot say (no task I/O accounting, or not ours to read)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/io", "rb") as f:
                text = f.read()
        except FileNotFoundError:
            continue  # gone
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(b"write_bytes:"):
                total += int(line.split()[1])
                break
        else:
            return None
    return total
