"""Where a plugin's dependencies may be (deeting_tui/plugin/checker.py): an author's source
has neither ``wheels/`` nor ``deps/``; an archive may carry ``wheels/`` holding only wheels of
pinned distributions; an installed copy may have both. requirements.txt problems are problems
of the plugin, located at their line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from wheel_index import make_wheel

from deeting_tui.plugin.checker import check_plugin
from deeting_tui.plugin.lint import lint_path
from registry_tools.reprozip import build_zip

GOOD = Path(__file__).resolve().parent.parent / "fixtures" / "good_plugin"


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    folder = tmp_path / "src" / "good"
    shutil.copytree(GOOD, folder)
    return folder


def zipped(plugin: Path, tmp_path: Path, extra: list[tuple[str, Path]]) -> Path:
    path = tmp_path / "good.zip"
    path.write_bytes(build_zip(plugin, "good", extra))
    return path


def messages(path: Path) -> list[str]:
    spec, problems = lint_path(path)
    assert (spec is None) == bool(problems)
    return [str(problem) for problem in problems]


def test_a_source_with_a_lock_lints_clean_and_a_bad_lock_is_located(plugin: Path) -> None:
    (plugin / "requirements.txt").write_text("tabulate==0.9.0\n")
    assert messages(plugin) == []
    (plugin / "requirements.txt").write_text("# lock\ntabulate>=0.9\n")
    assert messages(plugin) == [
        "requirements.txt:2: tabulate>=0.9 is not an exact pin — write tabulate==VERSION "
        "(pin every dependency as NAME==VERSION (pip-compile writes such a lock))"
    ]


@pytest.mark.parametrize("reserved", ["wheels", "deps"])
def test_a_source_folder_must_not_have_the_dependency_folders(plugin: Path, reserved: str) -> None:
    (plugin / reserved).mkdir()
    [message] = messages(plugin)
    assert message.startswith(f"{reserved}/: is reserved for the plugin's dependencies")
    assert check_plugin(plugin)[1] == []  # an installed copy may have it


def test_an_archive_may_carry_the_wheels_of_its_pins(plugin: Path, tmp_path: Path) -> None:
    (plugin / "requirements.txt").write_text("tabulate==0.9.0\nnative==2.0\n")
    pure = make_wheel(tmp_path, "tabulate", "0.9.0")
    native = make_wheel(tmp_path, "native", "2.0", tag="cp312-cp312-manylinux_2_17_x86_64")
    archive = zipped(
        plugin, tmp_path, [(f"wheels/{pure.name}", pure), (f"wheels/{native.name}", native)]
    )
    assert messages(archive) == []


@pytest.mark.parametrize(
    ("requirements", "entry", "words"),
    [
        ("tabulate==0.9.0\n", "wheels/notes.txt", "wheels/notes.txt: wheels/ holds only wheel"),
        ("tabulate==0.9.0\n", "wheels/sub/x.whl", "wheels/sub: wheels/ holds only wheel files"),
        ("tabulate==0.9.0\n", "wheels/tabulate.whl", "not a wheel's file name"),
        ("other==1.0\n", "wheels/tabulate-0.9.0-py3-none-any.whl", "tabulate 0.9.0 is not pinned"),
        ("tabulate==0.8\n", "wheels/tabulate-0.9.0-py3-none-any.whl", "is not pinned in"),
        (None, "wheels/tabulate-0.9.0-py3-none-any.whl", "is not pinned in requirements.txt"),
        ("tabulate==0.9.0\n", "deps/tabulate/__init__.py", "deps/: is reserved"),
    ],
)
def test_an_archive_carries_nothing_else(
    plugin: Path, tmp_path: Path, requirements: str | None, entry: str, words: str
) -> None:
    if requirements is not None:
        (plugin / "requirements.txt").write_text(requirements)
    wheel = make_wheel(tmp_path, "tabulate", "0.9.0")
    [message] = messages(zipped(plugin, tmp_path, [(entry, wheel)]))
    assert words in message
