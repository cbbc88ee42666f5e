"""The registry client: sync the signed index (sync.py), then stage plugins from it.

Every operation runs under the updater lock and follows one rule: verify everything before
changing anything. A stage downloads, verifies length, hash and signatures, unpacks and
checks the archive in staging, and only then renames the code into place: a
:class:`StagedPlugin`, which the kernel's plugin service (its ``RegistryPort``; this client
is one) hands to its loader to record and start. A failure at any step is a
:class:`StoreError` that says what was wrong, and the installed state is what it was.

The client imports nothing from the kernel: it is told what is installed, and running
deeting processes follow the pointer the kernel swaps on their own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deeting_tui.errors import Fix, Hint
from deeting_tui.paths import Paths

from .errors import StoreError
from .fetch import FetchError, fetch, resolve
from .limits import Limits, Progress
from .lock import updater_lock
from .staging import StagedPlugin, StagingError, clean_leftovers, stage_artifact
from .state import RegistryMeta, RegistryStateError, RegistryStateFiles
from .sync import SyncReport, Syncs, Update
from .trust import (
    Artifact,
    Registry,
    TrustError,
    verify_artifact,
    verify_registry,
    verify_root,
    version_key,
)

__all__ = ["Limits", "RegistryClient", "StagedPlugin", "StoreError", "SyncReport", "Update"]


class RegistryClient(Syncs):
    def __init__(
        self,
        paths: Paths,
        *,
        limits: Limits = Limits(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.paths = paths
        self.limits = limits
        self.clock = clock
        self.files = RegistryStateFiles(paths.data_dir / "registry")
        self.lock_file = paths.plugins_dir / ".updater.lock"

    def updates(
        self, installed: Sequence[tuple[str, str]], registry: Registry | None = None
    ) -> list[Update]:
        """Of the registry installs ``installed`` (name, version), those with a newer version
        in ``registry`` (default: the stored one, verified again)."""
        registry = self.registry() if registry is None else registry
        found = []
        for name, version in installed:
            latest = registry.latest(name)
            if latest is not None and version_key(latest.version) > version_key(version):
                found.append(Update(name, version, latest.version))
        return found

    # -- the stored registry -----------------------------------------------------------------

    def registry(self) -> Registry:
        """The stored registry, verified again now (it may have expired since the sync)."""
        raw = self._stored_registry()
        pinned = self._read_pinned()
        if raw is None or pinned is None:
            raise StoreError("no registry synced yet", Hint(Fix.SYNC))
        now = self.clock()
        try:
            root = verify_root(pinned, now=now, what=str(self.files.root_file))
            return verify_registry(
                raw, root, now=now, seen_version=self._meta().seen_version, seen_raw=None
            )
        except TrustError as exc:
            raise StoreError(str(exc), Hint(Fix.SYNC)) from None

    # -- staging, for the kernel's plugin service (its RegistryPort) ------------------------

    def updating(self) -> AbstractContextManager[None]:
        """The updater lock, held by the kernel's service around a stage and its record."""
        return self._locked()

    async def stage(
        self,
        name: str,
        version: str | None,
        *,
        kept: Sequence[tuple[str, str]],
        current: str | None = None,
        previous: str | None = None,
        allow_downgrade: bool = False,
        on_progress: Progress | None = None,
    ) -> StagedPlugin | None:
        """Find ``name`` (``version``, or the newest) in the synced registry, download it,
        verify it and put it at ``versions/NAME/VERSION``: a plugin ready for the loader.

        For an upgrade (``current``: the installed version, ``previous``: the one kept):
        None when ``current`` is that version already, and a kept copy is reused. First,
        leftovers that no (name, version) in ``kept`` points to are removed. Call it under
        :meth:`updating`."""
        clean_leftovers(self.paths, kept)
        artifact = self._find(self.registry(), name, version)
        source = f"registry {self._meta().url}"
        if current is not None:
            if artifact.version == current:
                return None
            if version_key(artifact.version) < version_key(current) and not allow_downgrade:
                raise StoreError(
                    f"{name} {artifact.version} is older than the installed {current} — "
                    "refusing a downgrade; pass --allow-downgrade if you mean it",
                    Hint(Fix.UPGRADE, name, artifact.version, ("--allow-downgrade",)),
                )
            target = self.paths.plugin_code(name, artifact.version)
            if artifact.version == previous and target.is_dir():
                return StagedPlugin(name, artifact.version, source, target, fresh=False)
        target = await self._download_and_stage(artifact, on_progress)
        return StagedPlugin(name, artifact.version, source, target)

    # -- helpers -----------------------------------------------------------------------------

    async def _download_and_stage(self, artifact: Artifact, on_progress: Progress | None) -> Path:
        url = self._resolve(self._meta().url or "", artifact.url)
        fetched = await self._fetch(
            url,
            f"{artifact.name} {artifact.version}",
            min(artifact.length, self.limits.artifact_max_bytes),
            None,
            on_progress,
            exact_length=artifact.length,
            deadline_s=self.limits.artifact_deadline_s,
        )
        assert fetched.body is not None
        root = self._read_pinned()
        assert root is not None
        try:
            verify_artifact(fetched.body, artifact, verify_root(root, now=self.clock()))
            return stage_artifact(self.paths, artifact, fetched.body)
        except (TrustError, StagingError) as exc:
            raise StoreError(f"{url}: {exc}") from None

    async def _fetch(
        self,
        url: str,
        what: str,
        max_bytes: int,
        etag: str | None,
        on_progress: Progress | None,
        *,
        exact_length: int | None = None,
        deadline_s: float | None = None,
    ) -> Any:
        def progress(done: int, total: int | None) -> None:
            if on_progress is not None:
                on_progress(what, done, total)

        try:
            return await fetch(
                url,
                what=what,
                max_bytes=max_bytes,
                deadline_s=deadline_s or self.limits.index_deadline_s,
                etag=etag,
                exact_length=exact_length,
                on_progress=progress,
            )
        except FetchError as exc:
            raise StoreError(str(exc), exc.fix) from None

    def _resolve(self, base: str, reference: str) -> str:
        try:
            return resolve(base, reference)
        except FetchError as exc:
            raise StoreError(str(exc)) from None

    def _find(self, registry: Registry, name: str, version: str | None) -> Artifact:
        try:
            return registry.find(name, version)
        except TrustError as exc:
            raise StoreError(f"{exc} (a sync shows the newest)", Hint(Fix.SYNC)) from None

    def _locked(self) -> AbstractContextManager[None]:
        return updater_lock(self.lock_file)

    def _meta(self) -> RegistryMeta:
        try:
            return self.files.meta()
        except RegistryStateError as exc:
            raise StoreError(str(exc)) from None

    def _read_pinned(self) -> bytes | None:
        try:
            return self.files.root()
        except RegistryStateError as exc:
            raise StoreError(str(exc)) from None

    def _stored_registry(self) -> bytes | None:
        try:
            return self.files.registry()
        except RegistryStateError as exc:
            raise StoreError(str(exc)) from None
