"""Each face's own rules: the forms it accepts, what it shows, how it narrows."""

from __future__ import annotations

from collections.abc import Callable
from io import StringIO

from rich.console import Console

from deeting_tui.render import render
from deeting_tui.render.weather import compass, condition_words, icon

Draw = Callable[..., str]


def test_text_keeps_lines_and_reads_no_markup(draw: Draw) -> None:
    assert draw(render("text", {"text": "one\ntwo [b]x[/b]"})).splitlines() == [
        "one",
        "two [b]x[/b]",
    ]
    assert draw(render("text", "bare string")).strip() == "bare string"
    assert draw(render("text", {"text": "   "})).strip() == "(empty)"


def test_long_text_is_cut_with_a_mark(draw: Draw) -> None:
    text = draw(render("text", {"text": "x" * 30_000}), width=100)
    assert text.count("x") == 19_999 and "…" in text


def test_markdown_renders_structure(draw: Draw) -> None:
    text = draw(
        render("markdown", "# Title\n\n1. first\n2. **second**\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    )
    assert "Title" in text and "1 first" in text and "second" in text and "**" not in text


def test_table_rows_as_objects_take_their_keys_as_columns(draw: Draw) -> None:
    data = {"rows": [{"name": "calc", "version": "1.0.0"}, {"name": "notes", "enabled": True}]}
    lines = draw(render("table", data)).splitlines()
    assert "name" in lines[1] and "version" in lines[1] and "enabled" in lines[1]
    assert "1.0.0" in lines[3] and "✓" in lines[4]


def test_table_short_and_long_rows_and_nested_cells(draw: Draw) -> None:
    data = {"columns": ["a", "b"], "rows": [[1], [1, 2, 3], [{"x": [1, 2]}, None]]}
    text = draw(render("table", data))
    assert '{"x": [1, 2]}' in text and "3" in text and "—" in text


def test_numeric_columns_are_right_aligned(draw: Draw) -> None:
    lines = draw(render("table", {"columns": ["n", "word"], "rows": [[1, "a"], [1000, "b"]]}))
    row = lines.splitlines()[3]
    assert "    1 │" in row or "   1 │" in row


def test_empty_table_says_so(draw: Draw) -> None:
    text = draw(render("table", {"columns": ["id", "text"], "rows": []}))
    assert "id" in text and "(no rows)" in text
    assert "(no rows)" in draw(render("table", {"rows": []}))


def test_many_rows_are_capped_with_a_count(draw: Draw) -> None:
    text = draw(render("table", {"columns": ["n"], "rows": [[i] for i in range(250)]}))
    assert "199" in text and " 200 " not in text and "… 50 more rows" in text


def test_a_wide_table_on_a_narrow_screen_becomes_records(draw: Draw) -> None:
    data = {"columns": ["id", "created", "text"], "rows": [[1, "2026-11-25T14:03", "buy milk"]]}
    wide = draw(render("table", data), width=80)
    assert "╭" in wide
    narrow = draw(render("table", data), width=24)
    assert "╭" not in narrow
    assert "created 2026-11-25T14:03" in narrow and "text    buy milk" in narrow


def test_key_value_forms(draw: Draw) -> None:
    plain = draw(render("key-value", {"expression": "2 + 2", "result": 4}))
    assert [line.rstrip() for line in plain.splitlines()] == ["expression  2 + 2", "result      4"]
    listed = draw(render("key-value", {"title": "T", "items": [{"key": "k", "value": None}]}))
    assert [line.rstrip() for line in listed.splitlines()] == ["T", "k  —"]
    mapped = draw(render("key-value", {"items": {"a": 1.5, "b": [1, 2]}}))
    assert "1.5" in mapped and "[1, 2]" in mapped
    assert "(nothing to show)" in draw(render("key-value", {}))
    # without items, a "title" key is just a pair
    assert "title" in draw(render("key-value", {"title": "x", "n": 1}))


def test_weather_codes_words_icons() -> None:
    assert condition_words(63, None) == "Rain" and condition_words(63, "Drizzly") == "Drizzly"
    assert icon(0, None) == "☀️" and icon(0, None, is_day=0) == "🌙" and icon(0, None, False) == "🌙"
    assert icon(None, "Heavy snow later") == "🌨️" and icon(None, None) == "🌡️"
    assert icon(1234, "thunder") == "⛈️"
    assert [compass(d) for d in (0, 44, 90, 181, 315, 359, -90)] == [
        "N",
        "NE",
        "E",
        "S",
        "NW",
        "N",
        "W",
    ]


def test_weather_minimal_and_fahrenheit(draw: Draw) -> None:
    text = draw(render("weather-cards", {"location": "Nome", "current": {"temperature": -12}}))
    assert "Nome" in text and "-12°C" in text
    data = {
        "location": "Austin, TX",
        "current": {"temperature": 91.4, "unit": "°F", "condition": "Sunny", "wind": "calm"},
        "daily": [
            {"date": "2026-07-01", "min": None, "max": 99},
            {"date": "July 2", "min": 75, "max": 98},
        ],
    }
    text = draw(render("weather-cards", data))
    assert "91.4°F" in text and "Sunny" in text and "wind calm" in text
    assert "Wed 01 Jul" in text and "July 2" in text and "—" in text and "99°" in text


def test_weather_narrow_has_no_frame(draw: Draw) -> None:
    data = {
        "location": "Oslo",
        "current": {"temperature": 1},
        "daily": [{"date": "2026-01-01", "min": -3, "max": 2}],
    }
    narrow = draw(render("weather-cards", data), width=30)
    assert narrow.splitlines()[0].strip() == "Oslo" and "╭" not in narrow
    assert "Thu 01" in narrow and "-3°" in narrow


def test_search_cards(draw: Draw) -> None:
    data = {
        "results": [
            {
                "title": "A",
                "url": "https://www.example.com/a/",
                "snippet": "one\n  two",
                "date": "2026",
            },
            {"title": "", "url": "javascript:alert(1)"},
        ]
    }
    text = draw(render("search-cards", data))
    assert "1. A" in text and "example.com/a · 2026" in text and "one two" in text
    assert "2. (untitled)" in text and "javascript:alert(1)" in text
    assert "No results." in draw(render("search-cards", {"query": "zzz", "results": []}))


def test_search_links_only_for_web_addresses() -> None:
    def written(url: str) -> str:
        out = StringIO()
        console = Console(file=out, width=80, force_terminal=True, color_system="truecolor")
        console.print(render("search-cards", {"results": [{"title": "T", "url": url}]}))
        return out.getvalue()

    assert "\x1b]8;" in written("https://a.example/")  # OSC 8: a terminal hyperlink
    assert "\x1b]8;" not in written("file:///etc/passwd")


def test_progress(draw: Draw) -> None:
    assert "0%" in draw(render("progress", {"fraction": 0}))
    assert "99%" in draw(render("progress", {"fraction": 0.999}))  # not done until done
    assert "100%" in draw(render("progress", {"fraction": 1, "message": ""}))
    busy = draw(render("progress", {"fraction": None, "message": "thinking"}))
    assert "╌" in busy and "thinking" in busy and "%" not in busy
    assert "╌" in draw(render("progress", {"fraction": float("nan")}))
    assert "0%" in draw(render("progress", {"fraction": -3}))


def test_error_and_notice(draw: Draw) -> None:
    text = draw(render("error", {"message": "boom", "title": "Install failed"}))
    assert "Install failed" in text and "✗ boom" in text and "╭" in text
    assert "╭" not in draw(render("error", {"message": "boom"}), width=20)
    assert draw(render("notice", {"text": "saved", "level": "success"})).strip() == "✓ saved"
    assert draw(render("notice", {"text": "hm", "level": "odd"})).strip().endswith("hm")


def test_an_mcp_app_card_says_it_is_an_app_shows_its_text_and_how_to_open_it() -> None:
    from io import StringIO

    from rich.console import Console

    from deeting_tui.render import render

    data = {
        "uri": "ui://clock/app.html",
        "html": "<script>alert(1)</script>",
        "result": {"content": [{"type": "text", "text": "it is \x1b[31mnoon\x1b[0m"}]},
    }
    out = StringIO()
    Console(file=out, width=80, color_system=None).print(render("mcp-app", data))
    text = out.getvalue()
    assert "interactive app ui://clock/app.html" in text
    assert "noon" in text and "\x1b" not in text  # the server's escape is neutralised
    assert "alert" not in text  # the HTML is for the browser only
    assert "deeting view" in text
    assert max(len(line) for line in text.splitlines()) <= 80
