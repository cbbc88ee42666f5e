"""Both launchers, against real workers: handshake, logs, exits, env, sessions, and that no
worker outlives the kernel or its forkserver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deeting_tui import procgroup
from deeting_tui.rpc.errors import RpcError
from deeting_tui.rpc.peer import Peer
from deeting_tui.workers.forkserver_client import ForkserverLauncher
from deeting_tui.workers.launcher import (
    ExecLauncher,
    FallbackLauncher,
    Launcher,
    WorkerProcess,
    default_launcher,
    worker_environment,
)

TIMEOUT = 20.0
SECRET = "sk-fake-kernel-secret"

PLUGIN = textwrap.dedent(
    """
    import os, sys, time

    def invoke(ctx, tool, args):
        if tool == "x":
            return {"text": "hello", "data": {"n": 1}}
        if tool == "print":
            print("plugin says hi")
            print("plugin complains", file=sys.stderr)
            return "printed"
        if tool == "exit":
            os._exit(3)
        if tool == "env":
            return {"data": dict(os.environ)}
        if tool == "info":
            fds = {}
            for name in os.listdir("/proc/self/fd"):
                try:
                    fds[name] = os.readlink(f"/proc/self/fd/{name}")
                except OSError:
                    pass
            return {"data": {
                "pid": os.getpid(),
                "sid": os.getsid(0),
                # From status: a worker may not list /proc/self/task (task/*/net is there).
                "threads": int(open("/proc/self/status").read().split("Threads:")[1].split()[0]),
                "fds": fds,
            }}
        if tool == "sleep":
            ctx.progress(0.0, "sleeping")
            time.sleep(3600)
        if tool == "daemon":  # a child left behind, in the worker's process group
            child = os.fork()
            if child == 0:
                try:
                    os.closerange(3, 65536)
                    time.sleep(3600)
                finally:
                    os._exit(0)
            return {"data": {"pid": child}}
        raise ValueError(tool)
    """
)


@dataclass
class Running:
    process: WorkerProcess
    peer: Peer
    log_path: Path
    tmp: Path
    protocol_errors: list[str] = field(default_factory=list)
    notifications: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)

    async def invoke(self, tool: str) -> Any:
        return await asyncio.wait_for(
            self.peer.request("invoke", {"tool": tool, "args": {}}), TIMEOUT
        )

    async def exit_status(self) -> int:
        return await asyncio.wait_for(asyncio.shield(self.process.exited), TIMEOUT)


class Harness:
    def __init__(self, launcher: Launcher, tmp_path: Path) -> None:
        self.launcher = launcher
        self.tmp_path = tmp_path
        self.root = tmp_path / "plugin"
        (self.root / "src").mkdir(parents=True)
        (self.root / "src" / "index.py").write_text(PLUGIN)
        self.running: list[Running] = []
        self.count = 0

    async def start(self, env: dict[str, str] | None = None) -> Running:
        self.count += 1
        tmp = self.tmp_path / f"w{self.count}"
        tmp.mkdir()
        log_path = tmp / "plugin.log"
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            process = await asyncio.wait_for(
                self.launcher.spawn(log_fd, env if env is not None else worker_environment()),
                TIMEOUT,
            )
        finally:
            os.close(log_fd)
        errors: list[str] = []
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        peer = Peer(
            process.read_fd,
            process.write_fd,
            on_protocol_error=errors.append,
            notification_handler=lambda method, params: queue.put_nowait((method, params)),
        )
        peer.start()
        running = Running(process, peer, log_path, tmp, errors, queue)
        self.running.append(running)
        params = {
            "name": "t",
            "version": "1.0.0",
            "root": str(self.root),
            "data_dir": str(tmp / "data"),
            "cache_dir": str(tmp / "cache"),
            "tmp_dir": str(tmp / "tmp"),
            "limits": {"memory_mb": 512},
        }
        reply = await asyncio.wait_for(peer.request("initialize", params), TIMEOUT)
        assert reply["pid"] == process.pid
        assert "invoke" in reply["hooks"]
        return running

    async def stop_all(self) -> None:
        for running in self.running:
            running.peer.close()
            running.process.kill()
        for running in self.running:
            with contextlib.suppress(TimeoutError):
                await running.exit_status()


@pytest.fixture(params=["exec", "exec-without-pidfd", "forkserver"])
async def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    launcher: Launcher
    if request.param.startswith("exec"):
        if request.param == "exec-without-pidfd":  # e.g. macOS: exits seen by a waiting thread
            monkeypatch.delattr(os, "pidfd_open")
        launcher = ExecLauncher()
    else:
        # The forkserver itself holds a kernel secret: workers must still not see it.
        launcher = ForkserverLauncher(
            log_path=tmp_path / "forkserver.log",
            env={**worker_environment(), "ANTHROPIC_API_KEY": SECRET},
        )
    h = Harness(launcher, tmp_path)
    try:
        yield h
    finally:
        await h.stop_all()
        launcher.close()


def wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Block until every pid has exited (pidfd readable); return those still running."""
    pidfds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            pidfds[pid] = os.pidfd_open(pid)
    try:
        deadline = time.monotonic() + timeout
        waiting = dict(pidfds)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select(list(waiting.values()), [], [], left)
            for fd in ready:
                waiting = {p: f for p, f in waiting.items() if f != fd}
        return sorted(waiting)
    finally:
        for fd in pidfds.values():
            os.close(fd)


