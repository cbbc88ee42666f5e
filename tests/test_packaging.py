"""The wheel carries the browser faces' built libraries (deeting_tui/web/vendor), which git
ignores: pyproject names them as an artifact and hatch_build.py builds them when missing or
stale. Building a real wheel needs npm and hatchling from the network, so these tests check
the configuration and drive the hook itself with hatchling's interface stubbed."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path
from typing import Any

import pytest
from bundle_support import DEFAULTS, OTHERS, official_version

REPO = Path(__file__).resolve().parents[1]


def test_pyproject_ships_vendor_and_runs_the_hook() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    wheel = config["targets"]["wheel"]
    assert "deeting_tui/web/vendor/" in wheel["artifacts"]
    assert "custom" in wheel["hooks"]  # hatch_build.py, hatch's default path for it
    assert (REPO / "hatch_build.py").is_file()
    sdist_excludes = config["targets"]["sdist"]["exclude"]
    assert "/frontend/node_modules" in sdist_excludes


@pytest.fixture
def hook_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """hatch_build.py, imported with hatchling's hook interface stubbed (hatchling lives in
    the build's own environment, not in the test venv)."""

    class BuildHookInterface:
        def __init__(self, root: str, target_name: str) -> None:
            self.root = root
            self.target_name = target_name
            self.app = types.SimpleNamespace(display_info=lambda message: None)

    interface = types.ModuleType("hatchling.builders.hooks.plugin.interface")
    interface.BuildHookInterface = BuildHookInterface  # type: ignore[attr-defined]
    for name in ("hatchling", "hatchling.builders", "hatchling.builders.hooks"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "hatchling.builders.hooks.plugin", types.ModuleType("p"))
    monkeypatch.setitem(sys.modules, "hatchling.builders.hooks.plugin.interface", interface)
    spec = importlib.util.spec_from_file_location("hatch_build", REPO / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _source_tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    frontend = root / "frontend"
    (frontend / "entries").mkdir(parents=True)
    for name in ("package-lock.json", "build.mjs"):
        (frontend / name).write_bytes((REPO / "frontend" / name).read_bytes())
    for entry in (REPO / "frontend" / "entries").iterdir():
        (frontend / "entries" / entry.name).write_bytes(entry.read_bytes())
    return root


def test_the_stamp_is_the_one_dev_sh_writes(hook_module: Any) -> None:
    dev_sh = subprocess.run(
        [
            "bash",
            "-c",
            "cat frontend/package-lock.json frontend/build.mjs frontend/entries/* "
            "| sha256sum | cut -c1-16",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert hook_module.inputs_stamp(REPO) == f".built-{dev_sh}"


def test_without_npm_and_without_vendor_the_wheel_fails_in_one_clear_line(
    hook_module: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _source_tree(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    hook = hook_module.CustomBuildHook(str(root), "wheel")
    with pytest.raises(RuntimeError, match=r"is not built, and building it needs Node\.js"):
        hook.initialize("standard", {})


def test_a_stale_vendor_is_rebuilt_and_a_current_one_left_alone(
    hook_module: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _source_tree(tmp_path)
    vendor = root / "deeting_tui" / "web" / "vendor"
    vendor.mkdir(parents=True)
    (vendor / "NOTICE.txt").write_text("old")
    (vendor / ".built-0000000000000000").touch()  # built from other inputs
    ran: list[list[str]] = []

    def run(command: list[str], where: Path) -> None:
        ran.append(command)

    monkeypatch.setattr(hook_module, "_run", run)
    monkeypatch.setattr(hook_module.shutil, "which", lambda name: f"/usr/bin/{name}")
    hook = hook_module.CustomBuildHook(str(root), "wheel")
    hook.initialize("standard", {})
    assert [c[0] for c in ran] == ["npm", "node"]
    assert hook_module.vendor_is_current(root)
    ran.clear()
    hook.initialize("standard", {})
    hook.initialize("editable", {})
    hook_module.CustomBuildHook(str(root), "sdist").initialize("standard", {})
    assert ran == []


def test_the_hook_bundles_the_official_plugins_for_wheels_and_editables(
    hook_module: Any, tmp_path: Path
) -> None:
    """The wheel's deeting_tui/bundled: built from plugins/ by registry_tools.bundle in a
    subprocess (the build environment has deeting's libraries, not deeting), stamped so a
    repeat is free, for an editable install too."""
    root = _source_tree(tmp_path)
    ignore = shutil.ignore_patterns("__pycache__", "bundled", ".bundled*", "vendor")
    for folder in ("plugins", "deeting_tui", "registry_tools", "renderers"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    vendor = root / "deeting_tui" / "web" / "vendor"
    vendor.mkdir(parents=True)
    (vendor / "NOTICE.txt").write_text("built")
    (vendor / hook_module.inputs_stamp(root)).touch()
    hook = hook_module.CustomBuildHook(str(root), "wheel")
    hook.initialize("editable", {})
    bundled = root / "deeting_tui" / "bundled"
    zips = sorted(p.name for p in (bundled / "artifacts").iterdir())
    assert zips == [f"{name}-{official_version(name)}.zip" for name in (*DEFAULTS, *OTHERS)]
    built = (bundled / "registry.json").stat().st_mtime_ns
    hook.initialize("standard", {})
    assert (bundled / "registry.json").stat().st_mtime_ns == built  # current: left alone
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert "deeting_tui/bundled/" in config["targets"]["wheel"]["artifacts"]
    assert "/deeting_tui/bundled" in config["targets"]["sdist"]["exclude"]


def test_the_bundle_tool_keeps_the_build_environments_path(
    hook_module: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pip's isolated build environment hands its libraries (PyNaCl and the rest of
    [build-system] requires) to the build's Python through PYTHONPATH: the bundle tool's
    subprocess puts the checkout first and keeps that, or `pip wheel .` fails on `import nacl`."""
    seen: list[dict[str, str]] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        seen.append(kwargs["env"])
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setenv("PYTHONPATH", "/tmp/pip-build-env/site")
    monkeypatch.setattr(hook_module.subprocess, "run", run)
    hook_module.build_bundle(tmp_path, lambda message: None)
    (env,) = seen
    assert env["PYTHONPATH"].split(os.pathsep) == [str(tmp_path), "/tmp/pip-build-env/site"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[<>=!~ ;(\[]", name, maxsplit=1)[0]).lower()


def test_the_build_requires_what_the_bundle_tool_imports() -> None:
    """hatchling's isolated build environment has only [build-system] requires (and what
    they require): every distribution registry_tools.bundle imports must come from there."""
    import importlib.metadata as metadata

    from packaging.requirements import Requirement

    code = "import sys, registry_tools.bundle; print(' '.join(sys.modules))"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    modules = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.split()
    owners = metadata.packages_distributions()
    used = {_norm(d) for module in modules for d in owners.get(module.split(".")[0], [])}
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]["requires"]
    todo, closure = [_norm(r) for r in requires], set()
    while todo:
        name = todo.pop()
        if name not in closure:
            closure.add(name)
            for text in metadata.requires(name) or []:
                requirement = Requirement(text)
                marker = requirement.marker
                if marker is None or marker.evaluate({"extra": ""}):
                    todo.append(_norm(requirement.name))
    # setuptools: its _distutils_hack, which a .pth loads into every interpreter; idna:
    # jsonschema's optional format check, imported only when present.
    assert used - closure - {"deeting", "setuptools", "idna"} == set()
