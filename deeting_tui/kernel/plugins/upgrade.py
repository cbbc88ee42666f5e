"""Upgrades: make another version of an installed plugin the active one, hot while it runs.

The upgrade contract (docs/plugins.md#lifecycle-hooks): the new version's worker starts beside the
old one; ``preupgrade`` on the old hands its state to ``postupgrade`` on the new; routes and
subscriptions switch in one synchronous step, so no call ever finds no route; calls already sent to
the old worker finish there; then it stops. Anything failing before the switch stops the new worker
and leaves the old one serving with the pointer unchanged.

The pointer is state.json. ``deeting plugin upgrade`` in another terminal swaps it, and a
running kernel follows (``follow.PointerFollower``), so an upgrade reaches a live chat or a
``deeting --script`` run without dropping a call.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from deeting_tui.errors import Fix, Hint
from deeting_tui.plugin.manifest import PluginSpec
from deeting_tui.plugin.scopes import Scope
from deeting_tui.plugin.versions import SEMVER_RE, version_key
from deeting_tui.rpc.errors import RpcError
from deeting_tui.terminal_text import one_line

from ...workers.supervisor import SupervisorHooks, WorkerStartError
from ..permissions import missing_scopes
from .installed import StateFileError
from .loader import (
    AskGrants,
    Loader,
    PluginError,
    PluginRuntime,
    UpgradeReport,
    check_name_and_version,
    start_hint,
)

log = logging.getLogger("deeting.upgrade")

#: How long the old worker may take, beyond its own call deadline, to finish its calls.
DRAIN_GRACE = 5.0
#: How often a running kernel looks at state.json (one stat; cheap).
FOLLOW_INTERVAL = 0.5


class Upgrader:
    """Upgrade, roll back and follow for one Loader; keeps no state of its own."""

    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    async def upgrade(
        self,
        name: str,
        version: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask_all: AskGrants | None = None,
        allow_downgrade: bool = False,
        fix: Hint | None = None,
    ) -> UpgradeReport:
        check_name_and_version(name, version)
        loader = self.loader
        async with loader.lock(name):
            old = loader.record(name).version
            if version == old:
                raise PluginError(f"'{name}' {version} is already the active version")
            if version_key(version) < version_key(old) and not allow_downgrade:
                raise PluginError(
                    f"'{name}' {version} is older than the installed {old} — pass "
                    "--allow-downgrade to go back to it, or roll back",
                    Hint(Fix.ROLLBACK, name),
                )
            spec = loader.code_spec(name, version)
            fix = fix or Hint(Fix.UPGRADE, name, version)
            to_grant = await self._consent(spec, old, grant, yes, ask_all, fix)

            def commit() -> None:
                if to_grant:
                    loader.grants.grant(name, to_grant)
                loader.installed.set_version(name, version, previous=old)

            runtime = loader.runtimes.get(name)
            report = UpgradeReport(name, old, version, hot=runtime is not None)
            if runtime is not None:
                scopes = [*loader.grants.granted(name), *to_grant]
                report.drained = await self._hot_swap(runtime, spec, scopes, commit)
            else:
                try:
                    commit()
                except (OSError, KeyError) as exc:
                    raise PluginError(f"could not record '{name}' {version}: {exc}") from None
            prune_versions(loader.paths.plugins_dir, name, keep={version, old})
            return report

    async def rollback(
        self,
        name: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask_all: AskGrants | None = None,
    ) -> UpgradeReport:
        record = self.loader.record(name)
        if record.previous is None:
            raise PluginError(
                f"'{name}' has no previous version to roll back to (an upgrade keeps one) — "
                "install another with an upgrade",
                Hint(Fix.UPGRADE, name, "VERSION", ("--allow-downgrade",)),
            )
        fix = Hint(Fix.UPGRADE, name, record.previous, ("--allow-downgrade",))
        return await self.upgrade(
            name,
            record.previous,
            grant=grant,
            yes=yes,
            ask_all=ask_all,
            allow_downgrade=True,
            fix=fix,
        )

    async def follow(self, name: str) -> UpgradeReport | None:
        """Hot-switch a running plugin to the version state.json records. Consent was the
        updater's job: scopes not granted here refuse the switch (the old one runs on)."""
        loader = self.loader
        async with loader.lock(name):
            runtime = loader.runtimes.get(name)
            record = loader.installed.get(name)
            if runtime is None or record is None or runtime.spec.version == record.version:
                return None
            old, version = runtime.spec.version, record.version
            spec = loader.code_spec(name, version)
            missing = missing_scopes(spec.permissions, loader.grants.granted(name))
            if missing:
                more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
                raise PluginError(
                    f"'{name}' {version} needs permission '{missing[0]}'{more}, not granted; "
                    f"{old} keeps running",
                    Hint(Fix.GRANT, name, str(missing[0])),
                )
            drained = await self._hot_swap(runtime, spec, None, None)
            return UpgradeReport(name, old, version, hot=True, drained=drained)

    # -- steps -------------------------------------------------------------------------------

    async def _consent(
        self,
        spec: PluginSpec,
        old: str,
        grant: Sequence[str],
        yes: bool,
        ask_all: AskGrants | None,
        fix: Hint,
    ) -> list[Scope]:
        """The scopes to grant for what the new version adds; raises, recording nothing, when
        an added scope is not agreed to."""
        loader = self.loader
        requested = loader.requested_grants(spec, grant)
        granted = loader.grants.granted(spec.name)
        added = missing_scopes(spec.permissions, granted)
        if not added:
            return []
        to_grant = await loader.consented(spec, requested, (yes, ask_all))
        denied = missing_scopes(spec.permissions, [*granted, *to_grant])
        if denied:
            noun = "permission" if len(denied) == 1 else "permissions"
            listed = ", ".join(f"'{s}'" for s in denied)
            flags = tuple(f for s in denied for f in ("--grant", str(s)))
            raise PluginError(
                f"'{spec.name}' {spec.version} needs {noun} {listed}, not granted; the old "
                f"version ({old}) stays active",
                replace(fix, flags=(*fix.flags, *flags)),
            )
        return to_grant

    async def _hot_swap(
        self,
        runtime: PluginRuntime,
        spec: PluginSpec,
        scopes: Sequence[Scope] | None,
        commit: Callable[[], None] | None,
    ) -> bool:
        """Start ``spec`` beside ``runtime``, hand state over, switch, record (``commit``),
        drain and stop the old worker. Returns whether the old worker's calls all finished."""
        loader, name = self.loader, spec.name
        old = runtime.spec.version
        hooks = loader.hooks_for(name)
        # Until it takes over, the new worker reports nothing but streams: a crash of it
        # must not disable (or restart) the plugin the old worker still serves.
        candidate = loader.supervisor_for(spec, scopes, SupervisorHooks(on_stream=hooks.on_stream))
        step = "starting it"
        try:
            await candidate.start()
            state = await self._preupgrade(runtime)
            if "postupgrade" in candidate.hooks_defined:
                step = "postupgrade"
                await candidate.run_hook("postupgrade", {"state": state})
            if "activate" in candidate.hooks_defined:
                step = "activate"
                await candidate.run_hook("activate")
        except (WorkerStartError, RpcError, _PreupgradeFailed) as exc:
            await candidate.stop()
            if isinstance(exc, _PreupgradeFailed):
                step = "preupgrade (in the old version)"
            message = one_line(exc.message if isinstance(exc, RpcError) else str(exc))
            if isinstance(exc, WorkerStartError):
                message += start_hint(message)
            raise PluginError(
                f"could not upgrade '{name}' to {spec.version}: {step} failed: "
                f"{message} — {old} keeps running"
            ) from None
        except BaseException:
            await candidate.stop()
            raise
        # Started for the switch; it may stop again once idle, as the old one could.
        lazy = runtime.on_demand and loader.waits_for_use(spec)
        new = PluginRuntime(spec, candidate, on_demand=lazy, last_active=loader.clock())
        # The switch: nothing is awaited from here until the old runtime is retiring, so
        # every call and publish sees exactly one version of the plugin.
        problem = self._switch(runtime, new, commit)
        if problem is not None:
            await loader.deactivate(new)
            raise PluginError(f"could not upgrade '{name}' to {spec.version}: {problem}")
        candidate.hooks = hooks
        runtime.supervisor.hooks = SupervisorHooks(on_stream=hooks.on_stream)
        loader.retiring.append(runtime)
        try:
            timeout = runtime.spec.limits.call_timeout + DRAIN_GRACE
            drained = await runtime.supervisor.wait_idle(timeout)
            if not drained:
                log.warning("plugin %s %s: calls still running after %g s", name, old, timeout)
        finally:
            # Listed until it has stopped: a shutdown that cancels this still stops it.
            await loader.deactivate(runtime)
            with contextlib.suppress(ValueError):
                loader.retiring.remove(runtime)
        return drained

    async def _preupgrade(self, runtime: PluginRuntime) -> dict[str, Any]:
        supervisor = runtime.supervisor
        if runtime.waiting or "preupgrade" not in supervisor.hooks_defined:
            return {}  # a worker waiting for its first use holds no state but its folders
        try:
            reply = await supervisor.run_hook("preupgrade")
        except RpcError as exc:
            raise _PreupgradeFailed(exc.message) from None
        state = reply.get("state") if isinstance(reply, dict) else None
        return state if isinstance(state, dict) else {}

    def _switch(
        self, old: PluginRuntime, new: PluginRuntime, commit: Callable[[], None] | None
    ) -> str | None:
        """Routes, subscriptions, the runtime table and the pointer, in one synchronous
        step; on a problem everything is put back and the reason returned."""
        loader, name = self.loader, new.spec.name
        if loader.runtimes.get(name) is not old:
            return f"'{name}' was stopped or replaced meanwhile; nothing changed"
        try:
            loader.wiring.swap(old, new)
        except PluginError as exc:
            return f"{exc} — {old.spec.version} keeps running"
        loader.runtimes[name] = new
        if commit is not None:
            try:
                commit()
            except (OSError, KeyError, StateFileError) as exc:
                loader.wiring.swap(new, old)
                loader.runtimes[name] = old
                return f"could not record it ({exc}) — {old.spec.version} keeps running"
        return None


class _PreupgradeFailed(Exception):
    """The old version's ``preupgrade`` failed: the message is the plugin's error."""


def prune_versions(plugins_dir: Path, name: str, keep: set[str]) -> None:
    """Remove the code of versions other than ``keep`` (current and previous); only folders
    named like a version, so nothing an updater is staging beside them is touched."""
    folder = plugins_dir / "versions" / name
    if not folder.is_dir():
        return
    for child in sorted(folder.iterdir()):
        if child.name in keep or not SEMVER_RE.fullmatch(child.name):
            continue
        if child.is_symlink() or not child.is_dir():
            continue
        shutil.rmtree(child, ignore_errors=True)


def upgrade_notice(report: UpgradeReport) -> str:
    return f"upgraded {report.name} {report.old} → {report.new}"
