"""Fetch a plugin's pinned wheels with pip, for one or more target Pythons and platforms.

Each pin is fetched alone, per target, with
``python -m pip download --only-binary :all: --no-deps --dest TMP NAME==VERSION``
(plus ``--python-version/--implementation/--abi/--platform`` for a target other than the
running interpreter). Nothing from a dependency runs, whatever the index serves:
``--only-binary :all:`` means pip never builds an sdist (building runs the package's setup
code), and ``--no-deps`` means pip resolves nothing, so it never reads a dependency's metadata
by building it either; a wheel is only downloaded, then read here as a zip (its METADATA), never
imported nor installed. The lock's completeness is checked from those METADATA files
(requirements.check_closure), since ``--no-deps`` fetches exactly the pins. A folder install
also resolves what the lock leaves out (``resolved``), one ``--no-deps`` download per missing
distribution, by specifier, still wheels only.

pip's own configuration applies (PIP_INDEX_URL, pip.conf), so a user behind a mirror is served
as pip serves them. pip runs with stdin closed, a deadline per call, an argument list (never a
shell). Its failures become one line naming the requirement (:class:`DependencyError`). The
wheels reach ``dest`` only when every pin for every target was fetched and checked; a wheel that
fits several targets (``py3-none-any``, ``abi3``) is kept once.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path

from packaging import tags
from packaging.markers import default_environment
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

from deeting_tui.errors import DeetingError
from deeting_tui.plugin.requirements import (
    Pin,
    RequirementsError,
    check_closure,
    unpinned_needs,
)
from deeting_tui.terminal_text import quote_prefix

__all__ = [
    "DEFAULT_TARGETS",
    "WHEEL_FILE_NAME",
    "DependencyError",
    "Target",
    "fetch_wheels",
    "wheel_metadata",
]

PIP_DEADLINE_S = 300.0
#: Dependencies a folder install resolves that requirements.txt does not pin, at most.
MAX_RESOLVED = 100
METADATA_MAX_BYTES = 4 * 2**20
SDISTS_NEVER = "sdists are never used: a dependency must not run code at install"
NO_PIP = "pip is not available in this Python — install pip, or install the plugin from a registry"

_TARGET = re.compile(r"(\d+)\.(\d+)-([a-z0-9_]+)")
#: A wheel's file name as PyPI and pip write them: nothing else reaches a zip or a terminal.
WHEEL_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.!+]*(-[A-Za-z0-9_.!+]+){4,5}\.whl")
_UNREACHABLE = re.compile(
    r"connection broken by|Could not fetch URL|Failed to establish a new connection|"
    r"Name or service not known|Temporary failure in name resolution|ProxyError|SSLError"
)
_ARCH = re.compile(r"(?:manylinux|musllinux)_\d+_\d+_(\w+)|manylinux\d+_(\w+)|linux_(\w+)")


class DependencyError(DeetingError):
    """A plugin's dependencies could not be fetched; one line naming the requirement."""


