"""The four stock MCP servers, installed once with Deeting's own installers and kept.

``stock_time``, ``stock_fetch`` (PyPI) and ``stock_everything``, ``stock_filesystem`` (npm)
are session fixtures: each is a fresh copy (under the session's tmp folder) of an install tree
built by :mod:`deeting_tui.mcp.installers` and kept in ``.cache/mcp/trees`` (git ignores
``.cache/``), so a second run takes a copy instead of an install, and works offline. pip's and
npm's own caches live beside it (``.cache/mcp/pip``, ``.cache/mcp/npm``), so even a rebuild
downloads nothing it has seen. A tree is keyed by its package spec, the Python and node
versions and the installers' source: a change to an installer rebuilds the trees with it.

When a registry cannot be reached and nothing is cached, the fixture skips, saying which
registry and why; any other install failure fails the test (it is a bug, or the pinned
version is gone).

tests/mcp/conftest.py hands the fixtures to every test under tests/mcp; elsewhere, import them
(``from mcp_support import stock_time  # noqa: F401``: pytest finds fixtures by name), or take
a copy of your own with ``stock_server("time", folder)``. (The module is not tests/mcp/stock.py:
a ``tests/mcp`` package would be shadowed by, or shadow, the ``mcp`` SDK.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from deeting_tui.mcp.installers import (
    InstalledServer,
    InstallError,
    install_node_proxy_shim,
    install_npm,
    install_pypi,
)

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "mcp"
TREES = CACHE / "trees"


@dataclass(frozen=True)
class Stock:
    registry: str  # "pypi" | "npm"
    spec: str
    proxy_shim: bool = False


#: The versions the tests pin (what the registries had on 2026-12-07).
STOCK = {
    "time": Stock("pypi", "mcp-server-time==2026.10.19"),
    "fetch": Stock("pypi", "mcp-server-fetch==2026.10.24"),
    "everything": Stock("npm", "@modelcontextprotocol/server-everything@2026.8.31", True),
    "filesystem": Stock("npm", "@modelcontextprotocol/server-filesystem@2026.8.31"),
}


@dataclass(frozen=True)
class StockServer:
    """An installed stock server: its plugin root (a copy of the cached tree, yours to move
    or change), what the installer said, and the proxy preload (relative) if one was put in."""

    root: Path
    installed: InstalledServer
    preload: str | None = None

    def command(self) -> list[str]:
        """How the bridge starts it: the venv's python or node, then the entry; no shebang."""
        entry = str(self.root / self.installed.entry)
        if self.installed.runtime == "python":
            return [str(self.root / "server" / "venv" / "bin" / "python"), entry]
        node = shutil.which("node")
        assert node is not None
        return [node, entry]


def tool_cache_env() -> dict[str, str]:
    """The package managers' caches under .cache/mcp, and short retries: offline, the
    install fails (and the fixture skips) in seconds rather than after pip's 5 retries."""
    return {
        "PIP_CACHE_DIR": str(CACHE / "pip"),
        "npm_config_cache": str(CACHE / "npm"),
        "PIP_RETRIES": "1",
        "PIP_TIMEOUT": "20",
        "PIP_DEFAULT_TIMEOUT": "20",
        "npm_config_fetch_retries": "1",
        "npm_config_fetch_timeout": "20000",
    }


def _installers_digest() -> str:
    folder = REPO / "deeting_tui" / "mcp"
    digest = hashlib.sha256()
    for path in sorted([*folder.glob("install*.py"), *folder.glob("node_proxy/**/*")]):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "none"
    said = subprocess.run([node, "--version"], capture_output=True, check=False, timeout=30)
    return said.stdout.decode().strip()


def _tree_key(stock: Stock) -> str:
    parts = [stock.registry, stock.spec, str(stock.proxy_shim), sys.version, _installers_digest()]
    if stock.registry == "npm":
        parts.append(_node_version())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _registry_name(stock: Stock) -> str:
    return "PyPI" if stock.registry == "pypi" else "npm registry"


def cached_tree(name: str) -> tuple[Path, StockServer]:
    """The cached install tree of stock server ``name`` (built now if missing), and what
    it holds; skips the test when the registry cannot be reached and nothing is cached."""
    stock = STOCK[name]
    safe = name + "-" + _tree_key(stock)
    tree = TREES / safe
    record = tree / "installed.json"
    if not record.is_file():
        if stock.registry == "npm" and shutil.which("npm") is None:
            pytest.skip("npm is not on PATH: the npm stock servers cannot be installed")
        staging = TREES / f".staging-{safe}-{uuid.uuid4().hex[:8]}"
        install: Callable[..., InstalledServer] = (
            install_pypi if stock.registry == "pypi" else install_npm
        )
        try:
            installed = install(stock.spec, staging, env=tool_cache_env())
            preload = (
                str(install_node_proxy_shim(staging, env=tool_cache_env()))
                if stock.proxy_shim
                else None
            )
        except InstallError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            if exc.unreachable:
                pytest.skip(f"{_registry_name(stock)} unreachable: {exc.message}")
            raise
        (staging / "installed.json").write_text(
            json.dumps({"installed": asdict(installed), "preload": preload})
        )
        try:
            os.rename(staging, tree)
        except OSError:  # another session made it first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)
        for old in TREES.glob(f"{name}-*"):  # built by an older installer: never used again
            if old != tree:
                shutil.rmtree(old, ignore_errors=True)
    data = json.loads(record.read_text())
    return tree, StockServer(tree, InstalledServer(**data["installed"]), data["preload"])


def stock_server(name: str, root: Path) -> StockServer:
    """A copy of stock server ``name`` at ``root`` (which must not exist), yours to move."""
    tree, cached = cached_tree(name)
    shutil.copytree(tree, root, symlinks=True, ignore=shutil.ignore_patterns("installed.json"))
    return StockServer(root, cached.installed, cached.preload)


def _fixture(name: str) -> Callable[[pytest.TempPathFactory], StockServer]:
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> StockServer:
        return stock_server(name, tmp_path_factory.mktemp(f"stock-{name}") / name)

    fixture.__name__ = f"stock_{name}"
    fixture.__doc__ = f"A session's copy of the installed stock server {STOCK[name].spec}."
    return pytest.fixture(scope="session", name=f"stock_{name}")(fixture)


stock_time = _fixture("time")
stock_fetch = _fixture("fetch")
stock_everything = _fixture("everything")
stock_filesystem = _fixture("filesystem")
