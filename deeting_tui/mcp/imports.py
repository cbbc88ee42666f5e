"""``deeting mcp import FILE``: the common MCP servers file, read into proposals.

Desktop assistants and IDEs keep their MCP servers in one JSON shape,
``{"mcpServers": {NAME: {"command": ..., "args": [...], "env": {...}}}}`` (Claude Desktop,
Cursor, Windsurf, Cline); VS Code's ``mcp.json`` says ``"servers"`` (or ``"mcp": {"servers"}``
in settings.json), adds ``"type": "stdio"`` and allows comments. Each entry becomes a
:class:`Proposal`: what ``deeting mcp add`` would install.

Those files start servers through a launcher that downloads at every start (``npx -y PKG``,
``uvx PKG``, ``pipx run PKG``). The sandbox cannot download at run time, and what runs must
be what the user approved, so a launcher's package is installed now, from its registry, and
pinned (``source`` ``npm`` or ``pypi``); any other command is a program already on this machine,
found on PATH now (``source`` ``command``). Remote servers (``url``, ``"type": "http"``/``"sse"``)
are not stdio servers: each is a one-line ``problem``, and the rest of the file still imports.

Pure: bytes in, proposals out, except :func:`shutil.which` for a command's program. A file
that is not what it should be is one :class:`ImportFileError` naming the file and the field,
and nothing is proposed.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deeting_tui.errors import DeetingError
from deeting_tui.mcp.install_npm import parse_npm_spec
from deeting_tui.mcp.install_pypi import parse_pypi_requirement
from deeting_tui.mcp.install_run import InstallError
from deeting_tui.plugin.names import PLUGIN_NAME_RE
from deeting_tui.terminal_text import one_line, quote_prefix

__all__ = ["MAX_FILE_BYTES", "ImportFileError", "Proposal", "parse_mcp_servers", "plugin_name"]

#: A servers file is a few kilobytes; anything past this is not one.
MAX_FILE_BYTES = 1024 * 1024
_MAX_NAME = 64
_REMOTE_TYPES = ("http", "sse", "streamable-http", "streamablehttp", "ws", "websocket")
_NPX = ("npx", "bunx")
#: VS Code's ``${input:x}``, ``${workspaceFolder}``, ``${env:X}``: filled by the editor only.
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
_NPX_QUIET = ("-y", "--yes", "-q", "--quiet", "--silent", "--prefer-online", "--prefer-offline")


class ImportFileError(DeetingError):
    """The file is not an MCP servers file: one line naming it and the field at fault."""


@dataclass(frozen=True)
class Proposal:
    """One server of the file, as ``deeting mcp add`` would install it.

    ``server``: the key in the file; ``name``: the plugin name made from it (``renamed`` when
    it had to change). ``source``: ``pypi``/``npm`` (``package`` is the registry spec) or
    ``command`` (``program`` is an absolute path). ``problem``: why this server cannot be
    added (a remote server, a program not found); ``unsupported`` marks a server deeting
    cannot run at all (a remote one), which an import skips rather than fails on. ``line``
    says the proposal for people."""

    server: str
    name: str
    source: str
    package: str | None = None
    program: str | None = None
    bin: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    renamed: bool = False
    problem: str | None = None
    unsupported: bool = False

    @property
    def line(self) -> str:
        """The proposal for people, on one line: never an env value, only its name."""
        head = f"{self.name}" + (f" (from {quote_prefix(self.server)!r})" if self.renamed else "")
        if self.problem:
            return f"{head}: {self.problem}"
        if self.source == "pypi":
            what = f"{self.package} from PyPI"
        elif self.source == "npm":
            what = f"{self.package} from npm"
        else:
            what = f"the program {quote_prefix(self.program or '', 200)}"
        if self.bin:
            what += f" (its program {self.bin})"
        parts = [f"{head}: {what}"]
        if self.args:
            parts.append(f"args: {quote_prefix(' '.join(self.args), 200)}")
        if self.env:
            parts.append(f"env: {quote_prefix(', '.join(sorted(self.env)), 200)}")
        return one_line("; ".join(parts))


def plugin_name(key: str) -> str:
    """A server's key as a plugin name: lowercase, runs of anything but ``[a-z0-9]`` as one
    ``-``, no leading or trailing ``-``, at most 64 characters (``server`` if nothing is left)."""
    name = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")[:_MAX_NAME].rstrip("-")
    return name or "server"


def parse_mcp_servers(
    data: bytes,
    source: str,
    *,
    which: Callable[[str], str | None] = shutil.which,
) -> list[Proposal]:
    """The proposals of an MCP servers file (``source`` names it in errors); see the module
    docstring. ``which`` finds a command's program (tests pass their own)."""
    servers, key = _servers(_document(data, source), source)
    proposals: list[Proposal] = []
    taken: set[str] = set()
    for server, entry in servers.items():
        where = f"{source}: {key}.{quote_prefix(server)}"
        if not isinstance(entry, dict):
            raise ImportFileError(f'{where} must be an object with a "command"')
        name = _unique(plugin_name(server), taken)
        renamed = name != server
        proposals.append(_proposal(server, entry, where, name, renamed, which))
    return proposals


