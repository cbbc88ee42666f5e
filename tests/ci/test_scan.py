"""ci/scan.py: every rule fires on code that breaks it and stays quiet on code that does not."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ci.scan import main, scan_path, scan_source
from ci.scan_rules import RULES
from deeting_tui.plugin.scopes import parse_scope

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "ci" / "fixtures"
OFFICIAL = sorted(p for p in (REPO / "plugins").iterdir() if p.is_dir())
EVERY_RULE = FIXTURES / "scan_every_rule"
MakePlugin = Callable[..., Path]  # the make_plugin fixture (conftest.py)

# rule: (code that breaks it, its permissions), (code that does not, its permissions)
CASES: dict[str, tuple[tuple[str, list[str]], tuple[str, list[str]]]] = {
    "DS101": (
        ("import socket\n", []),
        ("import socket\nimport urllib.parse\n", ["network:api.example.com"]),
    ),
    "DS201": (
        ("import subprocess\n", ["network"]),
        ("import subprocess\n", ["shell"]),
    ),
    "DS301": (
        ("from ctypes import CDLL\n", ["shell", "network", "filesystem"]),
        ("import json\n", []),
    ),
    "DS401": (
        ("def run(text):\n    return eval(text)\n", []),
        ("import ast\n\n\ndef run(text):\n    return ast.literal_eval(text), eval('1 + 2')\n", []),
    ),
    "DS402": (
        ("import importlib\n\n\ndef load(name):\n    return importlib.import_module(name)\n", []),
        ("import importlib\n\nJSON = importlib.import_module('json')\n", []),
    ),
    "DS501": (
        ("def save():\n    open('/etc/motd', 'a').write('hi')\n", []),
        (
            "from pathlib import Path\n\n\ndef save(ctx):\n"
            "    open('/etc/motd').read()\n"
            "    open('notes.txt', 'w').write('relative: the data folder')\n"
            "    (Path(ctx.data_dir) / 'x').write_text('computed: the sandbox decides')\n"
            "    Path('/srv/out/report.txt').write_text('declared below')\n",
            ["filesystem:write:/srv/out"],
        ),
    ),
    "DS601": (
        ("import pickle\n\n\ndef load(blob):\n    return pickle.loads(blob)\n", []),
        ("import json\n\n\ndef load(blob):\n    return json.loads(blob)\n", []),
    ),
}


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main(["--json", *args])
    return code, json.loads(capsys.readouterr().out)


def _rules(findings: list[Any]) -> list[str]:
    return [finding.rule for finding in findings]


# -- the official plugins and the rule table --------------------------------------------------


def test_official_plugins_scan_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert OFFICIAL, "plugins/ holds the official plugins"
    code, document = _json(capsys, *map(str, OFFICIAL))
    assert code == 0
    for plugin in document["plugins"]:
        assert plugin["ok"] and plugin["files"] >= 2, plugin
        assert plugin["findings"] == [] and plugin["suppressed"] == [], plugin


def test_every_rule_has_a_case_and_says_how_to_fix_it() -> None:
    meta = {"DS001", "DS002", "DS003", "DS004"}  # tested on their own below
    meta |= {"DS701", "DS702"}  # the dependency rules: tests/ci/test_scan_deps.py
    assert set(CASES) | meta == set(RULES)
    for rule in RULES.values():
        assert rule.severity in ("error", "warning") and rule.message and rule.fix


def test_rules_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rules"]) == 0
    text = capsys.readouterr().out
    assert all(f"{rule_id} " in text for rule_id in RULES)
    assert main(["--rules", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["rules"]
    assert [r["id"] for r in listed] == list(RULES)
    assert set(listed[0]) == {"id", "name", "severity", "message", "fix"}


# -- each rule: a plugin that trips it, and one that does not ---------------------------------


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_fires(rule: str, make_plugin: MakePlugin) -> None:
    code, permissions = CASES[rule][0]
    report = scan_path(make_plugin(files={"src/extra.py": code}, permissions=permissions))
    assert _rules(report.findings) == [rule]
    finding = report.findings[0]
    assert finding.file == "src/extra.py" and finding.line >= 1
    assert finding.severity == RULES[rule].severity
    assert report.ok is (RULES[rule].severity == "warning")


@pytest.mark.parametrize("rule", sorted(CASES))
def test_rule_stays_quiet(rule: str, make_plugin: MakePlugin) -> None:
    code, permissions = CASES[rule][1]
    report = scan_path(make_plugin(files={"src/extra.py": code}, permissions=permissions))
    assert report.findings == [] and report.ok


def test_a_fixture_that_trips_every_rule(tmp_path: Path) -> None:
    plugin = tmp_path / "every"
    shutil.copytree(EVERY_RULE, plugin)
    (plugin / "src" / "broken.py").write_text("def broken(:\n    pass\n")
    report = scan_path(plugin)
    assert set(_rules(report.findings)) == set(RULES) - {"DS004", "DS701", "DS702"}
    assert not report.ok
    assert _rules(report.suppressed) == ["DS101"]


def test_the_network_rule_counts_any_network_scope(make_plugin: MakePlugin) -> None:
    code = "import httpx\nimport requests\nimport aiohttp\n"
    assert len(scan_path(make_plugin(files={"src/x.py": code})).findings) == 3
    assert scan_path(make_plugin(files={"src/x.py": code}, permissions=["network"])).ok


# -- names followed through aliases -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "rule", "line"),
    [
        ("import subprocess as sp\nsp.run(['ls'])\n", "DS201", 1),
        ("from os import system\nsystem('ls')\n", "DS201", 1),
        ("from os import system as run\nrun('ls')\n", "DS201", 1),
        ("import os\nos.system('ls')\n", "DS201", 2),
        ("import os\nos.execv('/bin/ls', ['ls'])\n", "DS201", 2),
        ("import os as o\nspawn = o.posix_spawnp\nspawn('ls', ['ls'], {})\n", "DS201", 2),
        ("import os\ngetattr(os, 'popen')('ls')\n", "DS201", 2),
        ("getattr(__import__('os'), 'system')('ls')\n", "DS201", 1),
        ("import asyncio\nasyncio.create_subprocess_shell('ls')\n", "DS201", 2),
        ("from os import *\nsystem('ls')\n", "DS201", 2),
        ("import pty as terminal\n", "DS201", 1),
        ("sock = __import__('socket')\n", "DS101", 1),
        ("import importlib as il\nil.import_module('socket')\n", "DS101", 2),
        ("from urllib import request as fetch\n", "DS101", 1),
        ("import urllib\nurllib.request.urlopen('http://x')\n", "DS101", 2),
        ("exec('import ctypes')\n", "DS301", 1),
        ("import builtins\nbuiltins.eval(input())\n", "DS401", 2),
        ("import marshal as m\nm.loads(b'')\n", "DS601", 2),
        ("from pathlib import Path as P\nROOT = P('/var')\n(ROOT / 'x').touch()\n", "DS501", 3),
        ("import shutil as sh\nsh.rmtree('/home/someone')\n", "DS501", 2),
        ("import os\nos.rename('a.txt', '../../b.txt')\n", "DS501", 2),
        ("import tempfile\ntempfile.mkstemp(dir='/tmp')\n", "DS501", 2),
    ],
)
def test_aliases_are_followed(source: str, rule: str, line: int) -> None:
    findings, _ = scan_source(source, "x.py", [])
    assert [(f.rule, f.line) for f in findings] == [(rule, line)], findings


@pytest.mark.parametrize(
    "source",
    [
        "def eval(text):\n    return text\n\n\neval(input())\n",  # a local eval is not builtins'
        "import re\nPATTERN = re.compile('a+')\n",
        "'/etc/x'.replace('x', 'y')\n",  # a string method, not Path.replace
        "open('/dev/null', 'w')\n",
        "import os\nos.replace(tmp, target)\n",
        "from . import handler\nfrom handler import run\n",
    ],
)
def test_lookalikes_are_not_findings(source: str) -> None:
    assert scan_source(source, "x.py", []) == ([], [])


def test_home_paths_need_a_home_scope() -> None:
    source = "from pathlib import Path\n(Path.home() / 'notes' / 'a.txt').write_text('x')\n"
    findings, _ = scan_source(source, "x.py", [])
    assert _rules(findings) == ["DS501"] and "'~/notes/a.txt'" in findings[0].message
    assert scan_source(source, "x.py", [parse_scope("filesystem:write:~/notes")]) == ([], [])
    assert _rules(scan_source(source, "x.py", [parse_scope("filesystem:read:~/notes")])[0]) == [
        "DS501"
    ]


# -- suppressions -----------------------------------------------------------------------------


def test_a_suppression_needs_a_reason_and_covers_its_rule_on_its_line_only() -> None:
    source = (
        "import os\n"
        "import socket  # deeting-scan: ignore[DS101] only socket.timeout, for errors\n"
        "os.system('ls'); import ctypes  # deeting-scan: ignore[DS201] runs ls on purpose\n"
        "import ssl, http.client\n"
    )
    findings, suppressed = scan_source(source, "x.py", [])
    assert [(f.rule, f.line) for f in suppressed] == [("DS101", 2), ("DS201", 3)]
    assert suppressed[0].reason == "only socket.timeout, for errors"
    assert [(f.rule, f.line) for f in findings] == [("DS301", 3), ("DS101", 4)]


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("# deeting-scan: ignore[DS101]", "has no reason"),
        ("# deeting-scan: ignore[DS101] --", "has no reason"),
        ("# deeting-scan: ignore[DS999] a reason", "unknown rule DS999"),
        ("# deeting-scan: ignore[] a reason", "unknown rule (none)"),
        ("# deeting-scan: ignore DS101 a reason", "not understood"),
    ],
)
def test_a_bad_suppression_silences_nothing(comment: str, message: str) -> None:
    findings, suppressed = scan_source(f"import socket  {comment}\n", "x.py", [])
    assert suppressed == []
    assert _rules(findings) == ["DS101", "DS002"]
    assert message in findings[1].message


def test_an_unused_suppression_is_a_warning() -> None:
    findings, _ = scan_source("import json  # deeting-scan: ignore[DS101] just in case\n", "x", [])
    assert [(f.rule, f.severity) for f in findings] == [("DS003", "warning")]


def test_suppressions_are_reported_in_json(
    make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "import socket  # deeting-scan: ignore[DS101] exception types only\n"
    plugin = make_plugin(files={"src/extra.py": source})
    code, document = _json(capsys, str(plugin))
    assert code == 0
    (entry,) = document["plugins"]
    assert entry["findings"] == []
    (suppressed,) = entry["suppressed"]
    assert suppressed["rule"] == "DS101" and suppressed["reason"] == "exception types only"
    assert suppressed["file"] == "src/extra.py" and suppressed["line"] == 1


# -- bad input --------------------------------------------------------------------------------


def test_a_syntax_error_is_a_finding_and_other_files_are_still_scanned(
    make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = make_plugin(files={"src/a.py": "def broken(:\n", "src/b.py": "import ctypes\n"})
    code, document = _json(capsys, str(plugin))
    assert code == 1
    findings = document["plugins"][0]["findings"]
    assert [(f["rule"], f["file"], f["line"]) for f in findings] == [
        ("DS001", "src/a.py", 1),
        ("DS301", "src/b.py", 1),
    ]
    assert findings[0]["message"].startswith("syntax error:")


def test_undecodable_source_is_a_finding(make_plugin: MakePlugin) -> None:
    plugin = make_plugin()
    (plugin / "src" / "latin.py").write_bytes(b"text = '\xff\xfe'\n")
    report = scan_path(plugin)
    assert _rules(report.findings) == ["DS001"]
    assert "cannot be read as Python source" in report.findings[0].message


def test_an_unreadable_manifest_is_reported(make_plugin: MakePlugin) -> None:
    plugin = make_plugin(files={"kimai.json": "{not json", "src/x.py": "import socket\n"})
    report = scan_path(plugin)
    assert _rules(report.findings) == ["DS004", "DS101"]  # judged as declaring nothing
    assert report.findings[0].file == "kimai.json"


def test_a_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "nope")]) == 1
    out = capsys.readouterr().out
    assert out.count(str(tmp_path / "nope")) == 2 and "does not exist" in out  # prefix + message


def test_zips_are_scanned_after_a_safe_extraction(make_plugin: MakePlugin, tmp_path: Path) -> None:
    plugin = make_plugin(files={"src/extra.py": "import socket\n"})
    archive = tmp_path / "plugin.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(plugin.rglob("*")):
            if path.is_file():
                zipped.write(path, f"probe/{path.relative_to(plugin).as_posix()}")
    report = scan_path(archive)
    assert report.path == archive and _rules(report.findings) == ["DS101"]
    assert report.findings[0].file == "src/extra.py"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zipped:
        zipped.writestr("../escape.py", "x = 1\n")
    assert _rules(scan_path(evil).findings) == ["DS004"]


# -- output and exit codes --------------------------------------------------------------------


def test_plain_output_prefixes_each_finding_with_the_plugin_path(
    make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    clean, dirty = make_plugin(), make_plugin(files={"src/extra.py": "import subprocess\n"})
    assert main([str(clean), str(dirty)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"ok  {clean} (1 file)"
    assert lines[1].startswith(f"{dirty}: src/extra.py:1:1: error DS201 shell-without-scope: ")
    assert ' — fix: declare "shell"' in lines[1] and len(lines) == 2


def test_json_shape(make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]) -> None:
    plugin = make_plugin(files={"src/extra.py": "import ctypes\n"}, permissions=["shell"])
    code, document = _json(capsys, str(plugin))
    assert code == 1
    (entry,) = document["plugins"]
    assert entry["path"] == str(plugin) and entry["ok"] is False
    assert entry["files"] == 2 and entry["scopes"] == ["shell"] and entry["suppressed"] == []
    (finding,) = entry["findings"]
    assert finding == {
        "name": "native-code",
        "rule": "DS301",
        "severity": "error",
        "file": "src/extra.py",
        "line": 1,
        "column": 1,
        "message": finding["message"],
        "fix": RULES["DS301"].fix,
    }
    assert "ctypes" in finding["message"]


def test_exit_codes(make_plugin: MakePlugin, capsys: pytest.CaptureFixture[str]) -> None:
    warning_only = make_plugin(files={"src/x.py": "import pickle\npickle.loads(b'')\n"})
    assert main([str(make_plugin())]) == 0
    assert main([str(warning_only)]) == 0  # warnings are shown, not failed
    assert "warning DS601" in capsys.readouterr().out
    assert main([str(make_plugin(files={"src/x.py": "import ctypes\n"}))]) == 1
    assert main([]) == 2
    assert "give at least one plugin folder" in capsys.readouterr().err
    assert main(["--bogus", str(FIXTURES / "probe")]) == 2


def test_runs_as_a_script_from_the_checkout() -> None:
    done = subprocess.run(
        [sys.executable, "ci/scan.py", "plugins/calc", str(EVERY_RULE)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("ok  plugins/calc (2 files)\n")
    assert f"{EVERY_RULE}: src/index.py:" in done.stdout and done.stderr == ""
