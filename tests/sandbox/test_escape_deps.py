"""A plugin's dependencies, attacked from inside: a plugin with a dependency (``demolib``, a
wheel made here and vendored in its zip) tries to rewrite that dependency, plant a module
beside it, swap it out, rewrite its own code, write into deeting's site folder, and import
deeting's own libraries — undeclared, and with a venv's site folder put back on ``sys.path``.
Each attempt must fail, its dependency must stay as installed, and the kernel must keep
serving. Run as root, and again unprivileged by test_unprivileged.py."""

from __future__ import annotations

import hashlib
import shutil
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest
from support import HOSTILE
from wheel_index import make_wheel

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.sandbox.probe import probe
from deeting_tui.workers.supervisor import Supervisor

PLUGIN = HOSTILE / "depsreach"

pytestmark = pytest.mark.skipif(
    not (probe().landlock_abi and probe().seccomp),
    reason=f"this machine cannot enforce the sandbox ({probe().level})",
)

TAMPERING = ("rewrite_dependency", "plant_module", "replace_dependency", "rewrite_own_code")
#: The same past the audit-hook guard (open(2) through libc): Landlock answers, EACCES.
RAW_TAMPERING = ("raw_rewrite_dependency", "raw_plant_module")
REFUSED = ("SandboxDenied", "PermissionError")


async def install_with_wheel(kernel: Kernel, tmp_path: Path) -> Supervisor:
    """depsreach zipped with its demolib wheel in wheels/, installed as a zip (no index)."""
    folder = tmp_path / "depsreach"
    shutil.copytree(PLUGIN, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "wheels").mkdir()
    make_wheel(folder / "wheels", "demolib", "1.0")
    archive = tmp_path / "depsreach.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                out.write(file, f"depsreach/{file.relative_to(folder)}")
    report = await kernel.loader.install(archive, yes=True)
    assert report.enabled, report.problem
    return kernel.loader.runtimes["depsreach"].supervisor


async def attempt(supervisor: Supervisor, what: str) -> dict[str, Any]:
    result = await supervisor.invoke("attempt", {"what": what})
    data: dict[str, Any] = result["data"]
    return data


def tree(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


async def test_a_plugin_cannot_change_its_dependencies_or_its_code(
    kernel: Kernel, tmp_path: Path
) -> None:
    supervisor = await install_with_wheel(kernel, tmp_path)
    code = kernel.paths.plugin_code("depsreach", "1.0.0")
    before = tree(code)
    assert "deps/demolib/__init__.py" in before
    for what in TAMPERING:
        result = await attempt(supervisor, what)
        assert not result["ok"], result
        assert result["detail"].startswith(REFUSED), result
    for what in RAW_TAMPERING:
        result = await attempt(supervisor, what)
        assert result == {"what": what, "ok": False, "detail": "open: errno 13"}, result
    assert tree(code) == before
    assert (await attempt(supervisor, "version"))["ok"]  # served on, its demolib unchanged
    assert supervisor.state == "ready"


async def test_deeting_s_libraries_are_not_on_a_plugin_s_import_path(
    kernel: Kernel, tmp_path: Path
) -> None:
    supervisor = await install_with_wheel(kernel, tmp_path)
    for what in ("site_on_path", "deeting_modules"):
        result = await attempt(supervisor, what)
        assert not result["ok"], result
    for library in ("yaml", "orjson"):
        result = await attempt(supervisor, f"import_{library}")
        assert not result["ok"], result
        assert f"imports '{library}', which is not in its requirements.txt" in result["detail"]
    assert (await attempt(supervisor, "version"))["ok"]


@pytest.mark.skipif(
    sys.prefix == sys.base_prefix, reason="deeting runs from a venv here (the kit and CI do)"
)
async def test_putting_the_venv_s_site_folder_back_on_the_path_does_not_reach_it(
    kernel: Kernel, tmp_path: Path
) -> None:
    """The worker's own libraries were loaded before the sandbox; once plugin code runs,
    the venv's site folder is neither on the path nor readable (sandbox/policy.py)."""
    supervisor = await install_with_wheel(kernel, tmp_path)
    site = sysconfig.get_paths()["purelib"]
    result = await attempt(supervisor, "site_path_yaml")
    assert not result["ok"], result
    assert "imports 'yaml', which is not in its requirements.txt" in result["detail"], result
    read = await attempt(supervisor, "read_site")
    assert not read["ok"], read
    assert read["detail"].startswith(REFUSED), read
    raw = await attempt(supervisor, "raw_read_site")
    assert raw == {"what": "raw_read_site", "ok": False, "detail": "open: errno 13"}, raw
    write = await attempt(supervisor, "write_site")
    assert not write["ok"], write
    assert not (Path(site) / "deeting_planted.py").exists()
    assert (await attempt(supervisor, "version"))["ok"]
