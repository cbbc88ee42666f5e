"""Plugin lifecycle: install → enable → disable → uninstall, on disk and as running workers.

Every step either completes or leaves things as they were: installs are staged and renamed
into place, a failing ``postinstall`` rolls the copy back, and the persisted state only
changes after the step it records has succeeded. Upgrades and rollbacks (upgrade.py) build
on the same steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from deeting_tui import __version__
from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.plugin.manifest import ManifestError, PluginSpec
from deeting_tui.plugin.scopes import Scope
from deeting_tui.rpc.errors import RpcError
from deeting_tui.terminal_text import one_line

from ...atomic import write_json_atomic
from ...paths import Paths
from ...quota.usage import disk_problem
from ...workers.launcher import Launcher
from ...workers.supervisor import (
    SupervisionPolicy,
    Supervisor,
    SupervisorHooks,
    WorkerConfig,
    WorkerStartError,
)
from ..permissions import GrantStore, PermissionMissing, missing_scopes
from .install import COPY_IGNORE, Installs
from .installed import Cause, InstalledPlugin, InstalledStore
from .lifecycle import (
    INSTALL_STEPS,
    AlreadyInstalled,
    AskGrant,
    AskGrants,
    GrantReport,
    InstallReport,
    OnStep,
    PluginError,
    PluginRuntime,
    RevokeReport,
    UpgradeReport,
    Wiring,
    check_name_and_version,
    start_hint,
)
from .specs import SourceFacts, SpecCache, starts_at_launch
from .upgrading import Upgrades, Upgrading

if TYPE_CHECKING:
    from ...quota.watchdog import Confinement

log = logging.getLogger("deeting.loader")

# What the lifecycle speaks is defined in lifecycle.py and install.py, and imported from here
# by the kernel, the front ends and the tests.
__all__ = [
    "COPY_IGNORE",
    "INSTALL_STEPS",
    "AlreadyInstalled",
    "AskGrant",
    "AskGrants",
    "GrantReport",
    "InstallReport",
    "Loader",
    "OnStep",
    "PluginError",
    "PluginRuntime",
    "RevokeReport",
    "UpgradeReport",
    "Wiring",
    "check_name_and_version",
    "start_hint",
]


class Loader(Installs, Upgrading):
    def __init__(
        self,
        paths: Paths,
        installed: InstalledStore,
        grants: GrantStore,
        launcher: Launcher,
        hooks_for: Callable[[str], SupervisorHooks],
        wiring: Wiring,
        policy: SupervisionPolicy | None = None,
        confinement: Confinement | None = None,
        *,
        upgrader: Callable[[Loader], Upgrades],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = paths
        self.confinement = confinement  # cgroups and the watchdog, for every worker
        self.installed = installed
        self.grants = grants
        self.launcher = launcher
        self.hooks_for = hooks_for
        self.wiring = wiring
        self.policy = policy
        #: Builds the upgrades for this loader (an ``upgrade.Upgrader``): upgrade.py builds on
        #: this module, so the composition root hands it in rather than this module importing it.
        self._make_upgrader = upgrader
        self.runtimes: dict[str, PluginRuntime] = {}
        #: Tells the user about a plugin (a hook that missed its deadline); the kernel's
        #: front ends show it. Logged only, when nobody listens.
        self.on_notice: Callable[[str, str], None] | None = None
        #: Old versions a hot upgrade replaced, finishing their calls before they stop.
        self.retiring: list[PluginRuntime] = []
        self._locks: dict[str, asyncio.Lock] = {}
        #: Validated manifests, kept by content (specs.py): read once, not on every refresh.
        self.specs = SpecCache(paths.cache_dir / "plugin-specs", __version__)
        #: Measures idleness (see :meth:`stop_idle`); the tests' own clock replaces it.
        self.clock = clock

    # -- queries -----------------------------------------------------------------------------

    def record(self, name: str) -> InstalledPlugin:
        plugin = self.installed.get(name)
        if plugin is None:
            raise PluginError(f"no plugin '{name}' is installed", Hint(Fix.LIST))
        return plugin

    def spec(self, name: str) -> PluginSpec:
        plugin = self.record(name)
        try:
            return self.specs.spec(self.paths.plugin_code(name, plugin.version))
        except ManifestError as exc:
            first = exc.problems[0] if exc.problems else "unknown problem"
            raise PluginError(
                f"installed copy of '{name}' is damaged ({first}) — reinstall it with --force",
                Hint(Fix.INSTALL, argument=plugin.source, flags=("--force",)),
            ) from None

    def code_spec(self, name: str, version: str) -> PluginSpec:
        """Check the code put in place at ``versions/NAME/VERSION`` (by the registry client,
        or kept by an earlier upgrade): a valid plugin whose manifest says this very name and
        version. Touches nothing; the folder stays where it is whatever the outcome."""
        check_name_and_version(name, version)
        code = self.paths.plugin_code(name, version)
        if not code.is_dir():
            raise PluginError(
                f"{code}: no such folder — the code of '{name}' {version} must be in place "
                "first (reinstall it)",
                Hint(Fix.INSTALL, name, version),
            )
        spec = self._validated(code, code, "installed")
        if (spec.name, spec.version) != (name, version):
            raise PluginError(
                f"{code}: its manifest says '{spec.name}' {spec.version}, not '{name}' "
                f"{version} — the code does not match what was asked for; download it again"
            )
        self.specs.validated(code, spec)
        return spec

    def facts(self, spec: PluginSpec) -> SourceFacts:
        """What ``spec``'s source says about when it must run (kept with the spec)."""
        return self.specs.facts(spec.root)

    def waits_for_use(self, spec: PluginSpec) -> bool:
        """Whether the plugin's worker may wait for its first use (see specs.py)."""
        try:
            return not starts_at_launch(spec, self.facts(spec))
        except ManifestError:
            return False  # its start will say what is wrong

    def lock(self, name: str) -> asyncio.Lock:
        """One lifecycle change at a time per plugin (an upgrade, a follow, a stop)."""
        return self._locks.setdefault(name, asyncio.Lock())

    # -- grant / revoke ----------------------------------------------------------------------

    async def grant(self, name: str, scopes: Sequence[Scope]) -> GrantReport:
        """Grant scopes the user agreed to; a plugin left wanting nothing is started (as
        ``deeting plugin grant`` does). A start failure raises PluginError, grants kept."""
        record = self.record(name)
        added = self.grants.grant(name, scopes)
        spec = self.spec(name)
        report = GrantReport(added, missing_scopes(spec.permissions, self.grants.granted(name)))
        if added and spec.mcp is not None and name in self.runtimes:
            # More for a running MCP server (its user granted what it was refused): its
            # sandbox is built at start, so it starts again, on demand, holding the grant.
            await self.disable(name, persist=False)
            await self.enable(name, on_demand=True)
            return report
        if not report.missing and not record.enabled and name not in self.runtimes:
            await self.enable(name)
            report.enabled = True
        return report

    async def revoke(self, name: str, scope: Scope) -> RevokeReport:
        """Take a scope back; a running plugin is stopped at once (its sandbox was built with
        the scope) and stays disabled, with the reason, until it is granted again."""
        record = self.record(name)
        report = RevokeReport(self.grants.revoke(name, scope))
        if report.revoked and (record.enabled or name in self.runtimes):
            report.reason = f"permission '{scope}' was revoked"
            await self.disable(name, reason=report.reason, cause=Cause.REVOKED)
            report.disabled = True
        return report

    # -- enable / disable --------------------------------------------------------------------

    async def enable(self, name: str, *, on_demand: bool = False) -> PluginRuntime:
        """Start the plugin and wire it in. With ``on_demand``, a plugin that may wait for
        its first use (see :meth:`waits_for_use`) is wired in without starting its worker:
        :meth:`awake` starts it when something uses it."""
        if name in self.runtimes:
            return self.runtimes[name]
        return await self._enable(await self._runtime(name, on_demand=on_demand))

    async def _enable(self, runtime: PluginRuntime) -> PluginRuntime:
        name = runtime.spec.name
        if not runtime.on_demand:
            await self._start(runtime, "enable")
        try:
            self.wiring.attach(runtime)
        except PluginError:
            await self.deactivate(runtime)
            raise
        self.runtimes[name] = runtime
        record = self.installed.get(name)
        if record is None or not record.enabled:  # not a write per plugin at every start
            self.installed.set_enabled(name, True)
        return runtime

    async def _runtime(self, name: str, *, on_demand: bool, always: bool = False) -> PluginRuntime:
        """A runtime for ``name``, its worker not started: the checks every start makes
        first (a damaged copy, a missing grant, a full disk) raise PluginError. ``always``:
        with ``on_demand``, it waits for its first use whatever it is."""
        spec = self.spec(name)
        try:
            self.grants.check(name, spec.permissions)
        except PermissionMissing as exc:
            self.installed.set_enabled(name, False, exc.message, Cause.NOT_GRANTED)
            raise PluginError(exc.message, exc.hint) from None
        await self._check_disk(spec)
        lazy = on_demand and (always or self.waits_for_use(spec))
        return PluginRuntime(spec, self.supervisor_for(spec), on_demand=lazy)

    async def _start(self, runtime: PluginRuntime, verb: str) -> None:
        """Start the worker and run ``activate``; a failure stops it again and raises
        PluginError saying what went wrong (``could not VERB 'NAME': …``)."""
        supervisor = runtime.supervisor
        try:
            await supervisor.start()
            if "activate" in supervisor.hooks_defined:
                await supervisor.run_hook("activate")
        except (WorkerStartError, RpcError) as exc:
            await supervisor.stop()
            message = exc.message if isinstance(exc, RpcError) else str(exc)
            raise PluginError(
                f"could not {verb} '{runtime.spec.name}': {one_line(message)}"
            ) from None
        except BaseException:
            await supervisor.stop()
            raise
        runtime.last_active = self.clock()

    # -- on demand ---------------------------------------------------------------------------

    async def awake(self, name: str) -> PluginRuntime | None:
        """The runtime serving ``name`` (None: not enabled here), its worker started first
        if it was waiting for its first use. Every caller shares one start; one that gives
        up (Esc) leaves it to finish for the others. A start that fails counts as a crash
        (a notice; a crash loop disables the plugin) and raises PluginError."""
        runtime = self.runtimes.get(name)
        if runtime is None:
            return None
        if runtime.waiting:
            if runtime.waking is None or runtime.waking.done():
                runtime.waking = asyncio.ensure_future(self._wake(runtime))
                runtime.waking.add_done_callback(_retrieved)
            await asyncio.shield(runtime.waking)
            runtime = self.runtimes.get(name)  # an upgrade may have replaced it meanwhile
        if runtime is not None:
            runtime.last_active = self.clock()
        return runtime

    def touch(self, name: str) -> None:
        """The plugin did something (a stream frame): it is not idle."""
        runtime = self.runtimes.get(name)
        if runtime is not None:
            runtime.last_active = self.clock()

    async def _wake(self, runtime: PluginRuntime) -> None:
        name = runtime.spec.name
        async with self.lock(name):
            if self.runtimes.get(name) is not runtime or not runtime.waiting:
                return  # replaced, disabled or started meanwhile
            try:
                await self._start(runtime, "start")
            except PluginError as exc:
                self._start_failed(runtime, exc.message)
                raise

    def _start_failed(self, runtime: PluginRuntime, message: str) -> None:
        """A worker that fails to start for its first use is a crash like any other: said
        to the front ends, and the third within the crash window disables the plugin."""
        supervisor, name = runtime.supervisor, runtime.spec.name
        count = supervisor.guard.record()
        hooks = supervisor.hooks
        if supervisor.guard.tripped:
            minutes = supervisor.policy.crash_window / 60
            reason = (
                f"plugin '{name}' failed to start {count} times in {minutes:g} minutes and was "
                f"disabled (last: {message}) — fix it, then enable it again"
            )
            if hooks.on_disabled is not None:
                hooks.on_disabled(name, reason)
            else:
                self.forget_runtime(name)
                self.installed.set_enabled(name, False, reason, Cause.CRASHED)
        elif hooks.on_notice is not None:
            hooks.on_notice(name, message)

    async def stop_idle(self, idle_after: float) -> list[str]:
        """Stop the workers of on-demand plugins unused for ``idle_after`` seconds (no call
        in flight, no call, event or stream frame since): ``deactivate``, then the worker
        ends; the plugin stays enabled and wired, and its next use starts it again. Its
        folders keep its state. Returns the names stopped."""
        stopped = []
        for name, runtime in list(self.runtimes.items()):
            if not self._idle(runtime, idle_after) or self.lock(name).locked():
                continue  # in use, or changing (an upgrade may be waiting for consent)
            async with self.lock(name):
                if self.runtimes.get(name) is not runtime or not self._idle(runtime, idle_after):
                    continue  # used, replaced or stopped while we waited
                log.info("plugin %s: stopping its worker, unused for %g s", name, idle_after)
                await self.deactivate(runtime)
                stopped.append(name)
        return stopped

    def _idle(self, runtime: PluginRuntime, idle_after: float) -> bool:
        supervisor = runtime.supervisor
        return (
            runtime.on_demand
            and supervisor.state == "ready"
            and supervisor.activity[1] == 0  # no request of ours it has yet to answer
            and self.clock() - runtime.last_active >= idle_after
        )

    async def _check_disk(self, spec: PluginSpec) -> None:
        """A plugin stopped for filling its disk quota stays stopped until it is back under.
        Checked when a disabled plugin is enabled (not at every start: walking big folders
        would slow every kernel start, and the watchdog measures running plugins anyway)."""
        record = self.installed.get(spec.name)
        if record is not None and record.enabled:
            return
        folders = self.paths.plugin_folders(spec.name)
        problem = await asyncio.to_thread(disk_problem, spec.name, folders, spec.limits.disk_mb)
        if problem is not None:
            self.installed.set_enabled(spec.name, False, problem, Cause.QUOTA)
            raise PluginError(problem, Hint(Fix.ENABLE, spec.name))  # once space is freed

    async def disable(
        self,
        name: str,
        *,
        reason: str | None = None,
        cause: Cause | None = None,
        persist: bool = True,
    ) -> None:
        record = self.record(name)
        runtime = self.runtimes.pop(name, None)
        if runtime is not None:
            self.wiring.detach(runtime)
            await self.deactivate(runtime)
        if persist and (record.enabled or reason):
            self.installed.set_enabled(name, False, reason, cause)

    async def deactivate(self, runtime: PluginRuntime) -> None:
        """The deactivate hook (under its hard deadline), then stop the worker: at most
        ``policy.shutdown_deadline``."""
        supervisor = runtime.supervisor
        if supervisor.state == "ready" and "deactivate" in supervisor.hooks_defined:
            try:
                await supervisor.run_hook("deactivate")
            except RpcError as exc:
                self._notice(runtime.spec.name, exc.message, f"deactivate failed: {exc.message}")
        await supervisor.stop()

    def _notice(self, name: str, line: str, logged: str | None = None) -> None:
        log.warning("plugin %s: %s", name, logged or line)
        if self.on_notice is not None:
            self.on_notice(name, line)

    def forget_runtime(self, name: str) -> PluginRuntime | None:
        """Drop a runtime whose worker the supervisor already gave up on (crash loop)."""
        runtime = self.runtimes.pop(name, None)
        if runtime is not None:
            self.wiring.detach(runtime)
        return runtime

    async def stop_running(self, name: str) -> bool:
        """Stop a running plugin without recording anything: another process already changed
        its record (disabled or uninstalled it). False when it was not running."""
        async with self.lock(name):
            runtime = self.runtimes.pop(name, None)
            if runtime is None:
                return False
            self.wiring.detach(runtime)
            await self.deactivate(runtime)
            return True

    # -- uninstall ---------------------------------------------------------------------------

    async def uninstall(self, name: str, *, keep_data: bool = False) -> InstalledPlugin:
        record = self.record(name)
        await self.disable(name, persist=False)
        with contextlib.suppress(PluginError):
            spec = self.spec(name)
            try:
                await self._run_hook(spec, "preuninstall")
            except PluginError as exc:
                self._notice(name, f"{exc} (uninstalled anyway)")
        shutil.rmtree(self.paths.plugins_dir / "versions" / name, ignore_errors=True)
        if not keep_data:
            self._remove_data(name)
            self.grants.forget(name)
            self._forget_server_env(name)
        self.installed.remove(name)
        return record

    def _forget_server_env(self, name: str) -> None:
        """An MCP server's ``--env`` values go with its grants (a missing file: none)."""
        from deeting_tui.mcp.server_env import ServerEnvError, ServerEnvStore

        with contextlib.suppress(ServerEnvError, OSError):
            ServerEnvStore(self.paths.mcp_env_file).put(name, {})

    def _remove_data(self, name: str) -> None:
        for folder in (
            self.paths.plugin_data(name),
            self.paths.plugin_cache(name),
            self.paths.plugin_tmp(name),
        ):
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.paths.plugin_log(name).unlink()

    # -- start-up and shutdown ---------------------------------------------------------------

    async def start_enabled(
        self, *, on_demand: bool = False, only: Collection[str] | None = None
    ) -> list[str]:
        """Start every plugin recorded as enabled; returns one message per failure. With
        ``on_demand``, the plugins that may wait for their first use are wired in, all at
        once, without a worker (their workers start as they are used).

        ``only`` (``deeting mcp serve``): wire in only these of the enabled plugins, and every
        one of them waits for its first use, even one that would start at launch (a tick's,
        a live feed's): that process has no clock and nobody watching a feed."""
        problems: list[str] = []
        waiting: list[PluginRuntime] = []
        for record in self.installed.all():
            if not record.enabled or record.name in self.runtimes:
                continue
            if only is not None and record.name not in only:
                continue
            try:
                runtime = await self._runtime(
                    record.name, on_demand=on_demand, always=only is not None
                )
                if runtime.on_demand:
                    waiting.append(runtime)
                else:
                    await self._enable(runtime)
            except PluginError as exc:
                problems.append(str(exc))
        for runtime, problem in self.wiring.attach_all(waiting):
            if problem is None:
                self.runtimes[runtime.spec.name] = runtime
            else:
                problems.append(str(problem))
        return problems

    async def shutdown(self) -> None:
        """Stop every worker, all at once, within ``policy.shutdown_deadline`` (each one's
        deactivate hook and stop); one still running then is killed. The persisted enabled
        state is kept for the next start."""
        # A start for a first use that nobody waits for any more (the caller gave up, Ctrl-C)
        # ends first: the worker it would bring up is stopped with the others.
        wakes = [r.waking for r in self.runtimes.values() if r.waking and not r.waking.done()]
        for wake in wakes:
            wake.cancel()
        await asyncio.gather(*wakes, return_exceptions=True)
        runtimes = [self.runtimes.pop(name) for name in list(self.runtimes)]
        self.wiring.detach_all(runtimes)
        runtimes += self.retiring  # an upgrade cut short while its old version was draining
        self.retiring = []
        if not runtimes:
            return
        budget = (self.policy or SupervisionPolicy()).shutdown_deadline
        stopping = [asyncio.ensure_future(self.deactivate(runtime)) for runtime in runtimes]
        _, late = await asyncio.wait(stopping, timeout=budget)
        for task in late:
            task.cancel()
        await asyncio.gather(*stopping, return_exceptions=True)
        for runtime in runtimes:
            if runtime.supervisor.state not in ("stopped", "disabled"):
                self._notice(
                    runtime.spec.name,
                    f"'{runtime.spec.name}' did not stop within {budget:g} s and was killed",
                )
                await runtime.supervisor.kill()

    # -- helpers -----------------------------------------------------------------------------

    def supervisor_for(
        self,
        spec: PluginSpec,
        scopes: Sequence[Scope] | None = None,
        hooks: SupervisorHooks | None = None,
    ) -> Supervisor:
        """A (not yet started) supervisor for ``spec``, sandboxed to ``scopes`` (default:
        what is granted now) and reporting through ``hooks`` (default: the kernel's)."""
        p = self.paths
        granted = self.grants.granted(spec.name) if scopes is None else scopes
        config = WorkerConfig(
            name=spec.name,
            version=spec.version,
            root=spec.root,
            data_dir=p.plugin_data(spec.name),
            cache_dir=p.plugin_cache(spec.name),
            tmp_dir=p.plugin_tmp(spec.name),
            log_path=p.plugin_log(spec.name),
            scopes=[str(s) for s in granted],
            call_timeout=spec.limits.call_timeout,
            memory_mb=spec.limits.memory_mb,
            tasks=spec.limits.tasks,
            disk_mb=spec.limits.disk_mb,
            cpu_percent=spec.limits.cpu_percent,
            idle_cpu_percent=spec.limits.idle_cpu_percent,
            mcp=self._server_launch(spec, granted) if spec.mcp is not None else None,
        )
        hooks = self.hooks_for(spec.name) if hooks is None else hooks
        return Supervisor(config, self.launcher, hooks, self.policy, confinement=self.confinement)

    def declare(self, name: str, scope: Scope) -> None:
        """Add ``scope`` to an MCP plugin's declared permissions (its kimai.json, which
        ``deeting mcp add`` wrote from the user's grants), so the user can grant it."""
        spec = self.spec(name)
        if spec.mcp is None:
            raise PluginError(f"'{name}' declares its own permissions: it is not an MCP server")
        manifest = dict(spec.manifest)
        manifest["permissions"] = [*manifest.get("permissions", []), str(scope)]
        write_json_atomic(spec.root / "kimai.json", manifest)
        fresh = self.code_spec(name, spec.version)
        runtime = self.runtimes.get(name)
        if runtime is not None:
            runtime.spec = fresh

    def _server_launch(
        self, spec: PluginSpec, granted: Sequence[Scope]
    ) -> Callable[[], dict[str, Any]]:
        """How the worker of an MCP plugin starts its server (asked at each start)."""
        from deeting_tui.mcp.launch import launch_for
        from deeting_tui.mcp.server_env import ServerEnvStore

        server = spec.mcp
        assert server is not None
        kinds = {scope.kind for scope in granted}

        def launch() -> dict[str, Any]:
            try:
                return launch_for(
                    spec.root,
                    server,
                    name=spec.name,
                    data_dir=self.paths.plugin_data(spec.name),
                    cache_dir=self.paths.plugin_cache(spec.name),
                    env_values=ServerEnvStore(self.paths.mcp_env_file).values(spec.name),
                    network="network" in kinds,
                    shell="shell" in kinds,
                )
            except DeetingError as exc:
                raise WorkerStartError(exc.message) from None

        return launch

    async def _run_hook(self, spec: PluginSpec, hook: str) -> None:
        """Run a one-off lifecycle hook in a short-lived worker, if the plugin defines it,
        under the hook's hard deadline."""
        supervisor = self.supervisor_for(spec)
        try:
            try:
                await supervisor.start()
            except WorkerStartError as exc:
                # The plugin did not load, so no hook ran: naming the hook would send the
                # author looking for a postinstall the plugin may not even have.
                message = one_line(str(exc))
                raise PluginError(message + start_hint(message)) from None
            if hook in supervisor.hooks_defined:
                await supervisor.run_hook(hook)
        except RpcError as exc:
            raise PluginError(f"'{spec.name}' {hook} failed: {one_line(exc.message)}") from None
        finally:
            await supervisor.stop()


def _retrieved(waking: asyncio.Future[None]) -> None:
    """A shared start's failure is told to every caller waiting for it (and as a notice):
    retrieved here too, so one nobody waited for (all gave up) is not logged as lost."""
    if not waking.cancelled():
        waking.exception()
