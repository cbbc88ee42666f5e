"""Installing a stock MCP server into a plugin's folder: what ``deeting mcp add`` calls.

- :func:`install_pypi`: a venv of its own in ``server/venv``, wheels only (no build script
  of any package runs).
- :func:`install_npm`: ``server/node_modules`` with ``--ignore-scripts``, pinned exactly,
  every package's sha512 integrity kept in ``server/package-lock.json``.
- :func:`install_node_proxy_shim`: the preload that sends a Node server's fetch through
  Deeting's proxy (Node 20/22's fetch ignores HTTPS_PROXY).

Installing runs the package manager only: never the server, never an install script. The
server first starts in the plugin's sandbox. Every failure is an :class:`InstallError`, one
line a person can act on, and leaves nothing behind in ``server/``. The installers block:
run them in a thread, and call :func:`stop_installs` when the caller is cancelled (Ctrl-C).
"""

from __future__ import annotations

from deeting_tui.mcp.install_npm import install_node_proxy_shim, install_npm, parse_npm_spec
from deeting_tui.mcp.install_pypi import install_pypi, parse_pypi_requirement
from deeting_tui.mcp.install_run import (
    INSTALL_TIMEOUT,
    InstalledServer,
    InstallError,
    stop_installs,
)

__all__ = [
    "INSTALL_TIMEOUT",
    "InstallError",
    "InstalledServer",
    "install_node_proxy_shim",
    "install_npm",
    "install_pypi",
    "parse_npm_spec",
    "parse_pypi_requirement",
    "stop_installs",
]
