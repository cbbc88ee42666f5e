"""A plugin's ``requirements.txt``: the complete lock of its Python dependencies.

Every line pins one distribution, ``NAME==VERSION`` (extras, an environment marker and
``--hash=sha256:…`` allowed), and the transitive closure is pinned too. Anything looser (``>=``,
``~=``, ``==1.*``), any URL or path, and every option but ``--hash`` (``-e``, ``-r``, ``-c``,
``-i``, ``--extra-index-url``, ``--find-links`` …) is refused: a registry build must fetch the
same bytes every time (gen_registry refuses a changed zip under a published version), and an
option such as ``--index-url`` would let a plugin choose where a user's machine downloads code
from. Each refusal is one line, ``requirements.txt:LINE: what is wrong — what to do``.

:func:`check_closure` checks the lock is closed: every ``Requires-Dist`` of every pinned wheel
(with its markers evaluated for the target, extras honoured) is met by a pinned version. The
wheels are fetched one by one with ``--no-deps`` (wheel_fetch.py), so an unpinned dependency
would otherwise simply be missing at run time.

Pure parsing: no network, no pip, nothing from a dependency runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.markers import Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from deeting_tui.errors import DeetingError
from deeting_tui.terminal_text import quote_prefix

__all__ = [
    "MAX_BYTES",
    "MAX_LINES",
    "REQUIREMENTS_FILE",
    "Pin",
    "RequirementsError",
    "check_closure",
    "parse_requirements",
    "read_requirements",
    "unpinned_needs",
]

REQUIREMENTS_FILE = "requirements.txt"
MAX_BYTES = 64 * 1024  # a real lock of a few hundred pins with hashes fits many times over
MAX_LINES = 2000

_HASH = re.compile(r"--hash=sha256:([0-9a-fA-F]{64})")
_COMMENT = re.compile(r"(^|\s)#.*$")
_LOCK_HINT = "pin every dependency as NAME==VERSION (pip-compile writes such a lock)"


class RequirementsError(DeetingError, ValueError):
    """requirements.txt was refused: one line, ``requirements.txt:LINE: what — what to do``."""


@dataclass(frozen=True)
class Pin:
    """One pinned distribution.

    ``name`` is canonical (PEP 503: lower case, runs of ``-_.`` as ``-``); ``version`` is as
    written (a valid version); ``extras`` are canonical too; ``marker`` is the environment
    marker as text, or None; ``line`` is where the pin starts in requirements.txt."""

    name: str
    version: str
    extras: frozenset[str] = frozenset()
    marker: str | None = None
    hashes: tuple[str, ...] = ()
    line: int = 0

    @property
    def requirement(self) -> str:
        """``NAME[extras]==VERSION``, what pip is asked for (the marker is the caller's)."""
        extras = f"[{','.join(sorted(self.extras))}]" if self.extras else ""
        return f"{self.name}{extras}=={self.version}"

    def applies_to(self, environment: Mapping[str, str]) -> bool:
        """Whether this pin is installed in ``environment`` (its marker holds there)."""
        if self.marker is None:
            return True
        return _evaluate(Marker(self.marker), environment, "")


def _error(line: int | None, what: str, todo: str) -> RequirementsError:
    where = f"{REQUIREMENTS_FILE}:{line}" if line is not None else REQUIREMENTS_FILE
    return RequirementsError(f"{where}: {what} — {todo}")


def read_requirements(plugin_root: Path) -> list[Pin]:
    """The pins of the plugin at ``plugin_root`` ([] when it has no requirements.txt)."""
    path = Path(plugin_root) / REQUIREMENTS_FILE
    if not path.exists() and not path.is_symlink():
        return []
    if path.is_symlink() or not path.is_file():
        raise _error(None, "is not a regular file", "make it a plain text file")
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    return parse_requirements(data)


def parse_requirements(data: bytes) -> list[Pin]:
    """Parse requirements.txt's bytes (see the module docstring for what is allowed)."""
    if len(data) > MAX_BYTES:
        raise _error(
            None, f"over the {MAX_BYTES // 1024} KiB limit", "keep only the plugin's own lock"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _error(line, "not UTF-8 text", "save the file as UTF-8") from None
    text = text.removeprefix("\ufeff")
    physical = text.splitlines()
    if len(physical) > MAX_LINES:
        raise _error(None, f"over {MAX_LINES} lines", "keep only the plugin's own lock")
    pins: list[Pin] = []
    seen: dict[str, int] = {}
    for line_no, logical in _logical_lines(physical):
        pin = _parse_line(line_no, logical)
        if pin is None:
            continue
        if pin.name in seen:
            raise _error(
                line_no,
                f"{pin.name} is pinned twice (first on line {seen[pin.name]})",
                "keep one pin per distribution",
            )
        seen[pin.name] = line_no
        pins.append(pin)
    return pins


def _logical_lines(physical: list[str]) -> Iterable[tuple[int, str]]:
    """(first line number, text) per logical line: comments dropped, ``\\`` continuations
    joined, blank lines skipped."""
    start: int | None = None
    parts: list[str] = []
    for number, raw in enumerate(physical, start=1):
        line = _COMMENT.sub("", raw)
        if start is None:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1])
            continue
        parts.append(line)
        joined = " ".join(parts).strip()
        if joined:
            yield start, joined
        start, parts = None, []
    if start is not None and " ".join(parts).strip():
        yield start, " ".join(parts).strip()


