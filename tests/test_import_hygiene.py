"""The core knows no screen and no LLM SDK (STYLE §1), and headless start-up stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE_MODULES = [
    "deeting_tui.kernel.kernel",
    "deeting_tui.kernel.loader",
    "deeting_tui.kernel.supervisor",
    "deeting_tui.plugin.manifest",
    "deeting_tui.rpc.peer",
    "deeting_tui.sdk",
    "deeting_tui.sandbox.worker",
    "deeting_tui.sandbox.enforce",
    "deeting_tui.kernel.netproxy",
    "deeting_tui.llm.offline",
    "deeting_tui.headless",
    "deeting_tui.cli",
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
