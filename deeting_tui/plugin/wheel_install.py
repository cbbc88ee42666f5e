"""A plugin's pinned wheels, unpacked into its own ``deps/`` folder for the running Python.

A plugin's ``requirements.txt`` pins every dependency (requirements.py); its wheels sit in
``wheels/`` at the plugin's root — vendored into a registry zip by gen_registry, or fetched
there by a folder install (wheel_fetch.py). At install, for each pin this picks the wheel
that fits THIS interpreter best (``packaging.tags.sys_tags`` order), checks it as strictly as
a plugin archive (no traversal, no links, size caps: archive.py), checks that it is the pinned
distribution (file name, dist-info, METADATA, ``--hash`` when given) and that every file
matches the wheel's RECORD, and only then unpacks it with PyPA's ``installer`` — which runs
nothing: no setup code, no post-install hook, and here no bytecode compiling either (the code
folder is read-only to the plugin, so nothing would be written later either).

Where things go: importable files (purelib and platlib) into ``deps/``, which the worker puts
on the plugin's import path; a wheel's scripts, data and headers into ``deps/_data/SCHEME/``,
kept so its RECORD stays true, but never on a path and never run.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from packaging.markers import Marker
from packaging.tags import Tag, sys_tags
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from deeting_tui.errors import DeetingError

from .archive import ArchiveError, ArchiveLimits, check_entries

if TYPE_CHECKING:
    from installer.destinations import WheelDestination

__all__ = [
    "DEPS_DIR",
    "WHEELS_DIR",
    "InstalledDependency",
    "WheelInstallError",
    "install_wheels",
    "installed_dependencies",
    "prepare_dependencies",
    "this_python",
]

REQUIREMENTS = "requirements.txt"
DEPS_DIR = "deps"
_IN_WHEEL = re.compile(r"^In .*?\.whl, ")
WHEELS_DIR = "wheels"
#: Where a wheel's scripts, data and headers land, inside deps/ but off every import path.
DATA_DIR = "_data"
#: What one wheel may hold: generous for native libraries, still a cap.
WHEEL_LIMITS = ArchiveLimits(
    max_files=20000, max_total_bytes=400 * 2**20, max_file_bytes=200 * 2**20
)


class WheelInstallError(DeetingError):
    """A dependency cannot be installed for this Python; the message is one line."""


class PinLike(Protocol):
    """What this module needs of a requirements.txt pin (requirements.Pin)."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...


@dataclass(frozen=True)
class InstalledDependency:
    """One dependency as installed in ``deps/``: what ``plugin info`` shows."""

    name: str
    version: str
    dist_info: str  # its folder in deps/, e.g. ``tabulate-0.9.0.dist-info``

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


def this_python() -> str:
    """The running interpreter in wheel-tag words, e.g. ``cp311-manylinux_2_39_x86_64``."""
    # The newest manylinux (or musllinux, macOS…) tag names the platform; linux_x86_64, which
    # sys_tags lists first, is what no published wheel carries.
    platforms = [tag.platform for tag in sys_tags()]
    published = [p for p in platforms if not p.startswith("linux_")]
    platform = (published or platforms or [sys.platform])[0]
    impl = sys.implementation.name
    short = {"cpython": "cp", "pypy": "pp"}.get(impl, impl)
    return f"{short}{sys.version_info[0]}{sys.version_info[1]}-{platform}"


def applies(pin: PinLike) -> bool:
    """Whether a pin's environment marker holds for the running interpreter (no marker: yes)."""
    marker = getattr(pin, "marker", None)
    if not marker:
        return True
    return Marker(str(marker)).evaluate()


