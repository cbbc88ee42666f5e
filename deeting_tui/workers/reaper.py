"""The exec launcher's reaper: one tiny process per kernel that outlives a SIGKILLed kernel.

Workers started with exec are the kernel's own children and die with it (PR_SET_PDEATHSIG),
but anything they started in their process group would not. The kernel tells this process
each worker's process group as it starts (``+PGID``), the worker's cgroup v2 folder where it
has one (``=PGID DIR``), and forgets the group once it is empty and the leader about to be
reaped (``-PGID``). When the kernel is gone — EOF on the pipe, or SIGTERM/SIGHUP (its
parent-death signal is SIGTERM) — it kills every cgroup and process group it still holds,
waits for them to empty, and exits. It runs in its own session, so a signal aimed at the
kernel's process group does not take it down first. Standard library only: it starts in a
few milliseconds and does nothing else.

The forkserver plays the same part for the workers it forks (it is their parent).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys

from deeting_tui import procgroup


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the kernel's
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_end)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda _signum, _frame: None)
    parent = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    _die_with(parent)
    groups: set[int] = set()
    cgroups: dict[int, str] = {}
    pending = b""
    os.set_blocking(0, False)
    while True:
        ready, _, _ = select.select([0, read_end], [], [])
        ended = False
        while True:  # what the kernel said before it went counts too: read it all
            try:
                chunk = os.read(0, 65536)
            except BlockingIOError:
                break
            if not chunk:
                ended = True  # EOF: the kernel closed its end or died
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                _apply(groups, cgroups, line.strip())
        if ended or read_end in ready:
            break  # EOF, or SIGTERM/SIGHUP: the kernel is gone or wants us gone
    for folder in cgroups.values():
        procgroup.kill_cgroup(folder)
    for pgid in groups:  # all at once, then make sure
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for pgid in groups:
        procgroup.kill_group(pgid)


def _apply(groups: set[int], cgroups: dict[int, str], line: bytes) -> None:
    """One line from the kernel: ``+PGID``, ``-PGID`` or ``=PGID DIR``; others are ignored."""
    kind = line[:1]
    number, _, folder = line[1:].partition(b" ")
    if kind not in (b"+", b"-", b"=") or not number.isdigit() or int(number) <= 1:
        return
    pgid = int(number)
    if kind == b"+":
        groups.add(pgid)
    elif kind == b"-":
        groups.discard(pgid)
        cgroups.pop(pgid, None)
    elif pgid in groups and folder.startswith(b"/"):
        cgroups[pgid] = os.fsdecode(folder)


def _die_with(parent: int) -> None:
    """SIGTERM (caught: the loop above wakes) when the kernel dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if parent and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    main()
