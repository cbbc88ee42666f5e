"""The registry client as the kernel's ``RegistryPort``, and the bundle as its ``BundlePort``,
both loaded on first use.

Every ``deeting plugin`` command and the chat plug the registry into their kernel; most never
touch it (``list``, ``enable``), and the client's imports (httpx, PyNaCl) cost about 100 ms,
so this stand-in imports it only when an install, upgrade or update check needs it.

An install by name (``plugin install calc``) comes from the synced registry; when none is
synced, or it does not list the plugin (or no longer verifies), from the plugins deeting
carries, verified the same way. Upgrades only ever come from the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deeting_tui.paths import Paths

if TYPE_CHECKING:
    from .bundle import Bundle, BundledPlugin
    from .client import RegistryClient, Update
    from .staging import StagedPlugin

__all__ = ["LazyBundle", "LazyRegistry"]


class LazyRegistry:
    def __init__(self, paths: Paths, bundle: LazyBundle | None = None) -> None:
        self.paths = paths
        self.bundle = bundle
        self._client: RegistryClient | None = None

    @property
    def client(self) -> RegistryClient:
        if self._client is None:
            from .client import RegistryClient

            self._client = RegistryClient(self.paths)
        return self._client

    def updating(self) -> AbstractContextManager[None]:
        return self.client.updating()

    def updates(self, installed: Sequence[tuple[str, str]]) -> list[Update]:
        return self.client.updates(installed)

    async def stage(self, name: str, version: str | None, **options: Any) -> StagedPlugin | None:
        if options.get("current") is None and self._from_bundle(name, version):
            assert self.bundle is not None
            return await self.bundle.stage(name, version, kept=options.get("kept", ()))
        return await self.client.stage(name, version, **options)

    def _from_bundle(self, name: str, version: str | None) -> bool:
        """The synced registry (if any) does not offer it, and the bundle has it (or is
        damaged, which the install then says)."""
        from .errors import StoreError
        from .trust import TrustError

        if self.bundle is None:
            return False
        try:
            self.client.registry().find(name, version)
        except (StoreError, TrustError):
            try:
                self.bundle.bundle.verified()
            except StoreError:
                return True  # a damaged bundle: its install says so, rather than "sync"
            return self.bundle.bundle.has(name, version)
        return False


class LazyBundle:
    """The bundle folder, read (and its crypto imported) only when used."""

    def __init__(self, paths: Paths, folder: Path, *, first_run: bool = False) -> None:
        self.paths = paths
        self.folder = folder
        self._first_run = first_run
        self._bundle: Bundle | None = None

    @property
    def bundle(self) -> Bundle:
        if self._bundle is None:
            from .bundle import Bundle

            self._bundle = Bundle(self.folder)
        return self._bundle

    @property
    def first_run(self) -> bool:
        return self._first_run

    def available(self) -> Sequence[BundledPlugin]:
        return self.bundle.plugins()

    def first_run_lock(self) -> AbstractContextManager[None]:
        from .lock import updater_lock

        # Another process's first run installs three small plugins: well within this.
        return updater_lock(self.paths.plugins_dir / ".updater.lock", wait_s=60.0)

    def still_pending(self) -> bool:
        from .first_run import marker_pending

        self._first_run = marker_pending(self.paths)  # done elsewhere: not asked again
        return self._first_run

    def mark_done(self) -> None:
        from .first_run import mark_done

        mark_done(self.paths)
        self._first_run = False

    async def stage(
        self, name: str, version: str | None, *, kept: Sequence[tuple[str, str]]
    ) -> StagedPlugin:
        from .staging import clean_leftovers

        clean_leftovers(self.paths, kept)
        return self.bundle.stage(self.paths, name, version)
