"""Which artifacts a registry run publishes: new ones from source, old ones kept as they are.

A plugin folder becomes an artifact only if it passes the same lint as an install, before
and after zipping (what is published is what was checked); versions an earlier run listed
stay listed while their zip is still in ``OUT/artifacts`` (clients can pin and roll back),
and a rebuilt zip that differs from a published one under the same version is refused.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deeting_tui.plugin.checker import WHEELS_DIR
from deeting_tui.plugin.lint import lint_path
from deeting_tui.plugin.manifest import PluginSpec, Problem
from deeting_tui.plugin.requirements import RequirementsError, read_requirements
from deeting_tui.plugin.wheel_fetch import DEFAULT_TARGETS, DependencyError, Target, fetch_wheels
from deeting_tui.store.limits import Limits
from registry_tools import ToolError
from registry_tools.reprozip import build_zip, is_ignored

__all__ = [
    "ARTIFACTS_DIR",
    "LintFailure",
    "Packed",
    "Progress",
    "check_published",
    "from_sources",
    "kept_artifacts",
]

ARTIFACTS_DIR = "artifacts"


Progress = Callable[[str], None]


@dataclass(frozen=True)
class Packed:
    """One zip and what the registry says about it; ``kept`` = from an earlier run."""

    name: str
    version: str
    data: bytes
    description: str
    permissions: tuple[str, ...]
    kept: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.name}-{self.version}.zip"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class LintFailure(ToolError):
    """Plugins were refused; ``problems`` holds one line per problem, prefixed by folder."""

    def __init__(self, problems: list[str], plugins: int) -> None:
        self.problems = problems
        super().__init__(
            f"{plugins} plugin{'s have' if plugins != 1 else ' has'} problems — fix them "
            "(python ci/lint.py FOLDER shows the same); nothing was written"
        )


def from_sources(
    plugins_dir: Path,
    out: Path,
    progress: Progress,
    targets: Sequence[Target] = DEFAULT_TARGETS,
) -> list[Packed]:
    if not plugins_dir.is_dir():
        raise ToolError(f"{plugins_dir} is not a folder of plugin sources")
    folders = sorted(
        p
        for p in plugins_dir.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and not is_ignored(p.name)
        and p.resolve() != out.resolve()  # --out may live inside PLUGINS_DIR
    )
    if not folders:
        raise ToolError(f"{plugins_dir} holds no plugin folders")
    problems: list[str] = []
    failed: set[Path] = set()
    seen: dict[str, Path] = {}
    built: list[Packed] = []
    for folder in folders:
        spec, found = lint_path(folder)
        lines = [_problem_line(folder, p) for p in found]
        if spec is not None and spec.name in seen:
            lines.append(f"{folder}: plugin '{spec.name}' is also in {seen[spec.name]}")
        if spec is not None and not lines:
            seen[spec.name] = folder
            try:
                artifact = _pack(folder, spec, targets, progress)
            except ToolError as error:
                lines.append(f"{folder}: {error}")
            else:
                built.append(artifact)
                progress(f"built {spec.name} {spec.version} ({len(artifact.data) / 1000:.1f} kB)")
        if lines:
            problems += lines
            failed.add(folder)
    if problems:
        raise LintFailure(problems, len(failed))
    return built


def _problem_line(folder: Path, problem: Problem) -> str:
    return f"{folder}: {problem}" if problem.file or problem.field else str(problem)


def _pack(folder: Path, spec: PluginSpec, targets: Sequence[Target], progress: Progress) -> Packed:
    """Zip (with the wheels of requirements.txt's pins for ``targets`` at ``wheels/``), then
    lint the zip itself through the client's extractor: what is published is what was
    checked."""
    with tempfile.TemporaryDirectory(prefix="deeting-gen-") as tmp:
        wheels = _fetch(folder, spec, targets, Path(tmp) / WHEELS_DIR, progress)
        data = build_zip(folder, spec.name, [(f"{WHEELS_DIR}/{w.name}", w) for w in wheels])
        limit = Limits().artifact_max_bytes
        if len(data) > limit:
            raise ToolError(
                f"the zip is {len(data) / 2**20:.1f} MiB, over the {limit // 2**20} MiB a client "
                "downloads — vendor fewer wheels (fewer --target, smaller dependencies)"
            )
        zipped = Path(tmp) / f"{spec.name}.zip"
        zipped.write_bytes(data)
        packed, problems = lint_path(zipped)
    if packed is None or problems:
        raise ToolError(f"the built zip fails its check: {'; '.join(map(str, problems))}")
    return Packed(spec.name, spec.version, data, spec.description, _scopes(spec))


def _fetch(
    folder: Path, spec: PluginSpec, targets: Sequence[Target], dest: Path, progress: Progress
) -> list[Path]:
    """The pinned wheels for every target (none without requirements.txt); pip's failures and
    an unclosed lock become a ToolError line."""
    try:
        pins = read_requirements(folder)
        if not pins:
            return []
        return fetch_wheels(
            pins,
            dest,
            targets=targets,
            on_progress=lambda what: progress(f"fetching {spec.name}: {what}"),
        )
    except (RequirementsError, DependencyError) as error:
        raise ToolError(str(error)) from None


def _scopes(spec: PluginSpec) -> tuple[str, ...]:
    return tuple(str(scope) for scope in spec.permissions)


def kept_artifacts(
    out: Path, listed: dict[str, list[str]], fresh: set[tuple[str, str]], progress: Progress
) -> list[Packed]:
    kept: list[Packed] = []
    for name, versions in sorted(listed.items()):
        for version in versions:
            path = out / ARTIFACTS_DIR / f"{name}-{version}.zip"
            if (name, version) in fresh:
                continue
            if not path.is_file():
                progress(f"dropped {name} {version} (its zip is no longer in {path.parent})")
                continue
            spec, problems = lint_path(path)
            if spec is None or problems:
                why = "; ".join(map(str, problems))
                raise ToolError(f"{path} fails its check now ({why}) — delete it to unlist it")
            if (spec.name, spec.version) != (name, version):
                raise ToolError(
                    f"{path} holds {spec.name} {spec.version}, not {name} {version} — "
                    "delete it to unlist it"
                )
            data = path.read_bytes()
            kept.append(Packed(name, version, data, spec.description, _scopes(spec), True))
            progress(f"kept {name} {version} ({len(data) / 1000:.1f} kB)")
    return kept


def check_published(out: Path, fresh: list[Packed]) -> None:
    for artifact in fresh:
        path = out / ARTIFACTS_DIR / artifact.file_name
        if path.is_file() and path.read_bytes() != artifact.data:
            raise ToolError(
                f"{path} already exists with different contents — bump the version of "
                f"'{artifact.name}' (kimai.json and package.json): a published version never "
                "changes (if it was never published, delete the file)"
            )
