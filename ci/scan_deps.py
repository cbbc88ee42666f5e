"""The scan's dependency checks: a plugin's requirements.txt is a lock whose wheels exist for
every target, and no pinned version has a known advisory in an OFFLINE database.

Wheels: each pin is fetched for each target into a temporary folder, exactly as a registry
build would (``deeting_tui.plugin.wheel_fetch``: ``pip download --only-binary :all: --no-deps``,
nothing from a dependency runs), and the lock's closure is checked from the wheels' METADATA.

Advisories: the OSV format (https://osv.dev), as in OSV's PyPI export ``all.zip`` (one JSON
record per advisory), read from ``--advisories PATH`` (that zip, or a folder of such JSON
files). A record affects a pin when one of its ``affected[]`` entries is for ecosystem
``PyPI`` and the pin's name (both normalised, PEP 503), and either lists the version in
``versions`` or puts it inside an ``ECOSYSTEM`` range (``introduced`` ≤ version < ``fixed``, or
≤ ``last_affected``), versions compared with ``packaging`` (PEP 440), not as strings.

Why not pip-audit: it asks PyPI's or OSV's online API for every package, so a check depends on
a live service and says nothing reproducible about a given day's database; it cannot read an
offline database; and to audit a requirements file it resolves and installs it into a
temporary venv, which runs a dependency's build code when only an sdist exists. Here the
database is a file the CI job downloads once (and a developer can keep), the lock is read as
it is, and nothing is installed.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from ci.scan_rules import Finding
from deeting_tui.plugin.requirements import Pin, RequirementsError, read_requirements
from deeting_tui.plugin.wheel_fetch import DependencyError, Target, fetch_wheels

__all__ = [
    "Advisory",
    "AdvisoryDatabase",
    "AdvisoryError",
    "check_dependencies",
    "is_affected",
]

ECOSYSTEM = "PyPI"
RECORD_MAX_BYTES = 4 * 2**20  # OSV records are a few kB; a bigger one is not a record
_LOCATED = re.compile(r"requirements\.txt:(\d+): (.*)", re.DOTALL)


class AdvisoryError(ValueError):
    """The advisory database cannot be read; one line."""


@dataclass(frozen=True)
class Advisory:
    """One advisory that affects one pin."""

    id: str
    package: str
    version: str
    fixed: tuple[str, ...]

    def __str__(self) -> str:
        fixed = ", ".join(self.fixed) if self.fixed else "no fixed release yet"
        return f"{self.id}: {self.package} {self.version} is affected (fixed in: {fixed})"


class AdvisoryDatabase:
    """OSV records for PyPI, by normalised package name."""

    def __init__(self, records: Iterable[dict[str, Any]]) -> None:
        self.by_name: dict[str, list[dict[str, Any]]] = {}
        self.records = 0
        for record in records:
            names = {
                canonicalize_name(str(entry.get("package", {}).get("name", "")))
                for entry in _entries(record)
            }
            if names and not record.get("withdrawn"):
                self.records += 1
                for name in names:
                    self.by_name.setdefault(name, []).append(record)

    @classmethod
    def load(cls, path: Path) -> AdvisoryDatabase:
        """From OSV's ``all.zip`` or a folder of OSV JSON files (searched recursively)."""
        path = Path(path)
        if path.is_dir():
            return cls(_from_folder(path))
        if path.is_file() and zipfile.is_zipfile(path):
            return cls(_from_zip(path))
        why = "does not exist" if not path.exists() else "is not a folder or a zip"
        raise AdvisoryError(
            f"--advisories {path} {why} — give OSV's PyPI all.zip or a folder of OSV JSON files"
        )

    def affecting(self, name: str, version: str) -> list[Advisory]:
        """The advisories that affect ``name`` at ``version``, sorted by id."""
        name = canonicalize_name(name)
        try:
            parsed = Version(version)
        except InvalidVersion:
            return []
        found: dict[str, Advisory] = {}
        for record in self.by_name.get(name, []):
            for entry in _entries(record):
                if canonicalize_name(str(entry["package"].get("name", ""))) != name:
                    continue
                if is_affected(entry, parsed):
                    record_id = str(record.get("id", "(no id)"))
                    fixed = sorted(set(_fixed(entry)), key=_sort_key)
                    found[record_id] = Advisory(record_id, name, version, tuple(fixed))
        return [found[key] for key in sorted(found)]


