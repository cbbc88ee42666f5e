"""``mcp add NAME --pypi PKG[==V]``: a stock Python MCP server in a venv of its own.

The venv is ``PLUGIN/server/venv``, made from the interpreter Deeting runs on
(``sys._base_executable``: never Deeting's own venv, whose packages the server must not see or
change). pip installs **wheels only** (``--only-binary :all:``): a wheel is unpacked, never
built, so no ``setup.py`` or build backend of the package or of any dependency runs on this
machine unconfined. The server itself is not run here either; it first starts in the plugin's
sandbox. The user's pip configuration (a company index, a CA, a proxy) is kept: no
``--isolated``.

The venv must survive being renamed (the staged plugin folder is moved into place): Python
finds a venv from the ``pyvenv.cfg`` beside the interpreter it was started as, so
``server/venv/bin/python`` (a symlink to the base interpreter) finds its site-packages
wherever the folder is. The console script's shebang holds the staged path, so the entry is
always run as ``server/venv/bin/python ENTRY``, never by itself.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from deeting_tui.mcp.install_run import (
    InstalledServer,
    InstallError,
    Ran,
    quiet,
    run_tool,
    server_folder,
    tool_env,
)
from deeting_tui.terminal_text import one_line, quote_prefix

__all__ = ["PypiRequirement", "install_pypi", "parse_pypi_requirement"]

VENV = "venv"
#: Variables that would send pip's install somewhere other than the venv.
_PIP_ELSEWHERE = ("PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_EDITABLE")
#: pip's words when it could not reach an index (it retries, and says why, before failing).
_UNREACHABLE = re.compile(
    r"Retrying \(Retry\(|connection broken by|NewConnectionError|ConnectTimeoutError|"
    r"Could not fetch URL|ProxyError|Temporary failure in name resolution|"
    r"Network is unreachable|SSLError"
)
_NOT_FOUND = re.compile(
    r"Could not find a version that satisfies the requirement (\S+)"
    r"(?: \(from [^)]*\))? \(from versions: ([^)]*)\)"
)
_SCRIPT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class PypiRequirement:
    """A checked ``NAME[EXTRAS][==VERSION]``: what pip is asked for."""

    def __init__(self, name: str, extras: tuple[str, ...], version: str | None) -> None:
        self.name = name
        self.extras = extras
        self.version = version

    def spec(self, version: str | None = None) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        pinned = version or self.version
        return f"{self.name}{extras}" + (f"=={pinned}" if pinned else "")


def _refuse(text: str, why: str) -> InstallError:
    return InstallError(f"--pypi {quote_prefix(text)}: {why}")


_TAKES = "--pypi takes a package name from the package index, NAME or NAME==VERSION"


def parse_pypi_requirement(text: str) -> PypiRequirement:
    """``mcp-server-time`` or ``mcp-server-time==2026.10.19`` (extras allowed); a URL, a
    path, an option, a range or an environment marker is refused with one line."""
    stripped = text.strip()
    if not stripped:
        raise InstallError(f"--pypi needs a package name ({_TAKES})")
    if stripped.startswith("-"):
        raise _refuse(text, f"looks like an option, not a package ({_TAKES})")
    if "://" in stripped or stripped.startswith(("git+", "file:")) or " @ " in stripped:
        raise _refuse(
            text,
            f"is a URL: {_TAKES}; to run a server you installed yourself, use --command",
        )
    if "/" in stripped or "\\" in stripped or stripped.startswith(("~", ".")):
        raise _refuse(
            text,
            f"is a path: {_TAKES}; to run a server you installed yourself, use --command",
        )
    try:
        requirement = Requirement(stripped)
    except InvalidRequirement:
        raise _refuse(text, f"is not a package name ({_TAKES})") from None
    if requirement.url or requirement.marker:
        raise _refuse(text, f"carries more than a name and a version ({_TAKES})")
    specifiers = list(requirement.specifier)
    version = None
    if specifiers:
        spec = specifiers[0]
        if len(specifiers) > 1 or spec.operator != "==" or "*" in spec.version:
            raise _refuse(
                text,
                "give one exact version (NAME==VERSION), or none for the newest: the "
                "installed version is pinned either way",
            )
        try:
            version = str(Version(spec.version))
        except InvalidVersion:
            raise _refuse(text, f"{spec.version!r} is not a version") from None
    return PypiRequirement(requirement.name, tuple(sorted(requirement.extras)), version)


def _platform() -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"Python {version} on {sys.platform}/{platform.machine()}"


def _pip_command(venv_python: Path) -> list[str] | None:
    """pip as Deeting's own (``pip --python VENV``: no pip inside the server's venv, and no
    ``ensurepip`` run, which takes seconds), or None when Deeting's environment has no pip
    recent enough for ``--python`` (22.3)."""
    if importlib.util.find_spec("pip") is None:
        return None
    try:
        version = Version(importlib.metadata.version("pip"))
    except (importlib.metadata.PackageNotFoundError, InvalidVersion):
        return None
    if version < Version("22.3"):
        return None
    return [sys.executable, "-m", "pip", "--python", str(venv_python)]


def install_pypi(
    requirement: str,
    plugin_root: Path,
    *,
    bin: str | None = None,
    on_line: Callable[[str], None] = quiet,
    env: Mapping[str, str] | None = None,
) -> InstalledServer:
    """Install ``requirement`` into ``plugin_root/server/venv`` and say how to start it.

    Wheels only and nothing run (see the module docstring). ``bin`` picks the console script
    when the package has several; ``env`` adds to pip's environment (tests point its cache
    and index at their own folders). On any failure ``plugin_root/server`` is removed again
    and an :class:`InstallError` says why in one line."""
    wanted = parse_pypi_requirement(requirement)
    tool_environment = tool_env(env, drop=_PIP_ELSEWHERE)
    with server_folder(plugin_root.absolute()) as server:
        venv = server / VENV
        python = venv / "bin" / "python"
        pip = _pip_command(python)
        _make_venv(venv, with_pip=pip is None, env=tool_environment, on_line=on_line)
        pip = pip or [str(python), "-m", "pip"]
        with tempfile.TemporaryDirectory(prefix="deeting-pip-") as scratch:
            report_file = Path(scratch) / "report.json"
            ran = run_tool(
                [
                    *pip,
                    "install",
                    "--only-binary",
                    ":all:",
                    "--no-input",
                    "--disable-pip-version-check",
                    "--progress-bar",
                    "off",
                    "--report",
                    str(report_file),
                    "--",
                    wanted.spec(),
                ],
                cwd=server,
                env=tool_environment,
                on_line=on_line,
                what=f"pip install {wanted.spec()}",
            )
            if ran.returncode != 0:
                raise _pip_failure(wanted, ran, pip, server, tool_environment)
            name, version, summary = _requested(report_file, wanted)
        script = _console_script(venv, name, bin)
        return InstalledServer(
            runtime="python",
            entry=f"server/{VENV}/bin/{script}",
            package=wanted.spec(version),
            version=version,
            description=one_line(summary),
        )


def _make_venv(
    venv: Path, *, with_pip: bool, env: Mapping[str, str], on_line: Callable[[str], None]
) -> None:
    base = getattr(sys, "_base_executable", None) or sys.executable
    argv = [base, "-m", "venv", *([] if with_pip else ["--without-pip"]), str(venv)]
    ran = run_tool(argv, cwd=venv.parent, env=env, on_line=on_line, what="python -m venv")
    if ran.returncode != 0:
        hint = (
            " (on Debian or Ubuntu: install the python3-venv package)"
            if "ensurepip" in ran.text
            else ""
        )
        last = ran.tail[-1] if ran.tail else f"exit status {ran.returncode}"
        raise InstallError(f"could not make a Python venv for the server{hint}: {last}")


def _pip_failure(
    wanted: PypiRequirement,
    ran: Ran,
    pip: list[str],
    server: Path,
    env: Mapping[str, str],
) -> InstallError:
    """pip's failure as the line a person can act on: unreachable, no such package, no
    wheel for this machine, no such version, or pip's own last error."""
    text = ran.text
    missing = _NOT_FOUND.search(text)
    if _UNREACHABLE.search(text):
        return InstallError(
            f"pip could not reach the package index to install {wanted.spec()}: check the "
            "network (and a proxy or index in your pip configuration), then try again",
            unreachable=True,
        )
    if missing:
        failed, versions = missing.group(1), missing.group(2).strip()
        is_it = canonicalize_name(_name_part(failed)) == canonicalize_name(wanted.name)
        who = wanted.name if is_it else f"{wanted.name} needs {failed}, which"
        if versions and versions != "none":
            if is_it and wanted.version:
                return InstallError(
                    f"{wanted.name} has no version {wanted.version} with a wheel for "
                    f"{_platform()} (versions with one: {quote_prefix(versions)})"
                )
            return InstallError(f"{who} has no version that fits: {quote_prefix(versions)}")
        if _exists_on_index(_name_part(failed), pip, server, env):
            return InstallError(
                f"{who} has no wheel for {_platform()}; `mcp add` installs wheels only (no "
                "build scripts run) — ask its author for a wheel, or install it yourself and "
                "use --command"
            )
        if is_it:
            return InstallError(
                f"there is no package {wanted.name!r} on the package index: check the name"
            )
        return InstallError(f"{wanted.name} needs {failed}, which is not on the package index")
    errors = [line for line in ran.tail if line.startswith("ERROR:")]
    said = errors[-1].removeprefix("ERROR:").strip() if errors else f"exit {ran.returncode}"
    return InstallError(f"pip could not install {wanted.spec()}: {quote_prefix(said, 300)}")


