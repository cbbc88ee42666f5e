"""The registry client as the kernel's ``RegistryPort``, loaded on first use.

Every ``deeting plugin`` command and the chat plug the registry into their kernel; most never
touch it (``list``, ``enable``), and the client's imports (httpx, PyNaCl) cost about 100 ms,
so this stand-in imports it only when an install, upgrade or update check needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from deeting_tui.paths import Paths

if TYPE_CHECKING:
    from .client import RegistryClient, Update
    from .staging import StagedPlugin

__all__ = ["LazyRegistry"]


class LazyRegistry:
    def __init__(self, paths: Paths) -> None:
        self.paths = paths
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
        return await self.client.stage(name, version, **options)