@dataclass(frozen=True)
class Target:
    """A Python and platform to fetch wheels for: ``python`` "3.12", ``platform`` a wheel
    platform tag ("manylinux_2_17_x86_64"), ``implementation`` "cp", ``abi`` (default
    ``cp312``). ``native`` is the running interpreter: pip is then given no target flags and
    picks by every tag this interpreter supports."""

    python: str
    platform: str
    implementation: str = "cp"
    abi: str | None = None
    native: bool = field(default=False, compare=False)

    @classmethod
    def current(cls) -> Target:
        """The running interpreter."""
        platforms = list(tags.platform_tags())
        platform = next((p for p in platforms if p.startswith("manylinux_")), platforms[0])
        abi = next(iter(tags.sys_tags())).abi
        return cls(
            python=f"{sys.version_info.major}.{sys.version_info.minor}",
            platform=platform,
            implementation=tags.interpreter_name(),
            abi=abi,
            native=True,
        )

    @classmethod
    def parse(cls, text: str) -> Target:
        """The CLI form ``3.12-manylinux_2_17_x86_64`` (CPython), or a ValueError saying so."""
        match = _TARGET.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"target {quote_prefix(text, 60)!r} is not PYTHON-PLATFORM, "
                "e.g. 3.12-manylinux_2_17_x86_64"
            )
        return cls(python=f"{match[1]}.{match[2]}", platform=match[3])

    @property
    def nodot(self) -> str:
        return self.python.replace(".", "")

    @property
    def abi_tag(self) -> str:
        return self.abi or f"{self.implementation}{self.nodot}"

    @property
    def label(self) -> str:
        """``cp312-manylinux_2_17_x86_64``, as error lines name a target."""
        return f"{self.implementation}{self.nodot}-{self.platform}"

    def __str__(self) -> str:
        return f"{self.python}-{self.platform}"

    def pip_flags(self) -> list[str]:
        if self.native:
            return []
        return [
            "--python-version",
            self.python,
            "--implementation",
            self.implementation,
            "--abi",
            self.abi_tag,
            "--platform",
            self.platform,
        ]

    def marker_environment(self) -> dict[str, str]:
        """The environment markers evaluate against on this target (PEP 508)."""
        if self.native:
            return {key: str(value) for key, value in default_environment().items()}
        arch = _arch(self.platform)
        if self.platform.startswith("macosx"):
            system, sys_platform, os_name = "Darwin", "darwin", "posix"
        elif self.platform.startswith("win"):
            system, sys_platform, os_name = "Windows", "win32", "nt"
            arch = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}.get(
                self.platform, arch
            )
        else:
            system, sys_platform, os_name = "Linux", "linux", "posix"
        implementation = {"cp": "cpython", "pp": "pypy"}.get(self.implementation, "cpython")
        return {
            "implementation_name": implementation,
            "implementation_version": f"{self.python}.0",
            "os_name": os_name,
            "platform_machine": arch,
            "platform_release": "",
            "platform_system": system,
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "platform_python_implementation": "CPython" if implementation == "cpython" else "PyPy",
            "python_version": self.python,
            "sys_platform": sys_platform,
        }


def _arch(platform: str) -> str:
    match = _ARCH.fullmatch(platform)
    if match:
        return next(group for group in match.groups() if group)
    if platform.startswith("macosx"):
        return platform.rsplit("_", 1)[-1] if not platform.endswith("x86_64") else "x86_64"
    return platform.rsplit("_", 1)[-1]


#: What a registry build vendors when no ``--target`` is given: CPython 3.11-3.14 on glibc
#: Linux (manylinux_2_17, glibc 2.17+), x86_64 and aarch64.
DEFAULT_TARGETS: tuple[Target, ...] = tuple(
    Target(python=f"3.{minor}", platform=f"manylinux_2_17_{arch}")
    for minor in (11, 12, 13, 14)
    for arch in ("x86_64", "aarch64")
)

Progress = Callable[[str], None]


