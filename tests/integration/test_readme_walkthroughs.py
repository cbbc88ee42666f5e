"""The README's tour and registry walk-through run as written: each ``sh`` block is taken from
README.md and run by bash, word for word, with ``set -euo pipefail``, from the checkout's
root, with the venv's ``bin`` on PATH as the README tells a reader to put it. What changes
is only what the machine decides: ``mktemp -d`` makes its folders under this test's own, and
the plugins deeting carries are a bundle built for the test (a checkout's comes from
``./dev.sh run``). A README edit that breaks a command breaks this test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bundle_support import make_bundle

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def _first_sh_block(section: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {section}\n")
    end = text.find("\n## ", start + 1)
    found = re.search(r"```sh\n(.*?)```", text[start : end if end != -1 else None], re.S)
    assert found is not None, f"README's {section!r} has no sh block"
    return found.group(1)


@pytest.fixture(scope="module")
def bundle_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundle-cache")


def _run(block: str, tmp_path: Path, bundle_cache: Path) -> subprocess.CompletedProcess[str]:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "TMPDIR": str(temp),
        "DEETING_BUNDLE": str(make_bundle(tmp_path / "bundled", bundle_cache)),
    }
    env.pop("DEETING_HOME", None)  # the block sets its own
    return subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + block],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_short_tour_runs_as_written(tmp_path: Path, bundle_cache: Path) -> None:
    done = _run(_first_sh_block("A short tour"), tmp_path, bundle_cache)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in ("calc     1.0.0      ready        bundled", "installed weather 1.0.0"):
        assert line in out, out
    assert "2**10 = 1024" in out and "buy milk" in out, out
    assert '"type":"tool_result"' in out.replace(" ", ""), out
    assert "error" not in done.stderr, done.stderr


def test_the_registry_walk_through_runs_as_written(tmp_path: Path, bundle_cache: Path) -> None:
    done = _run(_first_sh_block("Plugins from a registry"), tmp_path, bundle_cache)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for line in (
        "pinned the registry root given with --root",
        "installed sysinfo 1.0.0 from the registry (verified)",
        "update available: calc 1.0.0 → 1.0.1",
        "upgraded calc 1.0.0 → 1.0.1 (previous version kept)",
        "rolled calc back 1.0.1 → 1.0.0",
    ):
        assert line in out, out
    assert "trusting the registry's own root.json on first use" not in done.stderr
