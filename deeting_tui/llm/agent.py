"""The agent loop: the model sees the tools, asks for calls, the kernel runs them, repeat.

Every tool call gets a result the model can read — plugin errors, timeouts, missing grants,
unknown tools and arguments that are not JSON come back as error results instead of ending
the turn — and the plugin's structured data reaches the user through the kernel's events
(renderers), while the model gets the plugin's text, or a marked, truncated summary of the
data when the plugin gave none. A user message costs at most MAX_MODEL_CALLS model calls;
the last one may not call tools, so the turn always ends in words. A provider failure is
retried only before its first byte (after that, output has been shown and a retry would
repeat it), then reported as one line.

Which tool specs a model call carries is the tool budget's (tool_budget.py): all of them with
a handful of plugins, else a bounded set and ``find_tools``, which this loop answers itself.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import orjson

from deeting_tui.kernel.assistant import AssistantTurn, ToolOutcome

from .model import (
    Message,
    Provider,
    ProviderError,
    TextDelta,
    ToolCall,
    ToolResult,
    TurnDone,
)
from .tool_budget import FIND_TOOLS, Budget
from .tools import Toolbox, safe_name, system_prompt

MAX_MODEL_CALLS = 8
RETRY_DELAYS_S = (0.5, 1.0, 2.0)
SUMMARY_CHARS = 2000
HISTORY_EVENTS = 400  # the tail of a long session that is sent back to the model

SUMMARY_MARK = "[the tool returned no text; a summary of its data]"
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class LLMAssistant:
    """An Assistant (kernel/assistant.py) backed by a model Provider."""

    def __init__(self, provider: Provider, *, retry_delays: Sequence[float] = RETRY_DELAYS_S):
        self.provider = provider
        self.name = provider.name
        self.model = provider.model
        self.retry_delays = tuple(retry_delays)

    async def aclose(self) -> None:
        """Close the provider's connections (the kernel calls this at shutdown)."""
        close = getattr(self.provider, "aclose", None)
        if close is not None:
            await close()

    async def respond(self, turn: AssistantTurn) -> None:
        # Every spec with a handful of plugins; past that a bounded set and find_tools.
        budget = Budget.select(turn.tools, turn.text, turn.history)
        system = system_prompt(turn.tools)
        messages = [*history_messages(turn.history), Message("user", turn.text)]
        ids = _CallIds(c.id for m in messages for c in m.tool_calls)
        for number in range(1, MAX_MODEL_CALLS + 1):
            toolbox = budget.toolbox  # find_tools may have added to it in the last round
            figures = budget.figures
            last = number == MAX_MODEL_CALLS or not toolbox.specs
            try:
                done = await self._complete(system, messages, toolbox, last, turn)
            except ProviderError as exc:
                turn.fail(f"{self.name} ({self.model}): {exc.message}")
                return
            if done.text:
                turn.reply(done.text, tool_specs=figures)
            if not done.tool_calls:
                if not done.text:
                    turn.fail(f"{self.name} ({self.model}) gave an empty answer")
                return
            if last:
                turn.fail(
                    f"{self.name} ({self.model}) still asked for tools after "
                    f"{MAX_MODEL_CALLS} model calls; stopped"
                )
                return
            # A server that gives no ids gets call_0, call_1 … from the provider, in every
            # round: the conversation sent back must still have each id once.
            asked = tuple(replace(c, id=ids.new(c.id)) for c in done.tool_calls)
            messages.append(Message("assistant", done.text, tool_calls=asked))
            results = await asyncio.gather(*(self._run(call, budget, turn) for call in asked))
            messages.append(Message("user", tool_results=tuple(results)))

    async def _complete(
        self,
        system: str,
        messages: list[Message],
        toolbox: Toolbox,
        last: bool,
        turn: AssistantTurn,
    ) -> TurnDone:
        for attempt in range(len(self.retry_delays) + 1):
            started = False
            try:
                stream = self.provider.stream(
                    system=system,
                    messages=messages,
                    tools=list(toolbox.specs),
                    tool_choice="none" if last else "auto",
                )
                async for event in stream:
                    started = True
                    if isinstance(event, TurnDone):
                        return event
                    if isinstance(event, TextDelta) and turn.partial is not None:
                        turn.partial(event.text)  # live text; the reply follows at TurnDone
                raise ProviderError("the response ended before it was complete", kind="protocol")
            except ProviderError as exc:
                if started or not exc.retryable or attempt == len(self.retry_delays):
                    raise
            await asyncio.sleep(self.retry_delays[attempt])  # backoff before a retry
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, call: ToolCall, budget: Budget, turn: AssistantTurn) -> ToolResult:
        if call.arguments_error:
            return ToolResult(call.id, f"error: invalid arguments: {call.arguments_error}", True)
        if budget.budgeted and call.name == FIND_TOOLS:  # ours: never a plugin's (reserved)
            query = call.arguments.get("query")
            if not isinstance(query, str) or not query.strip():
                return ToolResult(call.id, "error: find_tools needs a 'query' string", True)
            return ToolResult(call.id, budget.find(query))
        toolbox = budget.toolbox
        name = toolbox.kernel_name(call.name) or call.name  # the kernel names unknown tools
        outcome = await turn.call_tool(name, call.arguments)
        if not outcome.ok:
            return ToolResult(call.id, f"error: {outcome.error}", True)
        return ToolResult(call.id, text_for_model(outcome))


