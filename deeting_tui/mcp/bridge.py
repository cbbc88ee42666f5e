"""The worker side of an MCP plugin: the stock server as this worker's child, spoken to with
the official ``mcp`` SDK.

The worker imports this module before its sandbox (the SDK is big, and nothing may be read
from deeting's libraries afterwards), applies the sandbox, and then serves the plugin with
:class:`ServerBridge` where an ordinary plugin's ``src/index.py`` would be. The server is
started here, after the sandbox: it inherits every layer (Landlock, seccomp, the rlimits,
the network namespace, no capabilities) and an environment built from nothing by the kernel
(launch.py). It is this process's child in this process's group, so it lives and dies with
the worker: the supervisor's deadlines, restarts and crash-loop rule hold it too, and a
server that exits on its own takes the worker with it (a crash, reported as one).

The SDK's own ``stdio_client`` cannot be used: it starts the server in a new session
(``setsid``), which the sandbox refuses, and stops it by killing that process group. The
transport here is the same protocol (one JSON-RPC message per line) on the server's pipes.

Mapping: our ``invoke`` is ``tools/call``; the server's ``notifications/progress`` are the
call's progress (and so extend its deadline); our cancel (Esc) cancels the SDK's request,
which sends ``notifications/cancelled``. ``structuredContent`` (checked by the SDK against
the tool's ``outputSchema``) is the card's data and the text content is what the model reads.

Tools are pinned: ``mcp-tools.json`` holds them as the user approved them. At start and on
``notifications/tools/list_changed`` the live list is compared with the pins; a tool whose
name, description, schemas or annotations differ is refused (the model still sees the
approved spec) and the user is told once, with the command that shows the difference.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio._backends._asyncio
import anyio._core._resources
import anyio._core._sockets
import anyio._core._streams
import anyio.abc._eventloop
import anyio.abc._sockets
import anyio.abc._testing
import anyio.lowlevel
import anyio.streams.stapled
import anyio.streams.tls
import jsonschema
import jsonschema.validators  # noqa: F401
from mcp import ClientSession, types
from mcp.shared.message import SessionMessage

from deeting_tui.mcp.apps import RENDERER as APP_RENDERER
from deeting_tui.mcp.apps import AppProblem, app_html, app_payload, app_uris
from deeting_tui.plugin.mcp_server import LIST_TOOLS, tool_changes
from deeting_tui.rpc.errors import PLUGIN_ERROR, RpcError
from deeting_tui.sdk import Context, current_call_id
from deeting_tui.terminal_text import one_line

# The imports above that nothing here names are what anyio and the SDK import lazily, on the
# first task group, memory stream or structured result: after the sandbox deeting's libraries
# cannot be read, so they are imported now (tests/mcp/test_bridge_sandboxed.py holds that a
# whole session, errors and cancels included, needs nothing more).
log = logging.getLogger("deeting.mcp")

#: The longest line the server may send (one JSON-RPC message); more is a broken server.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: The most keys a flat structured result may have to be drawn as key-value lines.
MAX_KEY_VALUE_KEYS = 40
#: Lines of the server's stderr kept to explain a failure.
STDERR_TAIL = 40
MAX_STDERR_LINE = 2000
#: How long the server gets to exit after its stdin is closed, then after SIGTERM.
EXIT_GRACE_S = 1.0
#: After its server died, how long the worker lets its last answers reach the kernel.
EXIT_FLUSH_S = 0.05
#: How long reading a tool's app (``resources/read``) may take before the call is drawn
#: without it.
APP_READ_S = 10.0

_DENIED = re.compile(
    r"(PermissionError|EACCES|Permission denied|Operation not permitted|EPERM)", re.IGNORECASE
)
_PATH_IN_DENIAL = re.compile(r"""(?:Permission denied|EACCES)[^'"\n]*['"](/[^'"\n]+)['"]""")


class ServerGone(Exception):
    """The server exited or broke the protocol; the message says what its stderr said."""


class ServerBridge:
    """What the worker calls instead of a plugin module: activate, deactivate, invoke."""

    def __init__(self, launch: dict[str, Any], name: str, shell: bool = False) -> None:
        self.launch = launch
        self.name = name
        #: It may run programs already: a refused one is outside even that.
        self.shell = shell
        self.session: ClientSession | None = None
        self._holder: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._closing: asyncio.Event | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self._stderr_seen = 0
        self._pins = _load_pins(Path(str(launch.get("pins", ""))))
        self._changed: dict[str, str] = {}  # tool -> how it changed
        self._told: frozenset[str] = frozenset()
        self._live: list[dict[str, Any]] = []
        self._apps: dict[str, str] = {}  # tool -> its app's ui:// resource (MCP Apps)
        self._server_info: dict[str, Any] = {}
        self._stopping = False
        self._ctx: Context | None = None
        self._inflight = 0
        self._answered = asyncio.Event()
        self._exiting: asyncio.Task[None] | None = None

    # -- lifecycle (the worker's hooks) -----------------------------------------------------

    async def activate(self, ctx: Context) -> None:
        """Start the server and hold its session until deactivate (or its end)."""
        self._ctx = ctx
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._closing = asyncio.Event()
        self._holder = loop.create_task(self._hold())
        self._holder.add_done_callback(self._held)
        await asyncio.shield(self._ready)

    async def deactivate(self, ctx: Context) -> None:
        self._stopping = True
        if self._closing is not None:
            self._closing.set()
        if self._holder is not None:
            with contextlib.suppress(BaseException):
                await self._holder

    async def invoke(self, ctx: Context, tool: str, args: dict[str, Any]) -> dict[str, Any]:
        if self.session is None:
            await self.activate(ctx)
        session = self.session
        assert session is not None
        if tool == LIST_TOOLS:
            return {"data": self.listing(), "text": None, "renderer": None}
        if tool in self._changed:
            raise RpcError(
                PLUGIN_ERROR,
                f"the MCP server changed the tool '{tool}' since you approved it "
                f"({self._changed[tool]}); it is not called until you review the change: "
                f"deeting mcp review {self.name}",
            )
        call_id = current_call_id.get()

        async def report(progress: float, total: float | None, message: str | None) -> None:
            fraction = progress / total if total else None
            token = current_call_id.set(call_id)
            try:
                ctx.progress(fraction, one_line(message or "")[:200])
            finally:
                current_call_id.reset(token)

        before = self._stderr_seen
        self._inflight += 1
        try:
            try:
                result = await session.call_tool(tool, args, progress_callback=report)
            except ServerGone as exc:
                raise RpcError(PLUGIN_ERROR, str(exc)) from None
            except Exception as exc:
                if await self._server_exited():
                    raise RpcError(PLUGIN_ERROR, self._exit_reason()) from None
                raise self._call_error(exc, before) from None
            answer = self._result(result, before)
            if tool in self._apps:
                answer = await self._with_app(session, self._apps[tool], result, answer)
        finally:
            self._inflight -= 1
            self._answered.set()
        return answer

    async def _with_app(
        self,
        session: ClientSession,
        uri: str,
        result: types.CallToolResult,
        answer: dict[str, Any],
    ) -> dict[str, Any]:
        """The answer drawn by the tool's MCP App: its ``ui://`` resource read now, checked
        (apps.py) and sent with the call's result. An app that cannot be shown leaves the
        answer as it was, with a line in its text saying why."""
        try:
            read = await asyncio.wait_for(session.read_resource(uri), APP_READ_S)
            if not isinstance(read, types.ReadResourceResult):
                raise AppProblem("the server asked for input to read it")
            contents = [
                c.model_dump(by_alias=True, exclude_none=True, mode="json") for c in read.contents
            ]
            html, csp = app_html(uri, contents)
        except AppProblem as exc:
            reason = str(exc)
        except TimeoutError:
            reason = f"reading it took over {APP_READ_S:g} s"
        except ServerGone as exc:
            reason = str(exc)
        except Exception as exc:  # McpError: the server refused to read it
            message = getattr(getattr(exc, "error", None), "message", None) or str(exc)
            reason = one_line(message)[:300] or type(exc).__name__
        else:
            dumped = result.model_dump(by_alias=True, exclude_none=True, mode="json")
            text = answer["text"] or f"(the result is shown by the app {uri})"
            return {
                "data": app_payload(uri, html, csp, dumped),
                "text": text,
                "renderer": APP_RENDERER,
            }
        note = f"(the tool's app {one_line(uri)[:200]} is not shown: {reason})"
        text = f"{answer['text']}\n{note}" if answer["text"] else note
        return dict(answer, text=text)

    async def _server_exited(self) -> bool:
        """Whether the server is gone (a call failing as its pipe closes races its exit)."""
        process = self._process
        if process is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), EXIT_GRACE_S)
        return process.returncode is not None

    def _call_error(self, exc: Exception, before: int) -> RpcError:
        if isinstance(exc, RuntimeError):  # the SDK: structured content vs the outputSchema
            return RpcError(PLUGIN_ERROR, f"the server's result was refused: {exc}")
        # McpError: a JSON-RPC error from the server
        message = getattr(getattr(exc, "error", None), "message", None) or str(exc)
        return RpcError(PLUGIN_ERROR, self._explained(one_line(message), before))

    def listing(self) -> dict[str, Any]:
        """The live tools (whole), the server's name and version, and what changed."""
        return {"tools": self._live, "server": self._server_info, "changed": self._changed}

    # -- the session ------------------------------------------------------------------------

    async def _hold(self) -> None:
        assert self._ready is not None and self._closing is not None
        try:
            async with (
                self._streams() as (read, write),
                ClientSession(read, write, message_handler=self._on_message) as s,
            ):
                initialized = await s.initialize()
                info = initialized.server_info
                self._server_info = {"name": info.name, "version": info.version}
                self.session = s
                await self._refresh_tools(s)
                if not self._ready.done():
                    self._ready.set_result(None)
                await self._closing.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(
                    RpcError(PLUGIN_ERROR, self._start_failure(exc))
                    if not isinstance(exc, asyncio.CancelledError)
                    else exc
                )
            if not isinstance(exc, Exception):
                raise
        finally:
            self.session = None

    def _held(self, task: asyncio.Task[None]) -> None:
        """The session ended. Unless the worker is stopping, the server died on its own:
        the worker ends too, once the calls in flight have their answer (the server's exit
        and its last words), so the supervisor sees — and counts — a crash."""
        if self._stopping or task.cancelled():
            return
        if self._ready is not None and self._ready.done() and self._ready.exception() is None:
            log.error("the MCP server stopped: %s", self._exit_reason())
            self._exiting = asyncio.get_running_loop().create_task(self._exit_when_answered())

    async def _exit_when_answered(self) -> None:
        while self._inflight:
            await self._answered.wait()
            self._answered.clear()
        await asyncio.sleep(EXIT_FLUSH_S)  # the last answers are written after their tasks
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(70)

    async def _refresh_tools(self, session: ClientSession) -> None:
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(_tool_json(tool) for tool in page.tools)
            cursor = page.next_cursor
            if not cursor or len(tools) > 10_000:
                break
        self._live = tools
        self._apps = app_uris(self._pins if self._pins is not None else tools)
        self._changed = tool_changes(self._pins, tools) if self._pins is not None else {}
        changed = frozenset(self._changed)
        if changed - self._told and self._ctx is not None:
            names = ", ".join(sorted(changed))
            self._ctx.log.warning("tools changed since approved: %s", names)
            _tell(
                self._ctx,
                f"the MCP server '{self.name}' changed {names} since you approved "
                f"{'it' if len(changed) == 1 else 'them'}: the model keeps the approved "
                f"version, and calls are refused until you review: "
                f"deeting mcp review {self.name}",
            )
        self._told = changed

    async def _on_message(self, message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification) and self.session is not None:
            try:
                await self._refresh_tools(self.session)
            except Exception as exc:  # the next call says it better
                log.warning("tools/list after list_changed failed: %s", exc)
        elif isinstance(message, Exception):
            log.warning("from the server: %s", one_line(str(message))[:500])

    # -- the transport ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _streams(self) -> AsyncIterator[tuple[Any, Any]]:
        """The server's stdio as the SDK's two memory streams (one JSON-RPC message per
        line each way); the server is stopped when the block ends."""
        launch = self.launch
        argv = [str(a) for a in launch["argv"]]
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._environment(),
            cwd=str(launch.get("cwd") or "/"),
            limit=MAX_MESSAGE_BYTES,
        )
        self._process = process
        incoming_w, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        outgoing, outgoing_r = anyio.create_memory_object_stream[SessionMessage](0)
        assert process.stdout is not None and process.stdin is not None
        stdout, stdin = process.stdout, process.stdin

        async def read_stdout() -> None:
            async with incoming_w:
                while True:
                    try:
                        line = await stdout.readline()
                    except (ValueError, asyncio.LimitOverrunError):
                        await incoming_w.send(
                            ServerGone(f"sent a message over {MAX_MESSAGE_BYTES >> 20} MiB")
                        )
                        return
                    if not line:
                        return
                    text = line.decode("utf-8", "replace").strip()
                    if not text:
                        continue
                    try:
                        parsed = types.jsonrpc_message_adapter.validate_json(text, by_name=False)
                    except ValueError as exc:
                        log.warning("not a JSON-RPC message from the server: %s", text[:200])
                        await incoming_w.send(exc)
                        continue
                    await incoming_w.send(SessionMessage(parsed))

        async def write_stdin() -> None:
            async with outgoing_r:
                async for message in outgoing_r:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    try:
                        stdin.write(data.encode("utf-8") + b"\n")
                        await stdin.drain()
                    except (ConnectionError, OSError):
                        return

        async def watch_exit() -> None:
            await process.wait()
            if self._closing is not None:
                self._closing.set()  # the session ends; _held decides what that means

        async with anyio.create_task_group() as group:
            group.start_soon(read_stdout)
            group.start_soon(write_stdin)
            group.start_soon(self._read_stderr, process)
            group.start_soon(watch_exit)
            try:
                yield incoming, outgoing
            finally:
                with anyio.CancelScope(shield=True):
                    await self._stop(process)
                    outgoing.close()
                group.cancel_scope.cancel()

    def _environment(self) -> dict[str, str]:
        """The kernel's environment for the server, plus what only the worker knows: its
        private temp folder and, for host-limited network, its proxy."""
        env = {str(k): str(v) for k, v in dict(self.launch.get("env") or {}).items()}
        for key in ("TMPDIR", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            if key in os.environ:
                env[key] = os.environ[key]
        if "HTTPS_PROXY" in os.environ:
            env["NO_PROXY"] = env["no_proxy"] = ""
            env["NODE_USE_ENV_PROXY"] = "1"  # Node 24+: fetch and http honour the variables
            preload = self.launch.get("node_preload")
            if isinstance(preload, str):
                env["NODE_OPTIONS"] = f"--require={preload}"  # Node 20/22: see installers.py
        return env

    async def _read_stderr(self, process: asyncio.subprocess.Process) -> None:
        """The server's stderr into the plugin's log, its last lines kept to explain a
        failure."""
        assert process.stderr is not None
        while True:
            try:
                line = await process.stderr.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip()[:MAX_STDERR_LINE]
            self._stderr.append(text)
            self._stderr_seen += 1
            with contextlib.suppress(Exception):
                sys.stderr.write(f"[server] {text}\n")

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        """Close its stdin; then SIGTERM, then SIGKILL, each after a grace period."""
        if process.stdin is not None:
            with contextlib.suppress(Exception):
                process.stdin.close()
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
            try:
                await asyncio.wait_for(process.wait(), EXIT_GRACE_S)
                return
            except TimeoutError:
                continue

    # -- explaining -------------------------------------------------------------------------

    def _exit_reason(self, when: str = "") -> str:
        process = self._process
        code = process.returncode if process is not None else None
        how = "exited" if code is None or code >= 0 else "was killed by a signal"
        if code is not None and code >= 0:
            how = f"exited with status {code}"
        elif code is not None:
            how = f"was killed by signal {-code}"
        return self._explained(f"the MCP server {how}{when}", 0)

    def _start_failure(self, exc: BaseException) -> str:
        if isinstance(exc, FileNotFoundError | PermissionError):
            program = self.launch["argv"][0]
            return f"could not start the MCP server {program}: {exc.strerror or exc}"
        if self._process is not None and self._process.returncode is not None:
            return self._exit_reason(" during start-up")
        detail = one_line(str(exc)) or type(exc).__name__
        return self._explained(f"the MCP server did not start: {detail}", 0)

    def _explained(self, message: str, since: int) -> str:
        """``message``, with what the sandbox refused (as the message itself or the server's
        stderr tells it) and the scope that would allow it, or else the last thing the
        server said."""
        if _DENIED.search(message):
            return f"{message} — the sandbox refused it: {self._hint(message)}"
        new = list(self._stderr)[max(0, len(self._stderr) - (self._stderr_seen - since)) :]
        denial = next((line for line in reversed(new) if _DENIED.search(line)), None)
        if denial is not None:
            said = one_line(denial)[:300]
            return f"{message}: the sandbox refused it: {said} — {self._hint(denial)}"
        last = next((line for line in reversed(new) if line.strip()), None)
        if last is not None and "exit" in message:
            return f"{message}: {one_line(last)[:300]}"
        return message

    def _hint(self, line: str) -> str:
        return _scope_hint(line, self.name, self.shell)

    def _result(self, result: types.CallToolResult, before: int) -> dict[str, Any]:
        text = "\n".join(_content_text(block) for block in result.content).strip()
        if result.is_error:
            raise RpcError(
                PLUGIN_ERROR, self._explained(one_line(text)[:2000] or "the tool failed", before)
            )
        data = result.structured_content
        return {"data": data, "text": text or None, "renderer": _renderer_for(data)}


def _renderer_for(data: Any) -> str | None:
    """A flat object (what most servers' structuredContent is) reads best as key-value
    lines; anything else is drawn as JSON."""
    if (
        isinstance(data, dict)
        and 0 < len(data) <= MAX_KEY_VALUE_KEYS
        and "items" not in data  # key-value would take it for its own list of pairs
        and all(isinstance(v, str | int | float | bool) or v is None for v in data.values())
    ):
        return "key-value"
    return None


def _tell(ctx: Context, message: str) -> None:
    """A line for the user (the kernel shows it as a notice, like a refusal)."""
    from deeting_tui.rpc.protocol import DENIED, DeniedParams

    with contextlib.suppress(Exception):
        ctx._channel.notify(DENIED, DeniedParams(message, None).to_json())


def _scope_hint(line: str, name: str, shell: bool = False) -> str:
    """Which grant would have allowed what a refused server's line describes, as the
    command that grants it."""
    lowered = line.lower()
    path = _PATH_IN_DENIAL.search(line)
    grant = f"deeting plugin grant {name}"
    programs = any(word in lowered for word in ("spawn", "exec", "subprocess", "'node'", "'npm'"))
    if programs or (path is not None and "open" not in lowered and _is_program(path[1])):
        if shell:
            return "it tried a program or a file outside the system's folders and its grants"
        return f"starting programs needs the shell scope: {grant} shell"
    if path is not None:
        folder = os.path.dirname(path[1]) or path[1]
        return f"reading it needs a grant: {grant} filesystem:read:{folder}"
    if any(word in lowered for word in ("connect", "socket", "network")):
        return f"the network needs a grant: {grant} network:HOST"
    return f"it needs a scope it was not granted (see: deeting plugin info {name})"


def _is_program(path: str) -> bool:
    """An executable file (stat is not filtered by the sandbox): what a refused exec names,
    where Python's error reads the same for a refused open."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and bool(mode & 0o111)


def _content_text(block: Any) -> str:
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        size = len(getattr(block, "data", "") or "") * 3 // 4
        return f"[{kind} {getattr(block, 'mime_type', '')}, {size:,} bytes]"
    if kind == "resource_link":
        return f"[resource {block.uri}]"
    if kind == "resource":
        resource = block.resource
        return str(getattr(resource, "text", None) or f"[resource {resource.uri}]")
    return f"[{kind}]"


def _tool_json(tool: types.Tool) -> dict[str, Any]:
    dumped: dict[str, Any] = tool.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped


def _load_pins(path: Path) -> list[dict[str, Any]] | None:
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    tools = document.get("tools") if isinstance(document, dict) else None
    return [t for t in tools if isinstance(t, dict)] if isinstance(tools, list) else None


def bridge_for(init: dict[str, Any]) -> ServerBridge:
    scopes = init.get("scopes")
    shell = isinstance(scopes, list) and "shell" in scopes
    return ServerBridge(dict(init["mcp"]), str(init.get("name", "plugin")), shell)
