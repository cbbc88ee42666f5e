"""The watchdog's rules over made-up samples, and what it does when one is broken."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import FAST_POLICY, FAST_WATCHDOG, OFFICIAL

from deeting_tui.kernel.events import PluginNotice, StreamFrame
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.paths import Config, resolve_paths
from deeting_tui.plugin.checker import load_plugin
from deeting_tui.plugin.manifest import Limits
from deeting_tui.quota import usage
from deeting_tui.quota.cgroup_hierarchies import Cgroups, Hierarchy
from deeting_tui.quota.usage import Usage, WatchLimits, check_cpu, check_usage
from deeting_tui.quota.watchdog import Confinement, WatchdogPolicy, describe_limits
from deeting_tui.workers.supervisor import WorkerConfig

MIB = 1024 * 1024
LIMITS = WatchLimits(memory_mb=256, tasks=64, cpu_percent=100, idle_cpu_percent=25)


def sample(at: float, cpu: float, *, sent: int = 0, in_flight: int = 0, **more: Any) -> Usage:
    values = {"processes": 1, "tasks": 1, "memory_bytes": 10 * MIB, **more}
    return Usage(at=at, cpu_seconds=cpu, requests_sent=sent, calls_in_flight=in_flight, **values)


def history(percent: float, seconds: int = 11, **kwargs: Any) -> list[Usage]:
    """One sample a second, using ``percent`` of a core throughout."""
    return [sample(t, t * percent / 100, **kwargs) for t in range(seconds)]


# -- memory and tasks -------------------------------------------------------------------------


def test_memory_and_tasks_are_judged_on_one_sample() -> None:
    assert check_usage(LIMITS, sample(0, 0, memory_bytes=256 * MIB, tasks=64)) is None
    memory = check_usage(LIMITS, sample(0, 0, memory_bytes=300 * MIB))
    assert memory is not None and memory.limit == "memory_mb"
    assert memory.reason() == (
        "was stopped: it used 300 MiB, over its limit of 256 MiB — if it needs more, raise "
        "limits.memory_mb in its kimai.json"
    )
    tasks = check_usage(LIMITS, sample(0, 0, tasks=65))
    assert tasks is not None and tasks.limit == "tasks"
    assert "65 processes and threads at once" in tasks.reason()


def test_shared_pages_are_counted_once_when_it_matters() -> None:
    """Under the limit, the cheap resident sum answers; over it, the proportional count
    decides (here: our own process, whose real share is far below a 1-byte limit's doubt)."""
    me = usage.read_process(os.getpid())
    assert me is not None and me.resident_bytes > 0
    assert usage.memory_of([me], limit_bytes=1 << 40) == me.resident_bytes
    precise = usage.memory_of([me, me, me], limit_bytes=1)
    assert 0 < precise < 3 * me.resident_bytes


# -- CPU --------------------------------------------------------------------------------------


def test_a_spinning_plugin_with_no_call_in_flight_breaks_the_idle_rule() -> None:
    breach = check_cpu(LIMITS, history(100), window=10)
    assert breach is not None and breach.limit == "idle_cpu_percent"
    assert "100% of a core over 10 s with no call in flight" in breach.reason()


def test_a_spinning_thread_is_judged_on_the_short_idle_window() -> None:
    """Three seconds of spinning with no call in flight are enough; the ten-second window of
    the overall rule would let a thread burn a core for ten seconds after its call."""
    spinning = history(100)  # samples every second, 100% of a core
    breach = check_cpu(LIMITS, spinning[-4:], window=10, idle_window=3)
    assert breach is not None and breach.limit == "idle_cpu_percent"
    assert "over 3 s with no call in flight" in breach.reason()
    assert check_cpu(LIMITS, spinning[-3:], window=10, idle_window=3) is None  # not 3 s yet


def test_ticks_and_streams_stay_far_below_the_idle_rule() -> None:
    # A clock or sysinfo plugin: a few milliseconds of work a second, on events.
    assert check_cpu(LIMITS, history(2), window=10) is None
    assert check_cpu(LIMITS, history(25), window=10) is None  # the limit itself is allowed


def test_work_for_a_caller_is_not_idle() -> None:
    # A call in flight at any sample of the window, or one sent and answered in between.
    in_flight = history(90)
    in_flight[5] = sample(5, 4.5, in_flight=1)
    assert check_cpu(LIMITS, in_flight, window=10) is None
    answered = history(90)
    answered[-1] = sample(10, 9.0, sent=1)
    assert check_cpu(LIMITS, answered, window=10) is None


def test_overall_cpu_is_judged_only_where_no_cgroup_throttles_it() -> None:
    busy = history(150, in_flight=1)  # working for a caller, on 1.5 cores
    breach = check_cpu(LIMITS, busy, window=10)
    assert breach is not None and breach.limit == "cpu_percent"
    throttled = WatchLimits(256, 64, 100, 25, cpu_throttled=True)
    assert check_cpu(throttled, busy, window=10) is None


def test_no_verdict_before_a_full_window() -> None:
    assert check_cpu(LIMITS, history(100, seconds=5), window=10) is None
    assert check_cpu(LIMITS, [], window=10) is None


# -- disk -------------------------------------------------------------------------------------


def test_folder_usage_counts_blocks_once_and_follows_no_link(tmp_path: Path) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    (data / "sub").mkdir(parents=True)
    cache.mkdir()
    (data / "sub" / "a.bin").write_bytes(b"x" * MIB)
    os.link(data / "sub" / "a.bin", cache / "hardlink.bin")
    (data / "outside").symlink_to(Path("/usr"))
    with open(data / "sparse.bin", "wb") as f:
        f.truncate(1 << 30)  # a gigabyte of holes uses no disk
    used = usage.folder_usage([data, cache, tmp_path / "missing"])
    assert MIB <= used < 2 * MIB


def test_the_disk_message_says_what_to_free_and_how_to_come_back() -> None:
    breach = usage.disk_breach(100 * MIB, 64)
    assert breach is not None and usage.disk_breach(64 * MIB, 64) is None
    folders = [Path("/h/data/greedy"), Path("/h/cache/greedy")]
    assert usage.disk_reason("greedy", breach, folders) == (
        "plugin 'greedy' was stopped: its folders hold 100 MiB, over its disk limit of 64 MiB "
        "(limits.disk_mb) — free space in /h/data/greedy, /h/cache/greedy (or raise "
        "limits.disk_mb in its kimai.json), then enable it again"
    )


# -- the watchdog's actions -------------------------------------------------------------------


@dataclass
class FakeSupervisor:
    """What the watchdog sees of a supervisor, recording what it is told to do."""

    config: WorkerConfig
    name: str = "greedy"
    sent: int = 0
    in_flight: int = 0
    stops: list[tuple[int, str]] = field(default_factory=list)
    disables: list[tuple[int, str]] = field(default_factory=list)
    told: list[str] = field(default_factory=list)

    @property
    def denials(self) -> FakeSupervisor:
        return self

    def refused(self, message: str) -> bool:
        self.told.append(message)
        return True

    @property
    def activity(self) -> tuple[int, int]:
        return self.sent, self.in_flight

    def stop_for_limit(self, generation: int, reason: str) -> None:
        self.stops.append((generation, reason))

    def disable_for_limit(self, generation: int, reason: str) -> None:
        self.disables.append((generation, reason))


def _config(tmp_path: Path, **limits: Any) -> WorkerConfig:
    return WorkerConfig(
        name="greedy",
        version="1.0.0",
        root=tmp_path,
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        tmp_dir=tmp_path / "tmp",
        log_path=tmp_path / "greedy.log",
        **limits,
    )


def _process(cpu: float = 0.0, threads: int = 1, resident: int = MIB) -> usage.ProcessSample:
    return usage.ProcessSample(os.getpid(), os.getpid(), cpu, threads, resident)


async def test_a_breach_stops_the_worker_once_with_a_line_in_its_log(tmp_path: Path) -> None:
    confinement = Confinement(Cgroups(), WatchdogPolicy(interval=1, cpu_window=10))
    fake = FakeSupervisor(_config(tmp_path, tasks=8))
    box = confinement.admit(fake, pid=os.getpid(), generation=3)
    box.observe(0.0, [_process(threads=4)])
    assert fake.stops == []
    box.observe(1.0, [_process(threads=9)])
    box.observe(2.0, [_process(threads=20)])  # already stopped: no second notice
    assert len(fake.stops) == 1 and fake.stops[0][0] == 3
    assert "limits.tasks" in fake.stops[0][1]
    log = (tmp_path / "greedy.log").read_text()
    assert log.count("limits.tasks") == 1 and "allowed 8" in log
    assert box.end() is None and box.pid not in [b.pid for b in confinement.boxes.values()]
    confinement.close()


async def test_over_the_disk_quota_disables_instead_of_restarting(tmp_path: Path) -> None:
    confinement = Confinement(Cgroups(), WatchdogPolicy(disk_after_call=0.0))
    fake = FakeSupervisor(_config(tmp_path, disk_mb=1))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "big.bin").write_bytes(b"x" * 2 * MIB)
    box = confinement.admit(fake, pid=os.getpid(), generation=1)
    fake.sent = 1  # a call was made and has returned: time to measure
    box.observe(0.0, [_process()])
    while box.scanning:
        await asyncio.sleep(0.01)  # the walk runs in a thread; bounded by pytest's timeout
    assert fake.stops == [] and len(fake.disables) == 1
    assert "then enable it again" in fake.disables[0][1]  # the kernel adds the enable hint
    assert "limits.disk_mb" in (tmp_path / "greedy.log").read_text()


