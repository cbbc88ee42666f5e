"""The host page and the faces in real Chromium: cards drawn through the real server, the MCP
Apps tunnel, and the sandbox and policies holding from inside a card.

Sync tests (Playwright's sync API cannot run inside pytest-asyncio's loop); the server runs on
its own loop in a thread (web_support.ServerThread). The pages run under their real CSP, which
refuses eval, so conditions are polled with evaluate() rather than wait_for_function (which
evals its predicate).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from web_support import ServerThread

from deeting_tui.kernel.events import StreamFrame, ToolCall, ToolResult
from deeting_tui.resources import core_renderers_dir

EXAMPLES = sorted(core_renderers_dir().glob("*/example.json"))


@pytest.fixture
def served() -> Iterator[ServerThread]:
    thread = ServerThread()
    try:
        yield thread
    finally:
        thread.close()


@pytest.fixture
def page(browser: Any, served: ServerThread) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.errors = errors
    try:
        yield opened
    finally:
        context.close()


def until(target: Any, script: str, *, timeout: float = 10.0) -> Any:
    """Poll ``script`` (a function expression) in a page or frame until it returns truthy."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout
    while True:
        try:
            value = target.evaluate(script)
        except Error as exc:
            # A card's iframe starts as about:blank and then loads its face: a frame found
            # in between is navigated under the evaluation. Anything else is a failure.
            if "Execution context was destroyed" not in str(exc):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {script}")
        time.sleep(0.02)


def card_frame(page: Any, card: str, renderer: str | None = None) -> Any:
    selector = f"iframe[data-card='{card}']"
    if renderer is not None:
        selector += f"[data-renderer='{renderer}']"
    handle = page.wait_for_selector(selector, timeout=10_000)
    frame = handle.content_frame()
    assert frame is not None
    return frame


def drawn(frame: Any, count: int) -> None:
    until(frame, f"() => document.body && document.body.dataset.updates === '{count}'")


def _result(call_id: str, renderer: str | None, data: Any, text: str = "") -> ToolResult:
    return ToolResult(
        session_id="s",
        call_id=call_id,
        tool=f"show-{renderer}",
        plugin="demo",
        ok=True,
        data=data,
        renderer=renderer,
        text=text,
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.parent.name for path in EXAMPLES])
def test_each_renderers_example_is_drawn_through_the_host_page(
    page: Any, served: ServerThread, example: Path
) -> None:
    name = example.parent.name
    payload = orjson.loads(example.read_bytes())
    page.goto(served.server.url)
    served.publish(_result(f"card-{name}", name, payload))
    frame = card_frame(page, f"card-{name}", name)
    drawn(frame, 1)
    failure = frame.evaluate("() => document.querySelector('.face-failure')?.textContent || ''")
    assert failure == ""
    assert page.errors == []


def test_the_text_example_shows_its_text(page: Any, served: ServerThread) -> None:
    payload = orjson.loads((core_renderers_dir() / "text" / "example.json").read_bytes())
    page.goto(served.server.url)
    served.publish(_result("t1", "text", payload))
    frame = card_frame(page, "t1", "text")
    drawn(frame, 1)
    assert "Largest folder" in frame.evaluate("() => document.body.innerText")
    # The card's heading is text from the card, above the iframe.
    assert page.inner_text("article[data-card='t1'] .card-title") == "show-text"


def test_a_stream_updates_one_card(page: Any, served: ServerThread) -> None:
    page.goto(served.server.url)

    def frame_event(n: int) -> StreamFrame:
        payload = {"text": f"frame {n}"}
        return StreamFrame(session_id="s", plugin="p", topic="t", payload=payload, renderer="text")

    served.publish(frame_event(1))
    frame = card_frame(page, "stream:p:t", "text")
    drawn(frame, 1)
    served.publish(*(frame_event(n) for n in range(2, 11)))
    drawn(frame, 10)
    assert frame.evaluate("() => document.body.innerText") == "frame 10"
    assert page.locator("iframe").count() == 1


def test_a_running_call_says_so_until_its_result(page: Any, served: ServerThread) -> None:
    page.goto(served.server.url)
    served.publish(ToolCall(session_id="s", call_id="c1", tool="slow", plugin="p"))
    until(page, "() => document.querySelector(\"article[data-card='c1'] .card-state\")")
    assert page.inner_text("article[data-card='c1'] .card-state") == "running…"
    served.publish(_result("c1", "text", {"text": "done"}))
    frame = card_frame(page, "c1", "text")
    drawn(frame, 1)
    assert not page.is_visible("article[data-card='c1'] .card-state")


