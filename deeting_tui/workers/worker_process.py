"""A worker process as the kernel holds it, and what every way of starting one shares.

Both launchers (``launcher.ExecLauncher`` and ``forkserver_client.ForkserverLauncher``) build
a ``WorkerProcess`` from the same pipes and the same scrubbed environment; keeping those here,
below both, lets ``launcher`` pick the forkserver without the two importing each other.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("deeting.launcher")

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass
class WorkerProcess:
    """A started worker, seen from the kernel: its pid, our pipe ends, its exit."""

    pid: int
    read_fd: int  # kernel reads the worker's messages here
    write_fd: int  # kernel writes requests here
    exited: asyncio.Future[int] = field(repr=False)  # resolves to the wait status
    _kill: Callable[[], None] = field(repr=False)
    #: A pidfd naming this very process (never a reused pid), or -1 to open one on demand.
    pidfd: int = field(default=-1, repr=False)
    #: Tells the worker's reaper (forkserver, or the exec launcher's reaper process) the
    #: worker's cgroup v2 folder, to ``cgroup.kill`` should the kernel die first.
    _contain: Callable[[str], None] | None = field(default=None, repr=False)

    def kill(self) -> None:
        """SIGKILL the worker's whole process group; harmless if it is already gone."""
        self._kill()

    def contain(self, cgroup_folder: str) -> None:
        """The worker now lives in this cgroup v2 folder (best effort: never raises)."""
        if self._contain is not None:
            try:
                self._contain(cgroup_folder)
            except OSError as exc:
                log.warning("worker %d: its reaper was not told its cgroup: %s", self.pid, exc)

    def take_fd(self, fd: int) -> int:
        """A copy, in this process, of the worker's file descriptor ``fd`` (close-on-exec).

        How the kernel takes over the proxy listener a worker made inside its private network
        namespace. Raises OSError when the worker is gone or the machine refuses.
        """
        if self.exited.done():
            raise ProcessLookupError(f"worker {self.pid} has exited")
        if self.pidfd >= 0:
            return pidfd_getfd(self.pidfd, fd)
        pidfd = os.pidfd_open(self.pid)
        try:
            return pidfd_getfd(pidfd, fd)
        finally:
            os.close(pidfd)


_NR_PIDFD_GETFD = 438  # the same on every architecture (added in 5.6)


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """pidfd_getfd(2), which the standard library does not wrap."""
    import ctypes  # only plugins with host grants get here

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = int(libc.syscall(ctypes.c_long(_NR_PIDFD_GETFD), pidfd, fd, 0))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pidfd_getfd: {os.strerror(err)}")
    return result


def _pipes() -> tuple[int, int, int, int]:
    """(kernel_read, worker_write, worker_read, kernel_write); kernel ends close-on-exec."""
    to_kernel_r, to_kernel_w = os.pipe()
    to_worker_r, to_worker_w = os.pipe()
    return to_kernel_r, to_kernel_w, to_worker_r, to_worker_w


def worker_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a worker starts with: enough to run Python, no secrets.

    API keys and tokens in the kernel's environment are none of a plugin's business, and
    neither is the rest of the user's shell: only the locale and time zone pass, HOME (which
    ``~`` in filesystem scopes means), and a fixed PATH of system folders for plugins granted
    ``shell``. The worker adds proxy variables itself when its scopes need them.
    """
    source = os.environ if base is None else base
    keep = (
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "LC_MESSAGES",
        "LC_NUMERIC",
        "LC_TIME",
        "TZ",
        "HOME",
        "PYTHONPATH",
        "DEETING_DEBUG",
    )
    env = {key: source[key] for key in keep if key in source}
    env["PATH"] = SYSTEM_PATH
    # The worker imports deeting_tui from wherever the kernel did, installed or not.
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env
