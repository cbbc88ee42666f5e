"""The plugin service's arrows (issue 14): the store stands on the ground floor, not on the
kernel; the chat's screens render the kernel's plugin service and reach nothing under it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "deeting_tui"


def _imports(path: Path) -> set[str]:
    """Absolute module names imported anywhere in ``path`` (relative ones resolved)."""
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_the_store_imports_nothing_from_the_kernel() -> None:
    for path in sorted((ROOT / "store").rglob("*.py")):
        bad = sorted(m for m in _imports(path) if m.startswith("deeting_tui.kernel"))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_the_chat_reaches_plugins_only_through_the_service() -> None:
    forbidden = (
        "deeting_tui.kernel.plugins.loader",
        "deeting_tui.kernel.permissions",
        "deeting_tui.kernel.plugins.installed",
        "deeting_tui.kernel.health",
        "deeting_tui.store",
        "deeting_tui.sandbox",
    )
    for path in sorted((ROOT / "ui").rglob("*.py")):
        bad = sorted(m for m in _imports(path) if m.startswith(forbidden))
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