def _parse_line(line: int, text: str) -> Pin | None:
    tokens = text.split()
    first_option = next((i for i, t in enumerate(tokens) if t.startswith("-")), len(tokens))
    spec, options = " ".join(tokens[:first_option]), tokens[first_option:]
    if not spec:
        raise _error(
            line,
            f"option {quote_prefix(options[0], 40)} is not allowed",
            "list only pins (NAME==VERSION, optionally --hash=sha256:…); "
            "set a package index in pip's own configuration",
        )
    hashes = []
    for option in options:
        match = _HASH.fullmatch(option)
        if match is None:
            raise _error(
                line,
                f"option {quote_prefix(option, 40)} is not allowed",
                "only --hash=sha256:HEX may follow a pin",
            )
        hashes.append(match.group(1).lower())
    if "://" in spec or spec.startswith((".", "/", "~")) or " @ " in f" {spec} ":
        raise _error(
            line,
            f"{quote_prefix(spec, 60)} is a URL or a path",
            "pin a release from the package index, NAME==VERSION",
        )
    try:
        requirement = Requirement(spec)
    except InvalidRequirement:
        raise _error(line, f"not a requirement: {quote_prefix(spec, 60)}", _LOCK_HINT) from None
    name = canonicalize_name(requirement.name)
    if requirement.url:
        raise _error(
            line,
            f"{name} is a direct reference (@ URL)",
            "pin a release from the package index, NAME==VERSION",
        )
    version = _pinned_version(line, name, requirement.specifier)
    return Pin(
        name=name,
        version=version,
        extras=frozenset(canonicalize_name(extra) for extra in requirement.extras),
        marker=str(requirement.marker) if requirement.marker is not None else None,
        hashes=tuple(hashes),
        line=line,
    )


def _pinned_version(line: int, name: str, specifier: SpecifierSet) -> str:
    specs = list(specifier)
    if not specs:
        raise _error(line, f"{name} is not pinned", f"write {name}==VERSION ({_LOCK_HINT})")
    if len(specs) > 1 or specs[0].operator != "==" or "*" in specs[0].version:
        raise _error(
            line,
            f"{name}{specifier} is not an exact pin",
            f"write {name}==VERSION ({_LOCK_HINT})",
        )
    try:
        Version(specs[0].version)
    except InvalidVersion:
        raise _error(
            line, f"{name}: {quote_prefix(specs[0].version, 40)} is not a version", _LOCK_HINT
        ) from None
    return specs[0].version


def _evaluate(marker: Marker, environment: Mapping[str, str], extra: str) -> bool:
    env = dict(environment)
    env["extra"] = extra
    try:
        return marker.evaluate(env)
    except (UndefinedComparison, UndefinedEnvironmentName, ValueError):
        return False  # a comparison the marker language leaves undefined holds nowhere


def requires_dist(metadata: str) -> list[str]:
    """The ``Requires-Dist`` values of a wheel's METADATA text."""
    message = HeaderParser().parsestr(metadata)
    return [str(value) for value in message.get_all("Requires-Dist") or []]


