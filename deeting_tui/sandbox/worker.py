"""The child side of a plugin: one process per enabled plugin, serving JSON-RPC on pipe fds.

Order matters and is fixed here: the kernel's ``initialize`` request carries the limits, so the
worker sets rlimits, then applies the OS sandbox (``apply_os_sandbox``: Landlock, seccomp and the
guard, see sandbox/enforce.py), narrows what can be imported to the plugin's own ``src/`` and
``deps/``, the standard library and deeting_tui (plugin_path.py), and only then imports plugin
code — nothing the plugin runs ever executes unconfined, or on deeting's own libraries. The
plugin's stdout/stderr are the plugin's log file (set up by the launcher before this module
runs), so a stray ``print`` can never corrupt the protocol, which lives on separate fds.

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
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from deeting_tui.mcp.bridge import ServerBridge
from deeting_tui.sandbox.idle import _IdleWait, _loop_has_work, _next_timer_delay
from deeting_tui.sandbox.plugin_import import import_plugin_module
from deeting_tui.sandbox.plugin_path import isolate
from deeting_tui.sandbox.plugin_path import warm as warm_isolation
from deeting_tui.sandbox.process_limits import (
    CPU_LIMIT_S,
    FILE_SIZE_LIMIT_MB,
    OPEN_FILES_LIMIT,
    set_rlimits,
)
from deeting_tui.sandbox.process_limits import (
    set_parent_death_signal as set_parent_death_signal,
)
from deeting_tui.sdk import Context, ResultError, current_call_id, normalize_result

#: Hooks a plugin may define besides ``invoke``; each may be sync or async.
OPTIONAL_FUNCTIONS = (*LIFECYCLE_HOOKS, POSTUPGRADE, ON_EVENT, INVOKE)

#: The fd the worker answers the kernel on; fault tests write garbage onto it on purpose.
RPC_WRITE_FD: int | None = None

log = logging.getLogger("deeting.worker")


def apply_os_sandbox(
    init: dict[str, Any], report: Callable[[str, str | None], None] | None = None
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
        #: The plugin's src/index.py, or for a stock MCP server the bridge to it.
        self.module: ModuleType | ServerBridge | None = None
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
        launch = init.get("mcp")
        set_rlimits(
            int(limits.get("memory_mb", 1024)),
            int(limits.get("open_files", OPEN_FILES_LIMIT)),
            int(limits.get("disk_mb", FILE_SIZE_LIMIT_MB)),
            int(limits.get("cpu_s", CPU_LIMIT_S)),
            address_space=not (isinstance(launch, dict) and launch.get("runtime") == "node"),
        )
        # Read while the site folders are still readable (the forkserver did it already).
        warm_isolation()
        bridge = None
        if isinstance(init.get("mcp"), dict):
            # The MCP SDK is imported now: after the sandbox deeting's libraries are unreadable.
            from deeting_tui.mcp.bridge import bridge_for

            bridge = bridge_for(init)
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
        if bridge is not None:
            # No plugin code runs in this process: the server is a child, started by the
            # bridge's activate under this sandbox.
            self.module = bridge
            hooks = [f for f in OPTIONAL_FUNCTIONS if callable(getattr(bridge, f, None))]
            return InitializeResult(os.getpid(), tuple(hooks), sandbox).to_json()
        # From here on plugin code may run: it imports only its own src/ and deps/, the
        # standard library and deeting_tui (plugin_path.py); the worker's own imports are
        # all done above (none of its modules imports a library lazily).
        isolate(name, root / "src", root / "deps")
        try:
            self.module = import_plugin_module(root / "src")
        except BaseException as exc:
            raise _plugin_error("import of src/index.py", exc) from None
        hooks = [f for f in OPTIONAL_FUNCTIONS if callable(getattr(self.module, f, None))]
        return InitializeResult(os.getpid(), tuple(hooks), sandbox).to_json()

    def _report_denial(self, message: str, scope: str | None) -> None:
        """Tell the kernel what the guard refused, so the user hears of it even if the
        plugin swallows the PermissionError; ``scope`` is what a grant would allow."""
        with contextlib.suppress(Exception):  # never let reporting break the refusal itself
            self.peer.notify(DENIED, DeniedParams(message, scope).to_json())

    # -- teardown ----------------------------------------------------------------------------

    def _on_close(self) -> None:
        self._stop()

    def _stop(self) -> None:
        self._stopping = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)


def _none(_result: Any) -> dict[str, Any]:
    return {}


async def _await(awaitable: Any) -> Any:
    return await awaitable


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
