"""Resources: a plugin cannot take more memory, tasks, disk or CPU than its limits allow.

A hostile plugin (``limits``: memory 256 MiB, 64 tasks, 64 MiB of disk, 25% of a core while
idle) tries: shared and memfd memory twice its limit, the same spread over child processes,
512 processes, 512 threads, 1 GiB in one file and in many, and a thread left spinning after
its call returned. Each attempt must fail or get the plugin stopped — with one notice naming
the limit and a line in its log — while the kernel keeps serving and another plugin is not
touched.

Run as root by .ci/run (cgroups v1/v2 where the machine offers them), and again as an
unprivileged user by test_unprivileged.py (rlimits, the user namespace's RLIMIT_NPROC, the
watchdog)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import FAST_POLICY, FAST_WATCHDOG, HOSTILE, OFFICIAL

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.loader import PluginError
from deeting_tui.kernel.paths import resolve_paths
from deeting_tui.kernel.supervisor import Supervisor
from deeting_tui.kernel.watchdog import Confinement
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.sandbox.probe import probe

NAME = "greedy"
TIMEOUT = 30.0  # a deadline for what must happen, never a pace
TASKS = 64

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

    def _hear(self, event: dict[str, Any]) -> None:
        if event.get("type") == "plugin_notice" and event.get("plugin") == NAME:
            self.seen.append(str(event.get("message")))
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


@pytest.fixture
async def world(home: Path) -> AsyncIterator[World]:
    kernel = Kernel(
        resolve_paths(),
        assistant=OfflineAssistant(),
        policy=FAST_POLICY,
        confinement=Confinement(policy=FAST_WATCHDOG),
    )
    await kernel.start(ticker=False)
    try:
        for source in (OFFICIAL / "calc", HOSTILE / NAME):
            report = await kernel.loader.install(source, yes=True)
            assert report.enabled, report.problem
        yield World(kernel)
    finally:
        await kernel.shutdown()


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