def _name_part(requirement: str) -> str:
    return re.split(r"[\[=<>!~;@ ]", requirement, maxsplit=1)[0]


def _exists_on_index(name: str, pip: list[str], server: Path, env: Mapping[str, str]) -> bool:
    """Whether the index has any release of ``name`` at all (sdists count): tells "no such
    package" from "no wheel for this machine", which pip's --only-binary says the same way."""
    ran = run_tool(
        [*pip, "index", "versions", "--no-input", "--disable-pip-version-check", "--", name],
        cwd=server,
        env=env,
        on_line=quiet,
        what=f"pip index versions {name}",
        timeout=120,
    )
    return ran.returncode == 0 and "Available versions" in ran.text


def _requested(report_file: Path, wanted: PypiRequirement) -> tuple[str, str, str]:
    """The installed name, exact version and summary of the package asked for, from pip's
    installation report (``--report``)."""
    try:
        report: Any = json.loads(report_file.read_bytes())
        items = report["install"]
        for item in items:
            metadata = item["metadata"]
            if canonicalize_name(metadata["name"]) == canonicalize_name(wanted.name):
                return (
                    str(metadata["name"]),
                    str(metadata["version"]),
                    str(metadata.get("summary") or ""),
                )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    raise InstallError(
        f"pip installed {wanted.spec()} but its report does not name it: it may already "
        "have been present, or pip is too old for --report (22.2)"
    )


