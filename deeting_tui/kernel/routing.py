"""Who is offered a user's message, in what order, and what matching it may cost the kernel.

A message (``user.message``) is offered, first-handled, in three bands:

1. **Triggers**, all at once: every enabled plugin's trigger regex is in one RE2 set, so one
   linear pass over the text says which match; only those are then run for their groups, in
   order of priority (0…100, higher first), ties to the earlier-installed plugin. The first
   whose tool is there takes the message.
2. **Consented readers**: plugins subscribed to ``user.message`` (or ``user.*``, ``*``) with
   the ``messages`` scope, by priority, ties to the earlier-installed. They see only what no
   trigger took, so a plugin allowed to read your messages can never take one from a plugin
   whose trigger matches it, however high its priority.
3. **The assistant**, always last.

Text longer than :data:`MAX_TRIGGER_TEXT` is not offered to triggers (it goes on to the
readers and the assistant); text longer than :data:`INLINE_MATCH_CHARS` is matched on a
thread (RE2 releases the GIL), so the event loop never spends more than a few milliseconds
matching one message, whatever plugins are installed (bench/triggers.py measures it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from deeting_tui.plugin.manifest import PRIORITY_MAX, PRIORITY_MIN
from deeting_tui.plugin.triggers import TriggerMatch, TriggerPattern, TriggerSet

__all__ = [
    "ASSISTANT_PRIORITY",
    "INLINE_MATCH_CHARS",
    "MAX_TRIGGER_TEXT",
    "TRIGGER_BAND",
    "Trigger",
    "TriggerTable",
    "clamp_priority",
]

#: Bus priority of the trigger router: above every plugin subscription (0…100).
TRIGGER_BAND = 1_000
#: The assistant answers only what nothing else claimed.
ASSISTANT_PRIORITY = -1_000_000
#: Longest message offered to triggers, in characters; a longer one skips them.
MAX_TRIGGER_TEXT = 4096
#: Longer messages are matched off the event loop.
INLINE_MATCH_CHARS = 64


def clamp_priority(value: object, default: int = PRIORITY_MIN) -> int:
    """A plugin's priority within PRIORITY_MIN…PRIORITY_MAX, whatever reached the kernel."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return default
    return int(min(PRIORITY_MAX, max(PRIORITY_MIN, value)))


@dataclass(frozen=True)
class Trigger:
    """One enabled plugin's trigger. ``installed_at`` breaks ties: the earlier plugin wins."""

    plugin: str
    tool: str
    pattern: TriggerPattern
    priority: int
    installed_at: float = 0.0

    def search(self, text: str) -> TriggerMatch | None:
        return self.pattern.search(text)


class TriggerTable:
    """An immutable set of triggers in routing order, with their RE2 set compiled.

    Changing it makes a new table (``with_trigger``/``without``), so a message being routed
    keeps the table it started with. Raises TriggerRegexError when the set cannot be built.
    """

    def __init__(self, triggers: Iterable[Trigger] = ()) -> None:
        self.triggers: tuple[Trigger, ...] = tuple(
            sorted(triggers, key=lambda t: (-t.priority, t.installed_at, t.plugin))
        )
        self._set = TriggerSet(t.pattern.pattern for t in self.triggers)

    def __len__(self) -> int:
        return len(self.triggers)

    def with_trigger(self, trigger: Trigger) -> TriggerTable:
        """This table with ``trigger`` in place of any trigger of the same plugin."""
        return TriggerTable([*self._others(trigger.plugin), trigger])

    def without(self, plugin: str) -> TriggerTable:
        return self if plugin not in self.plugins() else TriggerTable(self._others(plugin))

    def plugins(self) -> list[str]:
        return [t.plugin for t in self.triggers]

    def candidates(self, text: str) -> list[Trigger]:
        """The triggers matching ``text``, in routing order; one pass over the text."""
        if len(text) > MAX_TRIGGER_TEXT:
            return []
        hits = self._set.matching(text)
        return [trigger for index, trigger in enumerate(self.triggers) if index in hits]

    def _others(self, plugin: str) -> list[Trigger]:
        return [t for t in self.triggers if t.plugin != plugin]
