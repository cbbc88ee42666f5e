"""App-wide messages: kernel events cross into the UI only as these."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from textual.message import Message

if TYPE_CHECKING:
    from deeting_tui.kernel.events import Event
from deeting_tui.terminal_text import neutralise_tree


class KernelEvent(Message):
    """One event from the kernel's listener (``deeting_tui.kernel.events``), live or replayed
    from a stored session; a JSON object (a test's event written by hand) is read with
    ``from_json``.

    This is where a kernel event becomes the chat's, so it is where plugin text is neutralised
    for the terminal: every string in the event (reply text and deltas, tool arguments,
    errors, notices, progress messages, result data, stream payloads) as
    ``deeting_tui.terminal_text.neutralise`` leaves it. The kernel and the stored session keep
    the original; widgets only ever see the neutralised copy.
    """

    def __init__(self, event: Event | Mapping[str, Any]) -> None:
        from deeting_tui.kernel.events import Event, from_json  # after the first frame

        super().__init__()
        self.event: Event = neutralised(event if isinstance(event, Event) else from_json(event))


def neutralised(event: Event) -> Event:
    """A copy of ``event`` with every string in it neutralised (see KernelEvent)."""
    changes = {
        spec.name: neutralise_tree(getattr(event, spec.name)) for spec in dataclasses.fields(event)
    }
    return dataclasses.replace(event, **changes)


class LocalReply(Message):
    """Text the chat itself says (``/help``): drawn as a reply, but no kernel event — it is
    not in the session, the model never sees it, and ``--json`` has nothing like it."""

    def __init__(self, markdown: str) -> None:
        super().__init__()
        self.markdown = markdown


class NewSessionWanted(Message):
    """A screen asks for an empty conversation (``/new``)."""


class SessionsWanted(Message):
    """A screen asks for the session list (``/sessions``)."""


class StatusChanged(Message):
    """What the header shows may have changed (a plugin's state, the terminal's width)."""


class CardPageWanted(Message):
    """Open a card's page in the browser (``card_id``), or the session's (None); the app
    serves it (ui/browser.py)."""

    def __init__(self, card_id: str | None) -> None:
        super().__init__()
        self.card_id = card_id
