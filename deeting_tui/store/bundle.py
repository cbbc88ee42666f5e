"""The official plugins the package carries (``deeting_tui/bundled``), as a read-only registry.

registry_tools/bundle.py builds it at wheel build time with gen_registry: ``root.json``,
``registry.json``, ``artifacts/*.zip``. Here it is read exactly as a downloaded registry is
checked — ``verify_root``, ``verify_registry``, ``verify_artifact``, then ``stage_artifact``
— with no path that skips a step: a zip damaged or swapped in site-packages is refused with
one line, like a tampered download. It never reads or writes the user's synced registry
(``data/registry``): its root pins nothing and its version counts for nothing there.

Its trust is the wheel's (pip checked the wheel's hash; registry_tools/bundle.py says why a
ten-year expiry is sound). What it installs is recorded with the source
``bundled with deeting VERSION``: not a dev install, so a synced registry's newer version
supersedes it through the normal ``plugin upgrade``.

``DEETING_BUNDLE`` points at another bundle folder, or (empty) turns the bundle off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from deeting_tui import __version__
from deeting_tui.errors import Fix, Hint
from deeting_tui.paths import Paths

from .errors import StoreError
from .first_run import BUNDLE_ENV, bundle_folder
from .limits import Limits
from .staging import StagedPlugin, StagingError, stage_artifact
from .trust import (
    Artifact,
    Registry,
    Root,
    TrustError,
    verify_artifact,
    verify_registry,
    verify_root,
)

__all__ = ["BUNDLE_ENV", "Bundle", "BundledPlugin", "bundle_folder", "bundled_source"]

SOURCE_PREFIX = "bundled with deeting "


def bundled_source() -> str:
    return f"{SOURCE_PREFIX}{__version__}"


@dataclass(frozen=True)
class BundledPlugin:
    """One plugin of the bundle (its newest version), as listings show it."""

    name: str
    version: str
    description: str
    permissions: tuple[str, ...]
    origin: str = "bundled"


class Bundle:
    def __init__(
        self,
        folder: Path,
        *,
        limits: Limits = Limits(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.folder = folder
        self.limits = limits
        self.clock = clock

    # -- reading -----------------------------------------------------------------------------

    def verified(self) -> tuple[Root, Registry]:
        """Its root and index, verified now (as a synced registry is, from a zero version)."""
        now = self.clock()
        root_raw = self._read("root.json", self.limits.root_max_bytes)
        raw = self._read("registry.json", self.limits.registry_max_bytes)
        try:
            root = verify_root(root_raw, now=now, what=self._shown("root.json"))
            registry = verify_registry(raw, root, now=now, what=self._shown("registry.json"))
        except TrustError as exc:
            raise self._damaged(str(exc)) from None
        return root, registry

    def plugins(self) -> list[BundledPlugin]:
        _root, registry = self.verified()
        found = []
        for name in sorted(registry.plugins):
            latest = registry.latest(name)
            assert latest is not None
            found.append(
                BundledPlugin(name, latest.version, latest.description, latest.permissions)
            )
        return found

    def has(self, name: str, version: str | None = None) -> bool:
        try:
            _root, registry = self.verified()
        except StoreError:
            return False
        return name in registry.plugins and (version is None or version in registry.plugins[name])

    # -- installing --------------------------------------------------------------------------

    def stage(self, paths: Paths, name: str, version: str | None = None) -> StagedPlugin:
        """Verify ``name`` (``version``, or the newest) and put it at
        ``versions/NAME/VERSION``, as a registry download is. Call it under the updater lock."""
        root, registry = self.verified()
        try:
            artifact = registry.find(name, version)
        except TrustError as exc:
            said = str(exc).replace("the registry", "the bundle")
            raise StoreError(said, Hint(Fix.LIST)) from None
        data = self._artifact_bytes(artifact)
        try:
            verify_artifact(data, artifact, root)
            target = stage_artifact(paths, artifact, data)
        except (TrustError, StagingError) as exc:
            raise self._damaged(str(exc)) from None
        return StagedPlugin(name, artifact.version, bundled_source(), target)

    # -- helpers -----------------------------------------------------------------------------

    def _artifact_bytes(self, artifact: Artifact) -> bytes:
        """The zip the index names, only ever inside the bundle folder."""
        relative = PurePosixPath(artifact.url)
        if relative.is_absolute() or ":" in artifact.url or ".." in relative.parts:
            raise self._damaged(f"{artifact.name} {artifact.version} points outside the bundle")
        cap = min(artifact.length, self.limits.artifact_max_bytes)
        return self._read(str(relative), cap + 1)

    def _read(self, relative: str, max_bytes: int) -> bytes:
        path = self.folder / relative
        try:
            with path.open("rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise self._damaged(f"{path}: {exc.strerror or exc}") from None
        if len(data) > max_bytes:
            raise self._damaged(f"{path} is larger than it may be")
        return data

    def _shown(self, name: str) -> str:
        return str(self.folder / name)

    def _damaged(self, why: str) -> StoreError:
        return StoreError(
            f"the plugins bundled with deeting are damaged ({why}) — reinstall deeting "
            "(pip install --force-reinstall deeting)"
        )
