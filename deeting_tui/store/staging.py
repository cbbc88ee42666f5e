"""From verified bytes to code in ``versions/NAME/VERSION``, never half-way.

The archive is written and extracted in a fresh staging folder named after this process,
checked (a plugin, and the one the registry named), fsynced file by file, and only then
renamed into place: a rename within one file system is atomic, so a kill at any point
leaves either nothing at the target or a complete, synced copy. What a killed run leaves in
staging, or a version folder no installed record points to, is removed by
:func:`clean_leftovers` under the updater lock at the next update.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from deeting_tui.atomic import fsync_dir
from deeting_tui.atomic import fsync_tree as _fsync_tree  # a name the crash tests stop at
from deeting_tui.paths import Paths
from deeting_tui.plugin.archive import ArchiveError, extract_zip
from deeting_tui.plugin.checker import check_plugin
from deeting_tui.plugin.wheel_install import WheelInstallError, prepare_dependencies

from .trust import Artifact

__all__ = ["StagedPlugin", "StagingError", "clean_leftovers", "stage_artifact"]

STAGING_PREFIX = "registry-"
#: A version folder nothing points to is only removed once it is this old: a folder install
#: in another process renames its copy in place a moment before recording it.
ORPHAN_AGE_S = 600.0
#: An atomic write's temporary file lives for milliseconds; one older than this was left by
#: a killed process (a running deeting may be writing state.json right now, lock or not).
TEMP_AGE_S = 60.0


@dataclass(frozen=True)
class StagedPlugin:
    """A verified plugin at ``code`` (``versions/NAME/VERSION``), unpacked and fsynced, ready
    for the kernel's loader; ``source`` is what its record says it came from. ``fresh``: put
    there now, so :meth:`discard` removes it when the install does not go through."""

    name: str
    version: str
    source: str
    code: Path
    fresh: bool = True

    def discard(self) -> None:
        if self.fresh:
            shutil.rmtree(self.code, ignore_errors=True)


class StagingError(Exception):
    """The verified archive is not the plugin the registry named, or cannot be unpacked."""


def staging_root(paths: Paths) -> Path:
    return paths.plugins_dir / ".staging"


def stage_artifact(paths: Paths, artifact: Artifact, data: bytes) -> Path:
    """Put a verified archive's plugin at ``versions/NAME/VERSION``; returns that folder.

    The target must not be in use; a leftover there from a killed run is replaced."""
    label = f"{artifact.name} {artifact.version}"
    stage = staging_root(paths) / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    stage.mkdir(parents=True)
    try:
        archive = stage / "artifact.zip"
        archive.write_bytes(data)
        try:
            root = extract_zip(archive, stage / "unpacked")
        except ArchiveError as exc:
            raise StagingError(f"{label}: archive refused: {exc}") from None
        spec, problems = check_plugin(root, layout="archive")
        if spec is None or problems:
            first = problems[0] if problems else "no manifest"
            raise StagingError(f"{label}: the archive is not a valid plugin ({first})")
        if (spec.name, spec.version) != (artifact.name, artifact.version):
            raise StagingError(
                f"{label}: the archive holds {spec.name} {spec.version}, not what the registry "
                "names — refusing it (a mislabelled or substituted artifact)"
            )
        try:  # its vendored wheels, for this Python, into its deps/ (synced below with the rest)
            prepare_dependencies(root, label=label)
        except WheelInstallError as exc:
            raise StagingError(str(exc)) from None
        _fsync_tree(root)
        target = paths.plugin_code(artifact.name, artifact.version)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        root.rename(target)
        fsync_dir(target.parent)
        return target
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def clean_leftovers(paths: Paths, kept: Iterable[tuple[str, str]]) -> list[Path]:
    """Remove staging folders of dead updaters, version folders that no record keeps
    (``kept``: every installed plugin's current and previous version) and stale temporary
    copies of state.json. Returns what went."""
    removed: list[Path] = []
    with contextlib.suppress(FileNotFoundError):
        for entry in staging_root(paths).iterdir():
            if entry.name.startswith(STAGING_PREFIX) and not _alive(entry.name):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    with contextlib.suppress(FileNotFoundError):
        for temp in paths.plugins_dir.glob(f".{paths.plugin_state_file.name}.*"):
            if time.time() - temp.stat().st_mtime > TEMP_AGE_S:  # else: a write in progress
                temp.unlink(missing_ok=True)
                removed.append(temp)
    keep = set(kept)
    names = {name for name, _ in keep}
    versions = paths.plugins_dir / "versions"
    now = time.time()
    with contextlib.suppress(FileNotFoundError):
        for plugin in versions.iterdir():
            for version in list(plugin.iterdir()) if plugin.is_dir() else []:
                if (plugin.name, version.name) in keep:
                    continue
                if plugin.name not in names and now - version.stat().st_mtime < ORPHAN_AGE_S:
                    continue  # maybe a folder install that is about to record itself
                shutil.rmtree(version, ignore_errors=True)
                removed.append(version)
            with contextlib.suppress(OSError):
                plugin.rmdir()  # only when empty
    return removed


def _alive(staging_name: str) -> bool:
    pid_text = staging_name[len(STAGING_PREFIX) :].partition("-")[0]
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
