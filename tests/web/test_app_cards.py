"""MCP App cards: an MCP server's own app (the ``mcp-app`` renderer's HTML) drawn in a card.

The board keeps the HTML out of the page's cards and serves it as a document of its own at
``/app/NONCE`` under a CSP that lets it reach nothing; the host page frames it sandboxed,
speaks MCP Apps to it (initialize, the server's own result as tool-result, size changes) and
refuses every request it makes. In real Chromium, as test_page.py does.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from web.test_page import _attempt, card_frame, other_server, until  # noqa: F401 (a fixture)
from web_support import ServerThread, get, parse, raw

from deeting_tui.kernel.events import ToolResult
from deeting_tui.web.cards import MAX_CARDS, Board
from deeting_tui.web.server import CardServer

#: An app that speaks MCP Apps by hand: it initialises, shows what it is sent, asks to be
#: 321 px tall, and keeps every message it hears (for the test to read).
APP = """<!doctype html>
<html><head><meta charset="utf-8"><style>body { background: #eef; }</style></head>
<body><p id="said">waiting</p>
<script>
window.heard = [];
window.addEventListener("message", (event) => {
  const m = event.data;
  window.heard.push(m);
  if (m && m.id === 1 && m.result) {
    window.parent.postMessage({jsonrpc: "2.0", method: "ui/notifications/initialized"}, "*");
    window.parent.postMessage({jsonrpc: "2.0", method: "ui/notifications/size-changed",
                               params: {width: 300, height: 321}}, "*");
  } else if (m && m.method === "ui/notifications/tool-result") {
    const s = m.params.structuredContent;
    document.getElementById("said").textContent = s.echo + " / " + m.params.content[0].text;
  }
});
window.parent.postMessage({jsonrpc: "2.0", id: 1, method: "ui/initialize", params: {
  appInfo: {name: "test-app", version: "1"}, appCapabilities: {},
  protocolVersion: "2026-01-26"}}, "*");
</script></body></html>
"""


def _payload(html: str = APP, echo: str = "hello") -> dict[str, Any]:
    return {
        "uri": "ui://fake/app.html",
        "html": html,
        "sha256": hashlib.sha256(html.encode()).hexdigest(),
        "result": {
            "content": [{"type": "text", "text": f"shown: {echo}"}],
            "structuredContent": {"echo": echo},
        },
    }


def _app_result(call_id: str, payload: dict[str, Any] | None = None) -> ToolResult:
    return ToolResult(
        session_id="s",
        call_id=call_id,
        tool="show",
        plugin="fake",
        ok=True,
        data=payload or _payload(),
        renderer="mcp-app",
        text="shown: hello",
    )


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


def _app_frame(page: Any, served: ServerThread, card: str = "a1") -> Any:
    page.goto(served.server.url)
    served.publish(_app_result(card))
    frame = card_frame(page, card, "mcp-app")
    until(page, f"() => document.querySelector(\"iframe[data-card='{card}']\").dataset.updates")
    until(frame, "() => document.getElementById('said')?.textContent !== 'waiting'")
    return frame


# -- the board and the server (no browser) --------------------------------------------------


def test_the_page_gets_the_card_without_its_html_and_the_app_has_a_path_of_its_own() -> None:
    board = Board()
    (op,) = board.apply(_app_result("a1"))
    card = op["card"]
    assert card["renderer"] == "mcp-app"
    assert card["app"].startswith("/app/") and len(card["app"]) > 25
    assert "html" not in card["result"]["structuredContent"]
    assert card["result"]["structuredContent"]["result"]["structuredContent"] == {"echo": "hello"}
    nonce = card["app"].rpartition("/")[2]
    assert board.app_html(nonce) == APP
    assert board.app_html("not-" + nonce) is None
    # Another result for the card replaces its app: the old path is gone.
    (again,) = board.apply(_app_result("a1", _payload(echo="again")))
    assert again["card"]["app"] != card["app"] and board.app_html(nonce) is None
    # Data that does not fit the schema is an error card, with no app.
    (bad,) = board.apply(_app_result("a2", {"uri": "https://x", "html": "", "result": {}}))
    assert bad["card"]["renderer"] == "error" and "app" not in bad["card"]


def test_an_app_leaves_with_its_card() -> None:
    board = Board()
    (op,) = board.apply(_app_result("first"))
    nonce = op["card"]["app"].rpartition("/")[2]
    for n in range(MAX_CARDS):
        board.apply(_app_result(f"c{n}", _payload(html="<p>x</p>")))
    assert "first" not in board.cards and board.app_html(nonce) is None
    board.load("s2", None)
    assert all(board.app_html(c["app"].rpartition("/")[2]) is None for c in [op["card"]])


async def test_the_app_document_is_served_under_a_policy_that_lets_it_reach_nothing() -> None:
    server = CardServer()
    await server.start()
    try:
        (op,) = server.board.apply(_app_result("a1"))
        path = op["card"]["app"]
        status, headers, body = parse(await raw(server, get(server, path)))
        assert status == 200 and body == APP.encode()
        assert headers["content-type"] == "text/html; charset=utf-8"
        policy = headers["content-security-policy"]
        for rule in (
            "default-src 'none'",
            "connect-src 'none'",
            "frame-src 'none'",
            "form-action 'none'",
            f"frame-ancestors {server.origin}",
            "sandbox allow-scripts",
        ):
            assert rule in policy
        assert "'self'" not in policy and "http" not in policy.replace(server.origin, "")
        # No token in its path, and no other path without the token answers.
        assert server.token not in path
        for wrong in ("/app/nope", "/app/", "/app", f"{path}/x", f"/{server.token}{path}"):
            status, _, _ = parse(await raw(server, get(server, wrong)))
            assert status == 404, wrong
        status, _, _ = parse(await raw(server, get(server, path, host="evil.example")))
        assert status == 421
    finally:
        await server.stop()
        await asyncio.sleep(0)


# -- in Chromium -----------------------------------------------------------------------------


def test_the_apps_html_runs_in_the_card_and_gets_the_result_through_mcp_apps(
    page: Any, served: ServerThread
) -> None:
    frame = _app_frame(page, served)
    assert frame.evaluate("() => document.getElementById('said').textContent") == (
        "hello / shown: hello"
    )
    iframe = page.locator("iframe[data-card='a1']")
    assert iframe.get_attribute("sandbox") == "allow-scripts"
    assert iframe.get_attribute("data-updates") == "1"  # the host counts for an app
    until(page, "() => document.querySelector(\"iframe[data-card='a1']\").style.height === '321px'")
    methods = frame.evaluate("() => window.heard.map((m) => m.method || ('answer ' + m.id))")
    assert methods[0] == "answer 1"  # ui/initialize answered
    assert "ui/notifications/tool-result" in methods
    assert page.errors == []


def test_an_apps_requests_toward_the_server_are_refused(page: Any, served: ServerThread) -> None:
    frame = _app_frame(page, served)
    ask = """async (request) => {
      const answer = new Promise((done) => window.addEventListener("message", (event) => {
        if (event.data && event.data.id === request.id) done(event.data);
      }));
      window.parent.postMessage(request, "*");
      return await answer;
    }"""
    for n, (method, params) in enumerate(
        [
            ("tools/call", {"name": "echo", "arguments": {"message": "x"}}),
            ("resources/read", {"uri": "ui://fake/app.html"}),
            ("ui/message", {"role": "user", "content": [{"type": "text", "text": "hi"}]}),
            ("ui/open-link", {"url": "https://example.com/"}),
        ],
        start=10,
    ):
        answer = frame.evaluate(
            ask, {"jsonrpc": "2.0", "id": n, "method": method, "params": params}
        )
        assert "result" not in answer, (method, answer)
        assert "display-only" in answer["error"]["message"], (method, answer)
    assert len(page.context.pages) == 1  # no tab was opened
    # The card still speaks: a new result for it is delivered.
    served.publish(_app_result("a1", _payload(echo="again")))
    new_frame = card_frame(page, "a1", "mcp-app")
    until(new_frame, "() => document.getElementById('said')?.textContent.startsWith('again')")


def test_an_app_cannot_reach_the_network_or_the_host_page(
    page: Any,
    served: ServerThread,
    other_server: int,  # noqa: F811 (the fixture imported above)
) -> None:
    frame = _app_frame(page, served)
    assert served.server.token not in frame.evaluate("() => location.href")
    assert _attempt(frame, "return parent.document.title;").startswith("blocked")
    assert _attempt(frame, "return top.document.body.innerHTML;").startswith("blocked")
    assert _attempt(frame, "return document.cookie;").startswith("blocked")
    assert _attempt(frame, "return String(localStorage.length);").startswith("blocked")
    own = served.server.url + "events"
    for url in (own, served.server.origin + "/", f"http://127.0.0.1:{other_server}/"):
        assert _attempt(frame, f"return await (await fetch('{url}')).text();").startswith(
            "blocked"
        ), url
    image = f"""return await new Promise((done) => {{
        const refused = (e) => done('blocked: ' + e.violatedDirective);
        document.addEventListener('securitypolicyviolation', refused);
        setTimeout(() => done('not refused'), 5000);
        const img = new Image();
        img.src = 'http://127.0.0.1:{other_server}/pixel.png';
    }});"""
    assert _attempt(frame, image) == "blocked: img-src"
    assert _attempt(frame, "return String(window.open('https://example.com/'));") == "null"
    before = page.url
    assert _attempt(frame, "top.location = 'http://127.0.0.1:1/'; return 'x';").startswith(
        "blocked"
    )
    assert page.evaluate("() => location.href") == before
