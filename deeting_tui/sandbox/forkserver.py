"""A pre-warmed parent for workers: import the libraries once, fork a fresh worker per spawn.

``python -m deeting_tui.sandbox.worker`` spends most of its start-up importing asyncio and
orjson. This server pays that once, then forks. It preloads LIBRARIES only — never plugin
code: every worker is a fresh fork of a server that has run no plugin, so nothing one plugin
does can reach another.

Protocol, on an AF_UNIX SOCK_SEQPACKET socket inherited from the kernel (``--control FD``);
one JSON message per packet:

* kernel → server: ``{"op": "spawn", "id": N, "env": {...}}`` with three fds attached
  (SCM_RIGHTS): the worker's read fd, its write fd and the plugin's log fd;
* server → kernel: ``{"op": "spawned", "id": N, "pid": PID}`` with a pidfd for the worker
  attached (so the kernel can wait for and signal it without pid-reuse races), or
  ``{"op": "error", "id": N, "message": ...}``;
* server → kernel: ``{"op": "exited", "pid": PID, "status": WAIT_STATUS}`` once per worker;
* kernel → server: ``{"op": "cgroup", "pid": PID, "path": DIR}``: the worker's cgroup v2
  folder, where the kernel made one, for the server to ``cgroup.kill`` if the kernel dies
  (no reply).

The server is the reaper of every worker it starts. When a worker's leader exits, for
whatever reason (a graceful stop included), the server SIGKILLs the worker's whole process
group (and its cgroup, when the kernel made one) and waits until the group is empty *before*
reaping the leader, so a daemon the plugin left
behind never outlives its worker and the group's id cannot be reused meanwhile. It runs in
its own session, so Ctrl-C, SIGHUP or ``kill -9 -PGID`` aimed at the kernel's group do not
take it down first; when the kernel is gone — EOF on the socket, or SIGTERM/SIGHUP (its
parent-death signal is SIGTERM, which it catches) — it kills every worker's group, reaps
them and exits. The server never starts a thread — no event loop runs in it, no pool — so a
forked worker is single-threaded and can still apply Landlock and seccomp before anything
else runs in it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import importlib
import io
import os
import selectors
import signal
import socket
import sys
import traceback
from typing import Any

import orjson

from deeting_tui import procgroup
from deeting_tui.sandbox import worker

#: Imported once in the server so that forked workers start warm. Libraries only.
PRELOAD = (
    "asyncio",
    "orjson",
    "logging",
    "selectors",
    "ctypes",
    "resource",
    "inspect",
    "traceback",
    "importlib.util",
    "deeting_tui.rpc.errors",
    "deeting_tui.rpc.framing",
    "deeting_tui.rpc.peer",
    "deeting_tui.sdk",
    "deeting_tui.sandbox.plugin_import",
    "deeting_tui.sandbox.plugin_path",
    "deeting_tui.sandbox.worker",
    "deeting_tui.sandbox.enforce",
    "deeting_tui.sandbox.landlock",
    "deeting_tui.sandbox.seccomp",
    "deeting_tui.sandbox.capabilities",
    "deeting_tui.sandbox.namespaces",
    "deeting_tui.sandbox.probe",
    "fcntl",
)

SPAWN_FDS = 3  # worker read fd, worker write fd, log fd
MAX_MESSAGE_BYTES = 1024 * 1024


def preload() -> None:
    """Import the worker's libraries and warm what asyncio imports lazily on first use."""
    for name in PRELOAD:
        importlib.import_module(name)
    import asyncio

    # A loop built and closed here starts no thread; it pulls in the lazily imported pieces
    # (the unix event loop, its selector) so every worker does not import them again.
    asyncio.new_event_loop().close()
    # The CDLL handle worker.set_parent_death_signal asks for: load libc once.
    import ctypes

    ctypes.CDLL(None, use_errno=True)
    # What this machine's kernel offers does not change: probe once, every worker inherits it.
    from deeting_tui.sandbox.policy import python_installation
    from deeting_tui.sandbox.probe import probe

    probe()
    python_installation()  # sysconfig's first call is the slowest part of planning a sandbox
    from deeting_tui.sandbox import plugin_path

    plugin_path.warm()  # each worker's import isolation (plugin_path.py) starts warm


#: Set in a spawn's environment for a worker that will run a stock MCP server.
WORKER_KIND = "DEETING_WORKER_KIND"