def prepare_dependencies(root: Path, *, label: str, fetch: bool = False) -> list[Path]:
    """Install the dependencies ``root/requirements.txt`` pins into ``root/deps`` — ``root``
    being a staged copy of a plugin, not yet renamed into place. With ``fetch`` (a folder
    install), first download their wheels for this Python into ``root/wheels`` with pip
    (wheels only; wheel_fetch.py), resolving what they need that the file does not pin
    (installed too, and shown by plugin info). Without a requirements.txt nothing happens. Every
    refusal is a :class:`WheelInstallError` whose one line starts with ``label``."""
    if not (root / REQUIREMENTS).exists():
        _refuse_deps_folder(root, f"{label}: ")
        return []
    from .requirements import Pin, RequirementsError, read_requirements

    try:
        locked = read_requirements(root)
    except RequirementsError as exc:
        raise WheelInstallError(f"{label}: {exc}") from None
    if fetch:
        from .wheel_fetch import DependencyError, Target, fetch_wheels

        wanted = [pin for pin in locked if applies(pin)]
        resolved: list[Pin] = []
        if wanted:
            try:
                fetch_wheels(
                    wanted, root / WHEELS_DIR, targets=[Target.current()], resolved=resolved
                )
            except (DependencyError, RequirementsError) as exc:
                raise WheelInstallError(f"{label}: {exc}") from None
        locked = [*locked, *resolved]
    return install_wheels(locked, root, label=label)


def _refuse_deps_folder(root: Path, prefix: str) -> None:
    deps = root / DEPS_DIR
    if deps.exists() or deps.is_symlink():
        raise WheelInstallError(
            f"{prefix}the plugin carries a {DEPS_DIR}/ folder — that name is reserved: "
            f"{DEPS_DIR}/ is made at install from the wheels in {WHEELS_DIR}/"
        )


def install_wheels(pins: Sequence[PinLike], root: Path, *, label: str = "") -> list[Path]:
    """Install the wheels in ``root/wheels`` for ``pins`` into ``root/deps``; returns the
    wheels used. ``root`` is a staged copy, not yet in place: on error ``deps/`` is removed
    and the caller drops the copy; otherwise the caller fsyncs the whole copy, deps/ with
    it, before renaming it into place. No pins: nothing happens (no ``deps/`` either).
    ``label`` (``NAME VERSION``) starts each error line."""
    prefix = f"{label}: " if label else ""
    deps = root / DEPS_DIR
    _refuse_deps_folder(root, prefix)
    active = [pin for pin in pins if applies(pin)]
    if not active:
        return []
    chosen = pick_wheels(active, root / WHEELS_DIR, prefix)
    try:
        for pin, wheel in zip(active, chosen, strict=True):
            _install_one(pin, wheel, deps, prefix)
    except BaseException:
        shutil.rmtree(deps, ignore_errors=True)
        raise
    return chosen


def pick_wheels(pins: Sequence[PinLike], wheels: Path, prefix: str = "") -> list[Path]:
    """For each pin, the wheel in ``wheels`` that fits this interpreter best. Refuses a
    wheel whose name cannot be read or that nothing pins (the folder holds the lock's wheels
    and nothing else) and a pin with no wheel for this Python."""
    ranks = {tag: index for index, tag in enumerate(sys_tags())}
    pinned = {canonicalize_name(pin.name): pin for pin in pins}
    best: dict[str, tuple[int, Path]] = {}
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    for wheel in found:
        if wheel.is_symlink() or not wheel.is_file():
            raise WheelInstallError(f"{prefix}{WHEELS_DIR}/{wheel.name}: not a regular file")
        try:
            name, version, _build, tags = parse_wheel_filename(wheel.name)
        except (InvalidWheelFilename, InvalidVersion) as exc:
            raise WheelInstallError(f"{prefix}{WHEELS_DIR}/{wheel.name}: {exc}") from None
        pin = pinned.get(name)
        if pin is None:
            continue  # a wheel for a pin whose marker excludes this Python, or for another
        if version != _version(pin):
            raise WheelInstallError(
                f"{prefix}{WHEELS_DIR}/{wheel.name} is {name} {version}, but requirements.txt "
                f"pins {pin.name}=={pin.version} — rebuild the archive from its requirements"
            )
        rank = _best_rank(tags, ranks)
        if rank is not None and (name not in best or rank < best[name][0]):
            best[name] = (rank, wheel)
    chosen = []
    for pin in pins:
        hit = best.get(canonicalize_name(pin.name))
        if hit is None:
            raise WheelInstallError(
                f"{prefix}{pin.name} {pin.version}: the plugin's archive carries no wheel for "
                f"this Python ({this_python()}) — ask its author for a build that includes "
                "one, or use a Python it has wheels for"
            )
        chosen.append(hit[1])
    return chosen


def _version(pin: PinLike) -> Version | None:
    try:
        return Version(pin.version)
    except InvalidVersion:
        return None