# -- both launchers ---------------------------------------------------------------------------


async def test_handshake_and_invoke(harness: Harness) -> None:
    worker = await harness.start()
    result = await worker.invoke("x")
    assert result == {"data": {"n": 1}, "text": "hello", "renderer": None}
    assert worker.protocol_errors == []


async def test_plugin_output_goes_to_the_log_not_the_pipe(harness: Harness) -> None:
    worker = await harness.start()
    assert (await worker.invoke("print"))["text"] == "printed"
    assert (await worker.invoke("x"))["text"] == "hello"
    log = worker.log_path.read_text()
    assert "plugin says hi" in log and "plugin complains" in log
    assert worker.protocol_errors == []


async def test_kill_resolves_exited_with_sigkill(harness: Harness) -> None:
    worker = await harness.start()
    worker.process.kill()
    status = await worker.exit_status()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    worker.process.kill()  # harmless once gone


async def test_plugin_exit_code_is_reported(harness: Harness) -> None:
    worker = await harness.start()
    with pytest.raises(RpcError):
        await worker.invoke("exit")
    status = await worker.exit_status()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3


async def test_env_is_exactly_what_was_passed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    env = {**worker_environment(), "LC_ALL": "C.UTF-8", "DEETING_TEST_MARK": "42"}
    assert "ANTHROPIC_API_KEY" not in env
    worker = await harness.start(env)
    seen = (await worker.invoke("env"))["data"]
    # The worker itself adds TMPDIR from the handshake; nothing else may differ.
    assert seen == {**env, "TMPDIR": str(worker.tmp / "tmp")}


async def test_worker_has_its_own_session_one_thread_and_no_stray_fds(harness: Harness) -> None:
    worker = await harness.start()
    pid = worker.process.pid
    assert os.getsid(pid) == pid
    info = (await worker.invoke("info"))["data"]
    assert info["pid"] == pid and info["sid"] == pid
    assert info["threads"] == 1
    targets = list(info["fds"].values())
    assert not any("pidfd" in t for t in targets), targets
    # asyncio's self-pipe is the only socket pair; the forkserver's control socket is gone.
    assert sum(t.startswith("socket:") for t in targets) == 2, targets
    assert info["fds"]["1"] == info["fds"]["2"] == str(worker.log_path)


async def test_a_worker_that_ends_on_its_own_takes_its_process_group_with_it(
    harness: Harness,
) -> None:
    """A graceful end (EOF, shutdown) used to leave the group alone: a daemon outlived it."""
    worker = await harness.start()
    daemon = (await worker.invoke("daemon"))["data"]["pid"]
    assert os.getpgid(daemon) == worker.process.pid
    worker.peer.close()  # EOF: the worker exits by itself, no kill
    status = await worker.exit_status()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    gone = await asyncio.to_thread(procgroup.wait_exited, [daemon], time.monotonic() + TIMEOUT)
    assert gone == []


async def test_several_workers_at_once(harness: Harness) -> None:
    workers = await asyncio.gather(*(harness.start() for _ in range(4)))
    assert len({w.process.pid for w in workers}) == 4
    results = await asyncio.gather(*(w.invoke("x") for w in workers))
    assert all(r["text"] == "hello" for r in results)


# -- the forkserver -----------------------------------------------------------------------------


@pytest.fixture
async def forkserver(tmp_path: Path) -> AsyncIterator[tuple[ForkserverLauncher, Harness]]:
    launcher = ForkserverLauncher(log_path=tmp_path / "forkserver.log")
    h = Harness(launcher, tmp_path)
    try:
        yield launcher, h
    finally:
        await h.stop_all()
        launcher.close()


async def test_forkserver_is_single_threaded(
    forkserver: tuple[ForkserverLauncher, Harness],
) -> None:
    launcher, h = forkserver
    await h.start()
    assert launcher.server_pid is not None
    assert len(os.listdir(f"/proc/{launcher.server_pid}/task")) == 1
    assert os.getsid(launcher.server_pid) == launcher.server_pid


