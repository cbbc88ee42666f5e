"""Resources: a plugin cannot take more memory, tasks, disk or CPU than its limits allow.

A hostile plugin (``limits``: memory 256 MiB, 64 tasks, 64 MiB of disk, 25% of a core while
idle) tries: shared and memfd memory twice its limit, the same spread over child processes,
512 processes, 512 threads, 1 GiB in one file and in many (1 MiB files in one call: flat,
nested, renamed into place, sparse then filled, written through mmap), 1 GiB allocated past
the end of a file, more folders than may be watched, and a thread left spinning after its
call returned. Each attempt must fail
or get the plugin stopped — with one notice naming the limit and a line in its log — while
the kernel keeps serving and another plugin is not touched.

Run as root by .ci/run (cgroups v1/v2 where the machine offers them), and again as an
unprivileged user by test_unprivileged.py (rlimits, the user namespace's RLIMIT_NPROC, the
watchdog)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import FAST_POLICY, FAST_WATCHDOG, HOSTILE, OFFICIAL, run_deeting

from deeting_tui.command_output import event_line
from deeting_tui.kernel.events import Event, PluginNotice
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.quota import disktree, usage
from deeting_tui.quota.watchdog import Confinement, WatchdogPolicy
from deeting_tui.sandbox.probe import probe
from deeting_tui.workers.supervisor import Supervisor

NAME = "greedy"
TIMEOUT = 30.0  # a deadline for what must happen, never a pace
TASKS = 64
DISK_MB = 64
# What a plugin writing as fast as it can (~1-2 GB/s into the page cache here) adds between
# crossing its quota and being killed: until the kernel's loop runs, one lstat (or one look
# at its open files), a SIGKILL. On this quiet 2-core VM: at most 4 MiB past; tens when the
# kernel's process waits for a CPU (python -m bench.diskquota --load N). With five processes
# spinning beside the test: up to 75 MiB past, once in ~200 runs. The margin is well above
# that, and far below the gigabyte a walk now and then let through.
OVERSHOOT_MB = 128
# The folders are walked only as a check, and not within a test: what holds the quota here
# is the accounting as files are written.
EVENTS_ONLY = replace(FAST_WATCHDOG, disk_interval=3600.0, disk_after_call=3600.0)

enforced = pytest.mark.skipif(
    not probe().seccomp,
    reason=f"this machine cannot enforce the sandbox ({probe().level})",
)


class Notices:
    """The kernel's plugin notices as they come, with a way to wait for one."""

    def __init__(self, kernel: Kernel) -> None:
        self.seen: list[str] = []
        self._changed = asyncio.Event()
        kernel.add_listener(self._hear)

    def _hear(self, event: Event) -> None:
        if isinstance(event, PluginNotice) and event.plugin == NAME:
            self.seen.append(event_line(event))  # as the CLI says it: with its hint
            self._changed.set()

    def about(self, text: str) -> list[str]:
        return [message for message in self.seen if text in message]

    async def wait_for(self, text: str) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while not self.about(text):
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                pytest.fail(f"no notice about {text!r}; notices: {self.seen}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return self.about(text)[0]


class World:
    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.notices = Notices(kernel)
        self.bystander_pid = kernel.loader.runtimes["calc"].supervisor.pid

    @property
    def greedy(self) -> Supervisor:
        return self.kernel.loader.runtimes[NAME].supervisor

    async def take(self, what: str, **args: int) -> dict[str, Any]:
        result = await asyncio.wait_for(self.greedy.invoke("take", {"what": what, **args}), TIMEOUT)
        data: dict[str, Any] = result["data"]
        return data

    async def serves_on(self) -> None:
        """The kernel answers at once, and the other plugin is the same worker as before."""
        session = self.kernel.open_session()
        turn = await asyncio.wait_for(self.kernel.submit(session.id, "/calc expr=6*7"), TIMEOUT)
        assert not turn.failed, turn.errors
        assert self.kernel.loader.runtimes["calc"].supervisor.pid == self.bystander_pid

    async def greedy_serves(self) -> int:
        """The plugin itself answers again (restarted if it was stopped); its pid."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:
            try:
                result = await self.greedy.invoke("whoami", {})
                return int(result["data"]["pid"])
            except Exception:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)  # a restart under way; polling with a deadline

    def logged(self, text: str) -> bool:
        return text in self.kernel.paths.plugin_log(NAME).read_text()

    @property
    def folders(self) -> list[Path]:
        paths = self.kernel.paths
        return [paths.plugin_data(NAME), paths.plugin_cache(NAME), paths.plugin_tmp(NAME)]

    async def ended(self, pid: int) -> None:
        """Until the process ``pid`` has gone (a killed worker is reaped by its launcher)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while usage.read_process(pid) is not None:
            assert loop.time() < deadline, f"worker {pid} still runs"
            await asyncio.sleep(0.01)  # polling the OS, with a deadline


async def _world(policy: WatchdogPolicy) -> AsyncIterator[World]:
    kernel = Kernel(
        resolve_paths(),
        assistant=OfflineAssistant(),
        policy=FAST_POLICY,
        confinement=Confinement(policy=policy),
    )
    await kernel.start(ticker=False)
    try:
        for source in (OFFICIAL / "calc", HOSTILE / NAME):
            report = await kernel.loader.install(source, yes=True)
            assert report.enabled, report.problem
        yield World(kernel)
    finally:
        await kernel.shutdown()


@pytest.fixture
async def world(home: Path) -> AsyncIterator[World]:
    async for made in _world(FAST_WATCHDOG):
        yield made


@pytest.fixture
async def watched(home: Path) -> AsyncIterator[World]:
    """A kernel whose watchdog never walks the plugin's folders within a test."""
    async for made in _world(EVENTS_ONLY):
        yield made


# -- memory -----------------------------------------------------------------------------------


@enforced
@pytest.mark.parametrize("what", ["shm", "memfd"])
async def test_twice_the_memory_limit_in_shared_memory_fails(world: World, what: str) -> None:
    pid = world.greedy.pid
    taken = await world.take(what, mb=512)
    assert not taken["ok"], taken
    assert world.greedy.pid == pid  # refused, not crashed
    await world.serves_on()


@enforced
async def test_a_memfd_filled_by_write_is_bounded(world: World) -> None:
    """No mapping shows it, so RLIMIT_AS cannot; the file-size limit (and a memory cgroup,
    where there is one) does — if seccomp lets memfd_create through at all."""
    taken = await world.take("memfd_write", mb=512)
    assert not taken["ok"], taken
    await world.serves_on()


@enforced
async def test_memory_spread_over_processes_is_counted_together(world: World) -> None:
    """Four children with 100 MiB of shared memory each: each under the per-process limit,
    400 MiB together — the plugin is stopped, with one notice, and comes back."""
    pid = world.greedy.pid
    call = asyncio.ensure_future(world.take("children_shm", mb=100, n=4))
    notice = await world.notices.wait_for("limits.memory_mb")
    assert "greedy" in notice and "256 MiB" in notice
    await asyncio.gather(call, return_exceptions=True)  # it died with its worker, or returned
    assert await world.greedy_serves() != pid
    assert len(world.notices.about("limits.memory_mb")) == 1
    assert world.logged("limits.memory_mb")
    await world.serves_on()


# -- tasks ------------------------------------------------------------------------------------


@enforced
@pytest.mark.parametrize("what", ["forks", "threads"])
async def test_512_tasks_fail_beyond_the_limit(world: World, what: str) -> None:
    pid = world.greedy.pid
    taken = await world.take(what, n=512)
    assert taken["made"] < TASKS, taken
    assert taken["error"], taken
    if "pids" in world.kernel.confinement.cgroups.controllers:  # it tells which limit said no
        notice = await world.notices.wait_for("limits.tasks")
        assert "was refused a new process or thread" in notice
    assert world.greedy.pid == pid and not world.notices.about("was stopped")
    assert len(world.notices.about("limits.tasks")) <= 1
    await world.serves_on()


# -- disk -------------------------------------------------------------------------------------


@enforced
async def test_one_big_file_stops_at_the_quota(world: World) -> None:
    taken = await world.take("write_one", mb=1024)
    assert taken == {"ok": False, "error": "EFBIG", "written_mb": 64}, taken
    await world.serves_on()


@enforced
async def test_many_files_over_the_quota_stop_the_plugin_until_space_is_freed(
    world: World,
) -> None:
    kernel = world.kernel
    call = asyncio.ensure_future(world.take("write_many", mb=1024))
    notice = await world.notices.wait_for("limits.disk_mb")
    data = kernel.paths.plugin_data(NAME)
    assert str(data) in notice and "deeting plugin enable greedy" in notice
    await asyncio.gather(call, return_exceptions=True)  # it ends one way or the other
    assert NAME not in kernel.loader.runtimes  # stopped, and not restarted
    assert world.logged("limits.disk_mb")
    await world.serves_on()
    with pytest.raises(PluginError, match=r"limits\.disk_mb"):
        await kernel.loader.enable(NAME)  # still over: refused, with what to do
    shutil.rmtree(data / "many")
    await kernel.loader.enable(NAME)
    await world.greedy_serves()
    assert len(world.notices.about("limits.disk_mb")) == 1


@enforced
@pytest.mark.parametrize(
    ("what", "n"),
    [
        ("write_many", 0),
        ("write_nested", 64),  # folders made as it goes, 64 deep
        ("write_renamed", 16),  # files renamed in, folders renamed aside
        ("write_parallel", 32),  # 32 threads, one 32 MiB write() each, all at once
        ("truncate_write", 0),  # each file sparse first, then filled
        ("write_mmap", 0),  # each file filled through a shared mapping
    ],
)
async def test_a_gigabyte_in_small_files_is_stopped_at_the_quota_at_once(
    watched: World, what: str, n: int
) -> None:
    """1 GiB as 1 MiB files in one call, with no walk of the folders to find it: the
    plugin is stopped within a few MiB of its quota, once, and the kernel serves on."""
    world, kernel = watched, watched.kernel
    pid = world.greedy.pid
    assert pid is not None
    call = asyncio.ensure_future(world.take(what, mb=1024, n=n))
    notice = await world.notices.wait_for("limits.disk_mb")
    assert "deeting plugin enable greedy" in notice
    await asyncio.gather(call, return_exceptions=True)  # it died with its worker
    await world.ended(pid)
    used = usage.folder_usage(world.folders)
    print(f"{what}: stopped at {used / usage.MIB:.1f} MiB for a quota of {DISK_MB} MiB")
    assert DISK_MB * usage.MIB < used <= (DISK_MB + OVERSHOOT_MB) * usage.MIB
    assert NAME not in kernel.loader.runtimes  # disabled, not restarted
    assert len(world.notices.about("limits.disk_mb")) == 1
    assert world.logged("limits.disk_mb")
    await world.serves_on()


@enforced
async def test_space_allocated_past_the_end_of_a_file_is_refused(watched: World) -> None:
    """fallocate(FALLOC_FL_KEEP_SIZE) would allocate a gigabyte past RLIMIT_FSIZE in one
    call, before any event could be told: it fails as an unsupported mode does. A plain
    fallocate is held by RLIMIT_FSIZE like a write."""
    pid = watched.greedy.pid
    kept = await watched.take("fallocate", mb=1024, n=1)
    assert (kept["ok"], kept.get("error")) == (False, errno.errorcode[errno.EOPNOTSUPP]), kept
    plain = await watched.take("fallocate", mb=1024, n=0)
    assert (plain["ok"], plain.get("error")) == (False, "EFBIG"), plain
    assert usage.folder_usage(watched.folders) < usage.MIB
    assert watched.greedy.pid == pid and not watched.notices.seen
    await watched.serves_on()


@enforced
async def test_more_folders_than_may_be_watched_are_walked_instead(
    world: World, home: Path
) -> None:
    """Past the folders one plugin may have watched, its folders are walked instead (its log
    and ``deeting plugin info`` say so): the user's inotify watches are not used up, and the
    quota still holds."""
    kernel = world.kernel
    taken = await world.take("folders", n=disktree.MAX_DIRS + 64)
    assert taken["ok"], taken
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not world.logged("no longer watched"):
        assert loop.time() < deadline, "the plugin's folders are still watched"
        await asyncio.sleep(0.05)  # the events are handled on the kernel's loop; a deadline
    assert "more than 4096 folders" in kernel.paths.plugin_log(NAME).read_text()
    assert len(kernel.confinement.disk.owners) <= disktree.MAX_DIRS  # the calc plugin's too
    shown = await asyncio.to_thread(run_deeting, "plugin", "info", NAME, "--json", home=home)
    assert shown.returncode == 0, shown.stderr
    assert "more than 4096 folders" in orjson.loads(shown.stdout)["limits"]["disk_mb"]
    call = asyncio.ensure_future(world.take("write_many", mb=1024))
    await world.notices.wait_for("limits.disk_mb")
    await asyncio.gather(call, return_exceptions=True)
    assert len(world.notices.about("limits.disk_mb")) == 1
    await world.serves_on()


# -- CPU --------------------------------------------------------------------------------------


@enforced
async def test_a_thread_spinning_after_its_call_gets_the_plugin_stopped(world: World) -> None:
    pid = world.greedy.pid
    assert (await world.take("spin"))["ok"]
    notice = await world.notices.wait_for("limits.idle_cpu_percent")
    assert "no call in flight" in notice
    assert await world.greedy_serves() != pid  # restarted, without the spinning thread
    assert len(world.notices.about("limits.idle_cpu_percent")) == 1
    assert world.logged("limits.idle_cpu_percent")
    await world.serves_on()
