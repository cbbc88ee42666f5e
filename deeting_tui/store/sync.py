"""``deeting registry sync``: fetch the signed index (conditionally), walk root rotations,
verify it all against the pinned root, and only then store it.

A mixin of :class:`~deeting_tui.store.client.RegistryClient`, which provides the fetching, the
stored files and the updater lock declared below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from deeting_tui.errors import Fix, Hint

from .errors import StoreError
from .fetch import FetchError, fetch
from .limits import Limits, Progress
from .official import official_root, official_url
from .state import RegistryMeta, RegistryStateFiles
from .trust import (
    Registry,
    Root,
    TrustError,
    format_time,
    parse_root,
    verify_new_root,
    verify_registry,
    verify_root,
)

__all__ = ["SyncReport", "Syncs", "Update"]

#: Root expiry is checked on the last root of a chain only; earlier ones are read with this.
_NO_EXPIRY_CHECK = datetime(1970, 1, 1, tzinfo=UTC)


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
    official: bool = False  # the official registry, trusted through the root deeting ships
    switched_from: str | None = None  # the registry this home followed until now


class Syncs:
    """The sync of the RegistryClient."""

    if TYPE_CHECKING:
        limits: Limits
        clock: Callable[[], datetime]
        files: RegistryStateFiles

        def _locked(self) -> AbstractContextManager[None]: ...
        def _meta(self) -> RegistryMeta: ...
        def _read_pinned(self) -> bytes | None: ...
        def _stored_registry(self) -> bytes | None: ...
        def _resolve(self, base: str, reference: str) -> str: ...
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
        ) -> Any: ...
        def updates(
            self, installed: Sequence[tuple[str, str]], registry: Registry | None = None
        ) -> list[Update]: ...

    async def sync(
        self,
        installed: Sequence[tuple[str, str]],
        url: str | None = None,
        root_file: Path | None = None,
        on_progress: Progress | None = None,
    ) -> SyncReport:
        """Sync ``url``, else the registry this home follows, else the official one.

        The official registry's root is the one deeting ships (never trusted on first use);
        another registry's is ``root_file`` or, the first time, its own root.json (on first
        use, said so). Switching to another registry starts from nothing of the old one's
        (its pinned root, copy and ETag); the highest version seen of each is kept."""
        with self._locked():
            now = self.clock()  # one reading for every expiry check of this sync
            meta = self._meta()
            official = official_url()
            url = url or meta.url or official
            switching = meta.url is not None and meta.url != url
            pinned = None if switching else self._read_pinned()
            stored = None if switching else self._stored_registry()
            first_use = False
            if root_file is not None:
                new_root_bytes: bytes | None = self._read_root_file(root_file)
                what = "--root"
            elif url == official and self._shipped_is_newer(pinned):
                new_root_bytes = self._shipped_root()
                what = official_root()[1]
            elif pinned is None:
                first_use = True
                new_root_bytes = await self._root_on_first_use(url)
                what = "root.json"
            else:
                new_root_bytes, what = None, str(self.files.root_file)
            trusted = self._trusted_root(new_root_bytes if new_root_bytes else pinned, what)
            etag = meta.etag if stored is not None else None
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
            seen = max(meta.seen_of(url), stored_version)
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
            others = dict(meta.others)
            if switching and meta.url is not None:
                others[meta.url] = max(others.get(meta.url, 0), meta.seen_version)
            others.pop(url, None)
            self.files.save(
                root=root_to_save,
                registry=None if raw == stored else raw,
                meta=RegistryMeta(
                    url, fetched.etag or etag, registry.version, tuple(sorted(others.items()))
                ),
            )
            return SyncReport(
                url=url,
                version=registry.version,
                expires=registry.expires,
                plugins=len(registry.plugins),
                not_modified=fetched.not_modified,
                rotated_to=chain[-1].version if chain else None,
                root_pinned=root_file is not None,
                root_on_first_use=first_use,
                updates=self.updates(installed, registry),
                official=url == official,
                switched_from=meta.url if switching else None,
            )

    def _shipped_root(self) -> bytes:
        path, what = official_root()
        try:
            if path.stat().st_size > self.limits.root_max_bytes:
                raise StoreError(f"{what}: too large for a root file")
            return path.read_bytes()
        except OSError as exc:
            raise StoreError(
                f"{what}: cannot read it ({exc.strerror}) — reinstall deeting"
            ) from None

    def _shipped_is_newer(self, pinned: bytes | None) -> bool:
        """Whether to start from the shipped official root: nothing is pinned, or deeting
        now ships a later root than the one pinned (a release after a key rotation)."""
        if pinned is None:
            return True
        try:
            shipped, _s, _sigs = parse_root(self._shipped_root(), official_root()[1])
            mine, _s, _sigs = parse_root(pinned, str(self.files.root_file))
        except TrustError:
            return True
        return shipped.version > mine.version

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
                "from its maintainers",
                Hint(Fix.SYNC, flags=("--url", "URL", "--root", "root.json")),
            ) from None
        assert fetched.body is not None
        return fetched.body

    def _trusted_root(self, raw: bytes | None, what: str) -> Root:
        """The root to start from: the one given (--root, the shipped official one, or on
        first use), else the pinned one. Expiry is judged on the end of the rotation chain,
        not here."""
        if raw is None:
            raise StoreError(
                "no registry root is pinned yet — get the registry's root.json from its "
                "maintainers",
                Hint(Fix.SYNC, flags=("--url", "URL", "--root", "root.json")),
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
