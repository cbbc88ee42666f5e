"""gen_registry vendors a plugin's pinned wheels into its zip at ``NAME/wheels/``, per target,
reproducibly; a loose pin, an sdist-only pin or an unclosed lock fails the run on one line.
The wheels come from a local index on 127.0.0.1 (tests/wheel_index.py)."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from wheel_index import WHEELHOUSE, make_sdist, make_wheel

from deeting_tui.plugin.lint import lint_path
from deeting_tui.plugin.wheel_fetch import Target
from deeting_tui.store.limits import Limits
from registry_tools.artifacts import LintFailure
from registry_tools.reprozip import build_zip

Build = Any
TWO = [Target.parse("3.12-manylinux_2_17_x86_64"), Target.parse("3.13-manylinux_2_17_x86_64")]


@pytest.fixture
def one_plugin(tmp_path: Path, sources: Path) -> Path:
    """A plugins folder with calc alone (official sources copied by conftest's ``sources``)."""
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.move(sources / "calc", folder / "calc")
    return folder


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [info.filename for info in archive.infolist()]


def test_wheels_go_into_the_zip_once_per_file_and_rebuild_to_the_same_bytes(
    wheel_index: str, tmp_path: Path, build: Build, one_plugin: Path
) -> None:
    (one_plugin / "calc" / "requirements.txt").write_text("tabulate==0.9.0\norjson==3.11.4\n")
    build(plugins=one_plugin, out=tmp_path / "out", targets=TWO)
    artifact = tmp_path / "out" / "artifacts" / "calc-1.0.0.zip"
    wheels = [name for name in zip_names(artifact) if name.startswith("calc/wheels/")]
    assert wheels == [
        "calc/wheels/",
        "calc/wheels/orjson-3.11.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "calc/wheels/orjson-3.11.4-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "calc/wheels/tabulate-0.9.0-py3-none-any.whl",
    ]
    with zipfile.ZipFile(artifact) as archive:
        for name in wheels[1:]:
            info = archive.getinfo(name)
            assert info.compress_type == zipfile.ZIP_STORED and info.date_time[0] == 1980
            assert archive.read(name) == (WHEELHOUSE / name.rsplit("/", 1)[1]).read_bytes()
    spec, problems = lint_path(artifact)  # the kernel's archive checks take it
    assert problems == [] and spec is not None
    build(plugins=one_plugin, out=tmp_path / "again", targets=TWO)
    assert (tmp_path / "again" / "artifacts" / "calc-1.0.0.zip").read_bytes() == (
        artifact.read_bytes()
    )
    build(plugins=one_plugin, out=tmp_path / "out", targets=TWO)  # a rerun: same version, ok


def test_the_default_targets_vendor_cp311_to_cp314_on_x86_64_and_aarch64(
    wheel_index: str, tmp_path: Path, build: Build, one_plugin: Path
) -> None:
    (one_plugin / "calc" / "requirements.txt").write_text("orjson==3.11.4\n")
    build(plugins=one_plugin, out=tmp_path / "out")
    names = zip_names(tmp_path / "out" / "artifacts" / "calc-1.0.0.zip")
    assert len([n for n in names if n.endswith(".whl")]) == 8


def test_a_plugin_without_requirements_zips_as_before(
    tmp_path: Path, build: Build, one_plugin: Path
) -> None:
    build(plugins=one_plugin, out=tmp_path / "out", targets=TWO)
    artifact = (tmp_path / "out" / "artifacts" / "calc-1.0.0.zip").read_bytes()
    assert artifact == build_zip(one_plugin / "calc", "calc")
    assert not any(
        "wheels" in name for name in zip_names(tmp_path / "out/artifacts/calc-1.0.0.zip")
    )


@pytest.mark.parametrize(
    ("requirements", "words"),
    [
        ("tabulate\n", "calc: requirements.txt:1: tabulate is not pinned"),
        ("tabulate>=0.9\n", "calc: requirements.txt:1: tabulate>=0.9 is not an exact pin"),
        ("--index-url http://x\n", "calc: requirements.txt:1: option --index-url"),
        ("sourceonly==1.0\n", "calc: sourceonly==1.0: no wheel for cp312-manylinux_2_17_x86_64"),
        ("nosuch==1.0\n", "calc: nosuch==1.0: no wheel for cp312-manylinux_2_17_x86_64"),
        ("app==1.0\n", "calc: requirements.txt:1: app==1.0 needs helper>=2, which is not pinned"),
    ],
)
def test_a_loose_sdist_only_or_open_lock_fails_the_run_on_one_line(
    bare_wheel_index: str,
    wheel_index_extras: Path,
    tmp_path: Path,
    build: Build,
    one_plugin: Path,
    requirements: str,
    words: str,
) -> None:
    make_sdist(wheel_index_extras, "sourceonly", "1.0")
    make_wheel(wheel_index_extras, "app", "1.0", requires=["helper>=2"])
    (one_plugin / "calc" / "requirements.txt").write_text(requirements)
    with pytest.raises(LintFailure) as failure:
        build(plugins=one_plugin, out=tmp_path / "out", targets=TWO)
    [line] = failure.value.problems
    assert words in line and "\n" not in line
    assert not (tmp_path / "out").exists()


def test_a_wheels_or_deps_folder_in_the_source_is_refused(
    tmp_path: Path, build: Build, one_plugin: Path
) -> None:
    (one_plugin / "calc" / "wheels").mkdir()
    (one_plugin / "calc" / "deps").mkdir()
    with pytest.raises(LintFailure) as failure:
        build(plugins=one_plugin, out=tmp_path / "out", targets=TWO)
    wheels, deps = failure.value.problems
    assert wheels.startswith(f"{one_plugin / 'calc'}: wheels/: is reserved for the plugin's dep")
    assert deps.startswith(f"{one_plugin / 'calc'}: deps/: is reserved")


def test_the_command_line_takes_targets_and_refuses_a_bad_one(
    wheel_index: str, tmp_path: Path, keyring: Any, now: Any, one_plugin: Path, run_tool: Any
) -> None:
    root = keyring.root(["alice"], 1, now=now)
    (one_plugin / "calc" / "requirements.txt").write_text("orjson==3.11.4\n")
    args = [one_plugin, "--out", tmp_path / "out", "--root", root, "--key", keyring["alice"].secret]
    bad = run_tool("gen_registry", *args, "--target", "linux")
    assert bad.returncode == 2 and "target 'linux' is not PYTHON-PLATFORM" in bad.stderr
    done = run_tool("gen_registry", *args, "--target", "3.14-manylinux_2_17_aarch64")
    assert done.returncode == 0, done.stderr
    assert "fetching calc: orjson==3.11.4 for cp314-manylinux_2_17_aarch64" in done.stderr
    names = zip_names(tmp_path / "out" / "artifacts" / "calc-1.0.0.zip")
    assert [n for n in names if n.endswith(".whl")] == [
        "calc/wheels/orjson-3.11.4-cp314-cp314-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"
    ]


def test_a_zip_over_what_a_client_downloads_is_refused(
    bare_wheel_index: str,
    wheel_index_extras: Path,
    tmp_path: Path,
    build: Build,
    one_plugin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("registry_tools.artifacts.Limits", lambda: Limits(artifact_max_bytes=4096))
    make_wheel(wheel_index_extras, "big", "1.0", files={"big/blob.bin": os.urandom(8192)})
    (one_plugin / "calc" / "requirements.txt").write_text("big==1.0\n")
    with pytest.raises(LintFailure) as failure:
        build(plugins=one_plugin, out=tmp_path / "out", targets=TWO)
    [line] = failure.value.problems
    assert "MiB, over the 0 MiB a client downloads — vendor fewer wheels" in line