def test_a_cancelled_call_is_shown_cancelled(page: Any, served: ServerThread) -> None:
    page.goto(served.server.url)
    served.publish(ToolCall(session_id="s", call_id="c1", tool="slow", plugin="p"))
    cancelled = ToolResult(
        session_id="s", call_id="c1", tool="slow", ok=False, cancelled=True, error="Esc"
    )
    served.publish(cancelled)
    until(page, "() => document.querySelector('.card-state.cancelled')")
    assert page.inner_text(".card-state.cancelled") == "cancelled: Esc"


def test_card_mode_shows_one_card(page: Any, served: ServerThread) -> None:
    served.publish(_result("one", "text", {"text": "first"}))
    served.publish(_result("two", "text", {"text": "second"}))
    page.goto(served.server.card_url("two"))
    frame = card_frame(page, "two", "text")
    drawn(frame, 1)
    served.publish(_result("three", "text", {"text": "third"}))
    served.publish(_result("two", "text", {"text": "second, again"}))
    drawn(frame, 2)
    assert page.eval_on_selector_all("iframe", "els => els.map(e => e.dataset.card)") == ["two"]


def test_newest_first_and_the_older_line(page: Any, served: ServerThread) -> None:
    served.publish(*(_result(f"c{n}", "text", {"text": f"{n}"}) for n in range(205)))
    page.goto(served.server.url)
    until(page, "() => document.querySelectorAll('article.card').length === 200")
    order = page.eval_on_selector_all("article.card", "els => els.map(e => e.dataset.card)")
    assert order[0] == "c204" and order[-1] == "c5"
    assert page.inner_text("#older") == "5 older cards"
    # The newest 24 have their iframe at once, wherever they are (a card far below the fold
    # is still drawn); older ones get one only near the viewport, the oldest when scrolled to.
    until(page, "() => document.querySelectorAll('iframe[data-card]').length >= 24")
    framed = page.eval_on_selector_all("iframe", "els => els.map(e => e.dataset.card)")
    assert framed[:24] == [f"c{n}" for n in range(204, 180, -1)]
    assert len(framed) < 50
    drawn(card_frame(page, "c181", "text"), 1)
    page.locator("article[data-card='c5']").scroll_into_view_if_needed()
    drawn(card_frame(page, "c5", "text"), 1)
    served.publish(_result("c205", "text", {"text": "new"}))
    until(page, "() => document.querySelector('#older').textContent === '6 older cards'")
    assert page.eval_on_selector("article.card", "e => e.dataset.card") == "c205"


def test_the_theme_follows_the_server_then_the_system(browser: Any, served: ServerThread) -> None:
    context = browser.new_context(color_scheme="light")
    try:
        page = context.new_page()
        page.goto(served.server.url)
        served.publish(_result("c1", "text", {"text": "x"}))
        frame = card_frame(page, "c1", "text")
        drawn(frame, 1)
        assert page.evaluate("() => document.documentElement.dataset.theme") == "light"
        served.run(served.server.set_theme, "dark")
        until(page, "() => document.documentElement.dataset.theme === 'dark'")
        until(frame, "() => document.documentElement.dataset.theme === 'dark'")
        served.run(served.server.set_theme, None)
        until(frame, "() => document.documentElement.dataset.theme === 'light'")
    finally:
        context.close()


def test_the_page_fits_a_phone(browser: Any, served: ServerThread) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 740})
    try:
        page = context.new_page()
        page.goto(served.server.url)
        long_words = {"text": "a-very-long-unbroken-word-" * 20}
        served.publish(_result("c1", "text", long_words, text="x"))
        drawn(card_frame(page, "c1", "text"), 1)
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    finally:
        context.close()


# -- the sandbox and the policies, from inside a card --------------------------------------


def _attempt(frame: Any, body: str) -> str:
    """Run ``body`` in the card; 'blocked: …' when it throws or rejects."""
    return str(
        frame.evaluate(
            f"async () => {{ try {{ {body} }} catch (e) {{ return 'blocked: ' + e.name; }} }}"
        )
    )