def check_closure(
    pins: Iterable[Pin],
    wheel_metadata_by_pin: Mapping[Pin, str],
    environment: Mapping[str, str],
) -> None:
    """Raise a RequirementsError naming the first dependency the lock leaves unmet.

    ``wheel_metadata_by_pin`` holds each pinned wheel's METADATA text for the target whose
    marker ``environment`` is given; pins whose marker is false there are not installed, so
    they neither need nor provide anything. A dependency is met when it is pinned, at a
    version inside the dependency's specifier; extras a requirement asks for add that
    distribution's extra dependencies."""
    for pin, needed, dep, found in _dependencies(
        pins, wheel_metadata_by_pin, environment, strict=True
    ):
        if found is None:
            raise _error(
                pin.line,
                f"{pin.requirement} needs {quote_prefix(str(needed), 60)}, which is not pinned",
                f"add {dep}==VERSION ({_LOCK_HINT})",
            )
        if not needed.specifier.contains(found.version, prereleases=True):
            raise _error(
                found.line,
                f"{found.requirement} does not meet {pin.requirement}'s "
                f"{quote_prefix(str(needed), 60)}",
                f"pin a version of {dep} inside {needed.specifier}",
            )


def unpinned_needs(
    pins: Iterable[Pin],
    wheel_metadata_by_pin: Mapping[Pin, str],
    environment: Mapping[str, str],
) -> dict[str, tuple[Requirement, Pin]]:
    """What the pins' wheels need that no pin names, in ``environment``: canonical name → the
    requirement to fetch (every asker's specifiers together, their extras too, no marker) and
    the first pin that asked. A folder install resolves these (wheel_fetch); a registry build
    refuses them (:func:`check_closure`). Version clashes with pins are check_closure's."""
    needs: dict[str, tuple[Requirement, Pin]] = {}
    for pin, needed, dep, found in _dependencies(
        pins, wheel_metadata_by_pin, environment, strict=False
    ):
        if found is not None:
            continue
        combined, asker = needs.get(dep) or (Requirement(dep), pin)
        combined.specifier &= needed.specifier
        combined.extras |= {canonicalize_name(e) for e in needed.extras}
        needs[dep] = (combined, asker)
    return needs


def _dependencies(
    pins: Iterable[Pin],
    wheel_metadata_by_pin: Mapping[Pin, str],
    environment: Mapping[str, str],
    *,
    strict: bool,
) -> Iterator[tuple[Pin, Requirement, str, Pin | None]]:
    """Walk what the pins active in ``environment`` need, extras included: each dependency as
    (the pin asking, its requirement, the canonical name, the pin naming it or None). The
    extras a requirement asks of a pinned dependency are walked once that one is yielded.
    ``strict``: a pin without metadata or with an unreadable Requires-Dist is an error;
    otherwise it is passed over (the check that follows names it)."""
    active = {pin.name: pin for pin in pins if pin.applies_to(environment)}
    wanted: list[tuple[str, str]] = [("", name) for name in active]
    wanted += [(extra, pin.name) for pin in active.values() for extra in sorted(pin.extras)]
    done: set[tuple[str, str]] = set()
    while wanted:
        extra, name = wanted.pop(0)
        if (extra, name) in done:
            continue
        done.add((extra, name))
        pin = active[name]
        metadata = wheel_metadata_by_pin.get(pin)
        if metadata is None:
            if strict:
                raise _error(
                    pin.line, f"no wheel metadata for {pin.requirement}", "fetch its wheel"
                )
            continue
        for raw in requires_dist(metadata):
            try:
                needed = Requirement(raw)
            except InvalidRequirement:
                if not strict:
                    continue
                raise _error(
                    pin.line,
                    f"{pin.requirement} has an unreadable Requires-Dist: {quote_prefix(raw, 60)}",
                    "pin another version of it",
                ) from None
            if needed.marker is not None and not _evaluate(needed.marker, environment, extra):
                continue
            dep = canonicalize_name(needed.name)
            found = active.get(dep)
            yield pin, needed, dep, found
            if found is not None:
                for wanted_extra in sorted(needed.extras):
                    wanted.append((canonicalize_name(wanted_extra), dep))
