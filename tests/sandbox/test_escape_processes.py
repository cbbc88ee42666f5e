"""Containment: no process a plugin starts outlives its worker.

A hostile plugin double-forks daemons that try to leave the worker's process group
(``setsid`` must fail with EPERM) and ignore SIGTERM/SIGHUP. After each way a worker can end
— a graceful stop, a crash, disable, uninstall, a hot upgrade, kernel shutdown, and a real
``deeting --script`` process SIGKILLed — every one of them must be gone, and the kernel must
answer the next call at once.

Run as root by .ci/run (cgroup v2 with cgroup.kill where the machine offers it), and again as
an unprivileged user by test_unprivileged.py (the process group lock and the reapers)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from support import DEETING, FAST_POLICY, HOSTILE, OFFICIAL, REPO, run_deeting

from deeting_tui import procgroup
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.quota.cgroup_hierarchies import Cgroups
from deeting_tui.sandbox.probe import probe
from deeting_tui.workers.launcher import ExecLauncher
from deeting_tui.workers.supervisor import Supervisor

NAME = "lingerer"
LINGERER = HOSTILE / NAME
TIMEOUT = 15.0  # generous: a deadline for "gone" and "answers", never a pace

enforced = pytest.mark.skipif(
    not probe().seccomp,
    reason=f"this machine cannot enforce the process-group lock ({probe().level})",
)


def gone(pids: list[int], timeout: float = TIMEOUT) -> list[int]:
    """Wait for every pid to exit (pidfds: no polling); the ones still running. It blocks:
    an async test runs it in a thread, so the kernel's loop goes on ending the worker."""
    return procgroup.wait_exited(pids, time.monotonic() + timeout)


@pytest.fixture(params=["forkserver", "exec"])
async def kernel(request: pytest.FixtureRequest, home: Path) -> AsyncIterator[Kernel]:
    """A kernel whose workers come from the forkserver (their reaper) or from exec (the
    kernel reaps them; a reaper process covers its death)."""
    launcher = ExecLauncher() if request.param == "exec" else None
    k = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY, launcher=launcher)
    await k.start(ticker=False)
    try:
        report = await k.loader.install(OFFICIAL / "calc", yes=True)
        assert report.enabled, report.problem
        yield k
    finally:
        await k.shutdown()


async def _install(kernel: Kernel) -> Supervisor:
    report = await kernel.loader.install(LINGERER, yes=True)
    assert report.enabled, report.problem
    return kernel.loader.runtimes[NAME].supervisor


async def _daemons(supervisor: Supervisor) -> list[int]:
    """Two daemons: one tried setsid (refused), one did not; both still in the group."""
    pid = supervisor.pid
    assert pid is not None
    found = []
    for setsid in (True, False):
        result = await supervisor.invoke("daemon", {"setsid": setsid})
        daemon = result["data"]
        assert daemon["setsid"] == ("EPERM" if setsid else "ok"), daemon
        assert daemon["pgid"] == pid, f"the daemon left the worker's process group: {daemon}"
        found.append(daemon["pid"])
    assert all(procgroup.members(pid, [p]) == [p] for p in found)
    return [pid, *found]


async def _answers(kernel: Kernel) -> None:
    """The kernel serves the next call at once (another plugin's)."""
    session = kernel.open_session()
    turn = await asyncio.wait_for(kernel.submit(session.id, "/calc expr=6*7"), TIMEOUT)
    assert not turn.failed, turn.errors


async def _upgrade(kernel: Kernel, tmp_path: Path) -> None:
    newer = tmp_path / "lingerer-1.0.1"
    shutil.copytree(LINGERER, newer)
    for name in ("kimai.json", "package.json"):
        document = orjson.loads((newer / name).read_bytes())
        document["version"] = "1.0.1"
        (newer / name).write_bytes(orjson.dumps(document))
    shutil.copytree(newer, kernel.paths.plugin_code(NAME, "1.0.1"))
    report = await kernel.upgrade_plugin(NAME, "1.0.1")
    assert kernel.loader.runtimes[NAME].spec.version == "1.0.1", report