@pytest.fixture
def other_server() -> Iterator[int]:
    """Another HTTP server on 127.0.0.1 a card might try to reach."""
    import http.server
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Access-Control-Allow-Origin", "*")  # it would let anyone read
            self.end_headers()
            self.wfile.write(b"reached")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_card_cannot_reach_out_of_its_sandbox(
    page: Any, served: ServerThread, other_server: int
) -> None:
    page.goto(served.server.url)
    served.publish(_result("c1", "text", {"text": "x"}))
    frame = card_frame(page, "c1", "text")
    drawn(frame, 1)
    assert _attempt(frame, "return parent.document.title;").startswith("blocked")
    assert _attempt(frame, "return top.document.body.innerHTML;").startswith("blocked")
    assert _attempt(frame, "return document.cookie;").startswith("blocked")
    assert _attempt(frame, "return String(localStorage.length);").startswith("blocked")
    assert _attempt(frame, "return String(sessionStorage.length);").startswith("blocked")
    other = f"http://127.0.0.1:{other_server}/"
    assert _attempt(frame, f"return await (await fetch('{other}')).text();").startswith("blocked")
    own = served.server.url + "events"
    assert _attempt(frame, f"return await (await fetch('{own}')).text();").startswith("blocked")
    assert _attempt(frame, "new EventSource('../../events'); return 'no error';") in (
        "no error",  # CSP refuses it asynchronously: what matters is it never opens
        "blocked: SecurityError",
    )
    assert _attempt(frame, "return String(window.open('https://example.com/'));") == "null"
    before = page.url
    assert _attempt(frame, "top.location = 'http://127.0.0.1:1/'; return 'assigned';").startswith(
        "blocked"
    )
    assert page.evaluate("() => location.href") == before
    # The card is still alive and the host still speaks to it.
    served.publish(_result("c1", "text", {"text": "still here"}))
    drawn(frame, 2)


def test_a_card_cannot_run_inline_script(page: Any, served: ServerThread) -> None:
    page.goto(served.server.url)
    served.publish(_result("c1", "text", {"text": "x"}))
    frame = card_frame(page, "c1", "text")
    drawn(frame, 1)
    result = _attempt(
        frame,
        "const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        "document.body.append(s); return String(window.ran);",
    )
    assert result == "undefined"


def test_messages_from_other_windows_are_ignored(page: Any, served: ServerThread) -> None:
    page.goto(served.server.url)
    served.publish(_result("c1", "text", {"text": "x"}))
    frame = card_frame(page, "c1", "text")
    drawn(frame, 1)
    height = page.eval_on_selector("iframe[data-card='c1']", "e => e.style.height")
    fake = {
        "jsonrpc": "2.0",
        "method": "ui/notifications/size-changed",
        "params": {"width": 300, "height": 1234},
    }
    # From the host window itself, then a marker: messages arrive in order, so once the
    # marker is seen the fake has been dispatched to every listener (the card's transport).
    page.evaluate(
        """(fake) => new Promise((resolve) => {
            window.addEventListener('message', (e) => { if (e.data === 'marker') resolve(); });
            window.postMessage(fake, '*');
            window.postMessage('marker', '*');
        })""",
        fake,
    )
    assert page.eval_on_selector("iframe[data-card='c1']", "e => e.style.height") == height
    # From another frame of the page (not the card's): also ignored.
    page.evaluate(
        """(fake) => new Promise((resolve) => {
            const other = document.createElement('iframe');
            other.srcdoc = '';
            other.onload = () => {
                window.addEventListener('message', (e) => { if (e.data === 'marker') resolve(); });
                other.contentWindow.parent.postMessage(fake, '*');
                window.postMessage('marker', '*');
            };
            document.body.append(other);
        })""",
        fake,
    )
    assert page.eval_on_selector("iframe[data-card='c1']", "e => e.style.height") == height
    # The card's own window is heard (so the checks above could have failed).
    frame.evaluate("(fake) => parent.postMessage(fake, '*')", fake)
    until(
        page, "() => document.querySelector(\"iframe[data-card='c1']\").style.height === '1234px'"
    )


