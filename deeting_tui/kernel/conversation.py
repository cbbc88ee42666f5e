"""The conversation: the assistant's turn, and a stored session read back as typed events.

A mixin of :class:`~deeting_tui.kernel.kernel.Kernel`; the state and methods it uses of the
other parts are declared once, in state.py.
"""

from __future__ import annotations

import logging
from typing import Any

from .assistant import AssistantTurn, ToolOutcome
from .events import (
    ErrorEvent,
    Event,
    EventFormatError,
    ReplyDelta,
    from_stored,
)
from .sessions.encoding import CONVERSATION_KINDS
from .state import KernelState

log = logging.getLogger("deeting.kernel")


class Conversation(KernelState):
    # -- the assistant -----------------------------------------------------------------------

    async def _assistant_handler(self, topic: str, payload: dict[str, Any]) -> bool:
        assert self.assistant is not None
        session_id = payload["session_id"]

        async def call(tool: str, args: dict[str, Any]) -> ToolOutcome:
            return await self.call_tool(session_id, tool, args, report_errors=False)

        # Which model answered, on each of its replies (--json shows it; the chat will too).
        provider, model = self.assistant.name, getattr(self.assistant, "model", None) or None
        turn = AssistantTurn(
            session_id=session_id,
            text=payload["text"],
            tools=self.tool_infos(),
            call_tool=call,
            reply=lambda text, hint=None, tool_specs=None: self.reply(
                session_id, text, provider=provider, model=model, hint=hint, tool_specs=tool_specs
            ),
            fail=lambda message: self.error(session_id, message),
            history=self._history_before_this_message(session_id),
            partial=lambda text: self._notify(
                ReplyDelta(session_id=session_id, text=text, provider=provider, model=model)
            ),
        )
        try:
            await self.assistant.respond(turn)
        except Exception as exc:
            log.exception("assistant failed")
            self.error(session_id, f"assistant ({self.assistant.name}) failed: {exc}")
        return True

    def conversation(self, session_id: str) -> list[Event]:
        """A stored session's conversation (no stream frames), typed, for a front end to
        draw. A stored event this version cannot read (a damaged row, another version's
        format) comes as an error saying so, in its place, not as the end of the session."""
        self.journal.flush()
        events: list[Event] = []
        for stored in self.sessions.events(session_id, kinds=CONVERSATION_KINDS):
            try:
                events.append(from_stored(stored.kind, stored.session_id, stored.payload))
            except EventFormatError as exc:
                message = f"stored event {stored.seq} ({stored.kind}) cannot be shown: {exc}"
                events.append(ErrorEvent(session_id=session_id, message=message))
        return events

    def _history_before_this_message(self, session_id: str) -> list[tuple[str, dict[str, Any]]]:
        self.journal.flush()
        stored = self.sessions.events(session_id, kinds=CONVERSATION_KINDS)
        events = [(e.kind, e.payload) for e in stored]
        if events and events[-1][0] == "user":
            events.pop()  # the message being answered: the assistant gets it as turn.text
        return events
