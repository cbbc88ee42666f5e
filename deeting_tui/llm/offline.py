"""The offline assistant: no model, no network — it explains what the installed tools are.

The kernel already routes ``/TOOL key=value`` lines and trigger matches straight to plugins
for every provider, so what reaches this assistant is free text (answered with a help
listing the tools and how to call them) or a slash command naming no installed tool.
"""

from __future__ import annotations

from deeting_tui.errors import Fix, Hint
from deeting_tui.kernel.arguments import split_command
from deeting_tui.kernel.assistant import AssistantTurn, ToolInfo
from deeting_tui.terminal_text import quote_prefix


class OfflineAssistant:
    name = "offline"

    async def respond(self, turn: AssistantTurn) -> None:
        command = split_command(turn.text)
        if command is not None and command[0] != "help":
            known = ", ".join(f"/{t.name}" for t in turn.tools) or "none installed"
            turn.fail(f"unknown tool '/{quote_prefix(command[0])}' — known tools: {known}")
            return
        turn.reply(help_text(turn.tools), hint=None if turn.tools else Hint(Fix.INSTALL))


def help_text(tools: list[ToolInfo]) -> str:
    if not tools:
        # The way to install one comes as the reply's hint: the chat says which key.
        return "I'm the offline assistant and no plugins are enabled yet: install one"
    # Markdown that reads as plain text too: the chat renders it, --script prints it.
    lines = [
        "I'm the offline assistant: I don't understand free text, but I can run tools.",
        "Call one with `/TOOL key=value …`, or write a message that matches a trigger:",
        "",
    ]
    for tool in tools:
        params = tool.parameters.get("properties") or {}
        required = set(tool.parameters.get("required") or [])
        usage = " ".join(f"{name}=…" if name in required else f"[{name}=…]" for name in params)
        call = f"/{tool.name} {usage}".rstrip()
        lines.append(f"- {_code(call)} — {_first_line(tool.description)} ({tool.plugin})")
        if tool.trigger_examples:
            lines.append("  - or type: " + ", ".join(_code(e) for e in tool.trigger_examples))
        elif tool.trigger:  # a plugin whose manifest gives no examples: its pattern, named so
            lines.append(f"  - or type a message matching the pattern {_code(tool.trigger)}")
    return "\n".join(lines)


def _code(text: str) -> str:
    """A Markdown code span, so a regex's ``<name>`` or ``*`` is shown, not interpreted."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _first_line(text: str) -> str:
    """The first sentence of the first line: a help line, not the model's whole brief."""
    lines = text.strip().splitlines()
    first = lines[0] if lines else ""
    end = first.find(". ")
    return first[: end + 1] if end >= 0 else first
