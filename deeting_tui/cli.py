"""``deeting``: argument parsing and dispatch; the kernel it runs comes from the composition
root, ``deeting_tui.compose.make_kernel``.

Errors reach the user as one line on stderr saying what to do; tracebacks only with
``DEETING_DEBUG=1``. Exit codes: 0 success, 1 failure, 2 bad usage. An error or a warning may
quote a plugin, so every line written here goes through the neutraliser first, and so do the
kernel's log warnings (``TerminalSafeLastResort``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

from deeting_tui import __version__
from deeting_tui.compose import make_kernel
from deeting_tui.errors import DeetingError, is_known
from deeting_tui.paths import PROVIDERS
from deeting_tui.terminal_text import TerminalSafeLastResort, neutralise, one_line

DESCRIPTION = """\
Deeting — a terminal AI shell whose every ability is a sandboxed plugin.

  deeting                             the chat: resumes the latest session
  deeting --new                       the chat in a new session
  deeting --session ID                the chat (or --script) in session ID
  deeting --script FILE|-  [--json]   run messages headless, one per line
  deeting plugin …                    install and manage plugins
  deeting view                        a session's cards in the browser
"""

EPILOG = """\
script lines: blank lines and '#' comments are skipped; '/image PATH' sends an image;
'/TOOL key=value …' calls a tool directly; anything else is a user message.
environment: DEETING_HOME holds all config, data and cache; DEETING_DEBUG=1 shows
tracebacks.
"""


class UsageError(DeetingError):
    """Bad command-line usage (exit code 2)."""


class CliError(DeetingError):
    """A command failed (exit code 1); the message is shown as is."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors said like every other error: one line, what to do."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("deeting").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"deeting: error: {where}{one_line(message)} — see: {self.prog} --help\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="deeting",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"deeting {__version__}")
    parser.add_argument(
        "--script", metavar="FILE", help="run FILE ('-' for stdin) headless, one message per line"
    )
    parser.add_argument("--json", action="store_true", help="with --script: JSON Lines events")
    parser.add_argument(
        "--session",
        metavar="ID",
        help="continue session ID (default: the chat resumes the latest, --script starts one)",
    )
    parser.add_argument(
        "--new",
        action="store_true",
        help="start a new session (the chat; --script always does without --session)",
    )
    parser.add_argument("--provider", choices=PROVIDERS, help=_provider_help())
    parser.add_argument(
        "--model", metavar="M", help="model for the provider (default: config.toml, else its own)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_plugin_commands(commands)
    _add_registry_commands(commands)
    from deeting_tui.view_command import add_view_command

    add_view_command(commands)
    from deeting_tui.mcp.commands import add_mcp_commands

    add_mcp_commands(commands)
    return parser


def _add_registry_commands(commands: Any) -> None:
    registry = commands.add_parser(
        "registry",
        help="the signed plugin registry",
        description="Fetch and verify the signed plugin index.",
    )
    sub = registry.add_subparsers(dest="action", metavar="ACTION", required=True)
    sync = sub.add_parser(
        "sync",
        help="fetch and verify the registry, list available updates",
        description="Conditional GET of registry.json; checks signatures against the pinned "
        "root (following key rotations), expiry, and that the version never goes back.",
    )
    sync.add_argument(
        "--url",
        metavar="URL",
        help="registry.json URL (http(s) or file://); default: the registry this home "
        "follows, at first the official one (whose root deeting ships)",
    )
    sync.add_argument(
        "--root",
        metavar="FILE",
        help="pin this root.json (the registry's keys), got from its maintainers",
    )


def _add_plugin_commands(commands: Any) -> None:
    plugin = commands.add_parser(
        "plugin",
        help="install and manage plugins",
        description="Install, enable, inspect and remove plugins.",
    )
    sub = plugin.add_subparsers(dest="action", metavar="ACTION", required=True)
    text = "installed plugins and their state"
    listing = sub.add_parser(
        "list",
        help=text,
        description=f"List the {text}: version, enabled or not (and why), dev or registry "
        "install, and the sandbox this machine gives them.",
    )
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    install = sub.add_parser(
        "install",
        help="install from the registry, a folder (a local, dev install) or a zip",
        description="Verify (registry: signature, length, hash), unpack, validate, put in "
        "place atomically, run postinstall, and enable when every permission it declares is "
        "granted.",
    )
    install.add_argument(
        "source",
        nargs="+",
        metavar="SOURCE",
        help="a registry name (weather, weather@1.2.0; after `deeting registry sync`), "
        "a plugin folder, or a .zip; several are installed in turn (a failed one is said "
        "and the rest still install; the exit status is 1 if any failed)",
    )
    install.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="SCOPE",
        help="grant one declared permission (repeatable)",
    )
    install.add_argument("--yes", "-y", action="store_true", help="grant every declared permission")
    again = install.add_mutually_exclusive_group()
    again.add_argument(
        "--force", action="store_true", help="reinstall even if this version is installed"
    )
    again.add_argument(
        "--missing",
        action="store_true",
        help="install only the SOURCEs whose plugin is not installed yet; one installed at "
        "any version is left alone (said in one line), not an error",
    )
    for action, text in (
        ("enable", "start a plugin and route to it (checks grants, runs activate)"),
        ("disable", "stop a plugin (runs deactivate); it stays installed"),
        ("uninstall", "remove a plugin's code, data and cache (runs preuninstall)"),
    ):
        sub.add_parser(action, help=text, description=text).add_argument("name", metavar="NAME")
    info = sub.add_parser(
        "info",
        help="everything about one installed plugin",
        description="Everything about one installed plugin: state, source, permissions "
        "(granted or not), sandbox, limits, tools, trigger, renderer, data and log folders.",
    )
    info.add_argument("name", metavar="NAME")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    for action, text in (
        ("grant", "grant a permission the plugin declares (enables it when complete)"),
        ("revoke", "take a permission back (disables the plugin if it needs it)"),
    ):
        cmd = sub.add_parser(action, help=text, description=text)
        cmd.add_argument("name", metavar="NAME")
        cmd.add_argument("scope", metavar="SCOPE", help="e.g. network:api.example.com")
    upgrade = sub.add_parser(
        "upgrade",
        help="upgrade registry plugins (all with updates, or one)",
        description="Download, verify and put the new version in place beside the old, then "
        "swap; running deeting sessions switch their worker without losing the chat. The "
        "previous version is kept for: deeting plugin rollback NAME.",
    )
    upgrade.add_argument(
        "name", nargs="?", metavar="NAME[@VERSION]", help="one plugin (default: every update)"
    )
    upgrade.add_argument(
        "--allow-downgrade", action="store_true", help="accept a version older than installed"
    )
    upgrade.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="SCOPE",
        help="grant a permission the new version adds (repeatable)",
    )
    upgrade.add_argument("--yes", "-y", action="store_true", help="grant every added permission")
    text = "go back to the version kept by the last upgrade"
    sub.add_parser("rollback", help=text, description=text).add_argument("name", metavar="NAME")
    new = sub.add_parser(
        "new",
        help="scaffold a new plugin folder",
        description="Write a new plugin folder DIR/NAME (manifest, tool spec, src/index.py, "
        "examples, README) that installs and answers as it is; refuses to overwrite.",
    )
    new.add_argument("name", metavar="NAME")
    new.add_argument("--dir", metavar="DIR", default=".", help="parent folder (default: .)")


