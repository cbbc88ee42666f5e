"""The arrows between packages (docs/architecture.md, issue 14 rules 5 and 7), read from the code.

Every import form counts (tests/import_graph.py): module level, inside a function, under
`if TYPE_CHECKING:`, relative (`from ..store import x`), and `importlib.import_module("…")` with
a literal name. A deferred or type-only import still ties two packages together: neither can be
read, tested or moved without the other.

The cycle check counts them too. A type-only import never runs, so it cannot make start-up
depend on load order, but two modules that name each other's types still cannot be read or
changed apart: where one side needs the other, it says what it needs in a small Protocol (or
both import a shared type from a third module) instead. The package rules below count them as
well: a type is part of what a package knows about.
"""

from __future__ import annotations

import shutil
from collections.abc import Set
from pathlib import Path

import pytest
from import_graph import REPO, Import, all_imports, cycles, graph, imports_in_source, within

# The command layer and the front ends besides the chat: they stand on the kernel, never under it.
FRONT_ENDS = (
    "deeting_tui.cli",
    "deeting_tui.compose",
    "deeting_tui.headless",
    "deeting_tui.command_output",
    "deeting_tui.plugin_commands",
    "deeting_tui.registry_commands",
    "deeting_tui.view_command",
    "deeting_tui.mcp.commands",
    "deeting_tui.mcp.add",
    "deeting_tui.mcp.review",
    "deeting_tui.mcp.import_command",
    "deeting_tui.mcp.serve",
)

# (importing package, packages it must never import, why). A name is a package or a module;
# third-party names (textual, anthropic, openai) count like ours.
RULES: list[tuple[str, tuple[str, ...], str]] = [
    (
        "deeting_tui.ui",
        ("deeting_tui.store", "deeting_tui.sandbox", "deeting_tui.cli"),
        "the chat is a front end: it asks the kernel's services, it does not run the registry "
        "client, know the sandbox's child side, or reach up to the command layer",
    ),
    (
        "deeting_tui.store",
        ("deeting_tui.kernel",),
        "the registry client fetches and verifies packages; the kernel installs them",
    ),
    (
        "registry_tools",
        ("ci",),
        "the registry generator and the CI tools share code through deeting_tui, not each other",
    ),
    (
        "deeting_tui.kernel",
        (
            "deeting_tui.ui",
            "deeting_tui.llm",
            "anthropic",
            "openai",
            "mcp",
            "deeting_tui.mcp.bridge",
            "deeting_tui.sandbox",
            "textual",
            "deeting_tui.web",
            *FRONT_ENDS,
        ),
        "the microkernel knows no screen, no model SDK (only the Assistant protocol) and starts "
        "workers as processes, never importing the child side",
    ),
    *(
        (
            service,
            ("deeting_tui.ui", "deeting_tui.llm", *FRONT_ENDS),
            "a service beside the kernel serves every front end and knows none of them",
        )
        for service in ("deeting_tui.workers", "deeting_tui.quota", "deeting_tui.netproxy")
    ),
    (
        "deeting_tui.web",
        ("textual", "deeting_tui.ui", "deeting_tui.llm", "deeting_tui.sandbox", *FRONT_ENDS),
        "the browser face is a front end's server: it stands on the kernel's events and the "
        "session store, and any front end (the chat, deeting view) starts it",
    ),
    (
        "deeting_tui.sandbox",
        ("deeting_tui.kernel", "deeting_tui.ui", "deeting_tui.llm"),
        "the worker's side stands on rpc, plugin and sdk only",
    ),
    (
        "deeting_tui.rpc",
        ("deeting_tui.kernel", "deeting_tui.sandbox", "deeting_tui.plugin"),
        "the wire is below everything that speaks it",
    ),
    (
        "deeting_tui.plugin",
        ("deeting_tui.kernel", "deeting_tui.sandbox", "deeting_tui.rpc"),
        "the package format is read by kernel, sandbox and tools alike",
    ),
]

# Known violations, each as (file, module it loads), being removed on other branches of issue 14
# (the plugins service moves the registry client and the sandbox description behind the
# kernel). EMPTY THIS LIST when those branches merge: an entry that no longer matches fails
# test_the_allow_list_holds_only_live_violations, so it cannot hide a new import.
ALLOWED: set[tuple[str, str]] = set()

