"""The registry client: sync the signed index, then install, upgrade and roll back from it.

Every operation runs under the updater lock and follows one rule: verify everything before
changing anything. A sync fetches (conditionally) and verifies the registry — walking root
rotations first — and only then stores it; an install or upgrade downloads, verifies length,
hash and signatures, unpacks and checks the archive in staging, and only then renames the
code into place and lets the Loader swap the active pointer. A failure at any step is a
:class:`StoreError` that says what was wrong, and the installed state is what it was.

Running deeting processes follow the pointer swap on their own (the kernel watches the
installed state) and hot-upgrade their workers; this module never talks to them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.errors import Fix, Hint
from deeting_tui.paths import Paths

from .errors import StoreError
from .fetch import FetchError, fetch, resolve
from .lock import updater_lock
from .staging import StagedPlugin, StagingError, clean_leftovers, stage_artifact
from .state import RegistryMeta, RegistryStateError, RegistryStateFiles
from .trust import (
    Artifact,
    Registry,
    Root,
    TrustError,
    format_time,
    verify_artifact,
    verify_new_root,
    verify_registry,
    verify_root,
    version_key,
)

__all__ = ["Limits", "RegistryClient", "StagedPlugin", "StoreError", "SyncReport", "Update"]

#: Root expiry is checked on the last root of a chain only; earlier ones are read with this.
_NO_EXPIRY_CHECK = datetime(1970, 1, 1, tzinfo=UTC)

Progress = Callable[[str, int, int | None], None]
"""What is downloading (a label), bytes so far, bytes expected (None when unknown)."""


@dataclass(frozen=True)
class Limits:
    registry_max_bytes: int = 32 * 2**20
    root_max_bytes: int = 1 * 2**20
    max_rotations: int = 64
    index_deadline_s: float = 60.0
    artifact_deadline_s: float = 300.0
    artifact_max_bytes: int = 64 * 2**20


@dataclass(frozen=True)
class Update:
    name: str
    installed: str
    available: str


@dataclass
class SyncReport:
    url: str
    version: int
    expires: datetime
    plugins: int
    not_modified: bool
    rotated_to: int | None = None
    root_pinned: bool = False
    root_on_first_use: bool = False  # pinned from the registry's own server, not --root
    updates: list[Update] = field(default_factory=list)


class RegistryClient:
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

    # -- sync --------------------------------------------------------------------------------

    async def sync(
        self,
        installed: Sequence[tuple[str, str]],
        url: str | None = None,
        root_file: Path | None = None,
        on_progress: Progress | None = None,
    ) -> SyncReport:
        with self._locked():
            now = self.clock()  # one reading for every expiry check of this sync
            meta = self._meta()
            url = url or meta.url
            if url is None:
                raise StoreError(
                    "no registry URL yet — pass it once: deeting registry sync --url URL"
                )
            new_root_bytes = self._read_root_file(root_file) if root_file else None
            first_use = new_root_bytes is None and self._read_pinned() is None
            if first_use:
                new_root_bytes = await self._root_on_first_use(url)
            trusted = self._trusted_root(new_root_bytes)
            stored = self._stored_registry()
            etag = meta.etag if (meta.url == url and stored is not None) else None
            fetched = await self._fetch(
                url, "registry.json", self.limits.registry_max_bytes, etag, on_progress
            )
            raw = stored if fetched.not_modified else fetched.body
            assert raw is not None
            chain = await self._rotations(trusted, raw, url, on_progress)
            final = chain[-1] if chain else trusted
            if final.expires <= now:
                raise StoreError(
                    f"the registry's root (version {final.version}) expired at "
                    f"{format_time(final.expires)} — ask its maintainers for a new root.json "
                    "and pass it with --root"
                )
            stored_version = _peek_version(stored)
            seen = max(meta.seen_version, stored_version)
            try:
                registry = verify_registry(
                    raw,
                    final,
                    now=now,
                    seen_version=seen,
                    seen_raw=stored if stored_version == seen else None,
                )
            except TrustError as exc:
                raise StoreError(f"{url}: {exc}") from None
            root_to_save = final.raw if (chain or new_root_bytes is not None) else None
            self.files.save(
                root=root_to_save,
                registry=None if raw == stored else raw,
                meta=RegistryMeta(url, fetched.etag or etag, registry.version),
            )
            return SyncReport(
                url=url,
                version=registry.version,
                expires=registry.expires,
                plugins=len(registry.plugins),
                not_modified=fetched.not_modified,
                rotated_to=chain[-1].version if chain else None,
                root_pinned=new_root_bytes is not None,
                root_on_first_use=first_use,
                updates=self.updates(installed, registry),
            )

    def _read_root_file(self, root_file: Path) -> bytes:
        try:
            if root_file.stat().st_size > self.limits.root_max_bytes:
                raise StoreError(f"{root_file}: too large for a root file")
            return root_file.read_bytes()
        except OSError as exc:
            raise StoreError(f"--root {root_file}: cannot read it ({exc.strerror})") from None

    async def _root_on_first_use(self, url: str) -> bytes:
        """The root.json beside the registry, pinned as SSH pins a host key: what it says is
        trusted from now on, and every later root must be signed by its keys. The user is
        told, and --root pins one got out of band instead."""
        root_url = self._resolve(url, "root.json")
        try:
            fetched = await fetch(
                root_url,
                what="root.json",
                max_bytes=self.limits.root_max_bytes,
                deadline_s=self.limits.index_deadline_s,
            )
        except FetchError as exc:
            raise StoreError(
                f"no registry root is pinned yet and {exc} — get the registry's root.json "
                "from its maintainers and run: deeting registry sync --url URL --root root.json"
            ) from None
        assert fetched.body is not None
        return fetched.body

    def _trusted_root(self, new_root: bytes | None) -> Root:
        """The root to start from: the one passed with --root (the user pins it now), else
        the pinned one. Expiry is judged on the end of the rotation chain, not here."""
        raw = new_root if new_root is not None else self._read_pinned()
        what = "--root" if new_root is not None else str(self.files.root_file)
        if raw is None:
            raise StoreError(
                "no registry root is pinned yet — get the registry's root.json from its "
                "maintainers and run: deeting registry sync --url URL --root root.json"
            )
        try:
            return verify_root(raw, now=_NO_EXPIRY_CHECK, what=what)
        except TrustError as exc:
            raise StoreError(str(exc)) from None

    async def _rotations(
        self, trusted: Root, raw: bytes, url: str, on_progress: Progress | None
    ) -> list[Root]:
        """Roots N+1 … M when the registry says it is signed under root M > N."""
        wanted = _peek_root_version(raw)
        if wanted is None or wanted <= trusted.version:
            return []
        if wanted - trusted.version > self.limits.max_rotations:
            raise StoreError(
                f"{url}: the registry claims root version {wanted}, more than "
                f"{self.limits.max_rotations} rotations past the pinned {trusted.version}"
            )
        chain: list[Root] = []
        current = trusted
        for version in range(trusted.version + 1, wanted + 1):
            root_url = self._resolve(url, f"roots/{version}.root.json")
            fetched = await self._fetch(
                root_url, f"root {version}", self.limits.root_max_bytes, None, on_progress
            )
            assert fetched.body is not None
            try:
                current = verify_new_root(current, fetched.body, what=f"root {version}")
            except TrustError as exc:
                raise StoreError(f"{root_url}: {exc}") from None
            chain.append(current)
        return chain

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
            raise StoreError(
                "no registry synced yet — run: deeting registry sync --url URL --root root.json"
            )
        now = self.clock()
        try:
            root = verify_root(pinned, now=now, what=str(self.files.root_file))
            return verify_registry(
                raw, root, now=now, seen_version=self._meta().seen_version, seen_raw=None
            )
        except TrustError as exc:
            raise StoreError(f"{exc} — run: deeting registry sync") from None

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
            raise StoreError(str(exc)) from None

    def _resolve(self, base: str, reference: str) -> str:
        try:
            return resolve(base, reference)
        except FetchError as exc:
            raise StoreError(str(exc)) from None

    def _find(self, registry: Registry, name: str, version: str | None) -> Artifact:
        try:
            return registry.find(name, version)
        except TrustError as exc:
            raise StoreError(f"{exc} — run: deeting registry sync, to see the newest") from None

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


def _signed_document(raw: bytes | None) -> dict[str, Any] | None:
    """The signed document of an envelope, NOT verified: only for numbers that are checked
    later (the root version to fetch) or came from a copy verified before it was stored."""
    if raw is None:
        return None
    try:
        document = orjson.loads(orjson.loads(raw)["signed"])
    except (orjson.JSONDecodeError, TypeError, KeyError):
        return None
    return document if isinstance(document, dict) else None


def _peek_version(raw: bytes | None) -> int:
    document = _signed_document(raw)
    version = document.get("version") if document else None
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def _peek_root_version(raw: bytes) -> int | None:
    document = _signed_document(raw)
    version = document.get("root_version") if document else None
    return version if isinstance(version, int) and not isinstance(version, bool) else None