@enforced
@pytest.mark.parametrize("ending", ["stop", "crash", "disable", "uninstall", "upgrade"])
async def test_nothing_outlives_its_worker(kernel: Kernel, tmp_path: Path, ending: str) -> None:
    supervisor = await _install(kernel)
    pids = await _daemons(supervisor)
    if ending == "stop":  # the graceful path: the worker exits on its own
        await supervisor.stop()
    elif ending == "crash":  # the worker dies; the supervisor restarts it
        os.kill(pids[0], signal.SIGKILL)
    elif ending == "disable":
        await kernel.loader.disable(NAME)
    elif ending == "uninstall":
        await kernel.loader.uninstall(NAME)
    else:
        await _upgrade(kernel, tmp_path)
    assert await asyncio.to_thread(gone, pids) == [], f"still running after {ending}: {pids}"
    await _answers(kernel)
    if ending in ("crash", "upgrade"):  # the plugin itself serves again too
        runtime = kernel.loader.runtimes[NAME]
        result = await asyncio.wait_for(runtime.supervisor.invoke("whoami", {}), TIMEOUT)
        assert result["data"]["pid"] not in pids


@enforced
async def test_nothing_outlives_a_kernel_shutdown(home: Path) -> None:
    kernel = Kernel(resolve_paths(), assistant=OfflineAssistant(), policy=FAST_POLICY)
    await kernel.start(ticker=False)
    try:
        pids = await _daemons(await _install(kernel))
    finally:
        await kernel.shutdown()
    assert await asyncio.to_thread(gone, pids) == []


def _leftover_cgroups(kernel_pid: int) -> list[Path]:
    """This kernel's cgroup folders still present (none where cgroups are not used)."""
    found = []
    for hierarchy in Cgroups.detect().hierarchies():
        found += list(hierarchy.base.glob(f"deeting-{kernel_pid}-*"))
    return found


@enforced
@pytest.mark.parametrize("launcher", ["forkserver", "exec"])
def test_nothing_outlives_a_sigkilled_kernel(home: Path, launcher: str) -> None:
    assert run_deeting("plugin", "install", str(LINGERER), home=home).returncode == 0
    env = {**os.environ, "DEETING_HOME": str(home), "DEETING_LAUNCHER": launcher}
    kernel = subprocess.Popen(
        [*DEETING, "--script", "-", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
        start_new_session=True,  # so the test can kill its whole group, as a terminal would
    )
    assert kernel.stdin is not None and kernel.stdout is not None
    try:
        kernel.stdin.write(b"/whoami\n/daemon setsid=true\n/daemon setsid=false\n")
        kernel.stdin.flush()
        results: list[dict[str, Any]] = []
        for line in kernel.stdout:
            event = orjson.loads(line)
            if event["type"] == "tool_result":
                assert event["ok"], event
                results.append(event["data"])
                if len(results) == 3:
                    break
        worker = results[0]["pid"]
        daemons = [r["pid"] for r in results[1:]]
        assert [r["setsid"] for r in results[1:]] == ["EPERM", "ok"], results
        # The harshest end: SIGKILL to the kernel's whole process group at once.
        os.killpg(kernel.pid, signal.SIGKILL)
        kernel.wait(TIMEOUT)
        assert gone([worker, *daemons]) == [], "a plugin process outlived its SIGKILLed kernel"
    finally:
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()
    # The next kernel starts, answers at once, and sweeps what the dead one left in cgroups.
    done = run_deeting("--script", "-", home=home, stdin="/whoami\n", timeout=60)
    assert done.returncode == 0, done.stderr
    assert _leftover_cgroups(kernel.pid) == []


def test_containment_is_named_in_plugin_info(home: Path) -> None:
    assert run_deeting("plugin", "install", str(LINGERER), home=home).returncode == 0
    shown = run_deeting("plugin", "info", NAME, "--json", home=home)
    assert shown.returncode == 0, shown.stderr
    limits = orjson.loads(shown.stdout)["limits"]
    cgroups = Cgroups.detect()
    if cgroups.v2 is not None:
        assert limits["containment"] == "cgroup v2 (cgroup.kill) + process group"
    else:
        assert limits["containment"] == "process group + reaper"
    text = run_deeting("plugin", "info", NAME, home=home).stdout
    assert f"containment: {limits['containment']}" in text
