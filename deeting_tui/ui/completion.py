"""Completion for the chat's input line: slash commands, tool names, argument names, paths.

``complete`` is a pure function over the text typed so far and what exists now (commands,
tools with their parameters, the file system for ``/image``), so it is tested without a
screen; ``SlashSuggester`` hands its answer to Textual's Input, which shows it greyed out
after the cursor and accepts it with → (or End).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from textual.suggester import Suggester

#: The chat's own commands, in the order /help lists them.
CHAT_COMMANDS = ("/help", "/plugins", "/sessions", "/new", "/image ")

#: A tool's name and the names of its parameters, required ones first.
ToolParameters = Mapping[str, Sequence[str]]


def complete(
    text: str,
    tools: ToolParameters,
    *,
    commands: Iterable[str] = CHAT_COMMANDS,
    list_dir: Callable[[Path], Iterable[str]] | None = None,
) -> str | None:
    """The whole line as it would read completed, or None when there is nothing to add.

    Only slash lines complete: free text is a message to the assistant.
    """
    if not text.startswith("/"):
        return None
    head, space, rest = text.partition(" ")
    if not space:
        return _first_extension(text, [*commands, *(f"/{name} " for name in sorted(tools))])
    name = head[1:]
    if head == "/image":
        return _path_completion(text, rest, list_dir or _list_dir)
    if name in tools:
        return _argument_completion(text, rest, tools[name])
    return None


def _first_extension(text: str, candidates: Iterable[str]) -> str | None:
    for candidate in candidates:
        if candidate.startswith(text) and candidate != text:
            return candidate
    return None


def _argument_completion(text: str, rest: str, parameters: Sequence[str]) -> str | None:
    """Offer the next parameter not given yet (``key=``), or finish a key being typed."""
    words = rest.split(" ")
    given = {word.partition("=")[0] for word in words[:-1] if "=" in word}
    typing = words[-1]
    if "=" in typing:
        return None  # a value is being typed: values are the user's
    for parameter in parameters:
        if parameter not in given and parameter.startswith(typing):
            return text + parameter[len(typing) :] + "="
    return None


def _path_completion(
    text: str, typed: str, list_dir: Callable[[Path], Iterable[str]]
) -> str | None:
    folder_text, _, stem = typed.rpartition("/")
    if typed.startswith("/") and not folder_text:
        folder_text = "/"
    folder = Path(os.path.expanduser(folder_text or "."))
    try:
        names = sorted(n for n in list_dir(folder) if n.startswith(stem) and n != stem)
    except OSError:
        return None
    if not stem:
        names = [n for n in names if not n.startswith(".")]  # hidden files only when asked
    if not names:
        return None
    choice = names[0]
    suffix = "/" if (folder / choice).is_dir() else ""
    return text + choice[len(stem) :] + suffix


def _list_dir(folder: Path) -> list[str]:
    return os.listdir(folder)


class SlashSuggester(Suggester):
    """Asks ``tools()`` on every keystroke, so plugins enabled meanwhile complete too."""

    def __init__(self, tools: Callable[[], ToolParameters]) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self._tools = tools

    async def get_suggestion(self, value: str) -> str | None:
        return complete(value, self._tools())
