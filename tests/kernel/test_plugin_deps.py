"""A plugin's Python dependencies, used: installed from its wheels into its own ``deps/`` at
every install path (a folder, a zip, the registry), imported from there by its sandboxed
worker — its own copies, never deeting's — and every bad wheel refused with one line and
nothing installed."""

from __future__ import annotations

import io
import shutil
import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from registry_support import TestRegistry, client_at, installed_of, plugins_with, zip_plugin
from support import FIXTURES, run_deeting
from wheel_index import WHEELHOUSE, WHEELHOUSE_MISSING, make_wheel

from deeting_tui.command_output import error_line
from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.plugins.loader import PluginError
from deeting_tui.plugin.requirements import read_requirements
from deeting_tui.plugin.wheel_install import this_python
from deeting_tui.store.errors import StoreError

DEMO = FIXTURES / "deps-demo"
PINS = {pin.name: pin.version for pin in read_requirements(DEMO)}
ROWS = [["a", "1"], ["bb", "22"]]
TABLE = "a    1\nbb  22"


def demo_wheels() -> list[Path]:
    """The wheelhouse's wheels for deps-demo's pins, every platform (as gen_registry vendors)."""
    wheels = [
        path
        for path in sorted(WHEELHOUSE.glob("*.whl"))
        if any(path.name.startswith(f"{name}-{version}-") for name, version in PINS.items())
    ]
    if {path.name.split("-")[0] for path in wheels} != set(PINS):
        pytest.skip(WHEELHOUSE_MISSING)
    return wheels


