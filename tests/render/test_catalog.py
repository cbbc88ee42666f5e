"""The catalog as a whole: every face has a schema and an example that fit each other and draw;
odd data, unknown renderers and missing data never raise; the kernel's check agrees."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from deeting_tui.kernel.renderers import CORE_RENDERERS, PayloadSchemas
from deeting_tui.render import FACES, RENDERERS_DIR, Card, Face, face, names, render

Draw = Callable[..., str]
NAMES = names()


def _load(name: str, file: str) -> Any:
    return json.loads((RENDERERS_DIR / name / file).read_text(encoding="utf-8"))


#: Words each example's card must show (the values a reader came for).
EXPECTED = {
    "text": ["Disk usage of /home", "~/Videos (18.9 GB)"],
    "markdown": ["Release notes", "Faster start-up", "deeting plugin install weather"],
    "table": ["Notes", "created", "Buy oat milk", "winter tyres", "2026-11-26T09:05"],
    "key-value": ["Timer #3", "label", "tea", "15:42:10", "✗"],
    "weather-cards": ["Berlin, Germany", "7.3°C", "Partly cloudy", "81%", "Wed 25 Nov", "80%"],
    "search-cards": ["textual python tui", "1. Textual", "github.com/Textualize/rich", "GitHub"],
    "chart": ["Berlin, next 7 days", "°C", "Wed", "Tue", "max", "min"],
    "progress": ["42%", "Downloading weather 1.2.3"],
    "error": ["permission 'network' not granted", "deeting plugin grant weather network"],
    "notice": ["Timer #1 (tea) is done"],
    "mcp-app": [
        "interactive app",
        "ui://clock/app.html",
        "Europe/Berlin: 2026-12-08",
        "deeting view",
    ],
}

#: For each renderer, a payload its schema must reject (and the kernel with it).
WRONG = {
    "text": {"text": 5},
    "markdown": {"markdown": ["not", "text"]},
    "table": {"columns": ["a"], "rows": "a,b"},
    "key-value": {"items": 5},
    "weather-cards": {"location": "Berlin", "current": {"temperature": "warm"}},
    "search-cards": {"results": [{"url": "https://example.com"}]},
    "chart": {"kind": "pie", "series": [{"values": [1, 2]}]},
    "progress": {"fraction": 1.5},
    "error": {"hint": "no message"},
    "notice": {"level": "info"},
    "mcp-app": {"uri": "https://x", "html": "", "result": {}},
}


def test_names_are_the_faces_and_the_folders() -> None:
    folders = sorted(
        p.name for p in RENDERERS_DIR.iterdir() if p.is_dir() and p.name[0] not in "._"
    )
    assert NAMES == sorted(FACES) == folders
    assert set(EXPECTED) == set(WRONG) == set(NAMES)
    assert RENDERERS_DIR == CORE_RENDERERS  # the kernel checks the schemas the faces document
    assert isinstance(face("table"), Face) and face("nope") is None


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12_with_descriptions(name: str) -> None:
    schema = _load(name, "schema.json")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["description"]
    properties = schema.get("properties") or schema["then"]["properties"]
    assert all("description" in each for each in properties.values())
    assert (FACES[name].folder / "schema.json").is_file()
    assert (FACES[name].folder / "example.json").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_example_fits_its_schema_and_draws_its_values(name: str, draw: Draw) -> None:
    example = _load(name, "example.json")
    jsonschema.Draft202012Validator(_load(name, "schema.json")).validate(example)
    text = draw(render(name, example))
    assert "could not draw" not in text and "raw data" not in text
    for word in EXPECTED[name]:
        assert word in text, f"{name}: {word!r} missing from\n{text}"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("width", [80, 60, 40, 24, 12])
def test_examples_draw_at_any_width_within_it(name: str, width: int, draw: Draw) -> None:
    text = draw(render(name, _load(name, "example.json")), width=width)
    assert "could not draw" not in text
    assert max(len(line) for line in text.splitlines()) <= width


@pytest.mark.parametrize("name", NAMES)
def test_the_kernel_accepts_each_example_and_rejects_wrong_data(name: str) -> None:
    schemas = PayloadSchemas()
    assert schemas.problem(name, _load(name, "example.json")) is None
    problem = schemas.problem(name, WRONG[name])
    assert problem is not None and problem.startswith(f"data does not fit the '{name}' renderer")


@pytest.mark.parametrize("name", NAMES)
def test_wrong_data_draws_the_json_view_with_a_note(name: str, draw: Draw) -> None:
    text = draw(render(name, WRONG[name]))
    if name == "progress":  # out of range is clamped, not refused: the bar is still right
        assert "100%" in text
        return
    assert f"⚠ the '{name}' renderer could not draw this:" in text
    assert json.dumps(WRONG[name], ensure_ascii=False) in text


ODD: list[Any] = [
    None,
    0,
    -1,
    True,
    math.nan,
    math.inf,
    10**5000,
    "just a string",
    "",
    [],
    [1, 2, 3],
    {},
    {"unexpected": "shape"},
    {"text": None, "rows": None, "series": None, "results": None},
    {"items": [1, 2]},
    {"rows": [1, 2], "columns": [None]},
    {"series": [{"values": ["a", None]}]},
    {"series": [{"values": [math.nan] * 3}], "kind": "bar"},
    {"location": 5, "current": []},
    {"location": "x", "current": {"temperature": math.nan}, "daily": [None]},
    {"results": [None]},
    {"fraction": "half"},
    {"message": {"nested": True}},
    {"text": "x" * 1_000_000},
    {"rows": [[i, "y" * 10_000] for i in range(5_000)]},
    b"bytes",
    object(),
    {1: "int key", (1, 2): "tuple key"},
]


@pytest.mark.parametrize("name", [*NAMES, "unknown-renderer", None])
@pytest.mark.parametrize("data", ODD, ids=lambda d: type(d).__name__)
def test_odd_data_never_raises(name: str | None, data: Any, draw: Draw) -> None:
    text = draw(render(name, data), width=60)
    assert text.strip()
    assert max(len(line) for line in text.splitlines()) <= 60


def test_a_face_that_raises_falls_back_to_json(draw: Draw) -> None:
    def broken(data: Any, width: int) -> str:
        raise KeyError("boom")

    card = Card(Face("broken", broken, "always fails"), {"a": [1, 2]})
    text = draw(card)
    assert text.splitlines()[0] == "⚠ the 'broken' renderer could not draw this: KeyError: 'boom'"
    assert '{"a": [1, 2]}' in text


def test_rich_failing_on_what_a_face_built_falls_back_too(draw: Draw) -> None:
    class Exploding:
        def __rich_console__(self, console: Any, options: Any) -> Any:
            raise RuntimeError("cannot draw")

    text = draw(Card(Face("odd", lambda data, width: Exploding(), "odd"), [1]))
    assert "could not draw this: RuntimeError: cannot draw" in text and "[1]" in text


def test_unknown_renderer_and_no_renderer_show_json(draw: Draw) -> None:
    data = {"city": "Oslo", "temps": [1, 2, 3]}
    unknown = draw(render("holo-cards", data))
    assert unknown.splitlines()[0] == "no 'holo-cards' renderer here; the raw data:"
    assert '"city": "Oslo"' in unknown
    plain = draw(render(None, data))
    assert plain.strip() == '{"city": "Oslo", "temps": [1, 2, 3]}'
    assert draw(render(None, "hello")).strip() == "hello"
    assert draw(render(["not", "a", "name"], data)).strip() == plain.strip()  # type: ignore[arg-type]


def test_no_data_shows_the_text_or_says_so(draw: Draw) -> None:
    assert draw(render("table", None, text="No notes yet.")).strip() == "No notes yet."
    assert draw(render(None, None)).strip() == "(no data)"


def test_width_caps_the_card_and_rich_width_applies_without_it(draw: Draw) -> None:
    data = {"columns": ["a", "b"], "rows": [["x" * 50, "y" * 50]]}
    assert max(map(len, draw(render("table", data, width=30), width=80).splitlines())) <= 30
    assert max(map(len, draw(render("table", data), width=50).splitlines())) <= 50
    card = render("table", data)
    assert isinstance(card, Card) and card.renderer == "table"


def test_plugin_text_cannot_drive_the_terminal() -> None:
    out = StringIO()
    console = Console(file=out, width=80, force_terminal=True, color_system="truecolor")
    hostile = "a\x1b[2J\x1b]0;pwned\x07b\x9bc[bold]d"
    for name, data in [
        ("text", {"text": hostile}),
        ("markdown", {"markdown": hostile}),
        ("table", {"rows": [[hostile]]}),
        ("key-value", {hostile: hostile}),
        ("search-cards", {"results": [{"title": hostile, "url": hostile}]}),
        ("notice", {"text": hostile}),
        (None, {"x": hostile}),
    ]:
        console.print(render(name, data))
    written = out.getvalue()
    assert "\x1b[2J" not in written and "\x1b]0;" not in written and "\x9b" not in written
    assert "\x07" not in written
    assert "[bold]d" in written  # plugin text is never read as Rich markup


def test_render_imports_no_textual() -> None:
    code = "import sys, deeting_tui.render\nprint('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_faces_are_pure_functions_of_payload_and_width(draw: Draw) -> None:
    for name in NAMES:
        example = _load(name, "example.json")
        before = json.dumps(example, sort_keys=True)
        first = draw(FACES[name].draw(example, 80))
        assert first == draw(FACES[name].draw(example, 80))
        assert json.dumps(example, sort_keys=True) == before  # the payload is not changed


def test_renderers_folder_is_the_one_beside_the_package() -> None:
    assert Path(__file__).resolve().parents[2] / "renderers" == RENDERERS_DIR
