"""Enabled plugins wired into the kernel (tools, triggers, subscriptions), their upgrades, and
what their supervisors report (streams, crashes, a plugin disabled).

A mixin of :class:`~deeting_tui.kernel.kernel.Kernel`; the state and methods it uses of the
other parts are declared once, in state.py.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.plugin.manifest import EVENT_PRIORITY, TRIGGER_PRIORITY, PluginSpec
from deeting_tui.plugin.scopes import MESSAGES, covers, parsed_scopes, reads_user_input
from deeting_tui.plugin.triggers import TriggerRegexError
from deeting_tui.rpc import protocol
from deeting_tui.rpc.errors import RpcError
from deeting_tui.rpc.protocol import EventParams, OnEventResult

from ..workers.policy import Restarted
from ..workers.supervisor import SupervisorHooks
from .arguments import trigger_arguments
from .events import (
    PluginNotice,
    StreamFrame,
)
from .permissions import GrantStore
from .plugins.installed import Cause
from .plugins.loader import AskGrants, PluginError, PluginRuntime, UpgradeReport
from .plugins.upgrade import upgrade_notice
from .routing import (
    INLINE_MATCH_CHARS,
    MAX_TRIGGER_TEXT,
    Trigger,
    TriggerTable,
    clamp_priority,
)
from .sessions.encoding import EncodedEvent
from .state import KernelState
from .tools import ToolConflict

log = logging.getLogger("deeting.kernel")


class ToolClash(PluginError, DeetingError):
    """A :class:`ToolConflict` at enable or upgrade time, as the loader expects a refusal
    (a PluginError: it stops the new worker), keeping the conflict's hint."""


