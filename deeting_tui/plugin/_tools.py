"""Read llm-tool.yaml: the tools a plugin offers the model, in OpenAI's function-calling shape.

Kept apart from the manifest checker because the YAML side has its own failure modes (syntax,
wrapper forms, nested JSON Schemas) and its own field notation (``[0].parameters``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from jsonschema import Draft202012Validator, SchemaError  # type: ignore[import-untyped, unused-ignore]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped, unused-ignore]

from deeting_tui.plugin._schema import field_path, human_errors, type_name, validator

__all__ = ["ParsedTools", "parse_tools"]

SCHEMA = "llm-tool.schema.json"


@dataclass
class ParsedTools:
    """The tools that passed, and ``(field, message)`` pairs for everything that did not."""

    tools: list[dict[str, Any]] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def parse_tools(text: str) -> ParsedTools:
    """Check every tool in the document; one bad tool does not hide problems in the others."""
    result = ParsedTools()
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        result.problems.append(("", _yaml_message(error)))
        return result
    for prefix, entry in _entries(document, result):
        tool = _unwrap(entry, prefix, result)
        if tool is not None:
            _check_tool(*tool, result)
    return result


def _yaml_message(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    problem = getattr(error, "problem", None) or str(error)
    return f"not valid YAML{where}: {problem}"


def _entries(document: object, result: ParsedTools) -> list[tuple[str, object]]:
    if isinstance(document, dict):
        return [("", document)]
    if isinstance(document, list):
        return [(f"[{index}]", entry) for index, entry in enumerate(document)]
    found = "an empty file" if document is None else type_name(document)
    wanted = "a tool (a mapping with name, description, parameters) or a list of tools"
    result.problems.append(("", f"must be {wanted}, not {found}"))
    return []


def _unwrap(entry: object, prefix: str, result: ParsedTools) -> tuple[str, dict[str, Any]] | None:
    """Accept OpenAI's ``{type: function, function: {...}}`` as well as the bare tool."""
    if not isinstance(entry, dict):
        result.problems.append(
            (
                prefix,
                f"must be a mapping with name, description and parameters, not {type_name(entry)}",
            )
        )
        return None
    if entry.get("type") != "function" or "function" not in entry:
        return prefix, entry
    for key in entry:
        if key not in ("type", "function"):
            result.problems.append((prefix, f"unknown key {key!r} (allowed: type, function)"))
    inner, inner_prefix = entry["function"], field_path(["function"], prefix)
    if not isinstance(inner, dict):
        result.problems.append((inner_prefix, f"must be a mapping, not {type_name(inner)}"))
        return None
    return inner_prefix, inner


def _check_tool(prefix: str, tool: dict[str, Any], result: ParsedTools) -> None:
    before = len(result.problems)
    errors = validator(SCHEMA, "#/$defs/tool").iter_errors(tool)
    result.problems.extend(human_errors(errors, prefix))
    parameters = tool.get("parameters")
    if isinstance(parameters, dict) and parameters.get("type") == "object":
        _check_parameters(parameters, field_path(["parameters"], prefix), result)
    name = tool.get("name")
    if isinstance(name, str) and any(t["name"] == name for t in result.tools):
        result.problems.append(
            (field_path(["name"], prefix), f"duplicate tool name {name!r}: each tool needs its own")
        )
    elif len(result.problems) == before:
        result.tools.append(tool)


def _check_parameters(parameters: dict[str, Any], prefix: str, result: ParsedTools) -> None:
    """The model is shown these schemas verbatim, so they must be valid JSON Schema themselves."""
    try:
        Draft202012Validator.check_schema(parameters)
    except SchemaError as error:
        worst = best_match([error]) or error
        where = field_path(worst.absolute_path, prefix)
        result.problems.append((where, f"not a valid JSON Schema: {worst.message}"))