# Cycles we know of and have not broken yet, each as the sorted list of its modules.
KNOWN_CYCLES: list[list[str]] = []


def violations(
    imports: dict[str, list[Import]],
    package: str,
    forbidden: tuple[str, ...],
    allowed: Set[tuple[str, str]] = frozenset(),
) -> list[Import]:
    """The imports of package's modules that load a forbidden name, less the allowed ones."""
    return [
        found
        for module, found_in in sorted(imports.items())
        if within(module, package)
        for found in found_in
        if any(within(found.target, name) for name in forbidden)
        and (found.file, found.target) not in allowed
    ]


@pytest.fixture(scope="module")
def imports() -> dict[str, list[Import]]:
    return all_imports()


@pytest.mark.parametrize(
    ("package", "forbidden", "why"), RULES, ids=[rule[0].rpartition(".")[2] for rule in RULES]
)
def test_package_never_imports_what_it_must_not(
    imports: dict[str, list[Import]], package: str, forbidden: tuple[str, ...], why: str
) -> None:
    bad = violations(imports, package, forbidden, ALLOWED)
    assert not bad, f"{package} must not import {', '.join(forbidden)} ({why}):\n" + "\n".join(
        f"  {found}" for found in bad
    )


def test_the_allow_list_holds_only_live_violations(imports: dict[str, list[Import]]) -> None:
    live = {
        (found.file, found.target)
        for package, forbidden, _ in RULES
        for found in violations(imports, package, forbidden)
    }
    stale = sorted(ALLOWED - live)
    assert not stale, f"no longer violations, remove from ALLOWED: {stale}"


def _describe(cycle: list[str], edges: dict[str, set[str]]) -> str:
    members = set(cycle)
    lines = [f"    {a} -> {b}" for a in cycle for b in sorted(edges[a]) if b in members]
    return " <-> ".join(cycle) + "\n" + "\n".join(lines)


def test_the_package_has_no_import_cycles_deferred_imports_included(
    imports: dict[str, list[Import]],
) -> None:
    edges = graph(imports, with_type_checking=True)
    found = [c for c in cycles(edges) if c not in KNOWN_CYCLES]
    assert not found, "import cycles:\n" + "\n".join(_describe(c, edges) for c in found)


def test_the_known_exceptions_are_still_cycles(imports: dict[str, list[Import]]) -> None:
    """An exception that is no longer a cycle must leave the list, so it cannot hide a new one."""
    found = cycles(graph(imports, with_type_checking=True))
    stale = [c for c in KNOWN_CYCLES if c not in found]
    assert not stale, f"no longer cycles, remove from KNOWN_CYCLES: {stale}"


# The checker itself: each import form is seen, and a planted violation is reported.

KNOWN = {
    "p",
    "p.kernel",
    "p.kernel.core",
    "p.kernel.sub",
    "p.ui",
    "p.ui.app",
    "p.store",
    "p.store.client",
}


def _targets(source: str, module: str = "p.kernel.core", is_package: bool = False) -> list[str]:
    return [i.target for i in imports_in_source(source, "f.py", module, is_package, KNOWN)]


def test_the_checker_sees_every_import_form() -> None:
    assert _targets("import p.ui.app\n") == ["p.ui.app"]
    assert _targets("import p.ui.app.Thing\n") == ["p.ui.app"]  # longest module of ours
    assert _targets("from p.ui import app\n") == ["p.ui.app"]
    assert _targets("from p import ui\n") == ["p.ui"]
    assert _targets("from p.ui.app import App\n") == ["p.ui.app"]
    assert _targets("def f():\n    from ..ui import app\n") == ["p.ui.app"]
    assert _targets("from .sub import x\n") == ["p.kernel.sub"]
    assert _targets("from . import sub\n", "p.kernel", is_package=True) == ["p.kernel.sub"]
    assert _targets("from ...store.client import C\n", "p.kernel.sub.deep") == ["p.store.client"]
    assert _targets("import importlib\nimportlib.import_module('p.ui.app')\n") == [
        "importlib",
        "p.ui.app",
    ]
    assert _targets("from importlib import import_module as im\nimport_module('p.ui')\n") == [
        "importlib",
        "p.ui",
    ]
    assert _targets("__import__('p.store')\n") == ["p.store"]
    assert _targets("import_module('.sub')\n") == ["p.kernel.sub"]
    assert _targets("import_module('..ui', package='p.kernel')\n") == ["p.ui"]
    assert _targets("import importlib\nimportlib.import_module(name)\n") == ["importlib"]
    assert _targets("import anthropic.types\n") == ["anthropic.types"]


