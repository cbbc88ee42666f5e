"""The child side of a plugin: one process per enabled plugin, serving JSON-RPC on pipe fds.

Order matters and is fixed here: the kernel's ``initialize`` request carries the limits, so the
worker sets rlimits, then applies the OS sandbox (``apply_os_sandbox``: Landlock, seccomp and the
guard, see sandbox/enforce.py), and only then imports plugin code — nothing the plugin runs ever
executes unconfined. The plugin's stdout/stderr are the plugin's log file (set up by the launcher
before this module runs), so a stray ``print`` can never corrupt the protocol, which lives on
separate fds.

Sync plugin functions run inline (the cheapest path, and a hung one is the supervisor's job to
kill); async ones run as tasks on the worker's event loop so they can be cancelled. The loop
runs only while it has work — a task, a timer or a callback, e.g. from an async call or a
background task the plugin started. Otherwise the worker waits for the kernel in a plain
blocking wait (one poll() on its pipe and on the loop's self-pipe, then a plain read), which
wakes measurably faster than a poll through the loop (see bench/). A plugin thread that hands
work to the loop (``run_coroutine_threadsafe``) wakes that wait through the self-pipe, so it is
served at once even while nothing else is pending.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import resource
import select
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from deeting_tui.rpc.errors import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    NOT_READY,
    OUT_OF_MEMORY,
    PERMISSION_DENIED,
    PLUGIN_ERROR,
    RpcError,
)
from deeting_tui.rpc.peer import Peer, is_awaitable
from deeting_tui.rpc.protocol import (
    DENIED,
    EVENT,
    INITIALIZE,
    INVOKE,
    LIFECYCLE_HOOKS,
    ON_EVENT,
    POSTUPGRADE,
    PREUPGRADE,
    SHUTDOWN,
    DeniedParams,
    EventParams,
    InitializeResult,
    InvokeParams,
    OnEventResult,
    UpgradeState,
)
from deeting_tui.sandbox.guard import SandboxDenied
from deeting_tui.sandbox.plugin_import import import_plugin_module
from deeting_tui.sdk import Context, ResultError, current_call_id, normalize_result

#: Hooks a plugin may define besides ``invoke``; each may be sync or async.
OPTIONAL_FUNCTIONS = (*LIFECYCLE_HOOKS, POSTUPGRADE, ON_EVENT, INVOKE)
OPEN_FILES_LIMIT = 256
FILE_SIZE_LIMIT_MB = 512  # the default disk quota (kimai.json limits.disk_mb)
CPU_LIMIT_S = 6 * 3600
MIB = 1024 * 1024
THREAD_STACK_BYTES = 2 * MIB
M_ARENA_MAX = -8  # mallopt parameter (malloc.h)

#: The fd the worker answers the kernel on; fault tests write garbage onto it on purpose.
RPC_WRITE_FD: int | None = None

log = logging.getLogger("deeting.worker")


def set_parent_death_signal(parent_pid: int, signum: int = signal.SIGKILL) -> None:
    """Die with the kernel even if it is SIGKILLed while this worker is stuck in plugin code.

    The pipe EOF only helps a worker that is reading; PR_SET_PDEATHSIG covers a busy one. The
    getppid check closes the race where the parent died before the prctl took effect. The
    forkserver asks for a signal it can catch instead, so it can kill its workers' process
    groups before it goes.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # lazy: only Linux needs it, and it costs start-up time elsewhere

    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, int(signum), 0, 0, 0)
    if parent_pid and os.getppid() != parent_pid:
        if signum != signal.SIGKILL:
            os.kill(os.getpid(), signum)  # the parent is gone already: act as if told so
            return
        os._exit(0)


def set_rlimits(
    memory_mb: int,
    open_files: int = OPEN_FILES_LIMIT,
    file_size_mb: int = FILE_SIZE_LIMIT_MB,
    cpu_seconds: int = CPU_LIMIT_S,
) -> None:
    """Soft = hard so plugin code cannot raise them back.

    Memory: RLIMIT_AS at ``memory_mb`` on top of the address space the worker already has,
    because it counts every mapping — shared anonymous memory and memfd mappings too, which
    RLIMIT_DATA does not see; RLIMIT_DATA (private data) stays as a second bound. So that
    threads still start under an address-space limit, glibc keeps one malloc arena (each
    extra one reserves 64 MiB) and thread stacks are THREAD_STACK_BYTES. Every process the
    plugin starts inherits these; the kernel bounds their sum (cgroup or watchdog).

    ``file_size_mb`` is the plugin's disk quota: no single file may outgrow it (EFBIG), the
    kernel's watchdog bounds the folders' total. RLIMIT_CPU counts the worker's whole life,
    so it is only a backstop against a runaway that somehow escapes the per-call deadlines.
    """

    def cap(which: int, value: int) -> None:
        _soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))

    limit_threads_address_space()
    cap(resource.RLIMIT_AS, memory_mb * MIB + address_space_in_use())
    cap(resource.RLIMIT_DATA, memory_mb * MIB)
    cap(resource.RLIMIT_NOFILE, open_files)
    cap(resource.RLIMIT_FSIZE, file_size_mb * MIB)
    cap(resource.RLIMIT_CPU, cpu_seconds)
    cap(resource.RLIMIT_CORE, 0)


