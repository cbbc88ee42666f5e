"""ci/scan.py and ci/lint.py on a plugin's dependencies: the lock (DS701: loose pins, no wheel
for a target, an open closure) and known advisories from an offline OSV database (DS702).
Wheels come from a local index on 127.0.0.1 (tests/wheel_index.py); the OSV records are
made-up ones in tests/fixtures/osv."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from packaging.version import Version
from wheel_index import make_sdist, make_wheel

from ci import lint, scan
from ci.scan_deps import AdvisoryDatabase, is_affected
from deeting_tui.plugin.wheel_fetch import Target

OSV = Path(__file__).resolve().parents[1] / "fixtures" / "osv"
X86_312 = Target.parse("3.12-manylinux_2_17_x86_64")
MakePlugin = Callable[..., Path]


@pytest.fixture
def database() -> AdvisoryDatabase:
    return AdvisoryDatabase.load(OSV)


# -- the OSV matcher ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "ids"),
    [
        ("tabulate", "0.9.0", ["TEST-2026-0001"]),  # introduced 0, fixed 0.9.1
        ("tabulate", "0.1", ["TEST-2026-0001"]),
        ("tabulate", "0.9.1", []),
        ("tabulate", "0.9.1rc1", ["TEST-2026-0001"]),  # PEP 440 order, not string order
        ("py-fake-lib", "1.0", ["TEST-2026-0002"]),  # versions list; Py_Fake.Lib normalised
        ("PY.FAKE_lib", "1.0.0", ["TEST-2026-0002"]),  # 1.0.0 == 1.0
        ("py-fake-lib", "1.1", ["TEST-2026-0002"]),
        ("py-fake-lib", "1.2", []),
        ("lastpkg", "0.9", []),
        ("lastpkg", "1.0", ["TEST-2026-0003"]),
        ("lastpkg", "1.5", ["TEST-2026-0003"]),  # last_affected is inclusive
        ("lastpkg", "1.5.1", []),
        ("twice", "1.1", ["TEST-2026-0005"]),
        ("twice", "1.2", []),
        ("twice", "1.9", []),  # between the two ranges (the GIT range is not versions)
        ("twice", "2.0.5", ["TEST-2026-0005"]),
        ("twice", "2.1", []),
        ("orjson", "3.11.4", []),  # npm's orjson and a withdrawn record: neither counts
        ("unknown", "1.0", []),
    ],
)
def test_the_matcher(database: AdvisoryDatabase, name: str, version: str, ids: list[str]) -> None:
    assert [a.id for a in database.affecting(name, version)] == ids


def test_an_advisory_says_id_package_version_and_fix(database: AdvisoryDatabase) -> None:
    [advisory] = database.affecting("tabulate", "0.9.0")
    assert str(advisory) == "TEST-2026-0001: tabulate 0.9.0 is affected (fixed in: 0.9.1)"
    [advisory] = database.affecting("lastpkg", "1.2")
    assert str(advisory).endswith("(fixed in: no fixed release yet)")


def test_osvs_all_zip_reads_like_the_folder(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as archive:
        for path in sorted(OSV.glob("*.json")):
            archive.write(path, path.name)
    from_zip = AdvisoryDatabase.load(tmp_path / "all.zip")
    assert from_zip.records == AdvisoryDatabase.load(OSV).records == 4  # PyPI, not withdrawn
    assert [a.id for a in from_zip.affecting("twice", "1.0")] == ["TEST-2026-0005"]


def test_a_range_without_introduced_affects_nothing() -> None:
    entry = {"ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "2.0"}]}]}
    assert not is_affected(entry, Version("1.0"))


# -- scan and lint on plugins --------------------------------------------------------------------


def run(
    module: object, capsys: pytest.CaptureFixture[str], *args: str | Path
) -> tuple[int, str, str]:
    code = module.main([str(a) for a in args])  # type: ignore[attr-defined]
    out, err = capsys.readouterr()
    return code, out, err


def test_a_vulnerable_pin_fails_the_scan_one_line_per_advisory(
    wheel_index: str, make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = make_plugin(files={"requirements.txt": "orjson==3.11.4\ntabulate==0.9.0\n"})
    code, out, err = run(scan, capsys, plugin, "--target", X86_312, "--advisories", OSV)
    assert code == 1 and err == ""
    assert out.splitlines() == [
        f"{plugin}: requirements.txt:2:1: error DS702 vulnerable-dependency: TEST-2026-0001: "
        "tabulate 0.9.0 is affected (fixed in: 0.9.1) — fix: pin a fixed version (the "
        "advisory names it), or drop the dependency"
    ]


def test_a_clean_lock_passes_and_without_a_database_the_check_says_it_was_skipped(
    wheel_index: str, make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = make_plugin(files={"requirements.txt": "orjson==3.11.4\n"})
    code, out, err = run(scan, capsys, plugin, "--target", X86_312, "--advisories", OSV)
    assert code == 0 and out.startswith(f"ok  {plugin}") and err == ""
    vulnerable = make_plugin(files={"requirements.txt": "tabulate==0.9.0\n"})
    code, out, err = run(scan, capsys, vulnerable, "--target", X86_312)
    assert code == 0 and out.startswith(f"ok  {vulnerable}")
    assert err == (
        "scan.py: advisory check skipped: no --advisories database given (OSV's PyPI all.zip, "
        "or a folder of OSV JSON files)\n"
    )
    code, out, err = run(scan, capsys, "--json", vulnerable, "--target", X86_312)
    assert json.loads(out)["plugins"][0]["pins"] == ["tabulate==0.9.0"]


def test_no_dependencies_no_skip_line(
    make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(scan, capsys, make_plugin())
    assert code == 0 and err == ""


@pytest.mark.parametrize(
    ("requirements", "words"),
    [
        ("tabulate>=0.9\n", "requirements.txt:1:1: error DS701 dependency-lock: tabulate>=0.9 is"),
        ("sourceonly==1.0\n", "requirements.txt:1:1: error DS701 dependency-lock: sourceonly==1.0"),
        ("app==1.0\n", "requirements.txt:1:1: error DS701 dependency-lock: app==1.0 needs helper"),
    ],
)
def test_a_lock_without_wheels_or_closure_fails_the_scan(
    bare_wheel_index: str,
    wheel_index_extras: Path,
    make_plugin: MakePlugin,
    capsys: pytest.CaptureFixture[str],
    requirements: str,
    words: str,
) -> None:
    make_sdist(wheel_index_extras, "sourceonly", "1.0")
    make_wheel(wheel_index_extras, "app", "1.0", requires=["helper"])
    plugin = make_plugin(files={"requirements.txt": requirements})
    code, out, _err = run(scan, capsys, plugin, "--target", X86_312)
    [line] = out.splitlines()
    assert code == 1 and line.startswith(f"{plugin}: {words}")


def test_a_bad_database_or_target_is_a_usage_error(
    tmp_path: Path, make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run(scan, capsys, make_plugin(), "--advisories", tmp_path / "nope.zip")
    assert code == 2 and "does not exist — give OSV's PyPI all.zip" in err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.json").write_text("{not json")
    code, _out, err = run(scan, capsys, make_plugin(), "--advisories", tmp_path / "bad")
    assert code == 2 and "is not JSON" in err and len(err.splitlines()) == 1
    code, _out, err = run(scan, capsys, make_plugin(), "--target", "py3")
    assert code == 2 and "is not PYTHON-PLATFORM" in err


def test_lint_checks_the_lock_statically(
    make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    good = make_plugin(files={"requirements.txt": "tabulate==0.9.0  # tables\n"})
    assert run(lint, capsys, good)[0] == 0  # no index needed: lint never fetches
    bad = make_plugin(files={"requirements.txt": "tabulate==0.9.0\n-i https://evil.example\n"})
    code, out, _err = run(lint, capsys, bad)
    assert code == 1
    assert out.splitlines() == [
        f"{bad}: requirements.txt:2: option -i is not allowed — list only pins (NAME==VERSION, "
        "optionally --hash=sha256:…); set a package index in pip's own configuration"
    ]
    (good / "deps").mkdir()
    code, out, _err = run(lint, capsys, good)
    assert code == 1 and f"{good}: deps/: is reserved" in out
