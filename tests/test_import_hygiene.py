"""The core knows no screen and no LLM SDK (docs/architecture.md), and headless start-up stays
light: what a real import pulls in at run time. Which package may import which, read from the
source, is tests/test_import_rules.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CORE_MODULES = [
    "deeting_tui.kernel.kernel",
    "deeting_tui.kernel.plugins.loader",
    "deeting_tui.workers.supervisor",
    "deeting_tui.plugin.manifest",
    "deeting_tui.rpc.peer",
    "deeting_tui.sdk",
    "deeting_tui.sandbox.worker",
    "deeting_tui.sandbox.enforce",
    "deeting_tui.netproxy.proxy",
    "deeting_tui.llm.offline",
    "deeting_tui.headless",
    "deeting_tui.cli",
    "deeting_tui.store.client",
    "deeting_tui.registry_commands",
]


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_module_imports_no_textual_or_llm_sdk(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "bad = [m for m in ('textual', 'anthropic', 'openai') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} pulled in {out.stdout.strip()}"


def test_worker_does_not_import_the_kernel() -> None:
    code = (
        "import sys, deeting_tui.sandbox.worker\n"
        "print(','.join(m for m in sys.modules if m.startswith('deeting_tui.kernel')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_plugin_commands_load_the_registry_client_only_when_used() -> None:
    """`deeting plugin list|enable|…` must not pay for httpx and PyNaCl (about 100 ms)."""
    code = (
        "import sys, deeting_tui.plugin_commands\n"
        "heavy = ('httpx', 'nacl', 'deeting_tui.store.client')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_kernel_loads_ctypes_only_to_watch_folders() -> None:
    """inotify needs ctypes (quota/inotify.py); importing the kernel must not pay for it."""
    code = (
        "import sys, deeting_tui.kernel.kernel, deeting_tui.quota.diskwatch\n"
        "import deeting_tui.headless\n"
        "print('ctypes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_composing_a_kernel_with_a_bundle_loads_no_signature_library(tmp_path: Path) -> None:
    """Every chat and script start asks whether this is a first run and plugs the bundle;
    only a first run or a listing pays for PyNaCl."""
    code = (
        "import sys\n"
        "from deeting_tui.compose import fresh_home, plug_ports\n"
        "from deeting_tui.kernel.kernel import Kernel\n"
        "from deeting_tui.paths import resolve_paths\n"
        "paths = resolve_paths()\n"
        "kernel = plug_ports(Kernel(paths), first_run=fresh_home(paths))\n"
        "assert kernel.plugins.bundled is not None\n"
        "heavy = ('httpx', 'nacl', 'deeting_tui.store.client', 'deeting_tui.store.bundle')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    bundle = tmp_path / "bundled"
    bundle.mkdir()
    env = {**os.environ, "DEETING_HOME": str(tmp_path / "home"), "DEETING_BUNDLE": str(bundle)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == ""