def test_the_checker_marks_type_checking_imports_and_keeps_them_for_the_rules() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from p.ui import app\nelse:\n    import p.store\n"
    )
    found = imports_in_source(source, "f.py", "p.kernel.core", False, KNOWN)
    assert [(i.target, i.type_checking) for i in found] == [
        ("typing", False),
        ("p.ui.app", True),
        ("p.store", False),
    ]
    assert graph({"p.kernel.core": found, "p.ui.app": [], "p.store": []}) == {
        "p.kernel.core": {"p.store"},
        "p.ui.app": set(),
        "p.store": set(),
    }
    assert cycles({"p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p.a"}}) == [["p.a", "p.b"]]


def test_a_planted_violation_is_reported_with_file_line_and_statement(tmp_path: Path) -> None:
    """A deferred relative import from the kernel into the chat, in a package of its own."""
    for name in ("__init__.py", "kernel/__init__.py", "ui/__init__.py", "ui/app.py"):
        (tmp_path / "p" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "p" / name).write_text("")
    (tmp_path / "p" / "kernel" / "core.py").write_text(
        '"""Looks innocent."""\n\n\ndef start():\n    from ..ui.app import App\n    return App\n'
    )
    imports = all_imports(tmp_path, ["p"])
    found = violations(imports, "p.kernel", ("p.ui",))
    assert [str(i) for i in found] == [
        "p/kernel/core.py:5: `from ..ui.app import App` (loads p.ui.app)"
    ]
    allowed = {("p/kernel/core.py", "p.ui.app")}
    assert violations(imports, "p.kernel", ("p.ui",), allowed) == []


def test_a_planted_cycle_through_a_deferred_import_is_found(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "__init__.py").write_text("")
    (tmp_path / "p" / "a.py").write_text("from p import b\n")
    (tmp_path / "p" / "b.py").write_text("def later():\n    from . import a\n")
    assert cycles(graph(all_imports(tmp_path, ["p"]))) == [["p.a", "p.b"]]


def test_a_planted_cycle_through_a_type_checking_import_fails_the_cycle_test(
    tmp_path: Path,
) -> None:
    """The cycle test sees a cycle that only a type hint closes (as the real package's test
    runs it); left out, the same graph has none."""
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "__init__.py").write_text("")
    (tmp_path / "p" / "a.py").write_text("from p import b\n")
    (tmp_path / "p" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.a import A\n"
    )
    imports = all_imports(tmp_path, ["p"])
    with pytest.raises(AssertionError, match=r"p\.a"):
        test_the_package_has_no_import_cycles_deferred_imports_included(imports)
    assert cycles(graph(imports)) == []


def test_a_module_planted_in_a_copy_of_the_package_breaks_the_real_rules(tmp_path: Path) -> None:
    """The rules above, run over a copy of deeting_tui with one kernel module that reaches the
    chat and an LLM SDK the three ways a reviewer might miss."""
    shutil.copytree(
        REPO / "deeting_tui", tmp_path / "deeting_tui", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tmp_path / "deeting_tui" / "kernel" / "planted.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "if TYPE_CHECKING:\n    import anthropic\n"
        "def later():\n    from ..ui import app\n"
        "    return importlib.import_module('deeting_tui.llm.agent')\n"
    )
    imports = all_imports(tmp_path, ["deeting_tui"])
    found = {
        str(i)
        for package, forbidden, _ in RULES
        for i in violations(imports, package, forbidden, ALLOWED)
    }
    assert found == {
        "deeting_tui/kernel/planted.py:4: `import anthropic` (loads anthropic)",
        "deeting_tui/kernel/planted.py:6: `from ..ui import app` (loads deeting_tui.ui.app)",
        "deeting_tui/kernel/planted.py:7: `importlib.import_module('deeting_tui.llm.agent')` "
        "(loads deeting_tui.llm.agent)",
    }
