"""``deeting plugin install`` with several SOURCEs and ``--missing``: what ``./dev.sh run``
calls once (instead of one ``deeting`` process per plugin) on every run.

Several SOURCEs install in turn; one that fails is said in its own ``deeting: error:`` line
and the others still install, exit 1 (as a script with a failed line). ``--missing`` leaves
a plugin installed at any version alone, naming them all in one line, exit 0.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from support import FIXTURES, HOSTILE, OFFICIAL

from deeting_tui.cli import main

GOOD = FIXTURES / "good_plugin"
NEEDS_NET = HOSTILE / "needs-net"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        code = main(list(args))
    except SystemExit as exit_info:  # argparse's bad usage
        code = int(exit_info.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def installed(home: Path) -> dict[str, str]:
    """name → version, from the record the kernel keeps."""
    state = home / "data" / "plugins" / "state.json"
    if not state.exists():
        return {}
    plugins = orjson.loads(state.read_bytes())["plugins"]
    return {name: record["version"] for name, record in plugins.items()}


def bumped(tmp_path: Path, version: str) -> Path:
    """The good fixture under another version: the same plugin, a newer copy."""
    copy = tmp_path / f"echo-{version}"
    shutil.copytree(GOOD, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("kimai.json", "package.json"):
        path = copy / name
        if path.exists():
            path.write_text(path.read_text().replace('"1.0.0"', f'"{version}"'))
    return copy


def test_several_sources_install_each_in_turn(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(capsys, "plugin", "install", str(GOOD), str(OFFICIAL / "calc"))
    assert (code, err) == (0, "")
    assert "installed echo-fixture 1.0.0" in out and "enabled calc — tools: calc" in out
    assert installed(home) == {"echo-fixture": "1.0.0", "calc": "1.0.0"}


def test_a_bad_source_among_good_ones_is_one_line_and_the_others_install(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-plugin"
    code, out, err = cli(
        capsys, "plugin", "install", str(GOOD), str(missing), str(OFFICIAL / "calc")
    )
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith("deeting: error:") and f"{missing}: no such folder or zip" in line
    assert "Traceback" not in err
    assert installed(home) == {"echo-fixture": "1.0.0", "calc": "1.0.0"}
    assert "enabled calc" in out


def test_without_missing_an_installed_one_is_a_failure_the_others_still_install(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "plugin", "install", str(GOOD))[0] == 0
    code, out, err = cli(capsys, "plugin", "install", str(GOOD), str(OFFICIAL / "calc"))
    assert code == 1
    assert err == (
        "deeting: error: 'echo-fixture' 1.0.0 is already installed — pass --force to reinstall it\n"
    )
    assert "enabled calc" in out and installed(home)["calc"] == "1.0.0"


def test_missing_installs_what_is_not_there_and_leaves_any_version_alone(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "plugin", "install", str(GOOD))[0] == 0
    state = (home / "data" / "plugins" / "state.json").read_bytes()
    newer = bumped(tmp_path, "1.1.0")
    code, out, err = cli(
        capsys, "plugin", "install", "--missing", str(newer), str(OFFICIAL / "calc")
    )
    assert (code, err) == (0, "")
    assert "enabled calc" in out
    assert out.splitlines()[-1] == "already installed, left alone: echo-fixture 1.0.0"
    assert installed(home) == {"echo-fixture": "1.0.0", "calc": "1.0.0"}
    # A repeat run (./dev.sh run's) changes nothing and says one line.
    before = (home / "data" / "plugins" / "state.json").read_bytes()
    assert (
        orjson.loads(before)["plugins"]["echo-fixture"]
        == orjson.loads(state)["plugins"]["echo-fixture"]
    )
    code, out, err = cli(
        capsys, "plugin", "install", "--missing", str(GOOD), str(OFFICIAL / "calc")
    )
    assert (code, err) == (0, "")
    assert out == "already installed, left alone: echo-fixture 1.0.0, calc 1.0.0\n"
    assert (home / "data" / "plugins" / "state.json").read_bytes() == before


def test_missing_still_says_and_counts_a_failure(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(capsys, "plugin", "install", str(GOOD))[0] == 0
    broken = tmp_path / "not-a-plugin"
    broken.mkdir()
    code, out, err = cli(capsys, "plugin", "install", "--missing", str(GOOD), str(broken))
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith("deeting: error:") and "is not a plugin folder" in line
    assert out == "already installed, left alone: echo-fixture 1.0.0\n"


def test_missing_with_a_registry_name_already_installed_asks_no_registry(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No registry was ever synced: an installed name is left alone before one is needed."""
    assert cli(capsys, "plugin", "install", str(GOOD))[0] == 0
    code, out, err = cli(capsys, "plugin", "install", "--missing", "echo-fixture")
    assert (code, err) == (0, "")
    assert out == "already installed, left alone: echo-fixture 1.0.0\n"


def test_missing_installs_waiting_for_consent_without_a_terminal(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """./dev.sh run's case for sysinfo and weather: installed, waiting, not a failure."""
    code, out, err = cli(capsys, "plugin", "install", "--missing", str(NEEDS_NET), str(GOOD))
    assert (code, err) == (0, "")
    assert "needs-net waits for your consent to:" in out
    assert installed(home) == {"needs-net": "2.0.0", "echo-fixture": "1.0.0"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--missing", "--force"], "argument --force: not allowed with argument --missing"),
        (["--grant", "shell", str(FIXTURES / "x")], "--grant names one plugin's permissions"),
    ],
    ids=["missing-and-force", "grant-with-several"],
)
def test_contradictory_flags_are_bad_usage(
    home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "plugin", "install", *args, str(GOOD))
    assert code == 2 and message in err and out == ""
    assert err.count("\n") == 1 and installed(home) == {}