def _document(data: bytes, source: str) -> dict[str, Any]:
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(
            f"{source} is {len(data):,} bytes: an MCP servers file is at most "
            f"{MAX_FILE_BYTES // 1024 // 1024} MiB"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFileError(f"{source} is not UTF-8 text (byte {exc.start:,})") from None
    if not text.strip():
        raise ImportFileError(f"{source} is empty: an MCP servers file is a JSON object")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        try:  # VS Code's mcp.json and settings.json are JSON with comments
            document = json.loads(_without_comments(text))
        except json.JSONDecodeError:
            raise ImportFileError(
                f"{source} is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    if not isinstance(document, dict):
        raise ImportFileError(
            f'{source}: the top level must be a JSON object with "mcpServers", not a '
            f"{_json_type(document)}"
        )
    return document


def _servers(document: dict[str, Any], source: str) -> tuple[dict[str, Any], str]:
    where: str
    for key in ("mcpServers", "servers"):
        if key in document:
            found, where = document[key], key
            break
    else:
        nested = document.get("mcp")
        if isinstance(nested, dict) and "servers" in nested:
            found, where = nested["servers"], "mcp.servers"
        else:
            raise ImportFileError(
                f'{source} has no "mcpServers" object (nor VS Code\'s "servers"): it is not '
                "an MCP servers file"
            )
    if not isinstance(found, dict):
        raise ImportFileError(
            f'{source}: "{where}" must be an object of servers (NAME: {{command, args, '
            f"env}}), not a {_json_type(found)}"
        )
    if not found:
        raise ImportFileError(f'{source}: "{where}" is empty: there is no server to import')
    return found, where


def _proposal(
    server: str,
    entry: dict[str, Any],
    where: str,
    name: str,
    renamed: bool,
    which: Callable[[str], str | None],
) -> Proposal:
    base = Proposal(server=server, name=name, source="command", renamed=renamed)
    kind = entry.get("type")
    if kind is not None and not isinstance(kind, str):
        raise ImportFileError(f"{where}.type must be a string")
    if "url" in entry or (kind or "stdio").lower() in _REMOTE_TYPES:
        said = f"a remote ({kind or 'url'}) server" if kind != "stdio" else "a remote server"
        return _problem(
            base, f"{one_line(said)}: deeting runs stdio servers only; skipped", unsupported=True
        )
    if kind is not None and kind.lower() != "stdio":
        return _problem(
            base, f"type {quote_prefix(kind)!r} is not a stdio server; skipped", unsupported=True
        )
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ImportFileError(f"{where}.command must be a non-empty string (the program)")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ImportFileError(f"{where}.args must be a list of strings")
    env = entry.get("env", {})
    if env is None:
        env = {}
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ImportFileError(f"{where}.env must be an object of strings (NAME: value)")
    bad_key = next((k for k in env if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k)), None)
    if bad_key is not None:
        raise ImportFileError(
            f"{where}.env: {quote_prefix(bad_key)!r} is not an environment variable name"
        )
    base = Proposal(server=server, name=name, source="command", renamed=renamed, env=dict(env))
    placeholder = next(
        (f"env {k}" for k, v in env.items() if _PLACEHOLDER.search(v)), None
    ) or next((f"its args ({a})" for a in args if _PLACEHOLDER.search(a)), None)
    if placeholder is not None:
        return _problem(
            base,
            f"{quote_prefix(placeholder)} holds an editor's ${{...}} placeholder, which deeting "
            "cannot fill: add this server with `deeting mcp add` and the real value",
        )
    try:
        return _launch(base, command.strip(), list(args), which)
    except InstallError as exc:  # a launcher's package that is not a registry package
        return _problem(base, exc.message)


def _problem(base: Proposal, problem: str, *, unsupported: bool = False) -> Proposal:
    return _with(base, problem=problem, unsupported=unsupported)


def _with(base: Proposal, **changes: Any) -> Proposal:
    return replace(base, **changes)


def _launch(
    base: Proposal, command: str, args: list[str], which: Callable[[str], str | None]
) -> Proposal:
    """Map a launcher (``npx -y PKG``, ``uvx PKG``, ``pipx run PKG``) to its registry
    package; anything else is a program on this machine."""
    program = Path(command).name
    if program in _NPX:
        return _npx(base, args)
    if program in ("npm", "pnpm", "yarn") and args[:1] in (["exec"], ["x"], ["dlx"]):
        return _npx(base, args[1:])
    if program == "uvx":
        return _uvx(base, args)
    if program == "uv" and args[:2] == ["tool", "run"]:
        return _uvx(base, args[2:])
    if program == "pipx" and args[:1] == ["run"]:
        return _pipx(base, args[1:])
    return _command(base, command, args, which)


def _npx(base: Proposal, args: list[str]) -> Proposal:
    rest = list(args)
    package: str | None = None
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "--":
            break
        if flag in _NPX_QUIET:
            continue
        if flag in ("-p", "--package") and rest:
            package = rest.pop(0)
        elif flag.startswith("--package="):
            package = flag.partition("=")[2]
        else:
            raise InstallError(
                f"npx's option {quote_prefix(flag)!r} is not understood here; add the server "
                "with `deeting mcp add NAME --npm PKG -- ARGS`"
            )
    if not rest:
        raise InstallError("npx names no package to run; add it with `deeting mcp add --npm`")
    program = None
    if package is None:
        package = rest.pop(0)
    else:  # npx -p PKG PROGRAM ARGS: the package's program, by name
        program = rest.pop(0)
    spec = parse_npm_spec(package)
    pinned = spec.spec() if spec.version not in (None, "latest") else spec.name
    return _with(base, source="npm", package=pinned, bin=program, args=tuple(rest))


def _uvx(base: Proposal, args: list[str]) -> Proposal:
    rest = list(args)
    package: str | None = None
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "--":
            break
        if flag in ("-q", "--quiet", "--no-cache", "--offline", "--isolated"):
            continue
        if flag == "--from" and rest:
            package = rest.pop(0)
        elif flag.startswith("--from="):
            package = flag.partition("=")[2]
        elif flag in ("--python", "-p") and rest:
            rest.pop(0)  # deeting's own Python runs it
        else:
            raise InstallError(
                f"uvx's option {quote_prefix(flag)!r} is not understood here; add the server "
                "with `deeting mcp add NAME --pypi PKG -- ARGS`"
            )
    return _launched(base, package, rest, "uvx names no package to run")


def _pipx(base: Proposal, args: list[str]) -> Proposal:
    rest = list(args)
    package: str | None = None
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag == "--":
            break
        if flag in ("-q", "--quiet", "--no-cache"):
            continue
        if flag == "--spec" and rest:
            package = rest.pop(0)
        else:
            raise InstallError(
                f"pipx's option {quote_prefix(flag)!r} is not understood here; add the server "
                "with `deeting mcp add NAME --pypi PKG -- ARGS`"
            )
    return _launched(base, package, rest, "pipx run names no package")


def _launched(base: Proposal, package: str | None, rest: list[str], missing: str) -> Proposal:
    """What uvx or pipx runs once its options are read: the package (``--from``/``--spec``,
    the next word then being the program), else the next word is the package itself."""
    if not rest:
        raise InstallError(f"{missing}; add it with `deeting mcp add --pypi`")
    target = rest.pop(0)
    if package is None:
        return _pypi(base, target, None, rest)
    return _pypi(base, package, target, rest)


def _pypi(base: Proposal, package: str, program: str | None, args: list[str]) -> Proposal:
    """uv's ``PKG@VERSION`` (``@latest``: the newest) as pip's ``PKG==VERSION``, checked."""
    name, at, version = package.partition("@")
    if at and "://" not in package:
        package = name if version == "latest" else f"{name}=={version}"
    requirement = parse_pypi_requirement(package)
    program = program if program and program != requirement.name else None
    return _with(base, source="pypi", package=requirement.spec(), bin=program, args=tuple(args))


def _command(
    base: Proposal, command: str, args: list[str], which: Callable[[str], str | None]
) -> Proposal:
    """A program on this machine, as an absolute path found now (the plugin records the
    path, so a later PATH cannot swap the program)."""
    path = Path(command).expanduser()
    found = (str(path) if path.is_file() else None) if path.is_absolute() else which(command)
    if found is None:
        return _problem(
            base,
            f"the program {quote_prefix(command)!r} is not on this machine (not found on "
            'PATH): install it, or fix the file\'s "command"',
        )
    return _with(base, source="command", program=str(Path(found).absolute()), args=tuple(args))


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        suffix = f"-{number}"
        candidate = name[: _MAX_NAME - len(suffix)].rstrip("-") + suffix
    taken.add(candidate)
    assert PLUGIN_NAME_RE.fullmatch(candidate), candidate
    return candidate


def _json_type(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, int | float) else "value"
    )


_JSONC_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/|,(?=\s*[}\]])', re.DOTALL)


def _without_comments(text: str) -> str:
    """JSON with comments (``//``, ``/* */``) and trailing commas, as plain JSON: strings are
    kept as they are, so a ``//`` inside a URL is not a comment."""

    def drop(match: re.Match[str]) -> str:
        return match.group() if match.group().startswith('"') else ""

    # twice: a comma before a comment before the bracket is trailing once the comment is gone
    return _JSONC_TOKEN.sub(drop, _JSONC_TOKEN.sub(drop, text))