def fetch_wheels(
    pins: Sequence[Pin],
    dest: Path,
    *,
    targets: Iterable[Target],
    on_progress: Progress | None = None,
    deadline_s: float = PIP_DEADLINE_S,
    resolved: list[Pin] | None = None,
) -> list[Path]:
    """Fetch every pin's wheel for every target into ``dest`` (created) and return the wheels'
    paths there, sorted by name. A pin whose marker is false on a target is not fetched for it.
    Raise DependencyError (pip failed, no wheel) or RequirementsError (the lock is not closed),
    leaving ``dest`` as it was.

    With ``resolved`` (a folder install, for the running Python: its author's loop), what the
    pins' wheels need and requirements.txt does not pin is resolved too, as pip would: the
    newest wheel inside every asker's specifiers, then what that one needs, and so on; the
    pins made are appended to ``resolved``. A registry build passes none, so its lock must be
    complete: a rebuild then fetches the very same files, which gen_registry requires of a
    published version."""
    dest = Path(dest)
    targets = list(dict.fromkeys(targets))
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".wheels-", dir=dest) as tmp:
        kept: dict[str, tuple[Path, str]] = {}  # file name -> (path, sha256)
        for index, target in enumerate(targets):
            environment = target.marker_environment()
            metadata: dict[Pin, str] = {}
            for pin in pins:
                if not pin.applies_to(environment):
                    continue
                if on_progress is not None:
                    on_progress(f"{pin.requirement} for {target.label}")
                folder = Path(tmp) / f"{index}-{pin.name}"
                folder.mkdir()
                wheel = _download(pin, target, folder, deadline_s)
                metadata[pin] = wheel_metadata(wheel, pin)
                digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                earlier = kept.get(wheel.name)
                if earlier is not None and earlier[1] != digest:
                    raise DependencyError(
                        f"{pin.requirement}: the package index served two different files "
                        f"named {quote_prefix(wheel.name, 120)}"
                    )
                kept.setdefault(wheel.name, (wheel, digest))
            if resolved is not None:
                folder = Path(tmp) / f"{index}-resolved"
                folder.mkdir()
                found = _resolve(pins, metadata, environment, target, folder, deadline_s)
                for pin, wheel in found:
                    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
                    kept.setdefault(wheel.name, (wheel, digest))
                    resolved.append(pin)
                closed = [*pins, *(pin for pin, _wheel in found)]
            else:
                closed = list(pins)
            try:
                check_closure(closed, metadata, environment)
            except RequirementsError as exc:
                raise RequirementsError(f"{exc} (for {target.label})") from None
        placed = []
        for name, (wheel, _digest) in sorted(kept.items()):
            target_path = dest / name
            os.replace(wheel, target_path)
            placed.append(target_path)
    return placed


def _resolve(
    pins: Sequence[Pin],
    metadata: dict[Pin, str],
    environment: dict[str, str],
    target: Target,
    folder: Path,
    deadline_s: float,
) -> list[tuple[Pin, Path]]:
    """Pins (and their wheels, in ``folder``) for what ``pins`` need and do not pin; each
    one's METADATA goes into ``metadata``. Pinned at the version pip chose; its line is the
    asker's, so an error about it points where it came from."""
    found: list[tuple[Pin, Path]] = []
    every = list(pins)
    for _round in range(MAX_RESOLVED + 1):
        needs = unpinned_needs(every, metadata, environment)
        if not needs:
            return found
        if len(found) + len(needs) > MAX_RESOLVED:
            break
        for name, (requirement, asker) in sorted(needs.items()):
            wanted = _Wanted(str(requirement))
            into = folder / f"{len(found)}-{name}"
            into.mkdir()
            wheel = _download(wanted, target, into, deadline_s)
            version = str(parse_wheel_filename(wheel.name)[1])
            pin = Pin(name, version, frozenset(requirement.extras), None, (), asker.line)
            metadata[pin] = wheel_metadata(wheel, pin)
            found.append((pin, wheel))
            every.append(pin)
    raise DependencyError(
        f"more than {MAX_RESOLVED} dependencies are not pinned in requirements.txt — pin them "
        "(pip-compile writes a complete lock)"
    )


@dataclass(frozen=True)
class _Wanted:
    """A requirement to resolve (``NAME[extras]SPECIFIERS``), not a pin of the lock."""

    requirement: str
    hashes: tuple[str, ...] = ()


