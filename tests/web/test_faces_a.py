"""The browser faces for markdown, key-value, progress, error and notice, and the JSON fallback,
in real Chromium under the renderer CSP: what each draws from its example and from hostile
payloads, in light and dark, at phone width, and across repeated frames of a stream."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from web.faces_support import RENDERERS, FacePage

Opener = Callable[..., FacePage]
FACES = ("markdown", "key-value", "progress", "error", "notice", "_fallback")
#: What each face must show from its renderer's example.json.
EXAMPLE_TEXTS = {
    "markdown": ["Release notes", "Faster start-up", "deeting plugin install weather"],
    "key-value": ["Timer #3", "label", "tea", "duration", "4m", "due", "15:42:10", "repeat"],
    "progress": ["42%", "Downloading weather 1.2.3 (2.1 of 5.0 MB)"],
    "error": [
        "Error",
        "permission 'network' not granted to 'weather'",
        "run: deeting plugin grant weather network",
    ],
    "notice": ["Timer #1 (tea) is done", "✓"],
}
#: ESC (a terminal escape) and RIGHT-TO-LEFT OVERRIDE: neither may reach the page as is.
HOSTILE = "A\x1b[31mB\u202eC"


def example(name: str) -> Any:
    return json.loads((RENDERERS / name / "example.json").read_text(encoding="utf-8"))


def no_page_overflow(face: FacePage) -> None:
    """Nothing makes the page scroll sideways (a wide code block scrolls on its own)."""
    wide = face.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page is {wide}px wider than the viewport"


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", sorted(EXAMPLE_TEXTS))
def test_each_face_draws_its_example(open_face: Opener, name: str, theme: str) -> None:
    face = open_face(name)
    face.draw(example(name), theme)
    text = face.text()
    for expected in EXAMPLE_TEXTS[name]:
        assert expected in text
    assert face.page.evaluate("document.body.dataset.updates") == "1"
    assert face.page.evaluate("document.documentElement.dataset.theme") == theme
    assert face.page.query_selector(".face-failure") is None
    # The theme's colours apply: the page background is the theme's, not the browser default.
    background = face.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(255, 255, 255)" if theme == "light" else "rgb(13, 17, 23)")
    face.assert_clean()


@pytest.mark.parametrize("name", [*sorted(EXAMPLE_TEXTS), "_fallback"])
def test_each_face_fits_a_phone(open_face: Opener, name: str) -> None:
    face = open_face(name, width=360)
    face.draw(example(name if name != "_fallback" else "table"), "dark")
    no_page_overflow(face)
    # A word longer than the card (an address, a hash) wraps instead of widening it.
    word = "https://example.org/" + "x" * 400
    long = {
        "markdown": {"markdown": f"# {word}\n\n{word} `{word}`"},
        "key-value": {"title": word, "items": [{"key": word, "value": word}]},
        "progress": {"fraction": 0.5, "message": word},
        "error": {"title": word, "message": word, "hint": word},
        "notice": {"text": word},
        "_fallback": {"rows": [[word]], "title": word},
    }[name]
    face.draw(long, "light")
    no_page_overflow(face)
    assert "xxxxxxxxxx" in face.text()
    face.assert_clean()


# markdown -------------------------------------------------------------------------------------


def test_markdown_refuses_scripts_handlers_and_raw_html(open_face: Opener) -> None:
    face = open_face("markdown")
    source = "\n\n".join(
        [
            "# Hi <script>window.pwned = 1</script>",
            '<img src="x" onerror="window.pwned = 2">',
            '<div onclick="window.pwned = 3"><b>raw</b> html</div>',
            "[js](javascript:window.pwned=4) [data](data:text/html;base64,PHNjcmlwdD4=) "
            "[vb](vbscript:msgbox) [rel](../../vendor/x.js) [ok](https://example.org/a?b=1) "
            "[pic](data:image/png;base64,iVBORw0KGgo=) [file](file:///etc/passwd)",
            '<a href="https://example.org" onmouseover="window.pwned=5">raw link</a>',
            "mail <mailto:someone@example.org> and https://bare.example.org/x",
            "![logo](https://evil.example/track.png) ![local](/T/vendor/x.png)",
            '<iframe src="https://evil.example"></iframe><style>body{display:none}</style>',
        ]
    )
    face.draw({"markdown": source})
    page = face.page
    for tag in ("script", "img", "iframe", "style", "object", "embed", "form", "svg"):
        assert page.query_selector(f".markdown {tag}") is None, tag
    assert (
        page.query_selector(".markdown [onerror], .markdown [onclick], .markdown [onmouseover]")
        is None
    )
    assert page.evaluate("window.pwned") is None
    # Raw HTML is shown as the words it is, not interpreted.
    text = face.text()
    assert "<script>window.pwned = 1</script>" in text
    assert '<img src="x" onerror="window.pwned = 2">' in text
    links = page.eval_on_selector_all(
        ".markdown a[href]",
        "as => as.map(a => [a.getAttribute('href'), a.target, a.rel, a.textContent])",
    )
    hrefs = [href for href, *_ in links]
    assert "https://example.org/a?b=1" in hrefs
    assert "mailto:someone@example.org" in hrefs
    assert "https://bare.example.org/x" in hrefs  # linkify
    for href, target, rel, _ in links:
        assert href.startswith(("https:", "http:", "mailto:")), href
        assert target == "_blank"
        assert rel == "noopener noreferrer"
    # The refused links keep their words but lose their address.
    assert "js" in text and "rel" in text and "data" in text
    # An image is a link by its alt text; nothing was fetched from anywhere but the server.
    image = page.query_selector(".markdown a.md-image")
    assert image is not None and "logo" in image.inner_text()
    assert image.get_attribute("href") == "https://evil.example/track.png"
    assert "local" in text
    face.assert_clean()


def test_markdown_code_blocks_scroll_sideways_at_phone_width(open_face: Opener) -> None:
    face = open_face("markdown", width=360)
    face.draw(
        {
            "markdown": "```\n"
            + "x" * 400
            + "\n```\n\n| a | b |\n|---|---|\n| "
            + "y" * 300
            + " | z |"
        }
    )
    pre = face.page.query_selector(".markdown pre")
    assert pre is not None
    assert pre.evaluate("e => e.scrollWidth > e.clientWidth")
    assert pre.evaluate("e => getComputedStyle(e).overflowX") == "auto"
    no_page_overflow(face)
    face.assert_clean()


def test_markdown_aligned_table_columns_need_no_inline_style(open_face: Opener) -> None:
    # markdown-it writes style="text-align:right"; the renderer CSP refuses inline styles.
    face = open_face("markdown")
    face.draw({"markdown": "| name | size |\n|:-----|-----:|\n| weather | 12 kB |\n"})
    aligns = face.page.eval_on_selector_all(
        ".markdown td", "tds => tds.map(td => getComputedStyle(td).textAlign)"
    )
    assert aligns == ["left", "right"]
    assert face.page.query_selector(".markdown [style]") is None
    face.assert_clean()


def test_markdown_of_a_megabyte_is_cut_with_a_note_and_draws_quickly(open_face: Opener) -> None:
    face = open_face("markdown")
    started = time.perf_counter()
    face.draw_js("({markdown: ('word '.repeat(15) + '\\n').repeat(13000)})")  # ~1 MB
    elapsed = time.perf_counter() - started
    note = face.page.query_selector(".md-cut")
    assert note is not None
    assert "more characters not shown" in note.inner_text()
    assert elapsed < 5, f"1 MB of Markdown took {elapsed:.1f}s"
    face.assert_clean()


def test_markdown_accepts_a_bare_string_and_shows_empty(open_face: Opener) -> None:
    face = open_face("markdown")
    face.draw("**bold** words")
    assert face.page.inner_text(".markdown strong") == "bold"
    face.draw({"markdown": "   "})
    assert face.text() == "(empty)"
    face.assert_clean()


# progress -------------------------------------------------------------------------------------


def test_progress_frames_update_the_same_elements(open_face: Opener) -> None:
    face = open_face("progress")
    face.draw({"fraction": 0.1, "message": "starting"})
    page = face.page
    page.evaluate(
        "window.bar = document.querySelector('.progress-fill');"
        " window.box = document.querySelector('.progress')"
    )
    states = []
    for payload in (
        {"fraction": 0.5, "message": "half"},
        {"fraction": None, "message": "waiting on the server"},
        {"fraction": 1.0},
        {"fraction": 7},  # clamped, as in the terminal
    ):
        face.draw(payload)
        assert page.evaluate("document.querySelector('.progress-fill') === window.bar")
        assert page.evaluate("document.querySelector('.progress') === window.box")
        states.append(
            page.evaluate(
                """() => [document.querySelector('.progress-percent').textContent,
                   document.querySelector('.progress-track').getAttribute('aria-valuenow'),
                   document.querySelector('.progress').classList.contains('is-unknown'),
                   document.querySelector('.progress-message').hidden,
                   document.querySelector('.progress-message').textContent]"""
            )
        )
    assert states == [
        ["50%", "50", False, False, "half"],
        ["…", None, True, False, "waiting on the server"],
        ["100%", "100", False, True, ""],
        ["100%", "100", False, True, ""],
    ]
    assert page.evaluate("document.body.dataset.updates") == "5"
    face.assert_clean()


def test_progress_comes_back_after_a_bad_frame(open_face: Opener) -> None:
    face = open_face("progress")
    face.draw({"fraction": 0.2})
    face.draw({"fraction": "half"})
    assert "fraction: expected a number from 0 to 1 or null, not a string" in face.text()
    face.draw({"fraction": 0.3, "message": "again"})
    assert face.page.query_selector(".face-failure") is None
    assert "30%" in face.text() and "again" in face.text()
    face.assert_clean()


# error and notice ------------------------------------------------------------------------------


def test_error_title_defaults_and_hint_is_optional(open_face: Opener) -> None:
    face = open_face("error")
    face.draw({"message": "it broke", "title": "Plugin crashed", "hint": "deeting plugin info x"})
    assert face.page.inner_text(".error-title") == "Plugin crashed"
    assert face.page.is_visible(".error-hint")
    face.draw({"message": "it broke again"})
    assert face.page.inner_text(".error-title") == "Error"
    assert not face.page.is_visible(".error-hint")
    assert face.page.get_attribute(".error-card", "role") == "alert"
    face.assert_clean()


def test_notice_levels_have_their_own_icon_and_colour(open_face: Opener) -> None:
    face = open_face("notice")
    seen = {}
    for level in ("info", "success", "warning", "error", "shouting"):
        face.draw({"text": f"a {level} notice", "level": level}, "light")
        seen[level] = face.page.evaluate(
            """() => { const n = document.querySelector('.notice');
               return [n.dataset.level, n.querySelector('.notice-icon').textContent,
                       getComputedStyle(n).borderLeftColor]; }"""
        )
    assert seen["info"][:2] == ["info", "\N{INFORMATION SOURCE}"]
    assert seen["success"][:2] == ["success", "✓"]
    assert seen["warning"][:2] == ["warning", "⚠"]
    assert seen["error"][:2] == ["error", "✗"]
    assert seen["shouting"] == seen["info"]  # an unknown level reads as info
    colours = {seen[level][2] for level in ("info", "success", "warning", "error")}
    assert len(colours) == 4
    assert seen["error"][2] == "rgb(207, 34, 46)"  # --bad, light
    face.assert_clean()


# key-value -------------------------------------------------------------------------------------


def test_key_value_takes_every_form_and_shows_values_compactly(open_face: Opener) -> None:
    face = open_face("key-value")
    face.draw({"expression": "2+2", "result": 4, "ratio": 0.1 + 0.2, "none": None, "ok": True})
    rows = face.page.eval_on_selector_all(
        ".kv-row",
        "rs => rs.map(r => [r.querySelector('dt').textContent, r.querySelector('dd').textContent])",
    )
    assert rows == [
        ["expression", "2+2"],
        ["result", "4"],
        ["ratio", "0.3"],
        ["none", "—"],
        ["ok", "✓ yes"],
    ]
    assert face.page.query_selector(".kv-title") is None
    face.draw(
        {
            "title": "Nested",
            "items": {"config": {"a": [1, 2, {"b": None}]}, "list": list(range(50))},
        }
    )
    assert face.page.inner_text(".kv-title") == "Nested"
    values = face.page.eval_on_selector_all(".kv-value", "ds => ds.map(d => d.textContent)")
    assert values[0] == '{"a":[1,2,{"b":null}]}'
    assert values[1].startswith("[0,1,2") and "… 30 more" in values[1]
    face.draw({"items": [{"key": f"k{i}", "value": i} for i in range(250)]})
    assert len(face.page.query_selector_all(".kv-row")) == 200
    assert face.page.inner_text(".kv-more") == "… 50 more items"
    face.draw_js('JSON.parse(\'{"cfg": {"__proto__": {"polluted": 1}, "b": 2}}\')')
    assert face.page.inner_text(".kv-value") == '{"__proto__":{"polluted":1},"b":2}'
    assert face.page.evaluate("({}).polluted") is None
    face.draw({"items": []})
    assert face.text() == "(nothing to show)"
    face.assert_clean()


# the fallback ----------------------------------------------------------------------------------


def test_a_renderer_without_a_face_gets_the_json_view_naming_it(open_face: Opener) -> None:
    face = open_face("no-face-yet")  # served the _fallback face's files
    face.draw(example("table"))
    assert "No browser face for 'no-face-yet' here" in face.text()
    assert '"title"' in face.text() and '"Notes"' in face.text()
    face.assert_clean()


def test_fallback_folds_and_unfolds(open_face: Opener) -> None:
    face = open_face("_fallback")
    face.draw({"outer": {"middle": {"inner": "deep value"}}})
    page = face.page
    assert "The raw data:" in face.text()
    assert not page.is_visible("text=deep value")  # the third level starts folded
    folded = page.query_selector_all("details.j-node:not([open]) > summary")
    assert folded and "1 key" in folded[0].inner_text()
    folded[0].click()
    assert page.is_visible("text=deep value")
    face.assert_clean()


def test_fallback_survives_huge_and_deep_json_and_says_what_it_left_out(open_face: Opener) -> None:
    face = open_face("_fallback")
    started = time.perf_counter()
    face.draw_js("Array.from({length: 200000}, (_, i) => ({id: i, name: 'item ' + i}))")
    huge = time.perf_counter() - started
    text = face.page.inner_text(".fallback-json")
    assert "199,900 more items" in text
    assert face.page.evaluate("document.querySelectorAll('.j-entry').length") <= 2100
    started = time.perf_counter()
    face.draw_js(
        "(() => { let v = 'bottom'; for (let i = 0; i < 5000; i++) v = {k: [v]}; return v; })()"
    )
    deep = time.perf_counter() - started
    assert face.page.evaluate("document.querySelectorAll('details').length") <= 13
    assert "1 item" in face.page.text_content(".fallback-json")
    started = time.perf_counter()
    face.draw_js(
        "({long: 'x'.repeat(1000000),"
        " many: Object.fromEntries(Array.from({length: 500}, (_, i) => ['k' + i, i]))})"
    )
    wide = time.perf_counter() - started
    content = face.page.text_content(".fallback-json")
    assert "400 more keys" in content and len(content) < 20000
    assert huge < 5 and deep < 5 and wide < 5, (huge, deep, wide)
    face.assert_clean()


def test_fallback_shows_any_json_value(open_face: Opener) -> None:
    face = open_face("_fallback")
    face.draw([1, "two", None, True, {}, []])
    assert face.page.text_content(".fallback-json").replace("\n", "").count("two") == 1
    face.draw("just words <b>not bold</b>")
    assert face.page.inner_text(".fallback-json") == "just words <b>not bold</b>"
    assert face.page.query_selector(".fallback-json b") is None
    face.draw(None)
    assert face.page.inner_text(".fallback-json") == "null"
    face.draw_js('JSON.parse(\'{"__proto__": {"polluted": 1}}\')')
    assert '"__proto__"' in face.page.inner_text(".fallback-json")
    assert '"polluted"' in face.page.text_content(".fallback-json")
    face.draw({"numbers": list(range(150))})  # scalars flow along lines, as in the terminal
    flow = face.page.query_selector_all(".j-flow")
    assert len(flow) == 1 and flow[0].inner_text().startswith("0, 1, 2, 3")
    assert "… 50 more items" in face.page.inner_text(".fallback-json")
    face.assert_clean()


# hostile strings everywhere -------------------------------------------------------------------

HOSTILE_PAYLOADS = {
    "markdown": {
        "markdown": f"# {HOSTILE}\n\n{HOSTILE} [{HOSTILE}](https://example.org/{HOSTILE})"
    },
    "key-value": {
        "title": HOSTILE,
        "items": [{"key": HOSTILE, "value": HOSTILE}, {"key": "n", "value": {HOSTILE: HOSTILE}}],
    },
    "progress": {"fraction": 0.5, "message": HOSTILE},
    "error": {"title": HOSTILE, "message": HOSTILE, "hint": HOSTILE},
    "notice": {"text": HOSTILE, "level": "warning"},
    "_fallback": {HOSTILE: [HOSTILE, {"k": HOSTILE}], "html": "<img src=x onerror=alert(1)>"},
}


@pytest.mark.parametrize("name", FACES)
def test_control_and_bidi_characters_never_reach_the_page(open_face: Opener, name: str) -> None:
    face = open_face(name)
    face.draw(HOSTILE_PAYLOADS[name])
    # What a person reads: the text, and the attributes a browser shows (tooltips, labels, links).
    text = face.page.evaluate(
        """[document.body.textContent, ...[...document.querySelectorAll('*')].flatMap(el =>
             ['title', 'aria-label', 'href'].map(a => el.getAttribute(a) || ''))].join('\\n')"""
    )
    assert "\x1b" not in text and "\u202e" not in text
    assert "\ufffd" in text
    assert face.page.query_selector("body img") is None
    assert face.page.query_selector(".face-failure") is None
    face.assert_clean()


WRONG = {
    "markdown": [
        ({"markdown": 42}, "markdown: expected a string, not a number"),
        (["list"], "expects an object or a string, not a list"),
        ({}, "markdown: missing"),
    ],
    "key-value": [
        ({"items": 5}, "items: expected a list of {key, value} or an object, not a number"),
        ({"items": [{"value": 1}]}, "items/0: expected an object with a key, not an object"),
        ({"items": [], "title": ["x"]}, "title: expected a string, not a list"),
        ("words", "expects an object, not a string"),
    ],
    "progress": [
        ({}, "fraction: missing"),
        ({"fraction": True}, "fraction: expected a number from 0 to 1 or null, not a boolean"),
        ({"fraction": 0.5, "message": {"x": 1}}, "message: expected a string, not an object"),
    ],
    "error": [
        ({"message": ["<b>x</b>"]}, "message: expected a string, not a list"),
        ({"message": ""}, "message: missing"),
        ({"message": "m", "hint": 3}, "hint: expected a string, not a number"),
    ],
    "notice": [
        ({"text": None}, "text: missing"),
        ({"text": "t", "level": 3}, "level: expected a string, not a number"),
        (7, "expects an object, not a number"),
    ],
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_wrong_typed_fields_show_an_escaped_failure_not_a_blank(
    open_face: Opener, name: str
) -> None:
    face = open_face(name)
    for count, (payload, message) in enumerate(WRONG[name], start=1):
        face.draw(payload)
        failure = face.page.query_selector(".face-failure")
        assert failure is not None, payload
        assert message in failure.inner_text()
        assert face.page.evaluate("document.body.dataset.updates") == str(count)
    # A good frame after the bad ones draws again.
    face.draw(example(name))
    assert face.page.query_selector(".face-failure") is None
    assert EXAMPLE_TEXTS[name][0] in face.text()
    face.assert_clean()


@pytest.mark.parametrize("name", FACES)
def test_repeated_frames_replace_rather_than_pile_up(open_face: Opener, name: str) -> None:
    face = open_face(name)
    payload = example(name) if name != "_fallback" else {"a": 1}
    for _ in range(30):
        face.draw(payload)
    assert face.page.evaluate("document.body.childElementCount") == 1
    assert face.page.evaluate("document.body.dataset.updates") == "30"
    face.assert_clean()
