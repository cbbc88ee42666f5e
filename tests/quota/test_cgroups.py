"""The cgroup layer: reading what is mounted (pure), and making, limiting, killing and
sweeping cgroups — against a temporary folder laid out like cgroupfs, so these tests run the
same as root and not, on any machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deeting_tui.quota import cgroups
from deeting_tui.quota.cgroup_hierarchies import Cgroups, Hierarchy, parse_hierarchies
from deeting_tui.quota.cgroups import KernelCgroups, WorkerLimits, sweep_stale

# A hybrid machine like the CI's: v1 controllers, a v2 tree without them, a container path.
SELF_CGROUP = """\
9:name=systemd:/
8:pids:/
4:memory:/session/abc
1:cpu,cpuacct:/
0::/
"""
MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
99 31 0:36 / /mnt/pids\\040again rw,relatime - cgroup cgroup rw,pids
"""


def test_hierarchies_are_found_with_our_own_cgroup_as_base() -> None:
    found = parse_hierarchies(SELF_CGROUP, MOUNTINFO)
    assert found == [
        Hierarchy(1, frozenset({"cpu"}), Path("/sys/fs/cgroup/cpu,cpuacct")),
        Hierarchy(1, frozenset({"memory"}), Path("/sys/fs/cgroup/memory/session/abc")),
        Hierarchy(1, frozenset({"pids"}), Path("/sys/fs/cgroup/pids")),  # mounted twice: once
        Hierarchy(2, frozenset(), Path("/sys/fs/cgroup/unified")),
    ]


def test_a_container_mount_of_a_subtree_and_a_cgroup_outside_it() -> None:
    mounts = "50 1 0:40 /lxc/box /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    inside = parse_hierarchies("0::/lxc/box/app\n", mounts)
    assert inside == [Hierarchy(2, frozenset(), Path("/sys/fs/cgroup/app"))]
    assert parse_hierarchies("0::/elsewhere\n", mounts) == []  # not visible through it
    assert parse_hierarchies("garbage\n", "also garbage\n") == []


# -- a fake cgroupfs --------------------------------------------------------------------------


