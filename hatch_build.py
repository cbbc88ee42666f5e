"""Wheel build hook: the browser faces' libraries, built from the pinned npm packages.

``deeting_tui/web/vendor`` (the classic scripts ``frontend/build.mjs`` makes: the MCP Apps
bridge, markdown-it, DOMPurify, Lightweight Charts, and their licences) is build output, so
git ignores it, and hatch with it; pyproject lists it as an artifact so the wheel carries it.
This hook makes sure it is there and matches ``frontend/`` before the wheel is assembled:
when the stamp of the inputs it was built from (the same ``.built-HASH`` file ``dev.sh``
writes) is missing, it runs ``npm ci`` (skipped when ``node_modules`` is current) and
``node build.mjs``. A user installing the wheel needs no Node; whoever builds it does, and
is told so in one line when it is missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

VENDOR = Path("deeting_tui", "web", "vendor")
FRONTEND = Path("frontend")


def inputs_stamp(root: Path) -> str:
    """``.built-`` and the first 16 hex digits of the sha256 of what the build reads, in
    dev.sh's order (package-lock.json, build.mjs, entries/* sorted), so both agree."""
    frontend = root / FRONTEND
    files = [frontend / "package-lock.json", frontend / "build.mjs"]
    files += sorted((frontend / "entries").iterdir())
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    return f".built-{digest[:16]}"


def vendor_is_current(root: Path) -> bool:
    vendor = root / VENDOR
    return (vendor / inputs_stamp(root)).is_file() and (vendor / "NOTICE.txt").is_file()


class CustomBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        self._vendor(root, version)
        if (root / "plugins").is_dir():
            build_bundle(root, self.app.display_info)
        else:
            self.app.display_info("deeting wheel: no plugins/ here, so no bundled plugins")

    def _vendor(self, root: Path, version: str) -> None:
        if version == "editable":
            return  # an editable install reads vendor/ from the checkout (dev.sh builds it)
        if vendor_is_current(root):
            return
        if shutil.which("npm") is None or shutil.which("node") is None:
            built = (root / VENDOR / "NOTICE.txt").is_file()
            state = "is out of date with frontend/" if built else "is not built"
            raise RuntimeError(
                f"deeting wheel: {VENDOR} (the browser faces' libraries) {state}, and building "
                "it needs Node.js 20+ with npm on PATH — install them, or run "
                "`cd frontend && npm ci && node build.mjs` where they are, then build again"
            )
        frontend = root / FRONTEND
        self.app.display_info("deeting wheel: building the browser faces' libraries (npm)")
        installed = frontend / "node_modules" / ".package-lock.json"
        lock = frontend / "package-lock.json"
        if not installed.is_file() or installed.stat().st_mtime < lock.stat().st_mtime:
            _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], frontend)
        _run(["node", "build.mjs"], frontend)
        (root / VENDOR / inputs_stamp(root)).touch()


def build_bundle(root: Path, say: Any) -> None:
    """``deeting_tui/bundled``: the official plugins as a signed registry the wheel carries
    (registry_tools/bundle.py says how it is signed and why that is sound). It runs in a
    subprocess with this build's Python, which has deeting's libraries from
    ``[build-system] requires``, and the checkout on its path (the package is not installed
    here). ``DEETING_BUNDLE_KEY=FILE`` signs with the official registry's key."""
    key = os.environ.get("DEETING_BUNDLE_KEY")
    say(
        "deeting wheel: bundling the official plugins, signed with "
        + (
            f"{key} (the official registry's key)"
            if key
            else "a one-off key; the bundle's trust is the wheel's own"
        )
    )
    # The checkout first, then whatever the build's Python was given: pip's isolated build
    # environment reaches its own libraries (the ones requires names) through PYTHONPATH.
    inherited = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), inherited]))}
    command = [sys.executable, "-m", "registry_tools.bundle", "--root-dir", str(root)]
    done = subprocess.run(command, cwd=root, stdin=subprocess.DEVNULL, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(
            f"deeting wheel: bundling the official plugins failed (exit {done.returncode}); "
            "its output above says why"
        )


def _run(command: list[str], where: Path) -> None:
    done = subprocess.run(command, cwd=where, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"deeting wheel: `{' '.join(command)}` in {where} failed (exit {done.returncode}); "
            "its output above says why"
        )
