"""The tool index: which enabled plugin serves which tool, and argument validation.

Tool names are global (the model and ``/TOOL`` see one flat list), so a second plugin that
brings an existing name is refused at enable time instead of shadowing the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deeting_tui.errors import DeetingError, Fix, Hint
from deeting_tui.plugin.manifest import PluginSpec, ToolSpec
from deeting_tui.terminal_text import quote_prefix

from .assistant import ToolInfo

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

#: How much of one schema violation's wording an error line keeps.
PROBLEM_CHARS = 200


class ToolConflict(DeetingError):
    """Two enabled plugins bring a tool of the same name; the hint disables the first."""


@dataclass
class ToolEntry:
    plugin: str
    spec: ToolSpec
    info: ToolInfo
    _validator: Draft202012Validator | None = field(default=None, repr=False)

    @property
    def validator(self) -> Draft202012Validator:
        """Made at the tool's first call: jsonschema and a validator per tool are not what a
        start with hundreds of plugins should wait for."""
        if self._validator is None:
            from jsonschema import Draft202012Validator

            self._validator = Draft202012Validator(self.spec.parameters)
        return self._validator


class ToolIndex:
    def __init__(self) -> None:
        self._tools: dict[str, ToolEntry] = {}

    def add_plugin(self, spec: PluginSpec) -> None:
        for tool in spec.tools:
            owner = self._tools.get(tool.name)
            if owner is not None and owner.plugin != spec.name:
                raise ToolConflict(
                    f"'{spec.name}' brings tool '{tool.name}', which '{owner.plugin}' already "
                    "provides — disable one of them",
                    Hint(Fix.DISABLE, owner.plugin),
                )
        trigger_tool = spec.trigger.tool if spec.trigger else None
        for tool in spec.tools:
            routed = spec.trigger if spec.trigger and tool.name == trigger_tool else None
            info = ToolInfo(
                name=tool.name,
                plugin=spec.name,
                description=tool.description,
                parameters=tool.parameters,
                trigger=routed.regex if routed else None,
                trigger_examples=routed.examples if routed else (),
                plugin_description=spec.description,
            )
            self._tools[tool.name] = ToolEntry(spec.name, tool, info)

    def remove_plugin(self, name: str) -> None:
        for tool in [t for t, e in self._tools.items() if e.plugin == name]:
            del self._tools[tool]

    def get(self, tool: str) -> ToolEntry | None:
        return self._tools.get(tool)

    def infos(self) -> list[ToolInfo]:
        return [self._tools[name].info for name in sorted(self._tools)]

    def names(self) -> list[str]:
        return sorted(self._tools)


def warm_validation() -> None:
    """Import jsonschema and run one validation, off the event loop, while the kernel waits
    for nothing else: the first tool call of a session then pays none of it (about 80 ms,
    most of a lazily started plugin's first call)."""
    from jsonschema import Draft202012Validator

    list(Draft202012Validator({"type": "object"}).iter_errors({}))


def argument_problems(entry: ToolEntry, args: dict[str, Any]) -> list[str]:
    """Every schema violation, each as 'where: what'. The schema's wording quotes the value
    (``'…' is not of type 'integer'``), so each is cut to a short prefix: a 10 MB argument
    must not become a 10 MB error line."""
    problems = []
    for error in sorted(entry.validator.iter_errors(args), key=lambda e: list(e.path)):
        where = quote_prefix(".".join(str(p) for p in error.path))
        message = quote_prefix(error.message, PROBLEM_CHARS)
        problems.append(f"{where}: {message}" if where else message)
    return problems