def _cgroup_folder(path: Path, files: dict[str, str] | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cgroup.procs").write_text("")
    for name, text in (files or {}).items():
        (path / name).write_text(text)
    return path


@pytest.fixture
def fake(tmp_path: Path) -> Cgroups:
    """v2 handing down memory and pids (cgroup.kill on), v1 cpu; a v1 hierarchy whose base
    we cannot write to (here: it is not there) is left out, so v2 keeps memory."""
    v2 = _cgroup_folder(tmp_path / "unified", {"cgroup.subtree_control": "memory pids io\n"})
    cpu = _cgroup_folder(tmp_path / "cpu")
    hierarchies = [
        Hierarchy(2, frozenset(), v2),
        Hierarchy(1, frozenset({"cpu"}), cpu),
        Hierarchy(1, frozenset({"memory", "cpu"}), tmp_path / "not-ours"),
    ]
    return Cgroups.from_hierarchies(hierarchies, cgroup_kill=True)


def test_what_is_usable_and_what_enforces_each_limit(fake: Cgroups) -> None:
    assert fake.v2 is not None and fake.v2.controllers == {"memory", "pids"}
    assert fake.describe() == {
        "containment": "cgroup v2 (cgroup.kill)",
        "pids": "cgroup v2 pids",
        "memory": "cgroup v2 memory",
        "cpu": "cgroup v1 cpu",
    }


def test_nothing_usable(tmp_path: Path) -> None:
    none = Cgroups.from_hierarchies([Hierarchy(2, frozenset(), tmp_path / "absent")], True)
    assert not none.usable and none.describe()["containment"] is None
    no_kill = _cgroup_folder(tmp_path / "old-kernel")
    old = Cgroups.from_hierarchies([Hierarchy(2, frozenset(), no_kill)], cgroup_kill=False)
    assert old.v2 is None  # v2 without cgroup.kill is no containment


@pytest.fixture
def both(tmp_path: Path) -> Cgroups:
    v2 = _cgroup_folder(tmp_path / "unified", {"cgroup.subtree_control": "memory\n"})
    pids = _cgroup_folder(tmp_path / "pids")
    cpu = _cgroup_folder(tmp_path / "cpu")
    return Cgroups.from_hierarchies(
        [
            Hierarchy(2, frozenset(), v2),
            Hierarchy(1, frozenset({"pids"}), pids),
            Hierarchy(1, frozenset({"cpu"}), cpu),
        ],
        cgroup_kill=True,
    )


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_a_worker_cgroup_gets_its_limits_and_its_process(
    both: Cgroups, tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    kernel = KernelCgroups(both)
    group = kernel.worker("calc", WorkerLimits(memory_mb=256, tasks=64, cpu_percent=50))
    v2 = tmp_path / "unified" / kernel.name
    assert (v2 / "cgroup.subtree_control").read_text() == "+memory"  # handed on to workers
    worker = v2 / "calc-1"
    assert (worker / "memory.max").read_text() == str(256 * 1024 * 1024)
    assert (worker / "memory.swap.max").read_text() == "0"
    assert (tmp_path / "pids" / kernel.name / "calc-1" / "pids.max").read_text() == "64"
    cpu = tmp_path / "cpu" / kernel.name / "calc-1"
    assert (cpu / "cpu.cfs_quota_us").read_text() == "50000"
    assert (cpu / "cpu.cfs_period_us").read_text() == "100000"
    group.add(sleeper.pid)
    assert group.pids() == [sleeper.pid]
    assert all((f / "cgroup.procs").read_text() == str(sleeper.pid) for f in group.folders.values())
    # The second worker of the same plugin gets a folder of its own.
    second = kernel.worker("calc", WorkerLimits(256, 64, 50))
    assert {f.name for f in second.folders.values()} == {"calc-2"}


def test_kill_empties_it_and_remove_clears_it(
    both: Cgroups, sleeper: subprocess.Popen[bytes]
) -> None:
    kernel = KernelCgroups(both)
    group = kernel.worker("calc", WorkerLimits(256, 64, 100))
    group.add(sleeper.pid)
    assert group.kill() == []
    assert sleeper.wait(10) == -signal.SIGKILL
    assert (group.folders[both.v2] / "cgroup.kill").read_text() == "1"  # type: ignore[index]
    for folder in group.folders.values():  # a real cgroupfs drops its files by itself
        for name in os.listdir(folder):
            (folder / name).unlink()
    assert group.remove()
    kernel.forget(group)
    kernel.close()
    assert all(not folder.exists() for folder in group.folders.values())


def test_oom_kills_are_read_from_the_memory_controller(both: Cgroups) -> None:
    group = KernelCgroups(both).worker("calc", WorkerLimits(256, 64, 100))
    memory = group.folders[both.controllers["memory"]]
    assert group.oom_kills() == 0
    (memory / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 2\n")
    assert group.oom_kills() == 2


def test_refused_tasks_are_read_from_the_pids_controller(both: Cgroups) -> None:
    group = KernelCgroups(both).worker("calc", WorkerLimits(256, 64, 100))
    assert group.tasks_refused() == 0
    (group.folders[both.controllers["pids"]] / "pids.events").write_text("max 7\n")
    assert group.tasks_refused() == 7


def test_a_limit_that_cannot_be_written_leaves_no_folder(both: Cgroups, tmp_path: Path) -> None:
    kernel = KernelCgroups(both)
    kernel.worker("calc", WorkerLimits(256, 64, 100))  # makes the kernel's folders
    pids = tmp_path / "pids" / kernel.name
    (pids / "calc-2").mkdir()  # the next name is taken: mkdir fails
    with pytest.raises(OSError):
        kernel.worker("calc", WorkerLimits(256, 64, 100))
    assert not (tmp_path / "unified" / kernel.name / "calc-2").exists()


def test_stale_folders_of_dead_kernels_are_swept_and_live_ones_kept(
    both: Cgroups, tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    start = cgroups._start_time(os.getpid())
    live = tmp_path / "unified" / f"deeting-{os.getpid()}-{start}-7"
    dead = tmp_path / "unified" / "deeting-999999-12345-1"  # no such process
    reused = tmp_path / "unified" / f"deeting-{os.getpid()}-1-1"  # our pid, not our start
    other = tmp_path / "unified" / "someone-else"
    for folder in (live, dead, reused, other):
        folder.mkdir()
    _cgroup_folder(dead / "calc-1", {"cgroup.procs": f"{sleeper.pid}\n"})
    removed = sweep_stale(both)
    assert sleeper.wait(10) == -signal.SIGKILL  # what the dead kernel left is killed
    assert reused in removed and not reused.exists()  # (a fake folder with files stays)
    assert live.exists() and other.exists()