def address_space_in_use() -> int:
    """Bytes of address space this process has mapped now (0 where /proc cannot say)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * resource.getpagesize()


def limit_threads_address_space() -> None:
    """One malloc arena and small thread stacks, so an address-space limit leaves room for
    threads: glibc reserves 64 MiB per extra arena and 8 MiB per default stack."""
    import threading

    threading.stack_size(THREAD_STACK_BYTES)
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mallopt(M_ARENA_MAX, 1)
        # Threads that C libraries start take the process default, not threading's size.
        attr = ctypes.create_string_buffer(128)  # pthread_attr_t is 56 bytes on x86-64
        if libc.pthread_attr_init(attr) == 0:
            libc.pthread_attr_setstacksize(attr, ctypes.c_size_t(THREAD_STACK_BYTES))
            libc.pthread_setattr_default_np(attr)
            libc.pthread_attr_destroy(attr)
    except (OSError, AttributeError):  # not glibc: its defaults are smaller anyway
        pass


def apply_os_sandbox(
    init: dict[str, Any], report: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The OS sandbox for the granted scopes (see sandbox/enforce.py); before any plugin
    import and before any thread exists. Returns what was applied, for the handshake.
    ``report`` hears each refusal the guard makes."""
    from deeting_tui.sandbox.enforce import SandboxError, enforce

    if init.get("sandbox") is False:
        return {"level": "off (benchmark)"}
    try:
        return enforce(init, str(init.get("name", "plugin")), report).as_json()
    except SandboxError as exc:
        raise RpcError(PERMISSION_DENIED, str(exc)) from None


