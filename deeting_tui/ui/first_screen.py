"""What the chat's first screen says: what to try, the keys that matter, who answers.

A brand-new session shows this above the input line (``transcript.Welcome`` draws it); it
goes as the conversation starts, and a stored conversation never shows it. Everything to
show is gathered here, in one place, apart from how it is drawn:

- one line per plugin: something that works as typed (a trigger example from the plugin's
  kimai.json), or else a direct call of its first tool with the value left to fill in;
  plugins that could be added but are not installed (``Available``: the official ones a
  package bundles) come after, with their description;
- the keys (the app's and the chat's bindings: F1, F2, F3, Ctrl+P, Ctrl+Q);
- which provider answers, and for the offline one what that means and how to get a model.

Plugin strings (names, examples, descriptions) are neutralised (``one_line``) and drawn as
``Text``, never as markup: a plugin's ``[bold]`` or ``[link=…]`` shows as written. An
example the neutraliser would change is not offered (it would not work as typed).

It fits 80x24 whole: each line is kept within ``LINE_CHARS`` (what to type is never cut,
an example too long is passed over; the words after it are cut with "…"), and past
``PLUGIN_ROWS`` plugins the rest are counted ("…and N more").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from deeting_tui.terminal_text import one_line

if TYPE_CHECKING:
    from deeting_tui.kernel.assistant import ToolInfo

#: The columns a line may take in an 80-column terminal: the transcript's and the welcome's
#: padding (1 + 1 each side) and the scrollbar's gutter (2) take the rest.
LINE_CHARS = 72
#: Room for what to type; a longer example is passed over for a shorter one, or a call.
THING_CHARS = 40
#: Plugin lines shown at most (the last one says how many more there are, when there are):
#: with the other lines the welcome is 14 rows, and 80x24 leaves the transcript 17.
PLUGIN_ROWS = 6
#: The keys that matter, as the app binds them (app.py; Ctrl+P is Textual's command palette).
KEYS = (("F1", "help"), ("F2", "plugins"), ("F3", "sessions"), ("Ctrl+P", "palette"),
        ("Ctrl+Q", "quit"))  # fmt: skip


@dataclass(frozen=True)
class Available:
    """A plugin that can be added but is not installed (an official one in the package)."""

    name: str
    description: str


@dataclass(frozen=True)
class Thing:
    """One line to try: what to type (or press), and what it does."""

    thing: str
    what: str


@dataclass(frozen=True)
class FirstScreen:
    """Everything the first screen says, gathered by :func:`first_screen`."""

    plugins: tuple[Thing, ...]  # one a plugin, at most PLUGIN_ROWS
    more: int  # plugins left out of ``plugins``
    awaiting_consent: int
    installed: int  # plugins installed (in any state)
    provider: str
    model: str | None


def first_screen(
    tools: Sequence[ToolInfo],
    parameters: Mapping[str, Sequence[str]],
    *,
    installed: int,
    awaiting_consent: int,
    provider: str,
    model: str | None = None,
    available: Sequence[Available] = (),
) -> FirstScreen:
    """What to show: ``tools`` are the enabled tools (``Kernel.tool_infos``), ``parameters``
    each tool's parameter names that can be typed (required ones first), ``available`` the
    plugins not installed that could be, each shown with its description."""
    things = what_to_try(tools, parameters, available)
    shown, more = things, 0
    if len(things) > PLUGIN_ROWS:
        shown, more = things[: PLUGIN_ROWS - 1], len(things) - (PLUGIN_ROWS - 1)
    return FirstScreen(
        plugins=tuple(shown),
        more=more,
        awaiting_consent=awaiting_consent,
        installed=installed,
        provider=one_line(provider) or "offline",
        model=one_line(model) if model else None,
    )


def what_to_try(
    tools: Sequence[ToolInfo],
    parameters: Mapping[str, Sequence[str]],
    available: Sequence[Available] = (),
) -> list[Thing]:
    """One line per enabled plugin (in the order of ``tools``), then one per available one."""
    by_plugin: dict[str, list[ToolInfo]] = {}
    for info in tools:
        by_plugin.setdefault(info.plugin, []).append(info)
    things = []
    for plugin, infos in by_plugin.items():
        thing = _plugin_thing(plugin, infos, parameters)
        if thing is not None:
            things.append(thing)
    installed = set(by_plugin)
    for offer in available:
        name = one_line(offer.name)
        if offer.name in installed or not name:
            continue
        about = one_line(offer.description)
        what = f"not installed, F2 adds it: {about}" if about else "not installed, F2 adds it"
        things.append(_fitted(name[:THING_CHARS], what))
    return things


def _plugin_thing(
    plugin: str, infos: list[ToolInfo], parameters: Mapping[str, Sequence[str]]
) -> Thing | None:
    """A trigger example that works as typed, else a call of the first tool to fill in."""
    who = _possessive(one_line(plugin))
    for info in infos:
        for example in info.trigger_examples:
            if one_line(example) == example and 0 < len(example) <= THING_CHARS:
                return _fitted(example, f"goes straight to {who} {one_line(info.name)} tool")
    for info in infos:
        name = info.name
        if one_line(name) != name or len(name) + 1 > THING_CHARS:
            continue  # a name that cannot be typed as is is not offered
        names = parameters.get(name, [])
        call = f"/{name} {names[0]}=…" if names else f"/{name}"
        if len(call) > THING_CHARS:
            call = f"/{name}"
        return _fitted(call, f"calls {who} {name} tool (→ or Tab completes)")
    return None


def _possessive(name: str) -> str:
    """calc's, notes' (as the chat's other texts say it)."""
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def _fitted(thing: str, what: str) -> Thing:
    """``what`` cut with "…" so that the line (``  thing — what``) fits ``LINE_CHARS``."""
    room = LINE_CHARS - len(f"  {thing} — ")
    if len(what) > room:
        what = what[: max(room - 1, 0)].rstrip() + "…"
    return Thing(thing, what)


def provider_lines(screen: FirstScreen) -> list[str]:
    """Who answers what is not a trigger or a /TOOL call, and for the offline assistant, what
    that means and how to get a model instead (each line within ``LINE_CHARS``)."""
    if screen.provider == "offline":
        return [
            "Answering: the offline assistant — no model, no network. Triggers and",
            "/TOOL calls work; other text gets the list of tools. For a model, quit,",
            "set ANTHROPIC_API_KEY or OPENAI_API_KEY and start deeting again (F1).",
        ]
    model = f" ({screen.model})" if screen.model else ""
    line = f"Answering: {screen.provider}{model} — it may call the tools of the plugins."
    if len(line) > LINE_CHARS:
        line = f"Answering: {screen.provider}{model}"
        line = line if len(line) <= LINE_CHARS else line[: LINE_CHARS - 1] + "…"
    return [line]


def no_plugin_lines() -> list[Thing]:
    """When nothing is installed: how to get a plugin, in the chat and from a shell."""
    return [
        Thing("F2, then i", "install a plugin: a registry name, a folder or a .zip"),
        Thing("deeting registry sync", "then: deeting plugin install NAME (in a shell)"),
    ]
