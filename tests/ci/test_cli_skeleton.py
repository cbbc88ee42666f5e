"""lint, scan and smoke share one command line (ci/_cli.py): same usage errors and codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ci import lint, scan, smoke

REPO = Path(__file__).resolve().parents[2]
MAINS = {"lint.py": lint.main, "scan.py": scan.main, "smoke.py": smoke.main}


@pytest.mark.parametrize("prog", sorted(MAINS))
def test_usage_errors_exit_2_with_one_line(prog: str, capsys: pytest.CaptureFixture[str]) -> None:
    main = MAINS[prog]
    assert main([]) == 2
    err = capsys.readouterr().err
    assert f"{prog}: error: give at least one plugin folder or zip" in err
    assert main(["--bogus", "x"]) == 2
    assert main(["--help"]) == 0


@pytest.mark.parametrize("prog", ["lint.py", "scan.py"])
def test_a_checkout_script_runs_from_anywhere(prog: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "ci" / prog), "--json", str(REPO / "plugins" / "clock")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert '"plugins"' in out.stdout
