"""The escape suites again, as an unprivileged user.

Root gets past things a plugin's user does not, so when the tests run as root this test runs
every ``tests/sandbox/test_escape*.py`` once more as the system user deeting-sbx and requires
every escape test to run and pass (none may skip). The user cannot reach /root (our interpreter
may live there), so it uses "the kit": a venv made from a system Python, with the same library
versions, that ``./dev.sh test`` builds. Run by a non-root user, the normal run already is the
unprivileged run, so this test skips."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from support import REPO

from deeting_tui.sandbox.probe import probe

USER = "deeting-sbx"
KIT = Path(os.environ.get("DEETING_UNPRIV_KIT", "/var/tmp/deeting-unpriv-kit"))
SUITES = tuple(
    sorted(str(p.relative_to(REPO)) for p in (REPO / "tests" / "sandbox").glob("test_escape*.py"))
)
SUITE = " ".join(SUITES)  # for messages
COPIED = ("deeting_tui", "tests", "plugins", "renderers", "pyproject.toml")  # what the suites use
TIMEOUT = 300


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if found is None:
        pytest.skip(f"{name} is missing, so the escape suite cannot be run as another user")
    return found


def _kit_python() -> Path:
    if reason := os.environ.get("DEETING_UNPRIV_SKIP"):
        pytest.skip(reason)
    python = Path(os.environ.get("DEETING_UNPRIV_PYTHON", KIT / "bin" / "python"))
    if not python.exists():
        pytest.skip(f"no unprivileged kit at {python}: run ./dev.sh test (as root) to build it")
    return python


def _user() -> pwd.struct_passwd:
    """deeting-sbx, created on first use and kept for the next runs."""
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    done = subprocess.run(
        [_tool("useradd"), "--system", "--no-create-home", "--shell", shell, USER],
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        return pwd.getpwnam(USER)  # also if another run created it meanwhile
    except KeyError:
        pytest.fail(f"useradd {USER} failed ({done.returncode}): {done.stderr}")


def _open_to_all(top: Path) -> None:
    """chmod -R a+rX, whatever the umask of the checkout was."""
    for folder, dirs, files in os.walk(top):
        os.chmod(folder, os.stat(folder).st_mode | 0o555)
        for name in (*dirs, *files):
            path = os.path.join(folder, name)
            if os.path.islink(path) or os.path.isdir(path):
                continue
            mode = os.stat(path).st_mode
            os.chmod(path, mode | 0o444 | (0o111 if mode & 0o111 else 0))


def _collected() -> int:
    """How many tests the escape suites hold, counted by root's own pytest."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *SUITES],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"collecting {SUITE} failed:\n{done.stdout}{done.stderr}"
    return sum("::" in line for line in done.stdout.splitlines())


def _as_user(python: Path, src: Path, home: Path, *args: str) -> tuple[int, str]:
    """Run the kit's python as USER, in src, with a bare environment; (returncode, output)."""
    command = [
        _tool("runuser"),
        "-u",
        USER,
        "--",
        "/usr/bin/env",
        "-i",
        "PATH=/usr/bin:/bin",
        f"HOME={home}",
        "LANG=C.UTF-8",
        f"PYTHONPATH={src}",
        "PYTHONDONTWRITEBYTECODE=1",
        str(python),
        *args,
    ]
    child = subprocess.Popen(
        command,
        cwd=src,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = child.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        pytest.fail(f"{' '.join(args)} as {USER} took over {TIMEOUT}s:\n{output[-20000:]}")
    return child.returncode, output


@pytest.mark.skipif(sys.platform != "linux", reason="runs the suite as another Linux user")
@pytest.mark.skipif(
    sys.platform == "linux" and os.geteuid() != 0,
    reason="not root: this run already is the unprivileged run of the escape suite",
)
@pytest.mark.skipif(
    not (probe().landlock_abi and probe().seccomp),
    reason=f"this machine cannot enforce the sandbox ({probe().level}); test_escape skips too",
)
def test_the_escape_suite_passes_as_an_unprivileged_user() -> None:
    python = _kit_python()
    user = _user()
    assert user.pw_uid != 0, f"{USER} has uid 0"
    expected = _collected()
    assert expected > 0, f"no tests collected in {SUITE}"

    # /tmp itself, not tmp_path: /tmp/pytest-of-root is closed to others.
    scratch = Path(tempfile.mkdtemp(prefix="deeting-unpriv-", dir="/tmp"))
    try:
        src, home = scratch / "src", scratch / "home"
        for name in COPIED:
            if (REPO / name).is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
                shutil.copytree(REPO / name, src / name, symlinks=True, ignore=ignore)
            else:
                shutil.copy2(REPO / name, src / name)
        _open_to_all(scratch)
        home.mkdir()
        os.chown(home, user.pw_uid, user.pw_gid)
        os.chmod(home, 0o700)

        # Really unprivileged: the user's uid, and no capabilities left.
        who = (
            "import os\n"
            "caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')]\n"
            "print(os.getuid(), os.geteuid(), int(caps[0], 16))"
        )
        code, output = _as_user(python, src, home, "-c", who)
        assert code == 0, f"the kit's python does not run as {USER}:\n{output}"
        assert output.split() == [str(user.pw_uid), str(user.pw_uid), "0"], output

        report = home / "escape.xml"
        code, output = _as_user(
            python,
            src,
            home,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={home / 't'}",
            f"--junitxml={report}",
            *SUITES,
        )
        shown = output[-20000:]
        assert code == 0, f"{SUITE} failed as {USER} (exit {code}):\n{shown}"
        cases = list(ET.parse(report).getroot().iter("testcase"))
        skipped = [c.get("name") for c in cases if c.find("skipped") is not None]
        failed = [c.get("name") for c in cases if c.find("failure") is not None]
        errors = [c.get("name") for c in cases if c.find("error") is not None]
        passed = len(cases) - len(skipped) - len(failed) - len(errors)
        assert not skipped, f"skipped as {USER}: {skipped}\n{shown}"
        assert not failed and not errors, f"failed as {USER}: {failed + errors}\n{shown}"
        assert passed >= expected, f"{passed} passed as {USER}, {expected} collected\n{shown}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
