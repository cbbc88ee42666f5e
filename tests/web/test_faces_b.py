"""The table, search-cards and weather-cards browser faces, drawn in a real Chromium under the
renderer CSP: what they show, how they sort and scroll, and what hostile payloads do to them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import browser  # noqa: F401 (a fixture)

from web.faces_b_support import ROOT, Face, face_server, open_face  # noqa: F401 (a fixture)

HOSTILE = "\u202eevil\u202c\x1b[31mred\x07\u2066x\u2069"  # bidi override, ESC, BEL, isolates
CONTROLS = ("\u202e", "\u202c", "\x1b", "\x07", "\u2066", "\u2069")


def example(name: str) -> Any:
    return json.loads((ROOT / "renderers" / name / "example.json").read_text(encoding="utf-8"))


@pytest.fixture
def table(browser: Any, face_server: str) -> Iterator[Face]:  # noqa: F811
    yield from open_face(browser, face_server, "table")


@pytest.fixture
def narrow_table(browser: Any, face_server: str) -> Iterator[Face]:  # noqa: F811
    yield from open_face(browser, face_server, "table", width=360)


def body_text(face: Face) -> str:
    return str(face.page.evaluate("document.body.innerText"))


def cells(face: Face) -> list[list[str]]:
    """The drawn (non-spacer) rows' cell texts, top to bottom."""
    return face.page.evaluate(
        "[...document.querySelectorAll('tbody tr:not(.spacer)')]"
        ".map(tr => [...tr.children].map(td => td.textContent))"
    )


def big_table(count: int) -> dict[str, Any]:
    return {
        "title": "Big",
        "columns": ["id", "name", "score"],
        "rows": [[i, f"row {i:05d}", (i * 7919) % 1000 if i % 10 else None] for i in range(count)],
    }


def test_table_draws_the_example_in_both_themes(table: Face) -> None:
    for theme in ("light", "dark"):
        assert table.draw(example("table"), theme) >= 1
        assert table.page.evaluate("document.documentElement.dataset.theme") == theme
    assert table.page.evaluate("document.body.dataset.updates") == "2"
    assert table.page.locator(".tbl-title").text_content() == "Notes"
    headers = table.page.locator("th").all_text_contents()
    assert headers == ["id", "created", "text"]
    assert cells(table)[1] == ["2", "2026-11-25T15:20", "Call the garage about the winter tyres"]
    assert cells(table)[2][2] == "—"  # null
    # numbers right-aligned, text left
    align = table.page.evaluate(
        "[...document.querySelector('tbody tr:not(.spacer)').children]"
        ".map(td => getComputedStyle(td).textAlign)"
    )
    assert align == ["right", "left", "left"]
    assert table.errors == []


def test_table_of_10000_rows_keeps_the_dom_small_and_scrolls_to_the_end(table: Face) -> None:
    table.draw(big_table(10_000))
    count = table.page.evaluate("document.querySelectorAll('tr').length")
    assert count < 120, count
    assert table.page.locator(".tbl-count").text_content() == "10,000 rows"
    table.page.evaluate(
        "(() => { const s = document.querySelector('.tbl-scroll');"
        " s.scrollTop = s.scrollHeight; })()"
    )
    table.page.wait_for_function(
        "() => [...document.querySelectorAll('tbody td')]"
        ".some(td => td.textContent === 'row 09999')"
    )
    # the last row is inside the scroll box's visible area, not only in the DOM
    visible = table.page.evaluate(
        """(() => {
          const s = document.querySelector('.tbl-scroll').getBoundingClientRect();
          const td = [...document.querySelectorAll('tbody td')]
            .find(t => t.textContent === 'row 09999');
          const r = td.getBoundingClientRect();
          return r.top >= s.top && r.bottom <= s.bottom + 1;
        })()"""
    )
    assert visible
    assert table.page.evaluate("document.querySelectorAll('tr').length") < 120
    assert table.errors == []


