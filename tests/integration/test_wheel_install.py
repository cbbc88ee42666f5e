"""From the wheel to a useful shell: build deeting's wheel from this checkout offline, install
only it into a brand-new venv, and run it outside any checkout, offline, on a fresh home.

The wheel is built with ``pip wheel --no-build-isolation --no-deps`` (hatchling is a dev
extra) from a copy of the checkout's files, so the build's output never lands in the
checkout. The new venv gets the wheel and nothing else; its dependencies come from the dev
venv's site-packages through a ``.pth`` line placed after the venv's own site-packages (pip
cannot turn installed distributions into wheels, and there is no network). The dev venv's
editable deeting is not reachable that way (a path added by a .pth has its own .pth files
ignored), and the test proves ``deeting_tui`` is the new venv's. Where the machine allows it
(root, util-linux ``unshare``), every step runs in a network namespace with no network at all.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "deeting_tui" / "web" / "vendor"

pytestmark = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(),
    reason="builds the wheel from a git checkout",
)


def _offline() -> list[str]:
    """``unshare -n`` (no network at all) when it works here, else nothing."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    done = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    return [unshare, "-n"] if done.returncode == 0 else []


def _copy_checkout(target: Path) -> None:
    """The files git knows (tracked, or new and not ignored), and the built browser libraries
    (build output that the wheel's hook would otherwise rebuild with npm, from the network)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    shutil.copytree(VENDOR, target / "deeting_tui" / "web" / "vendor")
    sys.path.insert(0, str(REPO))
    try:
        from hatch_build import inputs_stamp  # type: ignore[import-not-found]
    except ImportError:  # hatchling missing: the build below says so
        return
    finally:
        sys.path.remove(str(REPO))
    (target / "deeting_tui" / "web" / "vendor" / inputs_stamp(target)).touch()


def _run(
    command: list[str], *, cwd: Path, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_a_fresh_venv_with_only_the_wheel_is_a_useful_shell(tmp_path: Path) -> None:
    if not (VENDOR / "NOTICE.txt").is_file():
        pytest.skip("run ./dev.sh once: the browser libraries (deeting_tui/web/vendor) are built")
    try:
        import hatchling  # noqa: F401
    except ImportError:
        pytest.skip("hatchling is a dev extra: run ./dev.sh test once")
    offline = _offline()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DEETING_", "PYTHON"))}
    source, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    _copy_checkout(source)

    pip = [*offline, sys.executable, "-m", "pip"]
    build = ["wheel", "--no-build-isolation", "--no-deps", "--no-index", "-q", "-w", str(dist)]
    built = _run(
        [*pip, *build, str(source)],
        cwd=tmp_path,
        env=clean,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("deeting-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "deeting_tui/bundled/registry.json" in names
    assert "deeting_tui/store/official/root.json" in names
    assert not (source / ".git").exists() and not (REPO / "deeting_tui" / ".bundled").exists()

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    into = ["--python", str(venv / "bin" / "python")]
    installed = _run(
        [*pip, *into, "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=tmp_path,
        env=clean,
    )
    assert installed.returncode == 0, installed.stderr
    new_site = Path(
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
            env=clean,
        ).stdout.strip()
    )
    (new_site / "zz-deeting-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    outside, home = tmp_path / "elsewhere", tmp_path / "home"
    outside.mkdir()
    env = {**clean, "DEETING_HOME": str(home)}
    deeting = [*offline, str(venv / "bin" / "deeting")]
    where = _run(
        [str(venv / "bin" / "python"), "-c", "import deeting_tui; print(deeting_tui.__file__)"],
        cwd=outside,
        env=env,
    )
    assert Path(where.stdout.strip()).is_relative_to(new_site), where

    calc = _run([*deeting, "--script", "-"], cwd=outside, env=env, stdin="calc 2+3\n")
    assert calc.returncode == 0, calc.stderr
    assert "2+3 = 5" in calc.stdout
    assert calc.stderr == ""

    listed = _run([*deeting, "plugin", "list"], cwd=outside, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    states = {r[0]: r[2] for r in rows if len(r) > 3 and re.fullmatch(r"\d+\.\d+\.\d+", r[1])}
    assert states == {
        "calc": "ready",
        "clock": "enabled",
        "notes": "ready",
        "sysinfo": "available",
        "weather": "available",
    }

    lines = "calc 2+3\ntime\nnote: buy milk\n/note_list\n"
    scripted = _run([*deeting, "--script", "-", "--json"], cwd=outside, env=env, stdin=lines)
    assert scripted.returncode == 0, scripted.stderr
    events = [orjson.loads(line) for line in scripted.stdout.splitlines()]
    results = [e for e in events if e.get("type") == "tool_result"]
    assert len(results) >= 3, scripted.stdout
    assert not [e for e in events if e.get("renderer_error")], scripted.stdout

    weather = _run([*deeting, "plugin", "install", "weather", "--yes"], cwd=outside, env=env)
    assert weather.returncode == 0, weather.stderr
    assert "installed weather 1.0.0 from the plugins deeting carries (verified)" in weather.stdout