def warm_mcp() -> None:
    """Import the MCP bridge (the SDK: about a second of pydantic models) here, once, the
    first time an MCP plugin's worker is asked for: its first worker pays that as it would
    anyway, every later one (a restart, another server, each test) forks from a warm
    parent. Never at start: a home without MCP plugins never pays for it. The import starts
    no thread (checked by the worker before its sandbox, as always)."""
    if "deeting_tui.mcp.bridge" in sys.modules:
        return
    with contextlib.suppress(ImportError):
        importlib.import_module("deeting_tui.mcp.bridge")


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


class ForkServer:
    """The single-threaded loop: spawn requests in, spawned/exited replies out."""

    def __init__(self, control: socket.socket, wakeup: int | None = None) -> None:
        self.control = control
        self.wakeup = wakeup  # readable when SIGTERM/SIGHUP arrived: the kernel is gone
        self.selector = selectors.DefaultSelector()
        self.children: dict[int, int] = {}  # pid -> pidfd
        self.cgroups: dict[int, str] = {}  # pid -> its cgroup v2 folder, if the kernel made one

    # -- loop --------------------------------------------------------------------------------

    def run(self) -> None:
        self.selector.register(self.control, selectors.EVENT_READ, None)
        if self.wakeup is not None:
            self.selector.register(self.wakeup, selectors.EVENT_READ, 0)
        try:
            going = False
            while not going:
                for key, _events in self.selector.select():
                    if key.data is None:
                        if not self._on_control():
                            return
                    elif key.data == 0:
                        going = True  # told to go, after what else is ready this round
                    else:
                        self._reap(key.data)
        finally:
            self.shutdown()  # kills every worker's cgroup and group

    def _on_control(self) -> bool:
        """Handle one request; False when the kernel is gone."""
        try:
            data, fds, flags, _addr = socket.recv_fds(self.control, MAX_MESSAGE_BYTES, SPAWN_FDS)
        except (ConnectionResetError, BrokenPipeError):
            return False
        if not data and not fds:
            return False  # EOF: the kernel closed its end or died
        request_id: Any = None
        try:
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                raise ValueError("request truncated (too large, or too many fds)")
            request = orjson.loads(data)
            if not isinstance(request, dict):
                raise ValueError("a request must be an object")
            request_id = request.get("id")
            if request.get("op") == "cgroup":
                _close_all(fds)
                self._note_cgroup(request.get("pid"), request.get("path"))
                return True
            if request.get("op") != "spawn":
                raise ValueError(f"unknown op {request.get('op')!r}")
            env = request.get("env")
            if not isinstance(env, dict) or not all(
                _env_name(k) and isinstance(v, str) and "\0" not in v for k, v in env.items()
            ):
                raise ValueError("env must map variable names to strings without NUL")
            if len(fds) != SPAWN_FDS:
                raise ValueError(f"a spawn needs {SPAWN_FDS} fds, got {len(fds)}")
        except (ValueError, orjson.JSONDecodeError) as exc:
            _close_all(fds)
            return self._send({"op": "error", "id": request_id, "message": str(exc)})
        if env.get(WORKER_KIND) == "mcp":
            warm_mcp()
        try:
            pid, pidfd = self._spawn(fds[0], fds[1], fds[2], env)
        except OSError as exc:
            return self._send({"op": "error", "id": request_id, "message": f"fork failed: {exc}"})
        finally:
            _close_all(fds)
        return self._send({"op": "spawned", "id": request_id, "pid": pid}, [pidfd])

    def _note_cgroup(self, pid: Any, path: Any) -> None:
        """Remember a live worker's cgroup folder (anything else is ignored: no reply)."""
        if pid in self.children and isinstance(path, str) and path.startswith("/"):
            self.cgroups[pid] = path.replace("\0", "")

    def _send(self, message: dict[str, Any], fds: list[int] | None = None) -> bool:
        """Blocking send; False when the kernel is gone."""
        try:
            if fds:
                socket.send_fds(self.control, [encode(message)], fds)
            else:
                self.control.send(encode(message))
        except (BrokenPipeError, ConnectionResetError):
            return False
        return True

    # -- children ----------------------------------------------------------------------------

    def _spawn(
        self, read_fd: int, write_fd: int, log_fd: int, env: dict[str, str]
    ) -> tuple[int, int]:
        server_pid = os.getpid()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()  # or the child would write our buffered output again
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self._become_worker(server_pid, read_fd, write_fd, log_fd, env)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                with contextlib.suppress(BaseException):
                    os.write(2, traceback.format_exc().encode())
            finally:
                with contextlib.suppress(BaseException):
                    atexit._run_exitfuncs()  # what a normal interpreter exit would run
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(BaseException):
                        stream.flush()
                os._exit(code)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            # Without a pidfd we could neither reap nor report it: do not leave it running.
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        self.children[pid] = pidfd
        self.selector.register(pidfd, selectors.EVENT_READ, pid)
        return pid, pidfd

    def _become_worker(
        self, server_pid: int, read_fd: int, write_fd: int, log_fd: int, env: dict[str, str]
    ) -> None:
        """In the forked child: shed the server, become a worker, serve. Never returns into
        the server loop (the caller always ``os._exit``s)."""
        worker.set_parent_death_signal(server_pid)  # cleared by fork; the server dies with us
        os.setsid()
        # Close the server's objects before closing fds wholesale, so no object left behind
        # later closes an fd number the worker has reused.
        self.selector.close()
        self.control.close()
        if self.wakeup is not None:
            signal.set_wakeup_fd(-1)
            with contextlib.suppress(OSError):
                os.close(self.wakeup)
        for pidfd in self.children.values():
            with contextlib.suppress(OSError):
                os.close(pidfd)
        self.children.clear()
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the kernel's
        os.environ.clear()
        os.environ.update(env)
        sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        close_fds_except({0, 1, 2, read_fd, write_fd})
        sys.stdout = _log_stream(1)
        sys.stderr = _log_stream(2)
        sys.argv = [worker.__file__ or "worker"]
        worker.serve(read_fd, write_fd)

    def _reap(self, pid: int) -> None:
        """The leader exited: empty its group, then reap it (never the other way round)."""
        pidfd = self.children.pop(pid)
        cgroup = self.cgroups.pop(pid, None)
        if cgroup is not None:  # the kernel empties and removes it too, if it is still there
            procgroup.kill_cgroup(cgroup)
        self.selector.unregister(pidfd)
        _end_group(pid)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self._send({"op": "exited", "pid": pid, "status": status})

    def shutdown(self) -> None:
        """Kill every worker's cgroup and process group, reap them, release everything."""
        for path in self.cgroups.values():
            procgroup.kill_cgroup(path)
        self.cgroups.clear()
        for pid in self.children:  # all groups at once first: none waits for another's turn
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)  # not yet in its own group (setsid not run yet)
        for pid, pidfd in self.children.items():
            _end_group(pid)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.close(pidfd)
        self.children.clear()
        with contextlib.suppress(Exception):
            self.selector.close()
        self.control.close()


