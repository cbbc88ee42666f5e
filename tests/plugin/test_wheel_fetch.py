"""Fetching a plugin's pinned wheels with pip (deeting_tui/plugin/wheel_fetch.py), from a
local index on 127.0.0.1 (tests/wheel_index.py): wheels only, per target, one line per failure.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from wheel_index import WHEELHOUSE, make_sdist, make_wheel

from deeting_tui.errors import is_known
from deeting_tui.plugin.requirements import Pin, RequirementsError, parse_requirements
from deeting_tui.plugin.wheel_fetch import (
    DEFAULT_TARGETS,
    NO_PIP,
    DependencyError,
    Target,
    fetch_wheels,
)

X86_312 = Target.parse("3.12-manylinux_2_17_x86_64")
X86_313 = Target.parse("3.13-manylinux_2_17_x86_64")


def pins(text: str):  # type: ignore[no-untyped-def]
    return parse_requirements(text.encode())


def test_targets_parse_and_name_themselves() -> None:
    assert Target("3.12", "manylinux_2_17_x86_64") == X86_312
    assert (
        X86_312.label == "cp312-manylinux_2_17_x86_64"
        and str(X86_312) == "3.12-manylinux_2_17_x86_64"
    )
    assert X86_312.pip_flags() == [
        "--python-version", "3.12", "--implementation", "cp", "--abi", "cp312",
        "--platform", "manylinux_2_17_x86_64",
    ]  # fmt: skip
    env = Target.parse("3.11-manylinux_2_17_aarch64").marker_environment()
    assert (env["python_version"], env["platform_machine"], env["sys_platform"]) == (
        "3.11", "aarch64", "linux"
    )  # fmt: skip
    with pytest.raises(ValueError, match="is not PYTHON-PLATFORM"):
        Target.parse("py3.12/linux")
    current = Target.current()
    assert current.native and current.pip_flags() == []
    assert current.python == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert len(DEFAULT_TARGETS) == 8


def test_a_pure_wheel_is_kept_once_and_a_native_one_per_target(
    wheel_index: str, tmp_path: Path
) -> None:
    seen: list[str] = []
    dest = tmp_path / "wheels"
    got = fetch_wheels(
        pins("tabulate==0.9.0\norjson==3.11.4\n"),
        dest,
        targets=[X86_312, X86_313],
        on_progress=seen.append,
    )
    assert [p.name for p in got] == [
        "orjson-3.11.4-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "orjson-3.11.4-cp313-cp313-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "tabulate-0.9.0-py3-none-any.whl",
    ]
    assert sorted(p.name for p in dest.iterdir()) == [p.name for p in got]  # no temp left
    for path in got:  # the bytes are the index's, as downloaded
        assert path.read_bytes() == (WHEELHOUSE / path.name).read_bytes()
    assert seen[0] == "tabulate==0.9.0 for cp312-manylinux_2_17_x86_64" and len(seen) == 4


def test_the_running_interpreter_is_a_target(wheel_index: str, tmp_path: Path) -> None:
    got = fetch_wheels(pins("tabulate==0.9.0\n"), tmp_path, targets=[Target.current()])
    assert [p.name for p in got] == ["tabulate-0.9.0-py3-none-any.whl"]


def test_a_pin_whose_marker_is_false_is_not_fetched(wheel_index: str, tmp_path: Path) -> None:
    got = fetch_wheels(
        pins('tabulate==0.9.0\norjson==3.11.4 ; python_version < "3.12"\n'),
        tmp_path,
        targets=[X86_312],
    )
    assert [p.name for p in got] == ["tabulate-0.9.0-py3-none-any.whl"]


def fetch_refusal(text: str, dest: Path, targets: list[Target] | None = None) -> str:
    with pytest.raises((DependencyError, RequirementsError)) as caught:
        fetch_wheels(pins(text), dest, targets=targets or [X86_312])
    assert is_known(caught.value)
    message = str(caught.value)
    assert "\n" not in message
    assert list(dest.iterdir()) == []  # nothing placed, no temp left
    return message


def test_an_sdist_only_project_is_refused_and_never_built(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    make_sdist(wheel_index_extras, "sourceonly", "1.0")
    assert fetch_refusal("sourceonly==1.0\n", tmp_path / "w") == (
        "sourceonly==1.0: no wheel for cp312-manylinux_2_17_x86_64 (sdists are never used: "
        "a dependency must not run code at install)"
    )


def test_a_native_wheel_for_another_platform_is_no_wheel_for_the_target(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    make_wheel(wheel_index_extras, "native", "1.0", tag="cp312-cp312-macosx_11_0_arm64")
    assert fetch_refusal("native==1.0\n", tmp_path / "w").startswith(
        "native==1.0: no wheel for cp312-manylinux_2_17_x86_64"
    )


def test_a_pin_the_index_lacks_is_refused(bare_wheel_index: str, tmp_path: Path) -> None:
    assert fetch_refusal("nosuchthing==1.0\n", tmp_path / "w").startswith(
        "nosuchthing==1.0: no wheel for cp312-manylinux_2_17_x86_64"
    )


def test_an_unpinned_dependency_is_named_and_nothing_is_placed(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    make_wheel(wheel_index_extras, "app", "1.0", requires=["helper>=2"])
    make_wheel(wheel_index_extras, "helper", "1.5")
    message = fetch_refusal("app==1.0\n", tmp_path / "w")
    assert message.startswith("requirements.txt:1: app==1.0 needs helper>=2, which is not pinned")
    assert message.endswith("(for cp312-manylinux_2_17_x86_64)")
    assert "helper==1.5 does not meet app==1.0's helper>=2" in fetch_refusal(
        "app==1.0\nhelper==1.5\n", tmp_path / "w"
    )


def test_a_folder_install_resolves_what_the_lock_leaves_out(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    """With ``resolved`` (a folder install), an unpinned dependency is fetched as pip would:
    the newest wheel inside every asker's specifiers, then what it needs in turn; the pins
    made are handed back, each pointing at the line of the pin that asked."""
    make_wheel(wheel_index_extras, "app", "1.0", requires=["helper>=2", "other<3"])
    make_wheel(wheel_index_extras, "helper", "1.5")
    make_wheel(wheel_index_extras, "helper", "2.1", requires=["leaf"])
    make_wheel(wheel_index_extras, "other", "2.0", requires=["helper<3"])
    make_wheel(wheel_index_extras, "other", "3.0")
    make_wheel(wheel_index_extras, "leaf", "0.4")
    resolved: list[Pin] = []
    got = fetch_wheels(
        pins("# the app\napp==1.0\n"), tmp_path / "w", targets=[X86_312], resolved=resolved
    )
    assert sorted((pin.name, pin.version, pin.line) for pin in resolved) == [
        ("helper", "2.1", 2),
        ("leaf", "0.4", 2),
        ("other", "2.0", 2),
    ]
    assert sorted(p.name.split("-")[0] for p in got) == ["app", "helper", "leaf", "other"]


def test_a_dependency_nothing_fits_is_refused_even_when_resolving(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    make_wheel(wheel_index_extras, "app", "1.0", requires=["helper>=2"])
    make_wheel(wheel_index_extras, "helper", "1.5")
    with pytest.raises(DependencyError) as caught:
        fetch_wheels(pins("app==1.0\n"), tmp_path / "w", targets=[X86_312], resolved=[])
    assert str(caught.value).startswith("helper>=2: no wheel for cp312-manylinux_2_17_x86_64")
    assert not (tmp_path / "w").exists() or list((tmp_path / "w").iterdir()) == []


def test_a_hash_mismatch_is_refused(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    wheel = make_wheel(wheel_index_extras, "hashed", "1.0")
    good = hashlib.sha256(wheel.read_bytes()).hexdigest()
    got = fetch_wheels(
        pins(f"hashed==1.0 --hash=sha256:{good}\n"), tmp_path / "ok", targets=[X86_312]
    )
    assert [p.name for p in got] == [wheel.name]
    assert "does not match its --hash" in fetch_refusal(
        f"hashed==1.0 --hash=sha256:{'0' * 64}\n", tmp_path / "w"
    )


def test_no_pip_is_said_in_one_line(
    bare_wheel_index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python"))
    assert fetch_refusal("tabulate==0.9.0\n", tmp_path / "w") == NO_PIP


def test_a_deadline_ends_pip(bare_wheel_index: str, tmp_path: Path) -> None:
    with pytest.raises(DependencyError, match=r"^tabulate==0.9.0: pip download took over"):
        fetch_wheels(pins("tabulate==0.9.0\n"), tmp_path, targets=[X86_312], deadline_s=0.01)


def test_an_unreachable_index_is_said_as_such(
    bare_wheel_index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple/")
    monkeypatch.setenv("PIP_RETRIES", "1")  # pip says why only when it retries
    message = fetch_refusal("tabulate==0.9.0\n", tmp_path / "w")
    assert message.startswith("tabulate==0.9.0: could not reach the package index (")
    assert message.endswith("— check PIP_INDEX_URL or pip.conf, and the network")


def test_a_wheel_name_with_control_characters_is_refused(
    bare_wheel_index: str, wheel_index_extras: Path, tmp_path: Path
) -> None:
    wheel = make_wheel(wheel_index_extras, "evil", "1.0")
    wheel.rename(wheel_index_extras / "evil-1.0-1\x1b]0;pwned\x07-py3-none-any.whl")
    message = fetch_refusal("evil==1.0\n", tmp_path / "w")
    assert message.startswith("evil==1.0: ")
    assert "\x1b" not in message and "\x07" not in message