def _console_script(venv: Path, name: str, bin: str | None) -> str:
    """The console script that starts the server: ``bin`` if given, else the one named like
    the package, else the only one."""
    site = sorted(venv.glob("lib/python*/site-packages"))
    scripts: list[str] = []
    for dist in importlib.metadata.distributions(path=[str(s) for s in site]):
        if canonicalize_name(dist.metadata["Name"] or "") == canonicalize_name(name):
            scripts = sorted({ep.name for ep in dist.entry_points if ep.group == "console_scripts"})
            break
    scripts = [s for s in scripts if _SCRIPT_NAME.fullmatch(s)]
    if bin is not None:
        if bin not in scripts:
            has = f"its programs: {', '.join(scripts)}" if scripts else "it has none"
            raise InstallError(f"{name} has no program {quote_prefix(bin)!r} ({has})")
        chosen = bin
    elif not scripts:
        raise InstallError(
            f"{name} installs no program (no console script), so there is nothing to start "
            "as its server; if it runs as `python -m MODULE`, install it yourself and use "
            "--command"
        )
    else:
        named = [s for s in scripts if canonicalize_name(s) == canonicalize_name(name)]
        if named:
            chosen = named[0]
        elif len(scripts) == 1:
            chosen = scripts[0]
        else:
            raise InstallError(
                f"{name} has several programs: choose one with --bin NAME: {', '.join(scripts)}"
            )
    path = venv / "bin" / chosen
    if not path.is_file():
        raise InstallError(f"{name}'s program {chosen} was not installed in {venv / 'bin'}")
    return chosen