def text_for_model(outcome: ToolOutcome) -> str:
    """The plugin's text; without one, a compact, truncated and marked summary of its data."""
    if outcome.text:
        return outcome.text
    if outcome.data is None:
        return "(the tool returned nothing)"
    try:
        compact = orjson.dumps(outcome.data).decode()
    except TypeError:
        compact = repr(outcome.data)
    if len(compact) > SUMMARY_CHARS:
        compact = compact[:SUMMARY_CHARS] + f"… ({len(compact) - SUMMARY_CHARS} more characters)"
    return f"{SUMMARY_MARK} {compact}"


def history_messages(events: Iterable[tuple[str, dict[str, Any]]]) -> list[Message]:
    """A session's stored events as the conversation so far.

    Tool calls routed by triggers or ``/TOOL`` appear as the assistant's calls too: the
    model should know they happened. The conversation is made to start with the user and
    alternate, as the APIs require, and every call is answered right after it: the calls
    between two messages become one assistant message and their results the next user
    message, a call without a stored result (a crash in between) gets one saying so, and a
    result without its call is left out. Each call is sent under an id unique in the
    conversation (see :class:`_CallIds`): sessions written before ids were unique across
    processes hold the same ``c1`` once per process, and the APIs refuse a repeated id.
    """
    messages: list[Message] = []
    ids = _CallIds()
    calls: list[ToolCall] = []  # the calls since the last message, and their results
    results: dict[str, ToolResult] = {}
    open_calls: dict[str, str] = {}  # stored id → sent id, for calls still waiting

    def add(message: Message) -> None:
        if messages and messages[-1].role == message.role:
            previous = messages.pop()
            text = "\n".join(t for t in (previous.text, message.text) if t)
            message = Message(
                message.role,
                text,
                previous.tool_calls + message.tool_calls,
                previous.tool_results + message.tool_results,
            )
        messages.append(message)

    def close_calls() -> None:
        if not calls:
            return
        add(Message("assistant", tool_calls=tuple(calls)))
        missing = "error: no result was recorded"
        answered = tuple(results.get(c.id) or ToolResult(c.id, missing, True) for c in calls)
        add(Message("user", tool_results=answered))
        calls.clear()
        results.clear()
        open_calls.clear()

    for kind, payload in list(events)[-HISTORY_EVENTS:]:
        if kind == "user":
            close_calls()
            add(Message("user", str(payload.get("text", ""))))
        elif kind == "reply":
            close_calls()
            add(Message("assistant", str(payload.get("text", ""))))
        elif kind == "tool_call":
            stored = str(payload.get("call_id"))
            args = payload.get("args")
            call = ToolCall(
                ids.new(stored),
                safe_name(str(payload.get("tool"))),
                args if isinstance(args, dict) else {},
            )
            calls.append(call)
            open_calls[stored] = call.id  # a repeated id: its result is the newer call's
        elif kind == "tool_result":
            sent = open_calls.pop(str(payload.get("call_id")), None)
            if sent is None:
                continue
            if payload.get("ok"):
                content = text_for_model(
                    ToolOutcome(True, "", None, data=payload.get("data"), text=payload.get("text"))
                )
                results[sent] = ToolResult(sent, content)
            else:
                results[sent] = ToolResult(sent, f"error: {payload.get('error')}", True)
    close_calls()
    while messages and messages[0].role != "user":
        messages.pop(0)
    return messages


class _CallIds:
    """The ids a replayed conversation sends: the stored id, unless it was seen already in
    this conversation or is not one the APIs accept (``^[A-Za-z0-9_-]{1,64}$``); then one
    made from it, with a suffix that no other id in the conversation has."""

    def __init__(self, used: Iterable[str] = ()) -> None:
        self.used: set[str] = set(used)

    def new(self, stored: str) -> str:
        base = stored if _SAFE_ID.fullmatch(stored) else "call"
        candidate, n = base, 1
        while candidate in self.used:
            n += 1
            candidate = f"{base[:50]}_{n}"
        self.used.add(candidate)
        return candidate
