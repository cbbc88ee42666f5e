"""Renderer payload schemas: a plugin's ``data`` is checked before a renderer draws it.

A renderer (``renderers/NAME/``, docs/plugins.md#results-and-renderers) may ship ``schema.json``, a
JSON Schema for the payload it draws. Data that does not match becomes an error the user sees ("an
error card"), never a renderer crashing on a missing key; the model still gets the plugin's text.
Renderers without a schema, and names no folder provides, are not checked (the UI falls back to a
JSON view for those).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from deeting_tui.resources import core_renderers_dir

SCHEMA_FILE = "schema.json"
#: The core renderers' folders (in a checkout, or the copy inside an installed wheel).
CORE_RENDERERS = core_renderers_dir()


class PayloadSchemas:
    """Looks up and caches each renderer's payload validator.

    Two per schema: jsonschema-rs answers "does it fit?" (microseconds for a chart frame,
    where the pure-Python validator took milliseconds: a live stream is checked frame by
    frame, on the loop that draws the chat), and only data that does not fit is walked by
    jsonschema, whose messages name the path (and which every error test already reads)."""

    def __init__(self, folders: Iterable[Path] = (CORE_RENDERERS,)) -> None:
        self.folders = tuple(Path(f) for f in folders)

    def problem(self, renderer: str | None, data: Any) -> str | None:
        """Why ``data`` cannot be drawn by ``renderer``, or None when it can (or is unchecked)."""
        if not renderer or data is None:
            return None
        validator = self._validator(renderer)
        if validator is None:
            return None
        if isinstance(validator, str):
            return validator
        fast, full = validator
        if fast.is_valid(data):
            return None
        try:
            error = next(iter(sorted(full.iter_errors(data), key=lambda e: list(e.path))), None)
        except RecursionError:  # a message quoting a deeply nested value
            return f"data does not fit the '{renderer}' renderer: it is nested too deeply"
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "(the payload)"
        return f"data does not fit the '{renderer}' renderer: {where}: {error.message}"

    @functools.cache  # noqa: B019 - a few renderers, kept for the kernel's lifetime
    def _validator(self, renderer: str) -> Any:
        if "/" in renderer or renderer.startswith("."):
            return None
        for folder in self.folders:
            path = folder / renderer / SCHEMA_FILE
            if not path.is_file():
                continue
            import jsonschema  # lazy: only when some renderer ships a schema
            import jsonschema_rs

            try:
                schema = orjson.loads(path.read_bytes())
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
                fast = jsonschema_rs.validator_for(schema)
            except (
                OSError,
                orjson.JSONDecodeError,
                jsonschema.SchemaError,
                jsonschema_rs.ValidationError,
                ValueError,
            ) as exc:
                return f"the '{renderer}' renderer's {path} is broken: {exc}".splitlines()[0]
            return fast, cls(schema)
        return None
