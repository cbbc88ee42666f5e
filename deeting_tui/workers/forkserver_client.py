"""The kernel's side of the forkserver: one warm process that forks workers on request.

Exec'ing a fresh interpreter per worker costs ~130 ms, mostly importing asyncio; forking
from a server that preloaded only libraries (never plugin code) brings start-to-ready to a
few milliseconds. See ``deeting_tui.sandbox.forkserver`` for the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .worker_process import WorkerProcess, _pipes, worker_environment

log = logging.getLogger("deeting.forkserver")

FORKSERVER_MODULE = "deeting_tui.sandbox.forkserver"


@dataclass
class _ForkedWorker:
    """The kernel's record of one worker the forkserver started."""

    pid: int
    pidfd: int  # from the forkserver: wait for / signal the worker without pid reuse races
    exited: asyncio.Future[int]

    def kill(self) -> None:
        if self.exited.done():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        # Until the child has run setsid() its group does not exist yet; the pidfd always
        # names this very process, never a reused pid.
        if self.pidfd >= 0:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)

    def release(self, status: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        if self.pidfd >= 0:
            if loop is not None:
                with contextlib.suppress(ValueError, OSError, RuntimeError):
                    loop.remove_reader(self.pidfd)
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = -1
        if not self.exited.done():
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                self.exited.set_result(status)


class _Forkserver:
    """One running forkserver process and what the kernel knows about it."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        control: socket.socket,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.process = process
        self.control = control
        self.loop = loop
        self.pending: dict[int, asyncio.Future[_ForkedWorker]] = {}
        self.workers: dict[int, _ForkedWorker] = {}
        self.send_lock = asyncio.Lock()
        self.alive = True


class ForkserverLauncher:
    """Workers forked from a pre-warmed ``deeting_tui.sandbox.forkserver`` process.

    The forkserver is started on first use and restarted on the next
    spawn if it dies; when it dies its workers die with it (PR_SET_PDEATHSIG) and their
    ``exited`` futures resolve as if SIGKILLed. Each worker gets the given env exactly, its
    own session, stdout/stderr on the log fd and only its two RPC fds besides.
    """

    #: Wait status reported for workers lost with their forkserver.
    LOST_STATUS = int(signal.SIGKILL)

    def __init__(
        self,
        python: str = sys.executable,
        *,
        log_path: Path | None = None,
        env: dict[str, str] | None = None,
        spawn_timeout: float = 10.0,
    ) -> None:
        self.python = python
        self.log_path = log_path  # the forkserver's own stdout/stderr (crashes), if given
        self.env = env  # the forkserver's environment; default worker_environment()
        self.spawn_timeout = spawn_timeout
        self._server: _Forkserver | None = None
        self._ids = itertools.count(1)

    @property
    def server_pid(self) -> int | None:
        server = self._server
        return server.process.pid if server is not None and server.alive else None

    # -- the forkserver process ---------------------------------------------------------------

    def _ensure_server(self, loop: asyncio.AbstractEventLoop) -> _Forkserver:
        server = self._server
        if server is not None and server.alive and server.loop is loop:
            return server
        if server is not None:
            self._shutdown_server(server)
        kernel_end, server_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            log: Any = subprocess.DEVNULL
            if self.log_path is not None:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                log = open(self.log_path, "ab", buffering=0)  # noqa: SIM115
            try:
                process = subprocess.Popen(
                    [
                        self.python,
                        "-m",
                        FORKSERVER_MODULE,
                        "--control",
                        str(server_end.fileno()),
                        "--parent",
                        str(os.getpid()),
                    ],
                    pass_fds=(server_end.fileno(),),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    env=self.env if self.env is not None else worker_environment(),
                    start_new_session=True,
                    cwd="/",
                )
            finally:
                if log is not subprocess.DEVNULL:
                    log.close()
        except BaseException:
            kernel_end.close()
            raise
        finally:
            server_end.close()
        kernel_end.setblocking(False)
        server = _Forkserver(process, kernel_end, loop)
        loop.add_reader(kernel_end.fileno(), self._on_readable, server)
        self._server = server
        return server

    def _on_readable(self, server: _Forkserver) -> None:
        while server.alive:
            try:
                data, fds, _flags, _addr = socket.recv_fds(server.control, 1 << 16, 1)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if not data and not fds:
                self._lost(server)
                return
            try:
                message = orjson.loads(data)
            except orjson.JSONDecodeError:
                message = None
            if not isinstance(message, dict):
                for fd in fds:
                    os.close(fd)
                continue
            self._dispatch(server, message, fds)

    def _dispatch(self, server: _Forkserver, message: dict[str, Any], fds: list[int]) -> None:
        op = message.get("op")
        request_id = _int(message.get("id"))
        pid = _int(message.get("pid"))
        if op == "spawned" and pid > 0 and len(fds) == 1:
            worker = _ForkedWorker(pid, fds[0], server.loop.create_future())
            server.workers[pid] = worker
            future = server.pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(worker)
            else:
                worker.kill()  # its spawn() was cancelled; nobody will ever talk to it
            return
        for fd in fds:
            os.close(fd)
        if op == "error":
            future = server.pending.pop(request_id, None)
            if future is not None and not future.done():
                text = message.get("message")
                future.set_exception(OSError(f"the forkserver could not spawn a worker: {text}"))
        elif op == "exited":
            gone = server.workers.pop(pid, None)
            status = message.get("status")
            if gone is not None:
                gone.release(status if isinstance(status, int) else self.LOST_STATUS)

    def _lost(self, server: _Forkserver) -> None:
        """The forkserver died (or we closed it): fail spawns, account for its workers."""
        if not server.alive:
            return
        server.alive = False
        if self._server is server:
            self._server = None
        loop = server.loop
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            loop.remove_reader(server.control.fileno())
        server.control.close()
        pending, server.pending = server.pending, {}
        for future in pending.values():
            if not future.done():
                with contextlib.suppress(RuntimeError):
                    future.set_exception(OSError("the forkserver exited"))
        # Its workers die with it (PR_SET_PDEATHSIG); make sure, then wait for each to go.
        for worker in list(server.workers.values()):
            worker.kill()
            if worker.pidfd < 0 or loop.is_closed():
                worker.release(self.LOST_STATUS)
                continue

            def gone(worker: _ForkedWorker = worker) -> None:
                server.workers.pop(worker.pid, None)
                worker.release(self.LOST_STATUS, loop)

            try:
                loop.add_reader(worker.pidfd, gone)
            except (ValueError, OSError, RuntimeError):
                worker.release(self.LOST_STATUS)
        if server.process.poll() is None:
            with contextlib.suppress(OSError):
                server.process.kill()
            self._reap_later(server)

    def _reap_later(self, server: _Forkserver) -> None:
        loop = server.loop
        try:
            pidfd = os.pidfd_open(server.process.pid)
        except OSError:
            server.process.poll()
            return

        def reap() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            server.process.wait()

        try:
            loop.add_reader(pidfd, reap)
        except (ValueError, OSError, RuntimeError):
            os.close(pidfd)
            server.process.wait()

    def _shutdown_server(self, server: _Forkserver, timeout: float = 5.0) -> None:
        """Close the socket (the forkserver then kills and reaps its workers and exits)."""
        if server.alive:
            server.alive = False
            if self._server is server:
                self._server = None
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                server.loop.remove_reader(server.control.fileno())
            server.control.close()
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
        for future in server.pending.values():
            if not future.done():
                with contextlib.suppress(RuntimeError):
                    future.set_exception(OSError("the launcher was closed"))
        server.pending.clear()
        for worker in server.workers.values():
            worker.kill()
            worker.release(self.LOST_STATUS, server.loop)
        server.workers.clear()

    # -- Launcher ----------------------------------------------------------------------------

    async def spawn(self, log_fd: int, env: dict[str, str]) -> WorkerProcess:
        loop = asyncio.get_running_loop()
        server = self._ensure_server(loop)
        request_id = next(self._ids)
        payload = orjson.dumps({"op": "spawn", "id": request_id, "env": env})
        future: asyncio.Future[_ForkedWorker] = loop.create_future()
        server.pending[request_id] = future
        kernel_r, worker_w, worker_r, kernel_w = _pipes()
        try:
            try:
                await self._send(server, payload, [worker_r, worker_w, log_fd])
            finally:
                os.close(worker_r)
                os.close(worker_w)
            try:
                worker = await asyncio.wait_for(asyncio.shield(future), self.spawn_timeout)
            except TimeoutError:
                # A wedged forkserver: retire it; the next spawn starts a fresh one.
                self._lost(server)
                raise OSError(
                    f"the forkserver did not answer within {self.spawn_timeout:g} s"
                ) from None
        except BaseException:
            server.pending.pop(request_id, None)
            if not future.done():
                future.cancel()  # a late "spawned" then kills the orphan
            elif not future.cancelled() and future.exception() is None:
                future.result().kill()
            os.close(kernel_r)
            os.close(kernel_w)
            raise

        def contain(folder: str) -> None:
            self._contain(server, worker.pid, folder)

        return WorkerProcess(
            worker.pid,
            kernel_r,
            kernel_w,
            worker.exited,
            worker.kill,
            pidfd=worker.pidfd,
            _contain=contain,
        )

    def _contain(self, server: _Forkserver, pid: int, folder: str) -> None:
        """Tell the forkserver a worker's cgroup (one small packet; dropped, with a warning,
        in the unlikely case the socket's buffer is full)."""
        if not server.alive:
            return
        message = orjson.dumps({"op": "cgroup", "pid": pid, "path": folder})
        try:
            server.control.send(message)
        except BlockingIOError:
            log.warning("forkserver busy: worker %d's cgroup not passed on", pid)

    async def _send(self, server: _Forkserver, payload: bytes, fds: list[int]) -> None:
        async with server.send_lock:
            while True:
                if not server.alive:
                    raise OSError("the forkserver exited")
                try:
                    socket.send_fds(server.control, [payload], fds)
                    return
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError) as exc:
                    self._lost(server)
                    raise OSError(f"the forkserver exited: {exc}") from None
                writable: asyncio.Future[None] = server.loop.create_future()
                fd = server.control.fileno()
                server.loop.add_writer(fd, _wake, writable)
                try:
                    await writable
                finally:
                    with contextlib.suppress(ValueError, OSError):
                        server.loop.remove_writer(fd)

    def close(self) -> None:
        """Stop the forkserver; it SIGKILLs and reaps every worker before exiting."""
        server = self._server
        if server is not None:
            self._shutdown_server(server)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