def _download(pin: Pin | _Wanted, target: Target, folder: Path, deadline_s: float) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--only-binary",
        ":all:",
        "--no-deps",
        "--progress-bar",
        "off",
        "--disable-pip-version-check",
        "--no-input",
        "--dest",
        str(folder),
        *target.pip_flags(),
    ]
    if pin.hashes:
        lock = folder.parent / f"{folder.name}.txt"
        hashes = " ".join(f"--hash=sha256:{digest}" for digest in pin.hashes)
        lock.write_text(f"{pin.requirement} {hashes}\n", encoding="utf-8")
        command += ["--require-hashes", "-r", str(lock)]
    else:
        command.append(pin.requirement)
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=deadline_s,
            check=False,
            env={**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
    except subprocess.TimeoutExpired:
        raise DependencyError(
            f"{pin.requirement}: pip download took over {deadline_s:g} s — check the package "
            "index (PIP_INDEX_URL, pip.conf) and the network"
        ) from None
    except OSError as exc:
        raise DependencyError(f"{pin.requirement}: could not run pip ({exc.strerror})") from None
    stderr = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        raise DependencyError(_pip_failure(pin, target, stderr))
    files = sorted(folder.iterdir())
    wheels = [path for path in files if path.name.endswith(".whl")]
    if len(files) != 1 or len(wheels) != 1:
        raise DependencyError(f"{pin.requirement}: no wheel for {target.label} ({SDISTS_NEVER})")
    if not WHEEL_FILE_NAME.fullmatch(wheels[0].name):
        raise DependencyError(
            f"{pin.requirement}: the package index served a wheel named "
            f"{quote_prefix(wheels[0].name, 80)!r}, not NAME-VERSION-TAGS.whl"
        )
    return wheels[0]


def _pip_failure(pin: Pin | _Wanted, target: Target, stderr: str) -> str:
    if "No module named pip" in stderr:
        return NO_PIP
    unreachable = next((line for line in stderr.splitlines() if _UNREACHABLE.search(line)), None)
    if unreachable is not None:  # pip then says "no matching distribution": not the cause
        return (
            f"{pin.requirement}: could not reach the package index "
            f"({quote_prefix(unreachable.strip(), 120)}) — check PIP_INDEX_URL or pip.conf, "
            "and the network"
        )
    if "No matching distribution" in stderr or "Could not find a version" in stderr:
        return f"{pin.requirement}: no wheel for {target.label} ({SDISTS_NEVER})"
    if "DO NOT MATCH THE HASHES" in stderr:
        return (
            f"{pin.requirement}: the downloaded wheel does not match its --hash in "
            "requirements.txt — check the pin and the package index"
        )
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    last = (errors or lines or ["no message"])[-1].removeprefix("ERROR:").strip()
    return f"{pin.requirement}: pip download failed: {quote_prefix(last, 160)}"


def wheel_metadata(wheel: Path, pin: Pin | None = None) -> str:
    """The METADATA text of ``wheel``, read from the zip (nothing is unpacked nor run). With
    ``pin``, the file must be that distribution at that version."""
    label = pin.requirement if pin is not None else quote_prefix(wheel.name, 120)
    try:
        name, _version, _build, _tags = parse_wheel_filename(wheel.name)
        with zipfile.ZipFile(wheel) as archive:
            infos = [
                info
                for info in archive.infolist()
                if info.filename.count("/") == 1
                and info.filename.endswith(".dist-info/METADATA")
                and canonicalize_name(info.filename.split("-", 1)[0]) == name
            ]
            if len(infos) != 1 or infos[0].file_size > METADATA_MAX_BYTES:
                raise DependencyError(
                    f"{label}: {quote_prefix(wheel.name, 120)} has no readable METADATA"
                )
            text = archive.read(infos[0]).decode("utf-8")
    except (InvalidWheelFilename, zipfile.BadZipFile, UnicodeDecodeError, OSError):
        raise DependencyError(
            f"{label}: {quote_prefix(wheel.name, 120)} is not a readable wheel"
        ) from None
    if pin is not None:
        message = HeaderParser().parsestr(text)
        meta_name = canonicalize_name(str(message.get("Name", "")))
        try:
            meta_version = Version(str(message.get("Version", "")))
        except ValueError:
            meta_version = None
        if name != pin.name or meta_name != pin.name or meta_version != Version(pin.version):
            raise DependencyError(
                f"{label}: the package index served {quote_prefix(wheel.name, 120)}, which is "
                "another distribution or version"
            )
    return text