def test_table_sorts_by_a_column_numbers_numerically_nulls_last_stable(table: Face) -> None:
    payload = {
        "columns": ["name", "n"],
        "rows": [["b", 10], ["a", None], ["c", 9], ["d", 10], ["e", 100], ["F", 2]],
    }
    table.draw(payload)
    header = table.page.locator("th", has_text="n").last
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "ascending"
    assert [row[0] for row in cells(table)] == ["F", "c", "b", "d", "e", "a"]
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "descending"
    assert [row[0] for row in cells(table)] == ["e", "b", "d", "c", "F", "a"]  # ties keep order
    header.locator("button").click()
    assert header.get_attribute("aria-sort") == "none"
    assert [row[0] for row in cells(table)] == ["b", "a", "c", "d", "e", "F"]
    name = table.page.locator("th").first
    name.locator("button").click()
    assert [row[0] for row in cells(table)] == ["a", "b", "c", "d", "e", "F"]  # locale, not ASCII
    assert name.get_attribute("aria-sort") == "ascending"
    assert header.get_attribute("aria-sort") == "none"


def test_table_sorts_10000_rows_and_a_stream_frame_keeps_sort_and_scroll(table: Face) -> None:
    table.draw(big_table(10_000))
    score = table.page.locator("th", has_text="score").locator("button")
    score.click()
    score.click()  # descending: the highest scores first, nulls still last
    first = cells(table)[0]
    assert first[2] == "999", first
    table.page.evaluate("document.querySelector('.tbl-scroll').scrollTop = 5000")
    table.page.wait_for_function("() => document.querySelector('.tbl-scroll').scrollTop === 5000")
    frame = big_table(10_000)
    frame["rows"][0][2] = 5000  # the next frame: a new top score
    table.draw(frame)
    assert table.page.evaluate("document.querySelector('.tbl-scroll').scrollTop") == 5000
    sort = table.page.locator("th[aria-sort='descending']").text_content()
    assert sort is not None and sort.startswith("score")
    table.page.evaluate("document.querySelector('.tbl-scroll').scrollTop = 0")
    table.page.wait_for_function(
        "() => document.querySelector('tbody td') && "
        "document.querySelector('tbody tr:not(.spacer)').children[2].textContent === '5000'"
    )
    assert table.errors == []


def test_table_long_cells_are_ellipsised_with_the_full_text_as_tooltip(narrow_table: Face) -> None:
    long = "word " * 2000
    narrow_table.draw({"columns": ["a", "b"], "rows": [[long, 1]]})
    td = narrow_table.page.locator("tbody tr:not(.spacer) td").first
    assert td.evaluate("td => getComputedStyle(td).textOverflow") == "ellipsis"
    assert td.evaluate("td => td.scrollWidth > td.clientWidth")
    title = td.get_attribute("title") or ""
    assert title.startswith("word word") and len(title) <= 4000
    # the page fits a phone: nothing wider than the viewport but the scroll box's content
    assert narrow_table.page.evaluate("document.documentElement.scrollWidth") <= 360
    assert narrow_table.errors == []


def test_table_hostile_strings_are_neutralised_everywhere(table: Face) -> None:
    table.draw(
        {
            "title": HOSTILE,
            "caption": HOSTILE,
            "columns": [HOSTILE, "<b>x</b>"],
            "rows": [[HOSTILE, "<img src=x onerror=alert(1)>"], {HOSTILE: HOSTILE}],
        }
    )
    html = table.page.content()
    text = body_text(table)
    for char in CONTROLS:
        assert char not in text
    assert "\ufffdevil" in text
    assert "<img" not in html.split("<body", 1)[1].replace("&lt;img", "")
    assert table.page.locator("tbody img, thead b").count() == 0
    assert table.errors == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"rows": "nope"}, "rows: expected a list, not a string"),
        ({"columns": ["a"]}, "rows: missing"),
        ({"rows": [[1], 5]}, "rows/1: expected a list or an object, not a number"),
        ({"rows": [], "title": 5}, "title: expected a string, not a number"),
        ([1, 2], "expects an object, not a list"),
    ],
)
def test_table_wrong_types_fail_visibly(table: Face, payload: Any, message: str) -> None:
    assert table.draw(payload) == 1
    failure = table.failure()
    assert failure is not None and message in failure
    assert table.errors == []


def test_table_empty_and_huge_string(table: Face) -> None:
    table.draw({"columns": ["a"], "rows": []})
    assert "No rows" in body_text(table)
    table.draw({"columns": ["a"], "rows": [["x" * 1_000_000]]})
    text = cells(table)[0][0]
    assert len(text) <= 500 and text.endswith("…")
    assert table.errors == []
