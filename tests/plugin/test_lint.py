from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from ci.lint import main

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
GOOD = FIXTURES / "good_plugin"
BAD = FIXTURES / "bad_plugins"


def test_good_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(GOOD)]) == 0
    assert capsys.readouterr().out == f"ok  {GOOD} (echo-fixture@1.0.0)\n"


def test_problems_are_prefixed_by_the_plugin_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(GOOD), str(BAD / "bad_scope"), str(BAD / "version_mismatch")]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"ok  {GOOD} (echo-fixture@1.0.0)",
        f"{BAD / 'bad_scope'}: kimai.json: permissions[0]: 'netwrk' is not a scope "
        "(network, filesystem, shell, gpu, messages)",
        f"{BAD / 'version_mismatch'}: package.json: version: '1.0.1' does not match "
        "kimai.json's '1.0.0'",
    ]


def test_every_bad_fixture_fails(capsys: pytest.CaptureFixture[str]) -> None:
    cases = sorted(p for p in BAD.iterdir() if p.is_dir())
    assert main([str(p) for p in cases]) == 1
    assert len(capsys.readouterr().out.splitlines()) == len(cases)


def test_missing_path_names_it_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 1
    assert capsys.readouterr().out.count(str(tmp_path / "nope")) == 1


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--json", str(GOOD), str(BAD / "invalid_regex")]) == 1
    document = json.loads(capsys.readouterr().out)
    good, bad = document["plugins"]
    assert good == {
        "path": str(GOOD),
        "ok": True,
        "problems": [],
        "name": "echo-fixture",
        "version": "1.0.0",
    }
    assert bad["ok"] is False and bad["path"] == str(BAD / "invalid_regex")
    assert bad["problems"][0]["file"] == "kimai.json"
    assert bad["problems"][0]["field"] == "trigger.regex"
    assert bad["problems"][0]["message"].startswith("bad regex:")


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "give at least one plugin folder" in capsys.readouterr().err
    assert main(["--bogus", str(GOOD)]) == 2
    assert main(["--help"]) == 0


def test_zips_are_checked_after_a_safe_extraction(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as archive:
        for path in sorted(GOOD.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, f"echo/{path.relative_to(GOOD).as_posix()}")
    assert main([str(good)]) == 0
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../evil.py", "x")
    assert main([str(evil)]) == 1
    assert "evil.zip: refused archive: '../evil.py'" in capsys.readouterr().out


def test_runs_as_a_script_from_anywhere(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for cwd in (REPO, tmp_path):
        done = subprocess.run(
            [sys.executable, str(REPO / "ci" / "lint.py"), str(GOOD), str(BAD / "bad_name")],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1, done.stderr
        assert f"ok  {GOOD}" in done.stdout
        assert "kimai.json: name: 'Echo_Fixture' is not a valid plugin name" in done.stdout