def _best_rank(tags: frozenset[Tag], ranks: dict[Tag, int]) -> int | None:
    hits = [ranks[tag] for tag in tags if tag in ranks]
    return min(hits) if hits else None


def _install_one(pin: PinLike, wheel: Path, deps: Path, prefix: str) -> None:
    from installer import install
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    where = f"{prefix}{WHEELS_DIR}/{wheel.name}"
    _check_hash(pin, wheel, where)
    try:
        with zipfile.ZipFile(wheel) as archive:
            check_entries(archive, WHEEL_LIMITS)
            source = WheelFile(archive)
            _check_metadata(pin, source, where)
            try:
                source.validate_record(validate_contents=True)
            except (InstallerError, ValueError) as exc:
                issues = getattr(exc, "issues", None) or [str(exc)]
                issue = _IN_WHEEL.sub("", str(issues[0]))  # "In /long/path.whl, …": said above
                raise WheelInstallError(
                    f"{where}: refused, its files do not match its RECORD ({_short(issue)})"
                ) from None
            install(source, _destination(deps), {"INSTALLER": b"deeting\n"})
    except ArchiveError as exc:
        raise WheelInstallError(f"{where}: refused: {exc}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise WheelInstallError(f"{where}: not a readable wheel ({exc})") from None
    except (InstallerError, ValueError, KeyError) as exc:  # a malformed WHEEL, RECORD, path
        raise WheelInstallError(f"{where}: refused: {_short(str(exc))}") from None


def _check_hash(pin: PinLike, wheel: Path, where: str) -> None:
    """With ``--hash`` in the pin, the wheel must be one of those files."""
    hashes = [str(h).removeprefix("sha256:").lower() for h in getattr(pin, "hashes", ()) or ()]
    if not hashes:
        return
    digest = hashlib.sha256()
    with wheel.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() not in hashes:
        raise WheelInstallError(
            f"{where}: its sha256 is not one requirements.txt allows for {pin.name}=={pin.version}"
        )


def _check_metadata(pin: PinLike, source: object, where: str) -> None:
    """The wheel inside is the distribution its file name claims (installer checks the
    dist-info folder's name; this checks METADATA's Name and Version too)."""
    read = getattr(source, "read_dist_info")  # noqa: B009 - WheelFile, typed loosely here
    try:
        headers = HeaderParser().parsestr(read("METADATA"))
    except (KeyError, UnicodeDecodeError, ValueError) as exc:
        raise WheelInstallError(f"{where}: no readable METADATA ({_short(str(exc))})") from None
    name, version = headers.get("Name", ""), headers.get("Version", "")
    try:
        same = canonicalize_name(name) == canonicalize_name(pin.name) and Version(
            version
        ) == Version(pin.version)
    except InvalidVersion:
        same = False
    if not same:
        raise WheelInstallError(
            f"{where}: its METADATA says {_short(name)} {_short(version)}, not the pinned "
            f"{pin.name}=={pin.version}"
        )


def _destination(deps: Path) -> WheelDestination:
    from installer.destinations import SchemeDictionaryDestination

    data = deps / DATA_DIR
    return SchemeDictionaryDestination(
        scheme_dict={
            "purelib": str(deps),
            "platlib": str(deps),
            "scripts": str(data / "scripts"),
            "data": str(data / "data"),
            "headers": str(data / "headers"),
        },
        interpreter=sys.executable,
        script_kind="posix",
        bytecode_optimization_levels=(),  # nothing compiled: nothing the plugin runs yet
    )


def _short(text: str, limit: int = 160) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def installed_dependencies(code: Path) -> list[InstalledDependency]:
    """What ``code/deps`` holds, read from its dist-info folders (name, version, INSTALLER),
    sorted by name; empty for a plugin without dependencies."""
    deps = code / DEPS_DIR
    found = []
    for info in sorted(deps.glob("*.dist-info")) if deps.is_dir() else []:
        try:
            headers = HeaderParser().parsestr((info / "METADATA").read_text("utf-8", "replace"))
        except OSError:
            continue
        name = canonicalize_name(headers.get("Name", "") or info.name.split("-")[0])
        version = headers.get("Version", "") or "?"
        found.append(InstalledDependency(name, version, info.name))
    return sorted(found, key=lambda dep: dep.name)
