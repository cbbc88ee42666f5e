"""One updater at a time: a sync, install, upgrade or rollback holds an exclusive lock.

Two updaters writing the same registry state or swapping the same pointer could each leave
the other's half-done work behind. The lock is ``flock`` on a file beside the plugins, held
for the whole operation; the kernel drops it with the process, so a killed updater never
leaves a stale lock. A second updater does not wait silently: it fails at once, naming the
process that holds the lock, and changes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import UpdaterBusy

__all__ = ["updater_lock"]


#: How often a waiting updater (a first run) tries the lock again.
WAIT_STEP_S = 0.02


@contextlib.contextmanager
def updater_lock(path: Path, *, wait_s: float = 0.0) -> Iterator[None]:
    """Hold the lock; with ``wait_s``, wait that long for another updater first (a first
    run waits for another process's first run rather than failing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            _lock(fd, wait_s)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise UpdaterBusy(
                f"another deeting update is running (pid {holder}); nothing was changed — "
                "try again when it has finished"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


def _lock(fd: int, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
        time.sleep(WAIT_STEP_S)