def _end_group(pid: int) -> None:
    """SIGKILL the worker's process group and wait for it to empty; the leader itself is
    still unreaped, so ``pid`` names this group and no other."""
    survivors = procgroup.kill_group(pid)
    if survivors:
        print(
            f"forkserver: worker {pid}'s process group still has {survivors} after SIGKILL",
            file=sys.stderr,
            flush=True,
        )


def close_fds_except(keep: set[int]) -> None:
    """Close every fd but ``keep``. Empty ranges are skipped: ``os.closerange(n, n)`` passes
    ``n - 1`` as the top to close_range(2), and for n = 0 that wraps to "close everything"."""
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = max(low, fd + 1)
    top = _max_fd()
    if top > low:
        os.closerange(low, top)


def _max_fd() -> int:
    try:
        return max(int(os.sysconf("SC_OPEN_MAX")), 256)
    except (ValueError, OSError):
        return 65536


def _env_name(key: Any) -> bool:
    return isinstance(key, str) and bool(key) and "=" not in key and "\0" not in key


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _log_stream(fd: int) -> io.TextIOWrapper:
    """An unbuffered-through, line-buffered text stream on ``fd`` (like PYTHONUNBUFFERED)."""
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deeting_tui.sandbox.forkserver")
    parser.add_argument("--control", type=int, required=True, help="the inherited socket fd")
    parser.add_argument("--parent", type=int, default=0, help="the kernel's pid")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wakeup = _catch_goodbyes()
    # SIGTERM, not SIGKILL, when the kernel dies: caught, so the workers' groups go first.
    worker.set_parent_death_signal(options.parent, signal.SIGTERM)
    control = socket.socket(fileno=options.control)
    control.setblocking(True)
    preload()
    gc.collect()
    gc.freeze()  # the preloaded heap stays shared with workers instead of copied on write
    ForkServer(control, wakeup).run()


def _catch_goodbyes() -> int:
    """SIGTERM and SIGHUP make the loop's wake-up fd readable instead of killing the server
    outright; returns the fd to watch. No handler code runs mid-spawn: the loop decides."""
    read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_end)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda _signum, _frame: None)
    return read_end


if __name__ == "__main__":
    main()
