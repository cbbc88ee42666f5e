"""Reaching outside the plugin, attacked: other processes, System V IPC, root's powers.

A plugin with no grant tries to lower the kernel's limits (with a file-size limit of 1 KiB the
session store fails for the rest of the run), renice it, pin it, make it idle, read another
process's shared memory, leave a 64 MiB segment behind, and — run as root — use what root's
capabilities would give it: device nodes, fanotify, the clock, the host name, SCHED_FIFO.
Each attempt must fail, nothing of the kernel's or another process's may change, and the
kernel must keep serving. Run as root, and again unprivileged by test_unprivileged.py."""

from __future__ import annotations

import ctypes
import os
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import HOSTILE, install_hostile

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.sandbox.probe import probe
from deeting_tui.workers.supervisor import Supervisor

PLUGIN = HOSTILE / "reach"

pytestmark = pytest.mark.skipif(
    not (probe().landlock_abi and probe().seccomp),
    reason=f"this machine cannot enforce the sandbox ({probe().level})",
)

OTHER_PROCESSES = (
    "prlimit_fsize",
    "prlimit_nofile",
    "renice",
    "sched_idle",
    "affinity",
    "ioprio",
    "migrate",
    "kcmp",
)


async def _try(supervisor: Supervisor, what: str, **args: Any) -> dict[str, Any]:
    result = await supervisor.invoke("attempt", {"what": what, **args})
    data: dict[str, Any] = result["data"]
    return data


def _standing(pid: int) -> dict[str, Any]:
    """What another process's limits and scheduling are now."""
    return {
        "fsize": resource.prlimit(pid, resource.RLIMIT_FSIZE),
        "nofile": resource.prlimit(pid, resource.RLIMIT_NOFILE),
        "nice": os.getpriority(os.PRIO_PROCESS, pid),
        "user_nice": os.getpriority(os.PRIO_USER, os.getuid()),
        "policy": os.sched_getscheduler(pid),
        "affinity": os.sched_getaffinity(pid),
    }


@pytest.fixture
def bystander() -> Iterator[int]:
    """Another process of the same user, which is none of the plugin's business."""
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield child.pid
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


async def test_other_processes_limits_and_scheduling_are_out_of_reach(
    kernel: Kernel, tmp_path: Path, bystander: int
) -> None:
    supervisor = await install_hostile(kernel, PLUGIN, tmp_path)
    pid = supervisor.pid
    kernel_before, bystander_before = _standing(os.getpid()), _standing(bystander)
    for target in (os.getpid(), bystander):
        for what in OTHER_PROCESSES:
            result = await _try(supervisor, what, pid=target)
            assert not result["ok"], (what, target, result)
    for what in ("renice_user", "renice_group"):
        result = await _try(supervisor, what)
        assert not result["ok"], (what, result)
    assert _standing(os.getpid()) == kernel_before
    assert _standing(bystander) == bystander_before
    # The kernel's store still writes (a 1 KiB file-size limit would have broken it).
    session = kernel.open_session()
    turn = await kernel.submit(session.id, "/attempt what=ping")
    assert not turn.failed, turn.errors
    assert kernel.sessions.events(session.id)[-1].kind in ("reply", "tool_result")
    assert supervisor.pid == pid and supervisor.state == "ready"


def _shm_segments() -> list[str]:
    with open("/proc/sysvipc/shm") as table:
        return table.read().splitlines()[1:]


@pytest.fixture
def shared_secret() -> Iterator[int]:
    """A System V segment of this (same-user) process holding a secret; its key."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    key = int.from_bytes(os.urandom(3), "big") | 0x10000000
    shmid = libc.shmget(key, 4096, 0o1600)  # IPC_CREAT | 0600
    assert shmid >= 0, ctypes.get_errno()
    address = libc.shmat(shmid, None, 0)
    ctypes.memmove(address, b"the other process's secret", 26)
    try:
        yield key
    finally:
        libc.shmdt(ctypes.c_void_p(address))
        libc.shmctl(shmid, 0, None)  # IPC_RMID


async def test_system_v_ipc_is_closed_and_nothing_is_left_behind(
    kernel: Kernel, tmp_path: Path, shared_secret: int
) -> None:
    supervisor = await install_hostile(kernel, PLUGIN, tmp_path)
    before = _shm_segments()
    read = await _try(supervisor, "shm_read", key=shared_secret)
    assert not read["ok"] and "secret" not in read["detail"], read
    mqueues = set(os.listdir("/dev/mqueue")) if os.path.isdir("/dev/mqueue") else set()
    for what in ("shm_leave_behind", "sem", "msg", "mqueue"):
        result = await _try(supervisor, what)
        assert not result["ok"], (what, result)
    await kernel.loader.disable("reach")
    assert _shm_segments() == before  # no segment of the plugin outlives it
    if os.path.isdir("/dev/mqueue"):
        assert set(os.listdir("/dev/mqueue")) == mqueues  # nor a POSIX message queue


async def test_root_powers_are_gone_whoever_runs_deeting(kernel: Kernel, tmp_path: Path) -> None:
    supervisor = await install_hostile(kernel, PLUGIN, tmp_path)
    pid = supervisor.pid
    hostname = socket.gethostname()
    caps = await _try(supervisor, "capabilities")
    assert not caps["ok"], caps  # every set empty: bounding, ambient, permitted, effective, ...
    for what in ("mknod_kmsg", "mknod_block", "fanotify", "sethostname", "settimeofday"):
        result = await _try(supervisor, what)
        assert not result["ok"], (what, result)
    assert not (await _try(supervisor, "sched_fifo"))["ok"]
    watched = await _try(supervisor, "inotify", path=str(kernel.paths.data_dir))
    assert not watched["ok"], watched  # no filesystem scope: nothing outside to watch
    assert (await _try(supervisor, "mkfifo"))["ok"]  # a FIFO in its own folder is fine
    assert not (await _try(supervisor, "proc_net"))["ok"]  # the machine's sockets: no
    assert (await _try(supervisor, "proc_self"))["ok"]  # its own status: yes
    assert socket.gethostname() == hostname
    assert supervisor.pid == pid and supervisor.state == "ready"
    assert supervisor.sandbox is not None
    assert supervisor.sandbox["capabilities"] == "all dropped", supervisor.sandbox
