"""``deeting mcp add|import|serve``: the parser and the dispatch; each command lives in its
own module, imported only when it runs (the SDK is heavy, ``deeting --help`` must stay fast)."""

from __future__ import annotations

import argparse
from typing import Any

ADD_EPILOG = """examples:
  deeting mcp add time --pypi mcp-server-time
  deeting mcp add files --npm @modelcontextprotocol/server-filesystem \\
      --grant filesystem:read:~/Documents -- ~/Documents
  deeting mcp add fetch --pypi mcp-server-fetch --grant network:example.com
  deeting mcp add mine --command -- /usr/local/bin/my-mcp-server --flag

The server is installed by its package manager (pip: wheels only, in a venv of its own;
npm: --ignore-scripts, pinned by its lock file), never run unconfined: it starts inside the
plugin's sandbox, holding only the scopes granted here."""


def add_mcp_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    mcp = commands.add_parser(
        "mcp",
        help="stock MCP servers as sandboxed plugins; our plugins as an MCP server",
        description="Run stock Model Context Protocol servers as sandboxed plugins, and let "
        "any MCP client use Deeting's plugins.",
    )
    sub = mcp.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        help="install an MCP stdio server as plugin NAME",
        description="Install a stock MCP stdio server (from PyPI, npm, or a program already "
        "on this machine) as plugin NAME: its tools become NAME's tools, pinned as they are "
        "now, and it runs in NAME's sandbox with only the scopes granted.",
        epilog=ADD_EPILOG,
        usage="deeting mcp add NAME (--pypi PKG[==V] | --npm PKG[@V] | --command) "
        "[--bin NAME] [--grant SCOPE]... [--env KEY=VALUE]... [--yes] [-- ARGS...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", metavar="NAME", help="the plugin's name (lowercase, digits, '-')")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--pypi", metavar="PKG[==V]", help="a Python package on PyPI")
    source.add_argument("--npm", metavar="PKG[@V]", help="a package on npm")
    source.add_argument(
        "--command",
        dest="program",
        action="store_true",
        help="a program already on this machine: the first ARG after -- is the program",
    )
    add.add_argument(
        "--bin",
        metavar="NAME",
        help="which of the package's programs is the server (when it has several)",
    )
    add.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="SCOPE",
        help="what the server may touch (repeatable): network:HOST, filesystem:read:PATH, "
        "filesystem:write:PATH, shell, gpu",
    )
    add.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for this server only (repeatable; stored like a grant, "
        "never shown to other plugins)",
    )
    add.add_argument("--yes", "-y", action="store_true", help="grant every --grant without asking")
    add.set_defaults(args=[])
    text = 'propose a plugin per server of an "mcpServers" JSON file'
    importing = sub.add_parser(
        "import",
        help=text,
        description='Read FILE (the common {"mcpServers": {NAME: {command, args, env}}} '
        "format of desktop assistants and IDEs) and propose a plugin per server, asking what "
        "each may touch. env values are stored like grants and passed only to that server.",
    )
    importing.add_argument("file", metavar="FILE", help="the JSON file ('-' for stdin)")
    importing.add_argument(
        "--only", action="append", default=[], metavar="SERVER", help="import only these servers"
    )
    importing.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="SERVER=SCOPE",
        help="grant SCOPE to SERVER without asking (repeatable)",
    )
    importing.add_argument(
        "--yes", "-y", action="store_true", help="install every proposal without asking"
    )
    serve = sub.add_parser(
        "serve",
        help="our plugins' tools as an MCP server on stdio",
        description="Serve the enabled plugins' tools (or those of --plugin NAME) as an MCP "
        "server on stdio, for any MCP client: each call goes through the kernel to the "
        "plugin's sandboxed worker.",
    )
    serve.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="NAME",
        help="serve only this plugin's tools (repeatable)",
    )
    review = sub.add_parser(
        "review",
        help="see how a server's tools changed since you approved them, and approve",
        description="Start server NAME in its sandbox, compare its tools with the ones you "
        "approved (names, descriptions, schemas, annotations), show the difference and ask "
        "before the model sees the new ones.",
    )
    review.add_argument("name", metavar="NAME")
    review.add_argument("--yes", "-y", action="store_true", help="approve without asking")


def split_server_args(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """``mcp add``'s own words, and the server's (everything after the first ``--``).

    argparse cannot take options after a positional and then a ``--`` tail
    (``mcp add x --pypi p -- --flag``), so the tail is cut off before parsing."""
    for index in range(len(argv) - 1):
        if argv[index] == "mcp" and argv[index + 1] == "add":
            if "--" in argv[index + 2 :]:
                cut = argv.index("--", index + 2)
                return argv[:cut], argv[cut + 1 :]
            break
    return argv, None


def run_mcp_command(args: Any) -> int:
    if args.action == "serve":
        from deeting_tui.mcp.serve import run_serve

        return run_serve(args)
    if args.action == "import":
        from deeting_tui.mcp.import_command import run_import

        return run_import(args)
    if args.action == "review":
        from deeting_tui.mcp.review import run_review

        return run_review(args)
    from deeting_tui.mcp.add import run_add

    return run_add(args)