def _entries(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    affected = record.get("affected") if isinstance(record, dict) else None
    for entry in affected if isinstance(affected, list) else []:
        package = entry.get("package") if isinstance(entry, dict) else None
        if isinstance(package, dict) and package.get("ecosystem") == ECOSYSTEM:
            yield entry


def _version(text: object) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def _sort_key(text: str) -> tuple[int, Version | str]:
    parsed = _version(text)
    return (0, parsed) if parsed is not None else (1, text)  # type: ignore[return-value]


def _fixed(entry: dict[str, Any]) -> Iterator[str]:
    for window in entry.get("ranges") or []:
        if isinstance(window, dict) and window.get("type") == "ECOSYSTEM":
            for event in window.get("events") or []:
                if isinstance(event, dict) and "fixed" in event:
                    yield str(event["fixed"])


def is_affected(entry: dict[str, Any], version: Version) -> bool:
    """Whether one OSV ``affected[]`` entry covers ``version``: listed in ``versions``, or
    inside one of its ECOSYSTEM ranges (events applied in version order: ``introduced``
    opens, ``fixed`` closes before it, ``last_affected`` closes after it; ``0`` is the
    start)."""
    versions = entry.get("versions") or []
    if any(_version(listed) == version for listed in versions if isinstance(listed, str)):
        return True
    for window in entry.get("ranges") or []:
        if not isinstance(window, dict) or window.get("type") != "ECOSYSTEM":
            continue  # GIT ranges name commits, SEMVER is not PyPI's
        if _in_range(window.get("events") or [], version):
            return True
    return False


_ORDER = {"introduced": 0, "fixed": 1, "last_affected": 2}


def _in_range(events: list[Any], version: Version) -> bool:
    points: list[tuple[Version, int, str]] = []
    for event in events:
        if not isinstance(event, dict):
            continue
        for kind in _ORDER:
            if kind in event:
                value = str(event[kind])
                at = Version("0") if kind == "introduced" and value == "0" else _version(value)
                if at is not None:
                    points.append((at, _ORDER[kind], kind))
    affected = False
    for at, _order, kind in sorted(points):
        closed = (kind == "fixed" and version >= at) or (kind == "last_affected" and version > at)
        if kind == "introduced" and version >= at:
            affected = True
        elif closed:
            affected = False
    return affected


def _parse(data: bytes, where: str) -> dict[str, Any] | None:
    if len(data) > RECORD_MAX_BYTES:
        return None
    try:
        record = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise AdvisoryError(
            f"--advisories: {where} is not JSON — re-download the database"
        ) from None
    return record if isinstance(record, dict) else None


def _from_folder(folder: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(folder.rglob("*.json")):
        if path.is_file() and path.stat().st_size <= RECORD_MAX_BYTES:
            record = _parse(path.read_bytes(), str(path))
            if record is not None:
                yield record


def _from_zip(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".json") and info.file_size <= RECORD_MAX_BYTES:
                    record = _parse(archive.read(info), f"{path.name}:{info.filename}")
                    if record is not None:
                        yield record
    except (zipfile.BadZipFile, OSError) as error:
        raise AdvisoryError(f"--advisories {path}: cannot be read ({error})") from None


def check_dependencies(
    root: Path,
    *,
    targets: Sequence[Target],
    advisories: AdvisoryDatabase | None,
) -> tuple[list[Pin], list[Finding]]:
    """The plugin's pins and the findings about them: DS701 (the lock is refused, a wheel is
    missing for a target, the closure is open), DS702 (a pinned version has an advisory)."""
    try:
        pins = read_requirements(root)
    except RequirementsError as error:
        return [], [_located("DS701", str(error))]
    if not pins:
        return [], []
    findings: list[Finding] = []
    with tempfile.TemporaryDirectory(prefix="deeting-scan-wheels-") as tmp:
        try:
            fetch_wheels(pins, Path(tmp), targets=targets)
        except (RequirementsError, DependencyError) as error:
            findings.append(_located("DS701", str(error), pins))
    if advisories is not None:
        for pin in pins:
            for advisory in advisories.affecting(pin.name, pin.version):
                findings.append(Finding.of("DS702", "requirements.txt", pin.line, 1, str(advisory)))
    return pins, findings


def _located(rule: str, message: str, pins: Sequence[Pin] = ()) -> Finding:
    """A finding at requirements.txt's line the message names (or the pin it names)."""
    message = message.removeprefix("requirements.txt: ")
    match = _LOCATED.fullmatch(message)
    if match:
        return Finding.of(rule, "requirements.txt", int(match[1]), 1, match[2])
    requirement = message.split(":", 1)[0]
    line = next((pin.line for pin in pins if pin.requirement == requirement), 0)
    return Finding.of(rule, "requirements.txt", line, 1 if line else 0, message)
