"""Following state.json: a running kernel keeps its plugins on what other processes record.

``deeting plugin upgrade`` (or install, disable, grant …) in another terminal changes the
files; :class:`PointerFollower` notices and hot-switches, starts or stops plugins to match.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from ..permissions import GrantStoreError
from .installed import FileSignature, StateFileError, file_signature
from .loader import Loader, PluginError
from .upgrade import FOLLOW_INTERVAL, Upgrader, upgrade_notice

log = logging.getLogger("deeting.upgrade")

__all__ = ["Notify", "PointerFollower"]


Notify = Callable[[str | None, str], None]
"""Tells the front ends (plugin name or None, one-line message)."""


class PointerFollower:
    """Keeps a running kernel on what state.json and grants.json say.

    Another process (``deeting plugin upgrade``, ``rollback``, ``install``, ``disable``,
    ``uninstall``, ``grant``) changes these files; a stat every ``interval`` seconds notices,
    and the running plugins are brought in line: a new recorded version is hot-switched to,
    a plugin newly recorded enabled is started, one disabled or removed is stopped. Every
    failure is told through ``notify`` (and the log), never raised.
    """

    def __init__(
        self,
        loader: Loader,
        grants_file: Path,
        *,
        reload_grants: Callable[[], None],
        notify: Notify,
        interval: float = FOLLOW_INTERVAL,
    ) -> None:
        self.loader = loader
        self.grants_file = grants_file
        self.reload_grants = reload_grants
        self.notify = notify
        self.interval = interval
        self._state_sig: FileSignature | None = loader.installed.signature()
        self._grants_sig: FileSignature | None = file_signature(grants_file)
        self._enabled = {r.name: r.enabled for r in loader.installed.all()}
        self._failed: dict[str, str] = {}  # plugin → version a follow failed for
        self._closed = False

    async def run(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.interval)  # the polling period, not synchronisation
            if self._closed:
                break
            try:
                await self.check()
            except Exception:  # a bug here must not end the kernel's following for good
                log.exception("following state.json failed")

    def close(self) -> None:
        """End :meth:`run` at its next turn. The kernel also cancels it; this flag makes sure
        it ends even if a cancellation is swallowed deep inside a step (3.11's ``wait_for``
        can return a result that raced with a cancel)."""
        self._closed = True

    async def check(self) -> None:
        """One look at the files; reconciles only when one of them changed."""
        grants_sig = file_signature(self.grants_file)
        grants_changed = grants_sig != self._grants_sig
        if grants_changed:
            self._grants_sig = grants_sig
            self._failed.clear()  # a grant may be what a failed follow was waiting for
            try:
                self.reload_grants()
            except GrantStoreError as exc:
                self.notify(None, f"{exc} (the grants in memory are kept)")
        state_sig = self.loader.installed.signature()
        if state_sig == self._state_sig and not grants_changed:
            return
        self._state_sig = state_sig
        try:
            self.loader.installed.reload()
        except StateFileError as exc:
            self.notify(None, f"{exc} (running plugins are left as they are)")
            return
        await self._reconcile()

    async def _reconcile(self) -> None:
        loader = self.loader
        records = {r.name: r for r in loader.installed.all()}
        was_enabled, self._enabled = self._enabled, {n: r.enabled for n, r in records.items()}
        for name in list(loader.runtimes):
            record = records.get(name)
            if record is None or not record.enabled:
                if await loader.stop_running(name):
                    why = "uninstalled" if record is None else "disabled"
                    self.notify(name, f"stopped {name}: it was {why} elsewhere")
            elif self._failed.get(name) != record.version:
                await self._follow(name, record.version)
        for name, record in records.items():
            if record.enabled and not was_enabled.get(name) and name not in loader.runtimes:
                try:
                    runtime = await loader.enable(name, on_demand=True)
                except PluginError as exc:
                    self.notify(name, str(exc))
                else:  # its worker starts now, or when it is first used, as at a start
                    verb = "enabled" if runtime.waiting else "started"
                    self.notify(name, f"{verb} {name} {record.version}")

    async def _follow(self, name: str, version: str) -> None:
        try:
            report = await Upgrader(self.loader).follow(name)
        except PluginError as exc:
            self._failed[name] = version
            # The message says what is missing; the kernel phrases no front end's fix (the
            # hint stays on the error: the chat's F2 and g, or the CLI's grant, apply it).
            log.warning("%s", exc.message)
            self.notify(name, exc.message)
            return
        if report is not None:
            self._failed.pop(name, None)
            self.notify(name, upgrade_notice(report))