async def test_a_fork_the_pids_cgroup_refused_is_told_not_stopped(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    (pids / "cgroup.procs").write_text("")
    cgroups = Cgroups.from_hierarchies([Hierarchy(1, frozenset({"pids"}), pids)], False)
    confinement = Confinement(cgroups, WatchdogPolicy(disk_after_call=3600, disk_interval=3600))
    fake = FakeSupervisor(_config(tmp_path, tasks=8))
    box = confinement.admit(fake, pid=os.getpid(), generation=1)
    assert box.cgroup is not None
    events = next(iter(box.cgroup.folders.values())) / "pids.events"
    events.write_text("max 0\n")
    box.last_disk = float("inf")  # no disk scan in this test
    box.observe(0.0, [_process()])
    events.write_text("max 2\n")
    box.observe(1.0, [_process()])
    box.observe(2.0, [_process()])  # nothing new refused: nothing new said
    assert fake.stops == [] and len(fake.told) == 1
    assert "limits.tasks (8)" in fake.told[0]
    box.cgroup.folders.clear()  # a fake folder: nothing to kill or remove
    confinement.close()


def test_plugin_info_names_each_limit_and_what_enforces_it(tmp_path: Path) -> None:
    limits = Limits(memory_mb=256, tasks=64, disk_mb=64, cpu_percent=50)
    bare = describe_limits(limits, Cgroups())
    assert bare["containment"] == "process group + reaper"
    assert bare["memory_mb"] == "256 MiB (RLIMIT_AS per process + watchdog: all its processes)"
    assert bare["cpu_percent"] == "50% of a core (watchdog, 10 s average)"
    assert bare["disk_mb"] == (
        "64 MiB (RLIMIT_FSIZE per file + inotify: its folders as they are written; walked "
        "every 30 s while active, as a check)"
    )
    walked = describe_limits(limits, Cgroups(), disk_walked="more than 4096 folders")
    assert walked["disk_mb"] == (
        "64 MiB (RLIMIT_FSIZE per file + watchdog: its folders walked after calls and every "
        "5 s while active — more than 4096 folders)"
    )
    in_namespace = describe_limits(limits, Cgroups(), user_namespaces=True)["tasks"]
    if os.geteuid() == 0:  # root is exempt from RLIMIT_NPROC
        assert in_namespace == bare["tasks"] == "64 (watchdog)"
    else:
        assert in_namespace == "64 (RLIMIT_NPROC in its own user namespace + watchdog)"
    v2 = Hierarchy(2, frozenset({"memory"}), tmp_path)
    pids = Hierarchy(1, frozenset({"pids"}), tmp_path)
    full = describe_limits(limits, Cgroups(v2, {"memory": v2, "pids": pids}))
    assert full["containment"] == "cgroup v2 (cgroup.kill) + process group"
    assert full["memory_mb"] == "256 MiB (RLIMIT_AS per process + cgroup v2 memory)"
    assert full["tasks"] == "64 (cgroup v1 pids)"


async def test_kimai_limits_reach_the_worker(kernel: Kernel, tmp_path: Path) -> None:
    plugin = tmp_path / "calc"
    shutil.copytree(OFFICIAL / "calc", plugin)
    kimai = json.loads((plugin / "kimai.json").read_text())
    kimai["limits"] = {"memory_mb": 256, "tasks": 64, "disk_mb": 64, "idle_cpu_percent": 5}
    (plugin / "kimai.json").write_text(json.dumps(kimai))
    supervisor = kernel.loader.supervisor_for(load_plugin(plugin))
    config = supervisor.config
    assert (config.memory_mb, config.tasks, config.disk_mb) == (256, 64, 64)
    assert (config.cpu_percent, config.idle_cpu_percent) == (100, 5)
    assert config.limits() == {"memory_mb": 256, "tasks": 64, "disk_mb": 64, "open_files": 256}
    assert supervisor.confinement is kernel.confinement


async def test_official_plugins_on_a_fast_clock_never_trip_the_idle_rule(home: Path) -> None:
    """sysinfo and clock work on every tick with no call in flight: ten ticks a second for
    several full windows stay far below idle_cpu_percent."""
    kernel = Kernel(
        resolve_paths(),
        config=Config(tick_interval=0.1),
        policy=FAST_POLICY,
        confinement=Confinement(policy=FAST_WATCHDOG),
    )
    notices: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    kernel.add_listener(
        lambda e: notices.append(e.to_json()) if isinstance(e, PluginNotice) else None
    )
    kernel.add_listener(
        lambda e: events.append(e.to_json()) if isinstance(e, StreamFrame) else None
    )
    await kernel.start()
    kernel.open_session()  # streams are recorded in the active session
    try:
        for name in ("sysinfo", "clock"):
            report = await kernel.loader.install(OFFICIAL / name, yes=True)
            assert report.enabled, report.problem
        boxes = list(kernel.confinement.boxes.values())
        assert len(boxes) == 2
        window = FAST_WATCHDOG.cpu_window
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        # Until each has been judged on at least three full windows (the rule needs one).
        while not all(b.history and b.history[-1].at - b.history[0].at >= window for b in boxes):
            assert loop.time() < deadline, "the watchdog took no samples"
            await asyncio.sleep(0.05)  # polling the watchdog's own progress, with a deadline
        first = {id(b): b.history[-1].at for b in boxes}
        while not all(b.history[-1].at - first[id(b)] >= 2 * window for b in boxes):
            assert loop.time() < deadline
            await asyncio.sleep(0.05)
        assert notices == []
        assert all(not box.stopped for box in boxes)
        # They did work the whole time: sysinfo streamed a sample on (nearly) every tick.
        assert sum(1 for e in events if e.get("plugin") == "sysinfo") >= 10
    finally:
        await kernel.shutdown()