class PluginWiring(KernelState):
    # -- wiring enabled plugins (the Loader calls these) -------------------------------------

    def attach(self, runtime: PluginRuntime) -> None:
        """Wire one plugin in; a refusal (a tool taken, a trigger RE2 cannot run) raises
        PluginError and changes nothing."""
        ((_, problem),) = self.attach_all([runtime])
        if problem is not None:
            raise problem

    def attach_all(
        self, runtimes: Sequence[PluginRuntime]
    ) -> list[tuple[PluginRuntime, PluginError | None]]:
        """Wire plugins in (all the enabled ones at a start): their triggers go into the table
        in one build, not one build per plugin (each compiles the whole RE2 set). Each runtime
        comes back with the refusal that left it out, if any; a refused one changes nothing."""
        outcomes: dict[str, tuple[PluginRuntime, PluginError | None]] = {}
        added: list[tuple[PluginRuntime, Trigger | None]] = []
        for runtime in runtimes:
            spec = runtime.spec
            try:
                trigger = self._trigger_of(spec)
                self.tools.add_plugin(spec)
            except ToolConflict as exc:
                outcomes[spec.name] = (runtime, ToolClash(exc.message, exc.hint))
                continue
            except PluginError as exc:
                outcomes[spec.name] = (runtime, exc)
                continue
            added.append((runtime, trigger))
        mine = {runtime.spec.name for runtime, _ in added}
        table = self.triggers
        try:
            others = [t for t in table.triggers if t.plugin not in mine]
            table = TriggerTable([*others, *(t for _, t in added if t is not None)])
        except TriggerRegexError:  # too many for one set: as many as fit, one at a time
            for runtime, trigger in added:
                if trigger is None:
                    continue
                try:
                    table = table.with_trigger(trigger)
                except TriggerRegexError as exc:
                    self.tools.remove_plugin(runtime.spec.name)
                    outcomes[runtime.spec.name] = (runtime, _unusable(runtime.spec, exc))
        self.triggers = table
        for runtime, _ in added:
            if runtime.spec.name in outcomes:
                continue
            for pattern, handler, priority in self._subscriptions(runtime):
                self.bus.subscribe(
                    pattern,
                    handler,
                    priority=priority,
                    owner=runtime.spec.name,
                    order=self._installed_at(runtime.spec),
                )
            outcomes[runtime.spec.name] = (runtime, None)
        return [outcomes[runtime.spec.name] for runtime in runtimes]

    def detach(self, runtime: PluginRuntime) -> None:
        self.bus.unsubscribe_owner(runtime.spec.name)
        self.triggers = self.triggers.without(runtime.spec.name)
        self.tools.remove_plugin(runtime.spec.name)

    def detach_all(self, runtimes: Sequence[PluginRuntime]) -> None:
        names = {runtime.spec.name for runtime in runtimes}
        for name in names:
            self.bus.unsubscribe_owner(name)
            self.tools.remove_plugin(name)
        if names & set(self.triggers.plugins()):
            self.triggers = TriggerTable(t for t in self.triggers.triggers if t.plugin not in names)

    def swap(self, old: PluginRuntime, new: PluginRuntime) -> None:
        """A hot upgrade's switch: no await, so no call or publish sees neither version."""
        name = new.spec.name
        triggers = self._triggers_with(new.spec)
        self.tools.remove_plugin(name)
        try:
            self.tools.add_plugin(new.spec)
        except ToolConflict as exc:
            self.tools.add_plugin(old.spec)  # it was there a moment ago: cannot conflict
            raise ToolClash(exc.message, exc.hint) from None
        self.triggers = triggers
        # Publishes already under way finish with the old handlers; later ones see the new.
        self.bus.replace_owner(name, self._subscriptions(new), order=self._installed_at(new.spec))

    def _installed_at(self, spec: PluginSpec) -> float:
        """Ties of priority go to the plugin installed first (see routing.py)."""
        record = self.installed.get(spec.name)
        return record.installed_at if record is not None else time.time()

    def _triggers_with(self, spec: PluginSpec) -> TriggerTable:
        """The trigger table with ``spec``'s trigger (or without any of ``spec``'s)."""
        table = self.triggers.without(spec.name)
        trigger = self._trigger_of(spec)
        if trigger is None:
            return table
        try:
            return table.with_trigger(trigger)
        except TriggerRegexError as exc:
            raise _unusable(spec, exc) from None

    def _trigger_of(self, spec: PluginSpec) -> Trigger | None:
        """``spec``'s trigger, compiled (PluginError when RE2 cannot run it)."""
        if spec.trigger is None:
            return None
        try:
            return Trigger(
                spec.name,
                spec.trigger.tool,
                spec.trigger.pattern,
                clamp_priority(spec.trigger.priority, TRIGGER_PRIORITY),
                self._installed_at(spec),
            )
        except TriggerRegexError as exc:
            raise _unusable(spec, exc) from None

    def _subscriptions(self, runtime: PluginRuntime) -> list[tuple[str, Any, int]]:
        """The plugin's ``events``, priorities clamped; those that would deliver what the
        user types only if its worker was started with the ``messages`` scope granted (a
        revoke stops the worker, so it never outlives the grant)."""
        spec = runtime.spec
        granted = parsed_scopes(runtime.supervisor.config.scopes)
        may_read = any(covers(scope, MESSAGES) for scope in granted)
        subscriptions: list[tuple[str, Any, int]] = []
        for event in spec.events:
            if reads_user_input(event.topic) and not may_read:
                log.warning(
                    "plugin %s: not subscribed to %s: the 'messages' permission is not granted",
                    spec.name,
                    event.topic,
                )
                continue
            priority = clamp_priority(event.priority, EVENT_PRIORITY)
            subscriptions.append((event.topic, self._event_handler(spec.name), priority))
        return subscriptions

    async def _route_triggers(self, topic: str, payload: dict[str, Any]) -> bool:
        """Offer the message to the triggers that match it, best first (routing.py)."""
        text, table = payload["text"], self.triggers
        if not table or not isinstance(text, str) or len(text) > MAX_TRIGGER_TEXT:
            return False  # too long for a command: on to the readers and the assistant
        inline = len(text) <= INLINE_MATCH_CHARS
        candidates = (
            table.candidates(text) if inline else await asyncio.to_thread(table.candidates, text)
        )
        for trigger in candidates:
            entry = self.tools.get(trigger.tool)
            if entry is None or entry.plugin != trigger.plugin:
                continue  # disabled (or replaced) since the table was taken
            match = (
                trigger.search(text) if inline else await asyncio.to_thread(trigger.search, text)
            )
            if match is None:
                continue
            args = trigger_arguments(match, entry.spec.parameters)
            await self.call_tool(payload["session_id"], trigger.tool, args, reply=True)
            return True
        return False

    def _event_handler(self, plugin: str) -> Any:
        """Delivers to whichever worker serves ``plugin`` now (an upgrade may switch it)."""

        async def handle(topic: str, payload: dict[str, Any]) -> bool | None:
            waiting = self.loader.runtimes.get(plugin)
            if waiting is not None and waiting.waiting and payload.get("plugin") == plugin:
                # News of its own failed start must not start it again (and fail again).
                return None
            try:
                runtime = await self.loader.awake(plugin)  # its first use starts it
            except PluginError as exc:
                log.warning("plugin %s: not started for %s: %s", plugin, topic, exc.message)
                return False
            if runtime is None:
                return False
            supervisor = runtime.supervisor
            if topic in ("user.message", "user.image"):
                try:
                    result = await supervisor.request(
                        protocol.ON_EVENT, EventParams(topic, payload).to_json()
                    )
                except RpcError as exc:
                    log.warning("plugin %s: on_event(%s) failed: %s", supervisor.name, topic, exc)
                    return False
                return OnEventResult.from_json(result).handled
            supervisor.send_event(topic, payload)
            return None

        return handle

    # -- upgrades ----------------------------------------------------------------------------

    async def upgrade_plugin(
        self,
        name: str,
        version: str,
        *,
        grant: Sequence[str] = (),
        yes: bool = False,
        ask_all: AskGrants | None = None,
        allow_downgrade: bool = False,
    ) -> UpgradeReport:
        """Loader.upgrade, told to the front ends as a ``plugin_notice``."""
        report = await self.loader.upgrade(
            name, version, grant=grant, yes=yes, ask_all=ask_all, allow_downgrade=allow_downgrade
        )
        self._plugin_notice(name, upgrade_notice(report))
        return report

    async def rollback_plugin(
        self, name: str, *, ask_all: AskGrants | None = None
    ) -> UpgradeReport:
        report = await self.loader.rollback(name, ask_all=ask_all)
        self._plugin_notice(name, upgrade_notice(report))
        return report

    def _reload_grants(self) -> None:
        """grants.json changed on disk (another process granted or revoked): read it anew.
        A damaged file raises GrantStoreError and the grants in memory stay."""
        self.grants = GrantStore(self.paths.grants_file)
        self.loader.grants = self.grants

    def _plugin_notice(self, plugin: str | None, message: str, hint: Hint | None = None) -> None:
        """Tell the front ends (not stored); the fix, if any, goes as data for each to phrase."""
        self._notify(PluginNotice(plugin=plugin, message=message, hint=hint))

    # -- reports from supervisors -----------------------------------------------------------

    def _hooks_for(self, name: str) -> SupervisorHooks:
        return SupervisorHooks(
            on_stream=self._on_stream,
            on_notice=self._on_notice,
            on_disabled=self._on_disabled,
            on_restarted=self._reactivate,
            on_denial=self._plugin_notice,
        )

    def _on_stream(self, plugin: str, params: dict[str, Any]) -> None:
        """A frame from a worker: checked (a bad one is dropped and said once, see
        streams.py), then shown, stored as the stream's latest state, and published."""
        runtime = self.loader.runtimes.get(plugin)
        self.loader.touch(plugin)  # a plugin streaming is not idle
        frame = self.streams.admit(plugin, params, runtime.spec.renderer if runtime else None)
        if frame is None:
            return
        session_id = self.active_session
        if session_id is not None:
            self.journal.record_encoded(
                EncodedEvent(
                    session_id,
                    "stream",
                    time.time(),
                    frame.encoded,
                    plugin,
                    frame.topic,
                    frame.size,
                )
            )
            self._notify(StreamFrame(session_id=session_id, **frame.event))
        self._publish_soon(f"stream.{frame.topic}", frame.event)

    def _on_notice(self, plugin: str, message: str) -> None:
        # Listeners hear it too (not stored): a front end shows the crash and the restart.
        self._plugin_notice(plugin, message)
        self._publish_soon("plugin.crashed", {"plugin": plugin, "message": message})

    def _on_disabled(self, plugin: str, message: str) -> None:
        runtime = self.loader.forget_runtime(plugin)
        # The supervisor gives up on a worker for a crash loop or for its disk quota: the
        # cause is stored as such, so no front end has to read it out of the message.
        looped = runtime is None or runtime.supervisor.guard.tripped
        self.installed.set_enabled(plugin, False, message, Cause.CRASHED if looped else Cause.QUOTA)
        # Either way the way back is to enable it (once fixed, or with space freed): a hint
        # of the kernel's own, which the CLI says as a command and the chat as a key.
        hint = Hint(Fix.ENABLE, plugin)
        self.error(None, message, plugin=plugin, hint=hint)
        self._plugin_notice(plugin, message, hint)
        self._publish_soon("plugin.disabled", {"plugin": plugin, "message": message})

    async def _reactivate(self, supervisor: Restarted) -> None:
        if protocol.ACTIVATE in supervisor.hooks_defined:
            await supervisor.run_hook(protocol.ACTIVATE)

    def _publish_soon(self, topic: str, payload: dict[str, Any]) -> None:
        if not self.bus.has_subscribers(topic):
            return
        task = asyncio.get_running_loop().create_task(self.bus.publish(topic, payload))
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _unusable(spec: PluginSpec, exc: TriggerRegexError) -> PluginError:
    return PluginError(f"'{spec.name}': its trigger cannot be used: {exc}")