async def test_forkserver_death_ends_its_workers_and_the_next_spawn_restarts_it(
    forkserver: tuple[ForkserverLauncher, Harness],
) -> None:
    launcher, h = forkserver
    first, second = await h.start(), await h.start()
    old_server = launcher.server_pid
    assert old_server is not None
    os.kill(old_server, signal.SIGKILL)
    for worker in (first, second):
        status = await worker.exit_status()
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert wait_gone([first.process.pid, second.process.pid, old_server]) == []
    third = await h.start()
    assert launcher.server_pid not in (None, old_server)
    assert (await third.invoke("x"))["text"] == "hello"


async def test_close_kills_the_workers(forkserver: tuple[ForkserverLauncher, Harness]) -> None:
    launcher, h = forkserver
    worker = await h.start()
    server = launcher.server_pid
    assert server is not None
    launcher.close()
    status = await worker.exit_status()
    assert os.WIFSIGNALED(status)
    assert wait_gone([worker.process.pid, server]) == []


async def test_cancelled_spawn_leaves_no_worker(
    forkserver: tuple[ForkserverLauncher, Harness], tmp_path: Path
) -> None:
    launcher, h = forkserver
    await h.start()  # the forkserver is up
    log_fd = os.open(tmp_path / "cancelled.log", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        spawn = asyncio.ensure_future(launcher.spawn(log_fd, worker_environment()))
        await asyncio.sleep(0)  # the request is on its way
        spawn.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await spawn
    finally:
        os.close(log_fd)
    # Whatever the forkserver started for it is killed when the reply comes in, which is
    # before the reply to a later spawn.
    survivor = await h.start()
    assert (await survivor.invoke("x"))["text"] == "hello"
    server = launcher.server_pid
    children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
    started = {w.process.pid for w in h.running}
    orphans = [int(pid) for pid in children if int(pid) not in started]
    assert len(orphans) <= 1
    assert wait_gone(orphans) == []


async def test_default_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEETING_LAUNCHER", "exec")
    assert isinstance(default_launcher(), ExecLauncher)
    monkeypatch.delenv("DEETING_LAUNCHER")
    chosen = default_launcher()
    if sys.platform.startswith("linux"):
        assert isinstance(chosen, FallbackLauncher)
        assert isinstance(chosen.active, ForkserverLauncher)
    else:
        assert isinstance(chosen, ExecLauncher)
    chosen.close()


@pytest.mark.parametrize(
    ("python", "reason"),
    [
        ("/nonexistent/python3", "No such file or directory"),  # cannot even start
        ("/bin/false", "the forkserver exited"),  # starts, dies at once
    ],
)
async def test_a_failing_forkserver_falls_back_to_exec(
    tmp_path: Path, python: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    launcher = FallbackLauncher(ForkserverLauncher(python, spawn_timeout=TIMEOUT), ExecLauncher())
    h = Harness(launcher, tmp_path)
    try:
        first = await h.start()
        assert (await first.invoke("x"))["text"] == "hello"
        assert isinstance(launcher.active, ExecLauncher)
        assert "workers start with exec from now on" in caplog.text
        assert reason in caplog.text  # the log line says why
        second = await h.start()  # no second attempt at the forkserver
        assert (await second.invoke("x"))["text"] == "hello"
        assert caplog.text.count("the forkserver failed") == 1
    finally:
        await h.stop_all()
        launcher.close()


KERNEL_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, os, sys, tempfile
    from pathlib import Path
    from deeting_tui.workers.forkserver_client import ForkserverLauncher
    from deeting_tui.workers.launcher import worker_environment
    from deeting_tui.rpc.peer import Peer

    async def main():
        root, tmp = Path(sys.argv[1]), Path(sys.argv[2])
        launcher = ForkserverLauncher()
        log_fd = os.open(tmp / "plugin.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        process = await launcher.spawn(log_fd, worker_environment())
        sleeping = asyncio.Event()
        peer = Peer(process.read_fd, process.write_fd,
                    notification_handler=lambda method, params: sleeping.set())
        peer.start()
        await peer.request("initialize", {
            "name": "t", "version": "1.0.0", "root": str(root),
            "data_dir": str(tmp / "data"), "cache_dir": str(tmp / "cache"),
            "tmp_dir": str(tmp / "tmp"), "limits": {"memory_mb": 512},
        })
        daemon = await peer.request("invoke", {"tool": "daemon", "args": {}})
        call = asyncio.ensure_future(peer.request("invoke", {"tool": "sleep", "args": {}}))
        await sleeping.wait()  # the plugin is now stuck in time.sleep, not reading its pipe
        print(json.dumps({"worker": process.pid, "forkserver": launcher.server_pid,
                          "daemon": daemon["data"]["pid"]}), flush=True)
        await call

    asyncio.run(main())
    """
)


def _kernel_with_a_daemon(tmp_path: Path) -> tuple[dict[str, int], subprocess.Popen[bytes]]:
    """A kernel process whose forkserver worker left a daemon in its group; their pids."""
    h_root = tmp_path / "plugin"
    (h_root / "src").mkdir(parents=True)
    (h_root / "src" / "index.py").write_text(PLUGIN)
    kernel = subprocess.Popen(
        [sys.executable, "-c", KERNEL_SCRIPT, str(h_root), str(tmp_path)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert kernel.stdout is not None
        ready, _, _ = select.select([kernel.stdout], [], [], 30)
        assert ready, "the kernel script did not report its pids"
        pids: dict[str, int] = json.loads(kernel.stdout.readline())
    except BaseException:
        kernel.kill()
        kernel.wait()
        raise
    assert os.getsid(pids["worker"]) == pids["worker"] == os.getpgid(pids["daemon"])
    return pids, kernel


def test_sigkilled_kernel_takes_forkserver_workers_and_their_groups_with_it(
    tmp_path: Path,
) -> None:
    pids, kernel = _kernel_with_a_daemon(tmp_path)
    try:
        # The whole process group of the kernel, as a closed terminal or kill -9 -PGID would:
        # the forkserver is not in it, and empties every worker's group before it goes.
        os.killpg(kernel.pid, signal.SIGKILL)
        kernel.wait(TIMEOUT)
        assert wait_gone([pids["worker"], pids["daemon"], pids["forkserver"]]) == []
    finally:
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()


EXEC_KERNEL_SCRIPT = textwrap.dedent(
    """
    import json, subprocess, sys
    from deeting_tui.workers.launcher import GroupReaper

    reaper = GroupReaper()
    group = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"],
                             start_new_session=True)
    reaper.add(group.pid)
    print(json.dumps({"group": group.pid, "reaper": reaper.pid}), flush=True)
    sys.stdin.read()
    """
)


def test_the_exec_reaper_kills_what_a_sigkilled_kernel_left() -> None:
    kernel = subprocess.Popen(
        [sys.executable, "-c", EXEC_KERNEL_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert kernel.stdout is not None
        ready, _, _ = select.select([kernel.stdout], [], [], 30)
        assert ready, "the kernel script did not report its pids"
        pids = json.loads(kernel.stdout.readline())
        reaper = pids["reaper"]
        # In a session of its own: a signal to the kernel's group does not reach it.
        assert os.getsid(reaper) == reaper != os.getsid(kernel.pid)
        os.killpg(kernel.pid, signal.SIGKILL)
        kernel.wait(TIMEOUT)
        assert wait_gone([pids["group"], reaper]) == []
    finally:
        if kernel.poll() is None:
            kernel.kill()
            kernel.wait()


def test_a_sigterm_makes_the_forkserver_kill_its_workers_groups_first(tmp_path: Path) -> None:
    """SIGTERM (also its parent-death signal) is caught: the workers' groups go first."""
    pids, kernel = _kernel_with_a_daemon(tmp_path)
    try:
        os.kill(kernel.pid, signal.SIGSTOP)  # the kernel cannot clean up after the server
        os.kill(pids["forkserver"], signal.SIGTERM)
        assert wait_gone([pids["worker"], pids["daemon"], pids["forkserver"]]) == []
    finally:
        kernel.kill()
        kernel.wait()


def test_worker_environment_keeps_locale_and_home_only() -> None:
    shell = {
        "PATH": "/home/u/bin:/opt/evil:/usr/bin",
        "HOME": "/home/u",
        "LANG": "de_DE.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "TZ": "Europe/Berlin",
        "ANTHROPIC_API_KEY": SECRET,
        "GITHUB_TOKEN": SECRET,
        "SSH_AUTH_SOCK": "/tmp/ssh-agent.sock",
        "AWS_PROFILE": "prod",
        "EDITOR": "vim",
    }
    env = worker_environment(shell)
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"  # not the user's
    assert {k: env[k] for k in ("HOME", "LANG", "LC_TIME", "TZ")} == {
        k: shell[k] for k in ("HOME", "LANG", "LC_TIME", "TZ")
    }
    for leaked in ("ANTHROPIC_API_KEY", "GITHUB_TOKEN", "SSH_AUTH_SOCK", "AWS_PROFILE", "EDITOR"):
        assert leaked not in env
    assert set(env) <= {
        "PATH", "HOME", "LANG", "LC_TIME", "TZ", "PYTHONPATH",
        "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED",
    }  # fmt: skip
