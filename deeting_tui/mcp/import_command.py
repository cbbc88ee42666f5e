"""``deeting mcp import FILE [--only SERVER]... [--grant SERVER=SCOPE]... [--yes]``.

Reads an MCP servers file (:mod:`deeting_tui.mcp.imports`), says each proposal (what would be
installed, from where, with which args, and the *names* of its env variables: their values
are secrets and never printed), asks on a terminal which scopes each server may hold, and
then adds each through ``deeting mcp add``'s own code (:func:`add_server`), one after the
other: one server failing does not stop the rest, and the exit status is 1 if any failed.

All the questions come first and the installs after, so the user is not left waiting at a
prompt between two downloads. A script (no terminal, or the file on stdin) is never asked:
it must say ``--yes`` and grant with ``--grant SERVER=SCOPE``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from deeting_tui.command_output import error_line, fail, say, settled
from deeting_tui.errors import DeetingError
from deeting_tui.mcp.add import AddRequest, _dim_line, add_server
from deeting_tui.mcp.imports import MAX_FILE_BYTES, ImportFileError, Proposal, parse_mcp_servers
from deeting_tui.plugin.scopes import Scope, ScopeError, parse_scope
from deeting_tui.terminal_text import one_line, quote_prefix

if TYPE_CHECKING:
    from deeting_tui.kernel.kernel import Kernel

__all__ = ["run_import"]

SCOPE_QUESTION = (
    "  scopes for {name} (e.g. network:api.example.com filesystem:read:~/Documents; "
    "Enter for none, 'skip' to leave it out): "
)


@dataclass
class _Planned:
    proposal: Proposal
    grants: list[Scope]


def run_import(args: argparse.Namespace, *, ask: Callable[[str], str] = input) -> int:
    """The command; ``ask`` reads one answer from the terminal (tests answer for the user)."""
    try:
        data, source = _read(args.file)
        proposals = parse_mcp_servers(data, source)
        proposals = _only(proposals, list(args.only), source)
        granted = _cli_grants(list(args.grant), proposals)
    except DeetingError as exc:
        return fail(error_line(exc))
    interactive = args.file != "-" and sys.stdin.isatty() and not args.yes
    if not args.yes and not interactive:
        why = "the file came on stdin" if args.file == "-" else "this is not a terminal"
        return fail(
            f"{why}, so nothing can be asked: run with --yes, granting what each server may "
            "touch with --grant SERVER=SCOPE (e.g. --grant files=filesystem:read:~/Documents)"
        )
    failed = False
    planned: list[_Planned] = []
    for proposal in proposals:
        if proposal.problem:
            if proposal.unsupported:
                print(f"deeting: warning: {one_line(proposal.line)}", file=sys.stderr)
            else:
                fail(proposal.line)
                failed = True
            continue
        say(proposal.line)
        grants = granted.get(proposal.server, [])
        if grants:
            say(f"  granted with --grant: {' '.join(str(s) for s in grants)}")
        if interactive:
            try:
                more = _ask_scopes(proposal, ask)
            except EOFError:
                fail(f"no answer for {proposal.name} (end of input): nothing was added")
                return 1
            if more is None:
                say(f"  {proposal.name}: left out")
                continue
            grants = _merged(grants, more)
        planned.append(_Planned(proposal, grants))
    if not planned:
        return 1 if failed else 0
    try:
        added_failed = asyncio.run(_add_all(planned, args))
    except DeetingError as exc:  # the kernel could not start (a broken home, a held lock)
        return fail(error_line(exc))
    return 1 if failed or added_failed else 0


def _read(file: str) -> tuple[bytes, str]:
    """The file's bytes (at most one more than the limit, which the parser then refuses)."""
    if file == "-":
        return sys.stdin.buffer.read(MAX_FILE_BYTES + 1), "stdin"
    path = Path(file).expanduser()
    try:
        with path.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1), str(path)
    except FileNotFoundError:
        raise ImportFileError(f"{quote_prefix(file)}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(
            f"{quote_prefix(file)} is a folder: give the JSON file itself (e.g. "
            "claude_desktop_config.json, .cursor/mcp.json, .vscode/mcp.json)"
        ) from None
    except OSError as exc:
        raise ImportFileError(f"could not read {quote_prefix(file)}: {exc.strerror}") from None


def _only(proposals: list[Proposal], only: list[str], source: str) -> list[Proposal]:
    if not only:
        return proposals
    known = {p.server for p in proposals} | {p.name for p in proposals}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise ImportFileError(
            f"{source} has no server {quote_prefix(unknown[0])!r} (its servers: "
            f"{quote_prefix(', '.join(p.server for p in proposals), 200)})"
        )
    return [p for p in proposals if p.server in only or p.name in only]


def _cli_grants(grants: list[str], proposals: list[Proposal]) -> dict[str, list[Scope]]:
    """``--grant SERVER=SCOPE`` by server key (a plugin name made from the key counts too)."""
    by_name = {p.name: p.server for p in proposals} | {p.server: p.server for p in proposals}
    granted: dict[str, list[Scope]] = {}
    for text in grants:
        server, sep, scope_text = text.partition("=")
        if not sep or not server or not scope_text:
            raise DeetingError(
                f"--grant {quote_prefix(text)!r}: write SERVER=SCOPE "
                "(e.g. --grant files=filesystem:read:~/Documents)"
            )
        if server not in by_name:
            raise DeetingError(
                f"--grant {quote_prefix(text)!r}: the file has no server {quote_prefix(server)!r}"
            )
        try:
            scope = parse_scope(scope_text)
        except ScopeError as exc:
            raise DeetingError(f"--grant {quote_prefix(text)!r}: {exc.message}") from None
        granted.setdefault(by_name[server], []).append(scope)
    return granted


def _ask_scopes(proposal: Proposal, ask: Callable[[str], str]) -> list[Scope] | None:
    """The scopes the user types for one server (asked again after a bad one), or None to
    leave the server out."""
    question = one_line(SCOPE_QUESTION.format(name=proposal.name)) + " "
    while True:
        answer = ask(question).strip()
        if answer.lower() == "skip":
            return None
        scopes: list[Scope] = []
        try:
            for word in answer.split():
                scopes.append(parse_scope(word))
        except ScopeError as exc:
            print(f"  {one_line(exc.message)}", file=sys.stderr)
            continue
        return scopes


def _merged(first: list[Scope], more: list[Scope]) -> list[Scope]:
    return first + [scope for scope in more if scope not in first]


async def _add_all(planned: list[_Planned], args: argparse.Namespace) -> bool:
    """Add each planned server on one kernel; whether any failed."""
    from deeting_tui.plugin_commands import with_kernel

    failed = False

    async def handler(kernel: Kernel, _args: argparse.Namespace) -> int:
        nonlocal failed
        for plan in planned:
            proposal = plan.proposal
            request = AddRequest(
                name=proposal.name,
                source=proposal.source,
                package=proposal.package,
                program=proposal.program,
                args=list(proposal.args),
                grants=[str(scope) for scope in plan.grants],
                env=dict(proposal.env),
                bin=proposal.bin,
                yes=True,
            )
            say(f"adding {proposal.name} …")
            try:
                report = await add_server(kernel, request, on_line=_dim_line)
            except DeetingError as exc:  # this server; the rest still go in
                fail(f"{proposal.name}: {error_line(exc)}")
                failed = True
                continue
            if settled(report) != 0:
                failed = True
        return 0

    await with_kernel(handler, args)
    return failed