class WorkerServer:
    """Serves one plugin's module over a Peer."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.peer = Peer(
            read_fd,
            write_fd,
            request_handler=self._handle,
            notification_handler=self._on_notification,
            on_close=self._on_close,
            on_protocol_error=lambda why: log.warning("rpc from kernel: %s", why),
            blocking_writes=True,
            request_id_var=current_call_id,
        )
        self.read_fd = read_fd
        self.module: ModuleType | None = None
        self.ctx: Context | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._wake: asyncio.Future[None] | None = None

    def run(self) -> None:
        """Serve until the kernel closes the pipe or asks for shutdown."""
        with asyncio.Runner() as runner:
            self.loop = runner.get_loop()
            self.peer.start(self.loop, read_in_loop=False)
            idle = _IdleWait(self.read_fd, self.loop)
            while not self._stopping:
                if _loop_has_work(self.loop):
                    runner.run(self._serve_in_loop())
                elif idle.kernel_spoke():
                    self.peer.read_blocking()
                else:
                    # A thread woke the loop (call_soon_threadsafe). Run it even if what was
                    # handed over already ran: that drains the self-pipe, which would
                    # otherwise keep the poll awake for ever.
                    runner.run(self._serve_in_loop())

    async def _serve_in_loop(self) -> None:
        """Let the loop read and run tasks until nothing is left for it to do."""
        loop = asyncio.get_running_loop()
        this = asyncio.current_task()
        self._wake = loop.create_future()
        self.peer.set_read_in_loop(True)
        try:
            while not self._stopping:
                others = asyncio.all_tasks() - {this}
                if others:
                    await asyncio.wait({*others, self._wake}, return_when=asyncio.FIRST_COMPLETED)
                    continue
                delay = _next_timer_delay(loop)
                if delay is None:
                    return
                await asyncio.wait({self._wake}, timeout=delay)
        finally:
            self._wake = None
            self.peer.set_read_in_loop(False)

    # -- dispatch ----------------------------------------------------------------------------

    def _handle(self, method: str, params: Any, request_id: int | str) -> Any:
        if method == INITIALIZE:
            return self._initialize(params)
        if method == SHUTDOWN:
            self._stop()  # after this reply, the serving loop ends
            return {}
        if self.module is None or self.ctx is None:
            raise RpcError(NOT_READY, "the worker has not been initialised")
        if method == INVOKE:
            call = InvokeParams.from_json(params)
            return self._call(INVOKE, (call.tool, call.args), normalize_result)
        if method == ON_EVENT:
            event = EventParams.from_json(params)
            return self._call(
                ON_EVENT, (event.topic, event.payload), lambda r: OnEventResult(r is True).to_json()
            )
        if method == POSTUPGRADE:
            return self._call(POSTUPGRADE, (UpgradeState.from_json(params).state,), _none)
        if method == PREUPGRADE:
            return self._call(
                PREUPGRADE, (), lambda r: UpgradeState(r if isinstance(r, dict) else {}).to_json()
            )
        if method in LIFECYCLE_HOOKS:
            return self._call(method, (), _none)
        raise RpcError(METHOD_NOT_FOUND, f"method not found: {method}")

    def _on_notification(self, method: str, params: Any) -> None:
        if method != EVENT or self.module is None:
            return
        try:
            event = EventParams.from_json(params)
        except RpcError as exc:
            log.warning("bad event notification: %s", exc.message)
            return
        try:
            outcome = self._call(ON_EVENT, (event.topic, event.payload), _none)
        except RpcError as exc:
            log.warning("on_event(%s) failed: %s", event.topic, exc.message)
            return
        if is_awaitable(outcome):
            assert self.loop is not None
            task = self.loop.create_task(_await(outcome))
            task.add_done_callback(_log_event_failure)

    def _call(self, name: str, args: tuple[Any, ...], shape: Any) -> Any:
        """Run a plugin function, sync inline or async as a task, and shape its result."""
        assert self.module is not None and self.ctx is not None
        fn = getattr(self.module, name, None)
        if fn is None:
            if name == INVOKE:
                raise RpcError(METHOD_NOT_FOUND, "the plugin's src/index.py defines no invoke()")
            return shape(None)
        try:
            outcome = fn(self.ctx, *args)
        except BaseException as exc:
            raise _plugin_error(name, exc) from None
        if is_awaitable(outcome):
            return _finish_async(name, outcome, shape)
        return _shaped(outcome, shape)

    # -- handshake ---------------------------------------------------------------------------

    def _initialize(self, init: Any) -> dict[str, Any]:
        if self.module is not None:
            raise RpcError(INVALID_PARAMS, "already initialised")
        if not isinstance(init, dict) or not isinstance(init.get("root"), str):
            raise RpcError(INVALID_PARAMS, "initialize needs {root, name, version, ...}")
        limits = init.get("limits") or {}
        root = Path(init["root"])
        data_dir = Path(init["data_dir"])
        cache_dir = Path(init["cache_dir"])
        tmp_dir = Path(init["tmp_dir"]) if init.get("tmp_dir") else None
        # Before the sandbox: its rules name these folders, and Landlock skips missing paths.
        for folder in (data_dir, cache_dir, tmp_dir):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        set_rlimits(
            int(limits.get("memory_mb", 1024)),
            int(limits.get("open_files", OPEN_FILES_LIMIT)),
            int(limits.get("disk_mb", FILE_SIZE_LIMIT_MB)),
            int(limits.get("cpu_s", CPU_LIMIT_S)),
        )
        sandbox = apply_os_sandbox(init, self._report_denial)
        _configure_logging()
        if tmp_dir is not None:
            os.environ["TMPDIR"] = str(tmp_dir)
        os.chdir(data_dir)
        name = str(init.get("name", "plugin"))
        self.ctx = Context(
            name=name,
            version=str(init.get("version", "0")),
            data_dir=data_dir,
            cache_dir=cache_dir,
            channel=self.peer,
            log=logging.getLogger(f"plugin.{name}"),
        )
        try:
            self.module = import_plugin_module(root / "src")
        except BaseException as exc:
            raise _plugin_error("import of src/index.py", exc) from None
        hooks = [f for f in OPTIONAL_FUNCTIONS if callable(getattr(self.module, f, None))]
        return InitializeResult(os.getpid(), tuple(hooks), sandbox).to_json()

    def _report_denial(self, message: str) -> None:
        """Tell the kernel what the guard refused, so the user hears of it even if the
        plugin swallows the PermissionError."""
        with contextlib.suppress(Exception):  # never let reporting break the refusal itself
            self.peer.notify(DENIED, DeniedParams(message).to_json())

    # -- teardown ----------------------------------------------------------------------------

    def _on_close(self) -> None:
        self._stop()

    def _stop(self) -> None:
        self._stopping = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)


class _IdleWait:
    """How an idle worker waits: for the kernel's next message, or for a plugin thread that
    hands the loop work (``run_coroutine_threadsafe`` and every other ``call_soon_threadsafe``
    write a byte to the loop's self-pipe). One poll() on both; no thread, no timer.

    The self-pipe is asyncio's own (``_ssock``), read here only for readiness: the loop
    drains it when it runs. On a loop without one, a plain blocking read of the kernel's fd
    (a thread's hand-over then waits for the next message, as it used to).
    """

    def __init__(self, read_fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._read_fd = read_fd
        self._poll: select.poll | None = None
        self_pipe = getattr(loop, "_ssock", None)
        fileno = getattr(self_pipe, "fileno", None)
        if callable(fileno):
            self._poll = select.poll()
            self._poll.register(read_fd, select.POLLIN)
            self._poll.register(fileno(), select.POLLIN)

    def kernel_spoke(self) -> bool:
        """Block until either wakes; True when the kernel's fd has input (or hung up)."""
        if self._poll is None:
            return True
        while True:
            try:
                ready = self._poll.poll()
            except InterruptedError:  # pragma: no cover - PEP 475 retries poll() itself
                continue
            return any(fd == self._read_fd for fd, _events in ready)


def _none(_result: Any) -> dict[str, Any]:
    return {}


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _loop_has_work(loop: asyncio.AbstractEventLoop) -> bool:
    """Tasks, ready callbacks or timers. asyncio has no public way to ask for the last two; a
    loop without these attributes is always treated as busy (the worker then simply keeps
    serving through the loop, as before this fast path existed)."""
    if asyncio.all_tasks(loop):
        return True
    ready = getattr(loop, "_ready", None)
    if ready is None:
        return True
    return bool(ready) or _next_timer_delay(loop) is not None


def _next_timer_delay(loop: asyncio.AbstractEventLoop) -> float | None:
    """Seconds to the loop's earliest live timer, or None without one."""
    timers = getattr(loop, "_scheduled", None)
    if timers is None:
        return 0.05  # unknown loop internals: look again soon rather than stall a timer
    live = [timer.when() for timer in timers if not timer.cancelled()]
    return max(0.0, min(live) - loop.time()) if live else None


def _shaped(outcome: Any, shape: Any) -> Any:
    try:
        return shape(outcome)
    except ResultError as exc:
        raise RpcError(PLUGIN_ERROR, str(exc)) from None


async def _finish_async(name: str, outcome: Any, shape: Any) -> Any:
    try:
        result = await outcome
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        raise _plugin_error(name, exc) from None
    return _shaped(result, shape)


def _plugin_error(where: str, exc: BaseException) -> RpcError:
    """Log the traceback to the plugin's log; send the kernel one clear line."""
    if isinstance(exc, MemoryError):
        log.error("%s ran out of memory", where)
        return RpcError(OUT_OF_MEMORY, f"{where} ran out of memory (the plugin's memory limit)")
    if isinstance(exc, RpcError):
        return exc
    if isinstance(exc, SandboxDenied):  # already in the denial log, and the message says it all
        return RpcError(PERMISSION_DENIED, str(exc))
    log.error("%s raised:\n%s", where, "".join(traceback.format_exception(exc)).rstrip())
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, SystemExit):
        detail = f"called sys.exit({exc.code!r})"
    return RpcError(PLUGIN_ERROR, detail, {"type": type(exc).__name__})


def _log_event_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        log.warning("on_event failed: %s", getattr(exc, "message", exc))


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def serve(read_fd: int, write_fd: int) -> None:
    """Serve until the kernel closes the pipe or asks for shutdown."""
    global RPC_WRITE_FD
    RPC_WRITE_FD = write_fd
    WorkerServer(read_fd, write_fd).run()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deeting_tui.sandbox.worker")
    parser.add_argument("--rpc", required=True, help="READ_FD,WRITE_FD inherited from the kernel")
    parser.add_argument("--parent", type=int, default=0, help="the kernel's pid")
    options = parser.parse_args(argv)
    read_fd, write_fd = (int(part) for part in options.rpc.split(","))
    set_parent_death_signal(options.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the kernel's
    serve(read_fd, write_fd)


if __name__ == "__main__":
    # Re-import under the real name so plugins (and fault tests) see one module.
    from deeting_tui.sandbox import worker as _worker

    _worker.main()