def plugin_copy(
    tmp_path: Path, *, requirements: str | None = None, index: str | None = None
) -> Path:
    """deps-demo copied to ``tmp_path`` (its requirements.txt or src/index.py replaced)."""
    folder = tmp_path / "deps-demo"
    shutil.copytree(DEMO, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    if index is not None:
        (folder / "src" / "index.py").write_text(index)
    return folder


def zipped(folder: Path, wheels: list[Path], dest: Path) -> Path:
    """``folder`` as a plugin zip under one top folder, ``wheels`` vendored in ``wheels/``."""
    for wheel in wheels:
        (folder / "wheels").mkdir(exist_ok=True)
        shutil.copy(wheel, folder / "wheels" / wheel.name)
    path = dest / f"{folder.name}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                archive.write(file, f"{folder.name}/{file.relative_to(folder)}")
    return path


async def table(kernel: Kernel) -> Any:
    outcome = await kernel.call_tool(kernel.open_session().id, "table", {"rows": ROWS})
    assert outcome.ok, outcome.error
    return outcome.data


async def probe(kernel: Kernel) -> Any:
    outcome = await kernel.call_tool(kernel.open_session().id, "probe", {})
    assert outcome.ok, outcome.error
    return outcome.data


def nothing_installed(kernel: Kernel) -> None:
    assert kernel.installed.all() == []
    assert not (kernel.paths.plugins_dir / "versions" / "deps-demo").exists()
    staging = kernel.paths.plugins_dir / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []


async def assert_uses_its_own_copies(kernel: Kernel) -> None:
    data = await table(kernel)
    assert data["table"] == TABLE
    assert orjson.loads(data["json"]) == ROWS
    assert data["orjson"] == PINS["orjson"] != orjson.__version__  # its copy, not deeting's
    where = await probe(kernel)
    deps = kernel.paths.plugin_code("deps-demo", "1.0.0") / "deps"
    assert Path(where["orjson_file"]).is_relative_to(deps)
    assert Path(where["tabulate_file"]).is_relative_to(deps)
    assert not any("site-packages" in entry for entry in where["path"]), where["path"]


async def refused(kernel: Kernel, source: Path, *words: str) -> str:
    with pytest.raises(PluginError) as caught:
        await kernel.loader.install(source)
    line = error_line(caught.value)
    assert "\n" not in line
    for word in words:
        assert word in line, line
    nothing_installed(kernel)
    return line


# -- the three install paths ----------------------------------------------------------------


async def test_a_folder_install_fetches_its_wheels_and_its_tool_uses_them(
    kernel: Kernel, tmp_path: Path, wheel_index: str
) -> None:
    steps: list[str] = []
    report = await kernel.loader.install(
        plugin_copy(tmp_path), on_step=lambda label, _: steps.append(label)
    )
    assert report.enabled, report.problem
    assert "dependencies" in steps
    code = kernel.paths.plugin_code("deps-demo", "1.0.0")
    assert sorted(p.name.split("-")[0] for p in (code / "wheels").glob("*.whl")) == sorted(PINS)
    await assert_uses_its_own_copies(kernel)


async def test_a_folder_install_resolves_what_its_requirements_leave_unpinned(
    kernel: Kernel, tmp_path: Path, wheel_index: str, wheel_index_extras: Path
) -> None:
    """An author who pins only what the plugin imports (helperlib, which needs leaflib)
    gets a working folder install, as pip would resolve it: leaflib's newest wheel inside
    the specifier is installed too, and the worker imports both from deps/."""
    make_wheel(wheel_index_extras, "helperlib", "1.0", requires=["leaflib>=0.2,<1"])
    make_wheel(wheel_index_extras, "leaflib", "0.3")
    make_wheel(wheel_index_extras, "leaflib", "1.0")
    index = (DEMO / "src" / "index.py").read_text() + (
        "\n\nimport helperlib, leaflib  # noqa: E401\n"
        "VERSIONS = (helperlib.VERSION, leaflib.VERSION)\n"
    )
    folder = plugin_copy(
        tmp_path, requirements="tabulate==0.9.0\norjson==3.11.4\nhelperlib==1.0\n", index=index
    )
    report = await kernel.loader.install(folder)
    assert report.enabled, report.problem
    deps = kernel.paths.plugin_code("deps-demo", "1.0.0") / "deps"
    assert sorted(p.name for p in deps.glob("*lib-*.dist-info")) == [
        "helperlib-1.0.dist-info",
        "leaflib-0.3.dist-info",
    ]
    await assert_uses_its_own_copies(kernel)


async def test_a_zip_carrying_its_wheels_installs_without_an_index(
    kernel: Kernel, tmp_path: Path
) -> None:
    archive = zipped(plugin_copy(tmp_path / "src"), demo_wheels(), tmp_path)
    report = await kernel.loader.install(archive)
    assert report.enabled, report.problem
    await assert_uses_its_own_copies(kernel)


async def test_a_registry_artifact_carrying_wheels_installs_and_runs(
    kernel: Kernel, tmp_path: Path
) -> None:
    folder = plugin_copy(tmp_path / "src")
    for wheel in demo_wheels():
        (folder / "wheels").mkdir(exist_ok=True)
        shutil.copy(wheel, folder / "wheels" / wheel.name)
    registry = TestRegistry(tmp_path / "registry")
    registry.add("1.0.0", name="deps-demo", data=zip_plugin(folder))
    registry.publish()
    client = client_at(kernel.paths.config_dir)
    await client.sync(installed_of(kernel), registry.url, registry.root_file)
    report = await plugins_with(kernel, client).install("deps-demo")
    assert report.enabled, report.problem
    await assert_uses_its_own_copies(kernel)


async def test_plugin_info_names_the_dependencies_and_where_they_are(
    kernel: Kernel, home: Path, tmp_path: Path
) -> None:
    archive = zipped(plugin_copy(tmp_path / "src"), demo_wheels(), tmp_path)
    assert (await kernel.loader.install(archive)).enabled
    shown = run_deeting("plugin", "info", "deps-demo", home=home)
    assert shown.returncode == 0, shown.stderr
    deps = kernel.paths.plugin_code("deps-demo", "1.0.0") / "deps"
    pins = ", ".join(f"{name}=={PINS[name]}" for name in sorted(PINS))
    assert f"  dependencies: {pins}\n" in shown.stdout
    assert f"installed in: {deps}\n" in shown.stdout
    as_json = run_deeting("plugin", "info", "deps-demo", "--json", home=home)
    info = orjson.loads(as_json.stdout)
    assert info["dependencies"] == [{"name": n, "version": PINS[n]} for n in sorted(PINS)]
    assert info["deps_dir"] == str(deps)


async def test_a_plugin_without_requirements_gets_no_deps_folder(
    kernel: Kernel, tmp_path: Path
) -> None:
    report = await kernel.loader.install(FIXTURES / "good_plugin")
    assert report.enabled
    assert not (kernel.paths.plugin_code("echo-fixture", "1.0.0") / "deps").exists()


# -- what deeting's own libraries look like to a plugin -------------------------------------

USES_YAML = """
import yaml


def invoke(ctx, tool, args):
    return "unreachable"
"""

USES_DEMOLIB = """
import demolib


def invoke(ctx, tool, args):
    return f"demolib {demolib.VERSION}"
"""


USES_ORJSON_UNDECLARED = """
def invoke(ctx, tool, args):
    import orjson

    return orjson.__version__
"""


async def test_importing_deeting_s_yaml_undeclared_fails_with_what_to_add(
    kernel: Kernel, tmp_path: Path
) -> None:
    """The worker has yaml's folder a step away (deeting runs on it); the plugin does not."""
    line = await refused(kernel, plugin_copy(tmp_path, requirements="", index=USES_YAML))
    assert line.startswith("plugin 'deps-demo' failed to start: ")
    assert line.endswith(
        "plugin 'deps-demo' imports 'yaml', which is not in its requirements.txt — deeting's "
        f"own libraries are not available to plugins; add pyyaml=={yaml.__version__} to "
        "requirements.txt"
    ), line


async def test_deeting_s_orjson_is_not_the_plugin_s_even_though_the_worker_uses_it(
    kernel: Kernel, tmp_path: Path
) -> None:
    folder = plugin_copy(tmp_path, requirements="", index=USES_ORJSON_UNDECLARED)
    assert (await kernel.loader.install(folder)).enabled
    session = kernel.open_session().id
    outcome = await kernel.call_tool(session, "table", {"rows": []})
    assert not outcome.ok
    assert "imports 'orjson', which is not in its requirements.txt" in str(outcome.error)
    # The worker itself, which speaks orjson to the kernel, serves on.
    again = await kernel.call_tool(session, "table", {"rows": []})
    assert "imports 'orjson'" in str(again.error)


# -- refusals: one line, nothing installed --------------------------------------------------


async def test_no_wheel_for_this_python_is_refused_with_one_line(
    kernel: Kernel, tmp_path: Path
) -> None:
    other = make_wheel(tmp_path, "demolib", "1.0", pure=False, tag="cp27-cp27m-win32")
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n")
    line = await refused(
        kernel,
        zipped(folder, [other], tmp_path),
        f"demolib 1.0: the plugin's archive carries no wheel for this Python ({this_python()})",
    )
    assert line.startswith("deps-demo 1.0.0: ")


async def test_a_wheel_whose_files_do_not_match_its_record_is_refused(
    kernel: Kernel, tmp_path: Path
) -> None:
    good = make_wheel(tmp_path, "demolib", "1.0")
    tampered = tmp_path / "tampered" / good.name
    tampered.parent.mkdir()
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(tampered, "w") as out:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "demolib/__init__.py":
                data = b"import os; os.system('echo pwned')\n"
            out.writestr(info, data)
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n")
    await refused(
        kernel, zipped(folder, [tampered], tmp_path), "do not match its RECORD", "demolib/__init__"
    )


async def test_a_wheel_of_another_version_than_its_pin_is_refused(
    kernel: Kernel, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demolib", "1.1")
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n")
    line = await refused(kernel, zipped(folder, [wheel], tmp_path), "demolib 1.1 is not pinned")
    assert "wheels/demolib-1.1-py3-none-any.whl" in line


async def test_a_wheel_whose_metadata_names_another_version_is_refused(
    kernel: Kernel, tmp_path: Path
) -> None:
    """The file name says 1.0; inside, the dist-info and METADATA say 2.0."""
    inner = make_wheel(tmp_path, "demolib", "2.0")
    renamed = tmp_path / "renamed" / inner.name.replace("2.0", "1.0")
    renamed.parent.mkdir()
    shutil.copy(inner, renamed)
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n")
    await refused(kernel, zipped(folder, [renamed], tmp_path), "METADATA says demolib 2.0")


@pytest.mark.parametrize(
    ("entry", "why"),
    [("../../escaped.py", "'..' in path"), ("/etc/evil.py", "absolute path")],
)
async def test_a_wheel_that_would_write_outside_deps_is_refused(
    kernel: Kernel, tmp_path: Path, entry: str, why: str
) -> None:
    wheel = make_wheel(tmp_path, "demolib", "1.0", files={entry: b"evil = True\n"})
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n")
    await refused(kernel, zipped(folder, [wheel], tmp_path), why)
    assert not (tmp_path / "escaped.py").exists()


async def test_a_wheel_with_a_symlink_is_refused(kernel: Kernel, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demolib", "1.0")
    with zipfile.ZipFile(wheel, "a") as archive:
        link = zipfile.ZipInfo("demolib/secret")
        link.external_attr = (0o120777 << 16) | 0
        archive.writestr(link, "/etc/shadow")
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n")
    await refused(kernel, zipped(folder, [wheel], tmp_path), "symlinks are not allowed")


async def test_a_wheel_that_is_not_a_zip_is_refused(kernel: Kernel, tmp_path: Path) -> None:
    fake = tmp_path / "fake" / "demolib-1.0-py3-none-any.whl"
    fake.parent.mkdir()
    fake.write_bytes(b"not a zip at all")
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n")
    await refused(kernel, zipped(folder, [fake], tmp_path), "not a readable wheel")


async def test_an_archive_carrying_its_own_deps_folder_is_refused(
    kernel: Kernel, tmp_path: Path
) -> None:
    folder = plugin_copy(tmp_path / "src", requirements="")
    (folder / "deps" / "yaml").mkdir(parents=True)
    (folder / "deps" / "yaml" / "__init__.py").write_text("planted = True\n")
    await refused(kernel, zipped(folder, [], tmp_path), "deps/: is reserved")


async def test_a_folder_whose_pin_the_index_lacks_is_refused_and_nothing_installed(
    kernel: Kernel, tmp_path: Path, bare_wheel_index: str
) -> None:
    folder = plugin_copy(tmp_path, requirements="demolib==9.9\n")
    await refused(kernel, folder, "deps-demo 1.0.0: ", "demolib==9.9")


async def test_a_failed_reinstall_leaves_the_installed_copy_running(
    kernel: Kernel, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, "demolib", "1.0")
    good = plugin_copy(tmp_path / "good", requirements="demolib==1.0\n", index=USES_DEMOLIB)
    assert (await kernel.loader.install(zipped(good, [wheel], tmp_path / "good"))).enabled
    bad = plugin_copy(tmp_path / "bad", requirements="demolib==1.0\n", index=USES_DEMOLIB)
    other = make_wheel(tmp_path / "bad", "demolib", "1.0", pure=False, tag="cp27-cp27m-win32")
    with pytest.raises(PluginError, match="no wheel for this Python"):
        await kernel.loader.install(zipped(bad, [other], tmp_path / "bad"), force=True)
    record = kernel.installed.get("deps-demo")
    assert record is not None and record.enabled
    outcome = await kernel.call_tool(kernel.open_session().id, "table", {"rows": []})
    assert outcome.ok and outcome.text == "demolib 1.0", outcome.error


async def test_a_registry_artifact_with_a_bad_wheel_is_refused_before_it_is_in_place(
    kernel: Kernel, tmp_path: Path
) -> None:
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n", index=USES_DEMOLIB)
    (folder / "wheels").mkdir()
    make_wheel(folder / "wheels", "demolib", "1.0", pure=False, tag="cp27-cp27m-win32")
    registry = TestRegistry(tmp_path / "registry")
    registry.add("1.0.0", name="deps-demo", data=zip_plugin(folder))
    registry.publish()
    client = client_at(kernel.paths.config_dir)
    await client.sync(installed_of(kernel), registry.url, registry.root_file)
    with pytest.raises(StoreError, match="carries no wheel for this Python"):
        await plugins_with(kernel, client).install("deps-demo")
    nothing_installed(kernel)


def test_the_best_wheel_for_this_interpreter_is_picked(tmp_path: Path) -> None:
    from deeting_tui.plugin.requirements import Pin
    from deeting_tui.plugin.wheel_install import WheelInstallError, pick_wheels

    folder = tmp_path / "wheels"
    folder.mkdir()
    pure = make_wheel(folder, "demolib", "1.0")
    native = make_wheel(folder, "demolib", "1.0", pure=False)
    make_wheel(folder, "demolib", "1.0", pure=False, tag="cp27-cp27m-win32")
    make_wheel(folder, "other", "3.0")  # a wheel for no pin here (another Python's marker)
    assert pick_wheels([Pin("demolib", "1.0")], folder) == [native]
    native.unlink()
    assert pick_wheels([Pin("demolib", "1.0")], folder) == [pure]
    # Past the checker (which refuses it first at install): still no wheel of another version.
    with pytest.raises(WheelInstallError, match=r"is demolib 1\.0, but requirements\.txt pins"):
        pick_wheels([Pin("demolib", "1.1")], folder)


def test_a_wheel_zip_listing_is_checked_like_a_plugin_archive() -> None:
    from deeting_tui.plugin.archive import ArchiveError, ArchiveLimits, check_entries

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a/../../b.py", b"")
    with zipfile.ZipFile(buffer) as archive, pytest.raises(ArchiveError, match=r"'\.\.'"):
        check_entries(archive, ArchiveLimits())


async def test_an_author_s_folder_carrying_wheels_is_refused(
    kernel: Kernel, tmp_path: Path
) -> None:
    """A folder install fetches its own wheels; ones lying in the source are not trusted."""
    folder = plugin_copy(tmp_path, requirements="demolib==1.0\n")
    (folder / "wheels").mkdir()
    make_wheel(folder / "wheels", "demolib", "1.0")
    await refused(kernel, folder, "wheels/: is reserved for the plugin's dependencies")


def demolib_release(tmp_path: Path, version: str, demolib: str) -> bytes:
    """deps-demo at ``version`` pinning demolib ``demolib``, its wheel vendored: a zip."""
    folder = plugin_copy(
        tmp_path / version, requirements=f"demolib=={demolib}\n", index=USES_DEMOLIB
    )
    for manifest in ("kimai.json", "package.json"):
        data = orjson.loads((folder / manifest).read_bytes())
        data["version"] = version
        (folder / manifest).write_bytes(orjson.dumps(data))
    (folder / "wheels").mkdir()
    make_wheel(folder / "wheels", "demolib", demolib)
    return zip_plugin(folder)


async def test_a_registry_upgrade_installs_the_new_version_s_dependencies_and_rolls_back(
    kernel: Kernel, tmp_path: Path
) -> None:
    registry = TestRegistry(tmp_path / "registry")
    registry.add("1.0.0", name="deps-demo", data=demolib_release(tmp_path, "1.0.0", "1.0"))
    registry.publish()
    client = client_at(kernel.paths.config_dir)
    plugins = plugins_with(kernel, client)
    await client.sync(installed_of(kernel), registry.url, registry.root_file)
    assert (await plugins.install("deps-demo")).enabled
    session = kernel.open_session().id
    assert (await kernel.call_tool(session, "table", {"rows": []})).text == "demolib 1.0"
    registry.add("1.1.0", name="deps-demo", data=demolib_release(tmp_path, "1.1.0", "1.1"))
    registry.publish()
    await client.sync(installed_of(kernel), registry.url, registry.root_file)
    report = await plugins.upgrade("deps-demo")
    assert report is not None and report.new == "1.1.0", report
    assert (await kernel.call_tool(session, "table", {"rows": []})).text == "demolib 1.1"
    await plugins.rollback("deps-demo")
    assert (await kernel.call_tool(session, "table", {"rows": []})).text == "demolib 1.0"


async def test_a_cancelled_install_lets_the_dependency_thread_end_before_its_stage_goes() -> None:
    """pip runs in a thread, which a cancel cannot stop: the install waits for it to end
    before it removes the stage it writes into (or a late write would leave debris)."""
    import asyncio
    import threading

    from deeting_tui.kernel.plugins.install import _to_the_end

    started, release = threading.Event(), threading.Event()
    said: list[str] = []

    def fetching() -> None:
        started.set()
        release.wait(30)
        said.append("thread ended")

    async def install() -> None:
        try:
            await _to_the_end(asyncio.to_thread(fetching))
        finally:
            said.append("stage removed")

    task = asyncio.create_task(install())
    await asyncio.to_thread(started.wait, 30)
    task.cancel()
    asyncio.get_running_loop().call_soon(release.set)  # runs after the task hears the cancel
    with pytest.raises(asyncio.CancelledError):
        await task
    assert said == ["thread ended", "stage removed"]


async def test_a_wheel_cannot_shadow_the_standard_library(kernel: Kernel, tmp_path: Path) -> None:
    """deps/ comes after the stdlib on the path, as site-packages does in any environment."""
    wheel = make_wheel(tmp_path, "demolib", "1.0", files={"csv/__init__.py": b"HIJACKED = 1\n"})
    index = "import csv\n\n\ndef invoke(ctx, tool, args):\n    return csv.__file__\n"
    folder = plugin_copy(tmp_path / "src", requirements="demolib==1.0\n", index=index)
    assert (await kernel.loader.install(zipped(folder, [wheel], tmp_path))).enabled
    outcome = await kernel.call_tool(kernel.open_session().id, "table", {"rows": []})
    assert outcome.ok and outcome.text is not None, outcome.error
    assert "/deps/" not in outcome.text and outcome.text.endswith("csv.py"), outcome.text
