"""Process groups: list a group's live members, SIGKILL the group and see it empty.

Every process a plugin starts stays in its worker's process group for life (seccomp denies
``setsid``, ``setpgid`` and ``clone(CLONE_PARENT)`` to workers), so the group is what a
worker's end must take down: the leader alone would leave a daemon running. Whoever reaps a
worker (the forkserver, the kernel for exec'd workers) calls :func:`kill_group` *before*
reaping the leader: an unreaped leader keeps the group's id from being reused, so the
signal cannot reach a stranger's group.

Standard library only, and no Deeting imports: the forkserver (sandbox side) and the kernel
both use it, and neither may import the other.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Iterable

#: How long a SIGKILLed group may take to die before we stop waiting and report survivors.
KILL_TIMEOUT = 2.0


def stat_fields(pid: int | str) -> list[str] | None:
    """``/proc/PID/stat`` split after the command name: [state, ppid, pgrp, ...], or None
    when the process is gone. The name may hold spaces and parentheses, hence rpartition."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    _, _, rest = raw.rpartition(b")")
    return rest.decode("ascii", "replace").split()


def members(pgid: int, pids: Iterable[int | str] | None = None) -> list[int]:
    """Live (not zombie) processes whose process group is ``pgid``; ``pids`` narrows the scan
    (e.g. a cgroup's members), otherwise every process in /proc is looked at."""
    candidates = pids if pids is not None else _all_pids()
    found = []
    for pid in candidates:
        fields = stat_fields(pid)
        alive = fields is not None and len(fields) > 2 and fields[0] not in ("Z", "X")
        if alive and fields is not None and fields[2] == str(pgid):
            found.append(int(pid))
    return found


def _all_pids() -> list[str]:
    try:
        return [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def wait_exited(pids: Iterable[int], deadline: float) -> list[int]:
    """Wait (pidfds, no polling) until each pid has exited or ``deadline`` (monotonic) has
    passed; returns the pids still running. Works for processes that are not our children.
    Without pidfds (Linux before 5.3) it looks every few milliseconds instead."""
    fds: dict[int, int] = {}
    unwatched: list[int] = []
    for pid in pids:
        try:
            fds[os.pidfd_open(pid)] = pid
        except ProcessLookupError:
            pass
        except (OSError, AttributeError):
            unwatched.append(pid)
    if unwatched:
        for fd in fds:
            os.close(fd)
        return _poll_exited([*unwatched, *fds.values()], deadline)
    try:
        while fds:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(fds), [], [], left)
            for fd in ready:
                os.close(fd)
                del fds[fd]
        return sorted(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


def _poll_exited(pids: list[int], deadline: float) -> list[int]:
    while True:
        alive = [pid for pid in pids if (f := stat_fields(pid)) is not None and f[0] not in "ZX"]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.005)


def kill_group(pgid: int, timeout: float = KILL_TIMEOUT) -> list[int]:
    """SIGKILL every process in group ``pgid`` and wait until none is left alive.

    Returns the members still alive at the deadline (empty on success). A group the caller
    may not signal (another user's) is not ours: it is left alone and reported empty.
    """
    if pgid <= 1:
        raise ValueError(f"refusing to kill process group {pgid}")
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return []
        except PermissionError:
            return []
        alive = members(pgid)
        if not alive:
            return []
        survivors = wait_exited(alive, deadline)
        if survivors and time.monotonic() >= deadline:
            return survivors


def kill_cgroup(folder: str) -> None:
    """``cgroup.kill`` a cgroup v2 folder (everything in it, at once); a reaper's last act
    for a worker whose kernel died. Errors are ignored: the folder may be gone already."""
    with contextlib.suppress(OSError), open(os.path.join(folder, "cgroup.kill"), "w") as f:
        f.write("1")
