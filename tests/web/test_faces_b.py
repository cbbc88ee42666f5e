"""The table, search-cards and weather-cards browser faces, drawn in a real Chromium under the
renderer CSP: what they show, how they sort and scroll, and what hostile payloads do to them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from web.faces_support import ROOT, FacePage

Opener = Callable[..., FacePage]

HOSTILE = "\u202eevil\u202c\x1b[31mred\x07\u2066x\u2069"  # bidi override, ESC, BEL, isolates
CONTROLS = ("\u202e", "\u202c", "\x1b", "\x07", "\u2066", "\u2069")


def example(name: str) -> Any:
    return json.loads((ROOT / "renderers" / name / "example.json").read_text(encoding="utf-8"))


@pytest.fixture
def table(open_face: Opener) -> FacePage:
    return open_face("table")


@pytest.fixture
def narrow_table(open_face: Opener) -> FacePage:
    return open_face("table", width=360)


def assert_no_controls(face: FacePage) -> None:
    """No control or bidi character anywhere a person reads: text, tooltips, labels, links."""
    seen = face.page.evaluate(
        """[document.body.innerText, ...[...document.querySelectorAll('*')].flatMap(el =>
             ['title', 'aria-label', 'href'].map(a => el.getAttribute(a) || ''))].join('\\n')"""
    )
    for char in CONTROLS:
        assert char not in seen, repr(char)
    assert "\ufffd" in seen


def body_text(face: FacePage) -> str:
    return str(face.page.evaluate("document.body.innerText"))


def cells(face: FacePage) -> list[list[str]]:
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


def test_table_draws_the_example_in_both_themes(table: FacePage) -> None:
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
    table.assert_clean()


def test_table_of_10000_rows_keeps_the_dom_small_and_scrolls_to_the_end(table: FacePage) -> None:
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
    table.assert_clean()


def test_table_sorts_by_a_column_numbers_numerically_nulls_last_stable(table: FacePage) -> None:
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


def test_table_sorts_10000_rows_and_a_stream_frame_keeps_sort_and_scroll(table: FacePage) -> None:
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
    table.assert_clean()


def test_table_long_cells_are_ellipsised_with_the_full_text_as_tooltip(
    narrow_table: FacePage,
) -> None:
    long = "word " * 2000
    narrow_table.draw({"columns": ["a", "b"], "rows": [[long, 1]]})
    td = narrow_table.page.locator("tbody tr:not(.spacer) td").first
    assert td.evaluate("td => getComputedStyle(td).textOverflow") == "ellipsis"
    assert td.evaluate("td => td.scrollWidth > td.clientWidth")
    title = td.get_attribute("title") or ""
    assert title.startswith("word word") and len(title) <= 4000
    # the page fits a phone: nothing wider than the viewport but the scroll box's content
    assert narrow_table.page.evaluate("document.documentElement.scrollWidth") <= 360
    narrow_table.assert_clean()


def test_table_hostile_strings_are_neutralised_everywhere(table: FacePage) -> None:
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
    assert_no_controls(table)
    assert "\ufffdevil" in text
    assert "<img" not in html.split("<body", 1)[1].replace("&lt;img", "")
    assert table.page.locator("tbody img, thead b").count() == 0
    table.assert_clean()


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
def test_table_wrong_types_fail_visibly(table: FacePage, payload: Any, message: str) -> None:
    assert table.draw(payload) == 1
    failure = table.failure()
    assert failure is not None and message in failure
    table.assert_clean()


def test_table_object_rows_read_only_their_own_keys(table: FacePage) -> None:
    table.draw({"columns": ["constructor", "toString"], "rows": [{"constructor": 1}, {}]})
    assert cells(table) == [["1", ""], ["", ""]]
    table.assert_clean()


def test_table_stream_frame_with_new_columns_drops_a_vanished_sort(table: FacePage) -> None:
    table.draw({"columns": ["a", "b"], "rows": [[2, "x"], [1, "y"]]})
    table.page.locator("th", has_text="a").locator("button").click()
    assert [row[0] for row in cells(table)] == ["1", "2"]
    table.draw({"columns": ["c"], "rows": [[3], [4]]})
    assert table.page.locator("th").all_text_contents() == ["c"]
    assert table.page.locator("th").get_attribute("aria-sort") == "none"
    assert cells(table) == [["3"], ["4"]]
    table.draw({"columns": ["a", "b"], "rows": [[5, "p"], [6, "q"], [None, "r"]]})
    assert [row[0] for row in cells(table)] == ["5", "6", "—"]
    table.assert_clean()


def test_table_sorts_by_the_clicked_one_of_two_unnamed_columns(table: FacePage) -> None:
    table.draw({"columns": ["a"], "rows": [[1, 5, 9], [2, 4, 3], [3, 6, 1]]})
    headers = table.page.locator("th")
    assert headers.count() == 3
    headers.nth(2).locator("button").click()
    assert [row[0] for row in cells(table)] == ["3", "2", "1"]
    sorts = [headers.nth(i).get_attribute("aria-sort") for i in range(3)]
    assert sorts == ["none", "none", "ascending"]
    table.draw({"rows": [[], []]})  # rows of nothing: still a card, not a failure
    assert table.failure() is None and len(cells(table)) == 2
    table.assert_clean()


def test_table_draws_again_after_a_failed_frame(table: FacePage) -> None:
    table.draw(example("table"))
    table.draw({"rows": 5})
    assert table.failure() is not None
    table.draw(example("table"))
    assert table.failure() is None
    assert table.page.locator("th").all_text_contents() == ["id", "created", "text"]
    assert len(cells(table)) == 3
    table.assert_clean()


def test_table_empty_and_huge_string(table: FacePage) -> None:
    table.draw({"columns": ["a"], "rows": []})
    assert "No rows" in body_text(table)
    table.draw({"columns": ["a"], "rows": [["x" * 1_000_000]]})
    text = cells(table)[0][0]
    assert len(text) <= 500 and text.endswith("…")
    table.assert_clean()


# --- search-cards ---------------------------------------------------------------------------


@pytest.fixture
def search(open_face: Opener) -> FacePage:
    return open_face("search-cards")


@pytest.fixture
def narrow_search(open_face: Opener) -> FacePage:
    return open_face("search-cards", width=360)


def links(face: FacePage) -> list[dict[str, str]]:
    return face.page.evaluate(
        "[...document.querySelectorAll('a')].map(a => ({text: a.textContent, "
        "href: a.getAttribute('href'), target: a.target, rel: a.rel}))"
    )


def test_search_draws_the_example_in_both_themes(search: FacePage) -> None:
    for theme in ("light", "dark"):
        search.draw(example("search-cards"), theme)
    assert search.page.evaluate("document.body.dataset.updates") == "2"
    text = body_text(search)
    assert "Results for" in text and "textual python tui" in text
    assert search.page.locator(".result").count() == 3
    drawn = links(search)
    assert [link["text"] for link in drawn] == [
        "Textual",
        "Rich: rich text and beautiful formatting in the terminal",
        "Building a TUI in an afternoon",
    ]
    for link in drawn:
        assert link["target"] == "_blank"
        assert set(link["rel"].split()) == {"noopener", "noreferrer"}
    urls = search.page.locator(".result-url").all_text_contents()
    assert urls == [
        "textual.textualize.io",
        "github.com/Textualize/rich",
        "example.org/blog/tui-afternoon",
    ]
    assert "GitHub" in text and "2026-10-02" in text
    assert "Rich is a Python library" in text
    assert search.page.locator("img").count() == 0
    search.assert_clean()


def test_search_links_only_web_addresses(search: FacePage) -> None:
    hostile = [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "https://bank.example@evil.example/",
        "not a url",
    ]
    results = [{"title": f"t{i}", "url": url, "snippet": "s"} for i, url in enumerate(hostile)]
    results.append({"title": "ok", "url": "http://example.com/a?b=1"})
    search.draw({"results": results})
    drawn = links(search)
    assert [link["text"] for link in drawn] == ["ok"]
    assert drawn[0]["href"] == "http://example.com/a?b=1"
    # the hostile addresses are still shown, as plain text
    shown = search.page.locator(".result-url").all_text_contents()
    assert any("javascript:alert(1)" in url for url in shown)
    assert any(url.startswith("data:text/html,<script>") for url in shown)
    assert search.page.locator("script:not([src])").count() == 0
    search.assert_clean()


def test_search_hostile_strings_and_huge_snippet(narrow_search: FacePage) -> None:
    narrow_search.draw(
        {
            "query": HOSTILE,
            "results": [
                {
                    "title": HOSTILE,
                    "url": "https://example.com/" + HOSTILE,
                    "snippet": HOSTILE + " " + "lorem   ipsum\n\n" * 100_000,
                    "source": HOSTILE,
                    "date": HOSTILE,
                },
                {"title": "", "url": "https://" + "x" * 200_000 + ".example/"},
            ],
        }
    )
    text = body_text(narrow_search)
    assert_no_controls(narrow_search)
    assert "\ufffdevil" in text
    snippet = narrow_search.page.locator(".result-snippet").text_content() or ""
    assert len(snippet) <= 400 and snippet.endswith("…") and "  " not in snippet
    assert "(untitled)" in text
    assert narrow_search.page.evaluate("document.documentElement.scrollWidth") <= 360
    narrow_search.assert_clean()


def test_search_empty_and_many(search: FacePage) -> None:
    search.draw({"results": []})
    assert "No results." in body_text(search)
    search.draw({"results": [{"title": f"r{i}"} for i in range(60)]})
    assert search.page.locator(".result").count() == 50
    assert "… 10 more results" in body_text(search)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"results": {"a": 1}}, "results: expected a list, not an object"),
        ({"query": "q"}, "results: missing"),
        ({"results": ["x"]}, "results/0: expected an object, not a string"),
        ({"results": [{"url": "https://a.example"}]}, "results/0/title: missing"),
        ({"results": [{"title": "t", "url": 5}]}, "results/0/url: expected a string, not a number"),
        ({"results": [], "query": ["q"]}, "query: expected a string, not a list"),
        ("just text", "expects an object, not a string"),
    ],
)
def test_search_wrong_types_fail_visibly(search: FacePage, payload: Any, message: str) -> None:
    assert search.draw(payload) == 1
    failure = search.failure()
    assert failure is not None and message in failure
    search.assert_clean()


# --- weather-cards --------------------------------------------------------------------------


@pytest.fixture
def weather(open_face: Opener) -> FacePage:
    return open_face("weather-cards")


@pytest.fixture
def narrow_weather(open_face: Opener) -> FacePage:
    return open_face("weather-cards", width=360)


def test_weather_draws_the_example_in_both_themes(weather: FacePage) -> None:
    for theme in ("light", "dark"):
        weather.draw(example("weather-cards"), theme)
    assert weather.page.evaluate("document.body.dataset.updates") == "2"
    page = weather.page
    assert page.locator(".wx-place").text_content() == "Berlin, Germany"
    assert page.locator(".wx-temp").text_content() == "7.3°C"
    assert page.locator(".wx-cond").text_content() == "Partly cloudy"  # from WMO code 2
    assert "Open-Meteo" in (page.locator(".wx-source").text_content() or "")
    details = page.locator(".wx-detail").all_text_contents()
    assert details == ["Feels like4°C", "Wind14 km/h W", "Humidity81%"]
    days = page.locator(".wx-day")
    assert days.count() == 4
    assert days.nth(0).locator(".wx-date").text_content() == "Wed25 Nov"
    assert days.nth(0).locator(".wx-words").text_content() == "Light rain"
    assert days.nth(1).locator(".wx-low").text_content() == "\u22121°"  # a true minus sign
    assert days.nth(2).locator(".wx-words").text_content() == "Clear sky"
    assert days.nth(3).locator(".wx-words").text_content() == "Partly cloudy"
    assert days.nth(0).locator(".wx-chance").text_content() == "80%"
    # icons are inline SVG named by their condition; nothing is fetched
    labels = page.eval_on_selector_all(
        ".wx-day svg", "s => s.map(x => x.getAttribute('aria-label'))"
    )
    assert labels == ["Light rain", "Light snow", "Clear sky", "Partly cloudy"]
    assert page.locator("img").count() == 0
    # one shared scale: the coldest low starts the bar at 0 %, the warmest high ends at 100 %
    fills = page.eval_on_selector_all(".wx-fill", "s => s.map(f => [f.style.left, f.style.width])")
    assert fills[2][0] == "0%"
    ends = [float(left[:-1]) + float(width[:-1]) for left, width in fills]
    assert max(ends) == pytest.approx(100)
    weather.assert_clean()


def test_weather_at_phone_width_fits(narrow_weather: FacePage) -> None:
    narrow_weather.draw(example("weather-cards"), "dark")
    page = narrow_weather.page
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.locator(".wx-day").count() == 4
    narrow_weather.assert_clean()


def test_weather_night_words_units_and_missing_values(weather: FacePage) -> None:
    weather.draw(
        {
            "location": "Nowhere",
            "current": {
                "temperature": 44.6,
                "unit": "°F",
                "condition": "clear",
                "is_day": 0,
                "wind": "calm",
                "precipitation": 1.25,
            },
            "daily": [
                {"date": "2026-02-29", "min": None, "max": None},  # not a real date
                {"date": "2026-12-31", "min": 30, "max": 50, "condition": "light snow showers"},
            ],
        }
    )
    page = weather.page
    assert page.locator(".wx-temp").text_content() == "44.6°F"
    assert page.locator(".wx-cond").text_content() == "Clear"
    assert page.locator(".wx-now svg").get_attribute("class") == "wx-icon icon-night"
    assert "Windcalm" in page.locator(".wx-details").text_content()
    assert "Precipitation1.3 mm" in page.locator(".wx-details").text_content()
    days = page.locator(".wx-day")
    assert days.nth(0).locator(".wx-date").text_content() == "2026-02-29"
    assert days.nth(0).locator(".wx-low").text_content() == "—"
    assert days.nth(0).locator(".wx-fill").count() == 0
    assert days.nth(1).locator(".wx-high").text_content() == "50°"
    assert days.nth(1).locator("svg").get_attribute("class") == "wx-icon icon-snow"
    weather.assert_clean()


def test_weather_hostile_strings(weather: FacePage) -> None:
    weather.draw(
        {
            "location": HOSTILE + "x" * 100_000,
            "source": HOSTILE,
            "timezone": HOSTILE,
            "current": {
                "temperature": 1,
                "unit": HOSTILE,
                "condition": HOSTILE,
                "wind": HOSTILE,
                "time": HOSTILE,
            },
            "daily": [{"date": HOSTILE, "min": 1, "max": 2, "condition": HOSTILE}] * 20,
        }
    )
    text = body_text(weather)
    assert_no_controls(weather)
    assert len(weather.page.locator(".wx-place").text_content() or "") <= 120
    assert weather.page.locator(".wx-day").count() == 16
    assert "… 4 more days" in text
    weather.assert_clean()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"current": {"temperature": 1}}, "location: missing"),
        ({"location": "x", "current": []}, "current: expected an object, not a list"),
        ({"location": "x", "current": {}}, "current/temperature: missing"),
        (
            {"location": "x", "current": {"temperature": "7"}},
            "temperature: expected a number, not a string",
        ),
        (
            {"location": "x", "current": {"temperature": 1, "code": 2.5}},
            "current/code: expected an integer",
        ),
        (
            {"location": "x", "current": {"temperature": 1}, "daily": [5]},
            "daily/0: expected an object, not a number",
        ),
        (
            {"location": "x", "current": {"temperature": 1}, "daily": [{"min": 1, "max": 2}]},
            "daily/0/date: missing",
        ),
        (
            {
                "location": "x",
                "current": {"temperature": 1},
                "daily": [{"date": "d", "min": "1", "max": 2}],
            },
            "daily/0/min: expected a number, not a string",
        ),
        (None, "expects an object, not null"),
    ],
)
def test_weather_wrong_types_fail_visibly(weather: FacePage, payload: Any, message: str) -> None:
    assert weather.draw(payload) == 1
    failure = weather.failure()
    assert failure is not None and message in failure
    weather.assert_clean()
