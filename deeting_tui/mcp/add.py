"""``deeting mcp add NAME``: a stock MCP server installed as plugin NAME.

The steps, each undone if a later one fails (nothing is left but what was there before):

1. The grants are the user's: ``--grant`` scopes, each confirmed on a terminal unless
   ``--yes`` (the same question ``plugin install`` asks). The server's README does not decide
   what it may touch; the plugin declares exactly what was granted.
2. The package manager installs the server into a staging folder (installers.py: pip wheels
   only, npm with --ignore-scripts): no install script runs and the server is not started.
3. The server is started for the first time inside the plugin's sandbox, holding only those
   grants, and its tools are read (``tools/list``) and pinned: mcp-tools.json keeps them
   whole, llm-tool.yaml is what the model will see. A server that does not start says why
   (with the scope it was refused, when the sandbox refused it) and nothing is installed.
4. The folder is installed like any plugin (validated, moved into place, recorded, granted,
   enabled), with its ``--env`` values in the user's private store.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from deeting_tui.atomic import write_bytes_atomic
from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.plugin.mcp_server import LIST_TOOLS, MCP_KEY, PINS_FILE
from deeting_tui.plugin.scopes import Scope, ScopeError, parse_scope
from deeting_tui.terminal_text import one_line

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel
    from deeting_tui.kernel.plugins.lifecycle import AskGrants, InstallReport
    from deeting_tui.plugin.manifest import PluginSpec

__all__ = ["AddError", "AddRequest", "add_server", "pinned_tools", "run_add", "write_pins"]

#: What a model reads of one tool's description, at most (a server can say a lot).
MAX_DESCRIPTION = 4000
TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
VERSION = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


class AddError(DeetingError):
    """``mcp add`` was refused, or the server could not be installed or started."""


@dataclass
class AddRequest:
    """One server to add (from the command line, or proposed by ``mcp import``)."""

    name: str
    source: str  # "pypi" | "npm" | "command"
    package: str | None = None
    program: str | None = None
    args: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    bin: str | None = None
    yes: bool = False

    @property
    def label(self) -> str:
        """What it is, for the record and for people (``pypi:mcp-server-time``)."""
        if self.source == "command":
            return f"command:{self.program}"
        return f"{self.source}:{self.package}"


def run_add(args: Any) -> int:
    """The command: parse, add, say what happened (exit 0), or one error line (exit 1)."""
    from deeting_tui.command_output import error_line, fail, settled, tty_consent
    from deeting_tui.plugin_commands import with_kernel

    try:
        request = request_from_args(args)
    except DeetingError as exc:
        return fail(error_line(exc))

    async def handler(kernel: Kernel, _args: Any) -> int:
        try:
            report = await add_server(
                kernel, request, ask_all=tty_consent(request.yes), on_line=_dim_line
            )
        except DeetingError as exc:
            return fail(error_line(exc))
        from deeting_tui.command_output import say

        say(kernel.plugins.info(report.spec.name).installed_words)
        tools = ", ".join(tool.name for tool in report.spec.tools)
        say(f"tools (pinned): {tools}")
        return settled(report)

    return asyncio.run(with_kernel(handler, args))


def request_from_args(args: Any) -> AddRequest:
    from deeting_tui.mcp.server_env import parse_env_assignment

    env = dict(parse_env_assignment(text) for text in args.env)
    server_args = list(args.args)
    if args.program:
        if not server_args:
            raise AddError(
                "--command needs the program after --: deeting mcp add NAME --command -- "
                "/path/to/server [ARGS...]"
            )
        program, server_args = server_args[0], server_args[1:]
        return AddRequest(
            args.name, "command", None, program, server_args, args.grant, env, args.bin, args.yes
        )
    source = "pypi" if args.pypi else "npm"
    package = args.pypi or args.npm
    return AddRequest(
        args.name, source, package, None, server_args, args.grant, env, args.bin, args.yes
    )


async def add_server(
    kernel: Kernel,
    request: AddRequest,
    *,
    ask_all: AskGrants | None = None,
    on_line: Callable[[str], None] = lambda _line: None,
) -> InstallReport:
    """Install ``request`` as a plugin (the steps in the module's docstring)."""
    from deeting_tui.kernel.plugins.lifecycle import PluginError, check_name_and_version
    from deeting_tui.mcp.server_env import ServerEnvStore

    loader = kernel.loader
    try:
        check_name_and_version(request.name, "1.0.0")
    except PluginError as exc:
        raise AddError(exc.message) from None
    existing = loader.installed.get(request.name)
    if existing is not None:
        raise AddError(
            f"'{request.name}' is already installed ({existing.version}): choose another name, "
            "or remove it first",
            Hint(Fix.UNINSTALL, request.name),
        )
    scopes = _scopes(request.grants)
    _check_package(request)
    command = _command_runtime(request) if request.source == "command" else None
    granted = await _consent(request, scopes, ask_all)
    env_store = ServerEnvStore(loader.paths.mcp_env_file)
    staging = loader.paths.plugins_dir / ".staging" / f"mcp-{secrets.token_hex(6)}"
    root = staging / request.name
    root.mkdir(parents=True)
    try:
        if command is not None:
            installed = command
        else:
            on_line(f"installing {request.label} …")
            installed = await _installed(request, root, on_line)
        _write_manifests(root, request, installed, granted)
        on_line("starting it in its sandbox to read its tools …")
        env_store.put(request.name, request.env)
        listing = await read_tools(kernel, root, granted)
        tools = pinned_tools(listing["tools"], on_line)
        write_pins(root, listing, tools)
        return await loader.install(
            root,
            grant=[str(s) for s in granted],
            yes=True,
            generated=f"mcp server {request.label}",
        )
    except BaseException:
        with contextlib.suppress(DeetingError, OSError):
            if loader.installed.get(request.name) is None:
                env_store.put(request.name, {})
                loader._remove_data(request.name)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_package(request: AddRequest) -> None:
    """A package name the registry could take, checked before anything is made."""
    if request.source == "command":
        return
    from deeting_tui.mcp.installers import InstallError, parse_npm_spec, parse_pypi_requirement

    if request.source not in ("pypi", "npm") or not request.package:
        raise AddError(f"{request.source!r}: a server comes from pypi, npm or a command")
    try:
        if request.source == "pypi":
            parse_pypi_requirement(request.package)
        else:
            parse_npm_spec(request.package)
    except InstallError as exc:
        raise AddError(exc.message, exc.hint) from None


def _scopes(grants: list[str]) -> list[Scope]:
    scopes: list[Scope] = []
    for text in grants:
        try:
            scope = parse_scope(text)
        except ScopeError as exc:
            raise AddError(f"--grant {text}: {exc}") from None
        if scope not in scopes:
            scopes.append(scope)
    return scopes


async def _consent(
    request: AddRequest, scopes: list[Scope], ask_all: AskGrants | None
) -> list[Scope]:
    """The scopes the user confirms (all of them with ``--yes`` or without a terminal: the
    ``--grant`` words are the user's own choice there)."""
    if request.yes or ask_all is None or not scopes:
        return scopes
    allowed = await ask_all(request.name, scopes)
    return [scope for scope in scopes if scope in allowed]


@dataclass(frozen=True)
class _Runtime:
    runtime: str
    entry: str
    package: str
    version: str
    description: str


async def _installed(request: AddRequest, root: Path, on_line: Callable[[str], None]) -> _Runtime:
    """The installer in a thread; a cancel (Ctrl-C) stops the package manager at once
    rather than waiting for the thread, which nothing else could stop."""
    work = asyncio.ensure_future(asyncio.to_thread(_install_runtime, request, root, on_line))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        from deeting_tui.mcp.installers import stop_installs

        stop_installs()
        with contextlib.suppress(BaseException):
            await work  # the thread ends (its folder removed) before the stage is
        raise


def _install_runtime(request: AddRequest, root: Path, on_line: Callable[[str], None]) -> _Runtime:
    """The package manager's part (in a thread: it runs for seconds)."""
    from deeting_tui.mcp import installers

    assert request.package is not None
    try:
        if request.source == "pypi":
            done = installers.install_pypi(request.package, root, bin=request.bin, on_line=on_line)
        else:
            done = installers.install_npm(request.package, root, bin=request.bin, on_line=on_line)
            try:
                installers.install_node_proxy_shim(root, on_line=on_line)
            except installers.InstallError as exc:  # it runs; only host-limited fetch won't
                on_line(f"note: {exc.message} — with a network:HOST grant its fetch fails")
    except installers.InstallError as exc:
        raise AddError(exc.message, exc.hint) from None
    return _Runtime(done.runtime, done.entry, done.package, done.version, done.description)


def _command_runtime(request: AddRequest) -> _Runtime:
    program = request.program or ""
    found = shutil.which(program) if "/" not in program else program
    if found is None or not Path(found).is_file():
        raise AddError(f"--command {program!r}: no such program on this machine (or on PATH)")
    path = str(Path(found).resolve())
    return _Runtime("command", path, "", "1.0.0", f"the MCP server {Path(path).name}")


def _semver(version: str) -> str:
    """The package's version as SemVer (a plugin's version must be), else 1.0.0."""
    match = VERSION.match(version.strip())
    return f"{int(match[1])}.{int(match[2])}.{int(match[3])}" if match else "1.0.0"


def _write_manifests(
    root: Path,
    request: AddRequest,
    runtime: _Runtime,
    granted: list[Scope],
) -> None:
    description = one_line(runtime.description)[:300] or f"the MCP server {request.label}"
    kimai = {
        "name": request.name,
        "version": _semver(runtime.version),
        "description": description,
        "permissions": [str(s) for s in granted],
        MCP_KEY: {
            "runtime": runtime.runtime,
            "entry": runtime.entry,
            "args": list(request.args),
            "package": runtime.package,
            "env": sorted(request.env),
        },
    }
    package = {
        "name": request.name,
        "version": kimai["version"],
        "description": description,
        "license": "see the server's package",
    }
    (root / "kimai.json").write_text(json.dumps(kimai, indent=2) + "\n", "utf-8")
    (root / "package.json").write_text(json.dumps(package, indent=2) + "\n", "utf-8")


def write_pins(root: Path, listing: dict[str, Any], tools: list[dict[str, Any]]) -> None:
    """What the user approved: ``tools`` (llm-tool.yaml, what the model sees) and the
    server's ``listing``, its tools whole (mcp-tools.json, what the bridge compares with).
    Each file is replaced atomically: a crash leaves the old approval or the new one."""
    text = yaml.safe_dump(tools, sort_keys=False, allow_unicode=True, width=100)
    write_bytes_atomic(root / "llm-tool.yaml", text.encode("utf-8"), mode=0o644)
    pins = {
        "server": listing.get("server", {}),
        "approved": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "tools": listing["tools"],
    }
    body = json.dumps(pins, indent=2, ensure_ascii=False) + "\n"
    write_bytes_atomic(root / PINS_FILE, body.encode("utf-8"), mode=0o644)


def pinned_tools(
    live: list[dict[str, Any]], on_line: Callable[[str], None]
) -> list[dict[str, Any]]:
    """The server's tools as llm-tool.yaml entries; a tool whose name Deeting cannot route
    is left out, said in one line."""
    tools: list[dict[str, Any]] = []
    for tool in live:
        name = str(tool.get("name", ""))
        if not TOOL_NAME.fullmatch(name):
            on_line(f"left out the tool {one_line(name)[:64]!r}: not a name a model can call")
            continue
        description = str(tool.get("description") or tool.get("title") or name).strip()
        schema = tool.get("inputSchema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            schema = {"type": "object", "properties": {}}
        tools.append(
            {"name": name, "description": description[:MAX_DESCRIPTION], "parameters": schema}
        )
    if not tools:
        raise AddError("the server lists no tool Deeting can offer the model")
    return tools


async def read_tools(kernel: Kernel, root: Path, granted: list[Scope]) -> dict[str, Any]:
    """Start the server at ``root`` in a worker sandboxed to ``granted`` and read its tools
    (the bridge's reserved ``mcp/tools`` call)."""
    from deeting_tui.rpc.errors import RpcError
    from deeting_tui.workers.supervisor import SupervisorHooks, WorkerStartError

    spec = _bare_spec(root)
    refusals: list[str] = []
    hooks = SupervisorHooks(on_denial=lambda _name, message, _hint: refusals.append(message))
    supervisor = kernel.loader.supervisor_for(spec, granted, hooks)
    try:
        await supervisor.start()
        await supervisor.run_hook("activate")
        result = await supervisor.invoke(LIST_TOOLS, {})
    except (WorkerStartError, RpcError) as exc:
        message = exc.message if isinstance(exc, RpcError) else str(exc)
        said = f" ({one_line(refusals[-1])})" if refusals and refusals[-1] not in message else ""
        raise AddError(
            f"the server did not start in its sandbox: {one_line(message)}{said}"
        ) from None
    finally:
        await supervisor.stop()
    listing = result.get("data")
    if not isinstance(listing, dict) or not isinstance(listing.get("tools"), list):
        raise AddError("the server's bridge gave no tool list")
    return listing


def _bare_spec(root: Path) -> PluginSpec:
    """The staged folder's spec before it has tools (only the worker's start reads it)."""
    from deeting_tui.plugin.manifest import build_spec

    kimai = json.loads((root / "kimai.json").read_text("utf-8"))
    return build_spec(root, kimai, {}, [], None)


def _dim_line(line: str) -> None:
    """A package manager's line, on stderr (stdout is for results), dimmed on a terminal."""
    from deeting_tui.terminal_text import neutralise_line

    text = neutralise_line(line)
    print(f"\x1b[2m{text}\x1b[0m" if sys.stderr.isatty() else text, file=sys.stderr, flush=True)
