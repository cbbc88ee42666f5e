"""The renderer catalog: a plugin's ``data`` drawn as a Rich renderable, by renderer name.

Plugins send data, the core owns the look (docs/plugins.md#results-and-renderers). Each face here is
a pure function from payload and width to a Rich renderable; Rich only, no Textual, so headless mode
prints the same cards the chat shows. ``render`` is the safe entry: it picks the face and never
raises.

    from deeting_tui.render import render
    console.print(render("table", {"columns": ["a"], "rows": [[1]]}))

Each core renderer's payload schema and example live in ``renderers/NAME/`` (the kernel checks
data against the schema before the UI draws it).
"""

from __future__ import annotations

from .catalog import FACES, RENDERERS_DIR, Card, Face, face, names, render

__all__ = ["FACES", "RENDERERS_DIR", "Card", "Face", "face", "names", "render"]