def test_the_page_reconnects_after_the_stream_drops(page: Any, served: ServerThread) -> None:
    page.goto(served.server.url)
    served.publish(_result("c1", "text", {"text": "x"}))
    drawn(card_frame(page, "c1", "text"), 1)

    async def drop_streams() -> None:
        for client in list(served.server._clients):
            client.resync()  # the same path a slow client takes: a fresh reset

    served.call(drop_streams())
    served.publish(_result("c2", "text", {"text": "y"}))
    drawn(card_frame(page, "c2", "text"), 1)
    assert page.locator("article.card").count() == 2


def test_no_port_is_left_listening_after_stop() -> None:
    thread = ServerThread()
    port = thread.server.port
    thread.close()
    with socket.socket() as probe, pytest.raises(OSError):
        probe.connect(("127.0.0.1", port))


def test_a_replaced_card_is_torn_down_before_its_iframe_goes(
    page: Any, served: ServerThread
) -> None:
    page.goto(served.server.url)
    served.publish(ToolCall(session_id="s", call_id="c1", tool="t", plugin="p"))
    served.publish(_result("c1", "text", {"text": "first"}))
    drawn(card_frame(page, "c1", "text"), 1)
    # The same card, now with another renderer: a new iframe, and the old face told first.
    served.publish(_result("c1", "notice", {"text": "second"}))
    drawn(card_frame(page, "c1", "notice"), 1)
    until(page, "() => document.body.dataset.teardowns === '1'")
    until(page, "() => document.querySelectorAll('iframe').length === 1")
    assert page.locator("article.card").count() == 1


def test_plugin_strings_stay_text_on_the_host_page(page: Any, served: ServerThread) -> None:
    hostile = (
        "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
    )
    bidi = "\u202eevil\u202c"
    page.goto(served.server.url)
    result = ToolResult(
        session_id="s",
        call_id="hostile1",
        tool=hostile + bidi,
        plugin=hostile,
        ok=True,
        data={"text": hostile},
        renderer="text",
        text=hostile,
    )
    served.publish(result)
    served.run(served.server.load, "s", hostile, [result])
    frame = card_frame(page, "hostile1", "text")
    drawn(frame, 1)
    until(page, "() => document.querySelector('#title').textContent.includes('<img')")
    assert page.evaluate("() => document.querySelectorAll('img, b, script:not([src])').length") == 0
    assert frame.evaluate("() => document.querySelectorAll('img, script:not([src])').length") == 0
    assert page.title().startswith("<img")  # the session title, as text: no script ran
    heading = page.inner_text("article[data-card='hostile1'] .card-title")
    assert "\u202e" not in heading and heading.endswith("\ufffdevil\ufffd")
    assert frame.evaluate("() => document.body.innerText") == hostile


@pytest.fixture
def elsewhere() -> Iterator[str]:
    """A second loopback server: the place a search result links to."""
    import http.server
    import threading

    class Quiet(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>elsewhere</title><p>elsewhere</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/found"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_link_in_a_card_opens_in_a_new_tab_through_the_host(
    page: Any, served: ServerThread, elsewhere: str
) -> None:
    """The card's sandbox has no allow-popups: the face asks the host (ui/open-link), which
    opens http(s) in a new tab with no opener; a file: address is refused, nothing opens."""
    payload = {"query": "q", "results": [{"title": "Found it", "url": elsewhere}]}
    page.goto(served.server.url)
    served.publish(_result("links", "search-cards", payload))
    frame = card_frame(page, "links", "search-cards")
    drawn(frame, 1)
    with page.context.expect_page(timeout=10_000) as opened:
        frame.click("a[href]")
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == elsewhere
    assert tab.evaluate("() => window.opener === null")
    assert tab.evaluate("() => document.referrer") == ""
    # A file: link put into the face by hand is refused by the host. Requests are answered
    # in order, so the next tab to open is the good link clicked after it: nothing between.
    before = len(page.context.pages)
    frame.evaluate(
        """() => {
            const a = document.createElement('a');
            a.href = 'file:///etc/passwd';
            a.id = 'sneaky';
            a.textContent = 'sneaky';
            document.body.appendChild(a);
        }"""
    )
    frame.click("#sneaky")
    with page.context.expect_page(timeout=10_000) as again:
        frame.click("a[href^='http']")
    again.value.wait_for_load_state()
    assert again.value.url == elsewhere
    assert len(page.context.pages) == before + 1
    assert page.url == served.server.url