def main(argv: list[str] | None = None) -> int:
    logging.lastResort = TerminalSafeLastResort()
    from deeting_tui.mcp.commands import split_server_args

    argv, server_args = split_server_args(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(argv)
    if server_args is not None:
        args.args = server_args
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("deeting: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`deeting plugin info x | head`): not an error worth a word.
        # Point stdout at /dev/null so the interpreter's final flush does not complain again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:  # the command's one catch: every failure is said here
        if os.environ.get("DEETING_DEBUG") == "1" and not isinstance(exc, UsageError):
            sys.stderr.write(neutralise(traceback.format_exc()))
        print(f"deeting: error: {error_text(exc)}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


def error_text(exc: BaseException) -> str:
    """Any error as one line a person reads: a known one (:func:`errors.is_known`) is its
    message and the command that fixes it; an OS error says the file and the reason; anything
    else is a bug, named as such, with the way to see its traceback."""
    if isinstance(exc, DeetingError):
        from deeting_tui.command_output import error_line

        return one_line(error_line(exc)) or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return one_line(os_error_line(exc))
    message = one_line(str(exc)) or type(exc).__name__
    if is_known(exc):
        return message
    return f"{type(exc).__name__}: {message} (DEETING_DEBUG=1 shows the traceback)"


def os_error_line(exc: OSError) -> str:
    """An OS error as a person reads it (``/x/y: Permission denied``), not as Python
    spells it (``PermissionError: [Errno 13] …``)."""
    where = " → ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    return f"{where}: {exc.strerror}" if where else str(exc.strerror)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "plugin":
        if args.action == "install" and args.grant and len(args.source) > 1:
            raise UsageError(
                "--grant names one plugin's permissions: use it with one SOURCE "
                "(or --yes to grant each plugin what it declares)"
            )
        from deeting_tui.plugin_commands import run_plugin_command

        return asyncio.run(run_plugin_command(args))
    if args.command == "registry":
        from deeting_tui.plugin_commands import with_kernel
        from deeting_tui.registry_commands import run_registry_command

        return asyncio.run(with_kernel(run_registry_command, args))
    if args.command == "mcp":
        from deeting_tui.mcp.commands import run_mcp_command

        return run_mcp_command(args)
    if args.command == "view":
        from deeting_tui.view_command import ViewUsageError, run_view_command

        try:
            return run_view_command(args)
        except ViewUsageError as exc:
            raise UsageError(exc.message) from None
    if args.json and not args.script:
        raise UsageError("--json needs --script (the chat has no JSON mode)")
    if args.new and args.session:
        raise UsageError("--new and --session exclude each other: a new session, or ID")
    if args.script:
        return _run_script(args)
    if args.session:
        _check_session(args.session)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(build_parser().format_help())
        print("The chat needs a terminal; without one, use: deeting --script FILE|-")
        return 0
    return _run_chat(args)


def _run_chat(args: argparse.Namespace) -> int:
    from deeting_tui.llm.select import choose
    from deeting_tui.paths import load_config, resolve_paths
    from deeting_tui.ui.app import DeetingApp

    # A damaged config or an unknown provider is said before the chat takes the terminal;
    # the kernel itself is composed and started by the chat after its first frame.
    config = load_config(resolve_paths())
    choose(args.provider, args.model, config.provider, config.model)
    app = DeetingApp(
        session_id=args.session, new=args.new, provider=args.provider, model=args.model
    )
    app.run()
    if app.return_code or app.crash is not None:  # Textual gives 1 for an uncaught exception
        crash = app.crash
        if crash is not None and is_known(crash):
            raise crash  # expected (a damaged config, say): said as its one line, fix and all
        what = f"{type(crash).__name__}: {one_line(str(crash))}" if crash else "no reason given"
        raise CliError(
            f"the chat stopped on an unexpected error ({what}); your session is stored — "
            "DEETING_DEBUG=1 shows the traceback, deeting --new starts a new session"
        ) from crash
    return 0


def _check_session(session_id: str) -> None:
    """``--session ID`` names a stored session: bad usage (exit 2) otherwise, said in one
    line before the chat takes the terminal, as ``--script`` does."""
    from deeting_tui.kernel.sessions.database import SessionNotFound
    from deeting_tui.kernel.sessions.store import SessionStore
    from deeting_tui.paths import resolve_paths

    with SessionStore(resolve_paths().sessions_db) as store:
        try:
            store.get(session_id)
        except SessionNotFound as exc:
            raise UsageError(f"--session {session_id}: {exc}") from None


def _run_script(args: argparse.Namespace) -> int:
    # Bytes, not text: each line is decoded on its own, so a line that is not UTF-8 is
    # reported and skipped instead of ending the run (headless.script_lines).
    if args.script == "-":
        return asyncio.run(_script_main(args, sys.stdin.buffer))
    path = Path(args.script)
    try:
        lines = path.open("rb")
    except FileNotFoundError:
        raise UsageError(f"--script {args.script}: no such file") from None
    except OSError as exc:
        raise UsageError(f"--script {args.script}: cannot read: {exc}") from None
    with lines:
        return asyncio.run(_script_main(args, lines))


async def _script_main(args: argparse.Namespace, lines: Any) -> int:
    from deeting_tui.headless import run_script
    from deeting_tui.kernel.sessions.database import SessionNotFound

    kernel = make_kernel(args.provider, args.model)
    try:
        for problem in await kernel.start():
            print(f"deeting: warning: {one_line(problem)}", file=sys.stderr)
        try:
            return await run_script(
                kernel,
                lines,
                session_id=args.session,
                out=sys.stdout.buffer,
                err=sys.stderr,
                json_mode=args.json,
            )
        except SessionNotFound as exc:
            raise UsageError(f"--session {args.session}: {exc}") from None
    finally:
        await kernel.shutdown()


def _provider_help() -> str:
    """The flag's help, with the provider that would answer right now and why."""
    from deeting_tui.llm.select import choose
    from deeting_tui.paths import ConfigError, load_config, resolve_paths

    try:
        config = load_config(resolve_paths())
        now = choose(None, None, config.provider, config.model).describe()
    except (ConfigError, ValueError, OSError) as exc:
        now = f"unknown: {exc}"
    return (
        "who answers free text; default: config.toml's provider, else anthropic when "
        "ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN is set, openai when OPENAI_BASE_URL or "
        "OPENAI_API_KEY is, "
        f"else offline (now: {now})"
    )
