"""How a worker process comes to exist: pipes, fds, session, and exit detection.

The supervisor only needs "a process with two pipe ends and a way to learn that it ended";
keeping that here lets the forkserver and the plain exec path be swapped and measured
against each other without touching supervision logic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Protocol

from deeting_tui import procgroup

from .worker_process import WorkerProcess, _pipes, worker_environment

log = logging.getLogger("deeting.launcher")

WORKER_MODULE = "deeting_tui.sandbox.worker"
REAPER_MODULE = "deeting_tui.workers.reaper"


def describe_exit(status: int) -> str:
    """'exited with code 3' / 'was killed by signal 9 (SIGKILL)' from a wait status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {number} ({name})"
    if os.WIFEXITED(status):
        return f"exited with code {os.WEXITSTATUS(status)}"
    return f"ended with wait status {status}"


class Launcher(Protocol):
    async def spawn(self, log_fd: int, env: dict[str, str]) -> WorkerProcess: ...

    def close(self) -> None: ...


class GroupReaper:
    """The kernel's handle on its reaper process (``deeting_tui.workers.reaper``).

    Started on first use; told each worker's process group as it starts and ends, so that
    if the kernel dies, even by SIGKILL, every group still running is killed. A reaper that
    died is restarted on the next message, with every group it should hold.
    """

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.groups: set[int] = set()
        self.cgroups: dict[int, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._fd = -1

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def add(self, pgid: int) -> None:
        self.groups.add(pgid)
        self._send(f"+{pgid}\n".encode())

    def remove(self, pgid: int) -> None:
        self.groups.discard(pgid)
        self.cgroups.pop(pgid, None)
        self._send(f"-{pgid}\n".encode())

    def contain(self, pgid: int, cgroup_folder: str) -> None:
        if pgid in self.groups and "\n" not in cgroup_folder:
            self.cgroups[pgid] = cgroup_folder
            self._send(f"={pgid} {cgroup_folder}\n".encode())

    def _send(self, line: bytes) -> None:
        if self._fd < 0:
            self._start()
            return  # a fresh reaper was told every group already
        try:
            os.write(self._fd, line)
        except BrokenPipeError:
            log.warning("the worker reaper exited; starting another")
            self.close()
            self._start()

    def _start(self) -> None:
        read_end, write_end = os.pipe()
        try:
            self._process = subprocess.Popen(
                [self.python, "-m", REAPER_MODULE, str(os.getpid())],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=worker_environment(),
                start_new_session=True,
                cwd="/",
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._fd = write_end
        lines = [f"+{pgid}\n" for pgid in self.groups]
        lines += [f"={pgid} {folder}\n" for pgid, folder in self.cgroups.items()]
        if lines:
            os.write(write_end, "".join(lines).encode())

    def close(self) -> None:
        """EOF: the reaper kills what it still holds (nothing, after a clean shutdown), exits."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._process is not None:
            process, self._process = self._process, None
            try:
                process.wait(5.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class ExecLauncher:
    """``python -m deeting_tui.sandbox.worker`` per worker: simple, no shared parent state.

    The kernel is each worker's parent, so it is the one that empties a worker's process
    group before reaping it; a :class:`GroupReaper` covers the kernel's own death.
    """

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python
        self.reaper = GroupReaper(python)

    async def spawn(self, log_fd: int, env: dict[str, str]) -> WorkerProcess:
        kernel_r, worker_w, worker_r, kernel_w = _pipes()
        try:
            process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    WORKER_MODULE,
                    "--rpc",
                    f"{worker_r},{worker_w}",
                    "--parent",
                    str(os.getpid()),
                ],
                pass_fds=(worker_r, worker_w),
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=log_fd,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            for fd in (kernel_r, kernel_w):
                os.close(fd)
            raise
        finally:
            os.close(worker_r)
            os.close(worker_w)
        try:
            self.reaper.add(process.pid)
        except OSError as exc:  # no reaper: the worker still dies with us, its group might not
            log.warning("could not start the worker reaper: %s", exc)
        exited = _watch_exit(process, self.reaper)

        def kill() -> None:
            if exited.done():
                return
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            except PermissionError:
                os.kill(process.pid, signal.SIGKILL)

        def contain(folder: str) -> None:
            self.reaper.contain(process.pid, folder)

        return WorkerProcess(process.pid, kernel_r, kernel_w, exited, kill, _contain=contain)

    def close(self) -> None:
        self.reaper.close()


def _watch_exit(process: subprocess.Popen[bytes], reaper: GroupReaper) -> asyncio.Future[int]:
    """A future for the wait status: a pidfd in the loop on Linux, a waiting thread elsewhere.

    Either way the worker's process group is emptied before the leader is reaped (see
    ``deeting_tui.procgroup``), in a thread: waiting for a group to die must not stall the
    loop.
    """
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[int] = loop.create_future()
    pid = process.pid

    def end_group() -> None:
        """The leader has exited, unreaped, so ``pid`` still names its group: empty it."""
        if sys.platform.startswith("linux"):
            survivors = procgroup.kill_group(pid)
            if survivors:
                log.error("worker %d: its process group still has %s after SIGKILL", pid, survivors)

    def reap() -> None:
        reaper.remove(pid)
        status = os.waitpid(pid, 0)[1]
        process.returncode = os.waitstatus_to_exitcode(status)
        if not exited.done():
            exited.set_result(status)

    if hasattr(os, "pidfd_open"):
        pidfd = os.pidfd_open(pid)

        def on_exit() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            loop.run_in_executor(None, end_group).add_done_callback(lambda _: reap())

        loop.add_reader(pidfd, on_exit)
    else:

        def wait() -> None:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
            end_group()
            try:
                loop.call_soon_threadsafe(reap)
            except RuntimeError:  # a closed loop: nobody is waiting any more; just reap
                os.waitpid(pid, 0)

        threading.Thread(target=wait, name=f"wait-{pid}", daemon=True).start()
    return exited


class FallbackLauncher:
    """The forkserver, falling back to exec for good if it cannot start or spawn.

    A forkserver that fails (a broken interpreter path, a platform quirk, a crash on start)
    must not leave plugins unable to run: workers then start the slow way, with exactly the
    same environment and sandbox, and the reason is logged once.
    """

    def __init__(self, primary: Launcher, fallback: Launcher) -> None:
        self._primary: Launcher | None = primary
        self._fallback = fallback
        self._closed = False

    @property
    def active(self) -> Launcher:
        return self._primary if self._primary is not None else self._fallback

    async def spawn(self, log_fd: int, env: dict[str, str]) -> WorkerProcess:
        primary = self._primary
        if primary is not None:
            try:
                return await primary.spawn(log_fd, env)
            except OSError as exc:
                if self._closed:  # shutting down: a spawn cut short is not a failed forkserver
                    raise
                self._primary = None
                primary.close()
                log.warning(
                    "the forkserver failed (%s); workers start with exec from now on "
                    "(slower start, same sandbox)",
                    exc,
                )
        return await self._fallback.spawn(log_fd, env)

    def close(self) -> None:
        self._closed = True
        if self._primary is not None:
            self._primary.close()
        self._fallback.close()


def default_launcher(log_path: Path | None = None) -> Launcher:
    """The forkserver on Linux unless ``DEETING_LAUNCHER=exec`` (exec if it fails); exec
    everywhere else."""
    if (
        sys.platform.startswith("linux")
        and os.environ.get("DEETING_LAUNCHER", "") != "exec"
        and hasattr(os, "pidfd_open")
    ):
        from .forkserver_client import ForkserverLauncher  # only where it can run

        return FallbackLauncher(ForkserverLauncher(log_path=log_path), ExecLauncher())
    return ExecLauncher()
