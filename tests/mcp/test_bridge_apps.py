"""MCP Apps through the bridge: a tool whose spec names a ``ui://`` app (``_meta.ui.resourceUri``)
has its call drawn by the ``mcp-app`` renderer, with the app's HTML read from the server after
the call (``resources/read``) and checked; an app that cannot be used leaves the call as it
was, with one line saying why. Through the real kernel and a real sandboxed worker, with
tests/fixtures/mcp/fake_server.py started with ``--app[=HOW]``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from support import FIXTURES, call_line, fake_mcp_program

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.mcp.add import AddRequest, add_server
from deeting_tui.mcp.apps import AppProblem, app_html, app_uri, is_app_mime

FAKE = FIXTURES / "mcp" / "fake_server.py"
DEADLINE_S = 30.0


@pytest.fixture
def fake_program(tmp_path: Path) -> Path:
    return fake_mcp_program(tmp_path)


async def _add(kernel: Kernel, program: Path, how: str = "") -> Any:
    flag = "--app" if not how else f"--app={how}"
    request = AddRequest(
        name="fake",
        source="command",
        program=str(program),
        args=[flag],
        grants=[],
        env={},
        yes=True,
    )
    return await add_server(kernel, request)


async def _call(kernel: Kernel, line: str) -> dict[str, Any]:
    return (await call_line(kernel, line, DEADLINE_S))[0]


async def test_a_tool_with_an_app_is_drawn_by_the_app_with_its_result(
    kernel: Kernel, fake_program: Path
) -> None:
    await _add(kernel, fake_program)
    result = await _call(kernel, "/show message=hello")
    assert result["ok"], result
    assert result["renderer"] == "mcp-app"
    data = result["data"]
    assert data["uri"] == "ui://fake/app.html"
    assert "ui/initialize" in data["html"]
    assert data["sha256"] == hashlib.sha256(data["html"].encode()).hexdigest()
    assert data["result"] == {
        "content": [{"type": "text", "text": "shown: hello"}],
        "structuredContent": {"echo": "hello"},
    }
    assert "csp" not in data
    assert result["text"] == "shown: hello"  # the model reads the text, not the HTML
    # The tools without an app are drawn as before.
    echo = await _call(kernel, "/echo message=hi")
    assert echo["renderer"] == "key-value" and echo["data"] == {"echo": "hi", "length": 2}


async def test_the_declared_csp_is_kept_with_the_card(kernel: Kernel, fake_program: Path) -> None:
    await _add(kernel, fake_program, "csp")
    result = await _call(kernel, "/show message=x")
    assert result["renderer"] == "mcp-app"
    assert result["data"]["csp"] == {"connectDomains": ["https://api.example.com"]}


async def test_the_app_is_the_one_the_user_approved_not_one_the_server_names_later(
    kernel: Kernel, fake_program: Path
) -> None:
    await _add(kernel, fake_program)
    (kernel.paths.plugin_data("fake") / "variant.txt").write_text("app-moved")
    await kernel.loader.disable("fake")
    await kernel.loader.enable("fake")
    result = await _call(kernel, "/show message=hello")
    assert result["ok"] and result["renderer"] == "mcp-app"
    assert result["data"]["uri"] == "ui://fake/app.html"
    assert "another app" not in result["data"]["html"]


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("wrong-type", "it is text/html, not text/html;profile=mcp-app"),
        ("huge", "more than 512 KiB"),
        ("binary", "it is not UTF-8 text"),
        ("missing", "no resource ui://fake/app.html"),
    ],
)
async def test_an_app_that_cannot_be_shown_leaves_the_call_as_it_was_with_a_note(
    kernel: Kernel, fake_program: Path, how: str, reason: str
) -> None:
    await _add(kernel, fake_program, how)
    result = await _call(kernel, "/show message=hello")
    assert result["ok"], result
    assert result["renderer"] == "key-value"
    assert result["data"] == {"echo": "hello"}
    first, note = result["text"].split("\n")
    assert first == "shown: hello"
    assert note.startswith("(the tool's app ui://fake/app.html is not shown: ")
    assert reason in note
    # The worker keeps serving: the next call is answered at once.
    again = await _call(kernel, "/echo message=next")
    assert again["ok"]


def test_app_uri_reads_the_current_and_the_older_key() -> None:
    assert app_uri({"_meta": {"ui": {"resourceUri": "ui://a/b"}}}) == "ui://a/b"
    assert app_uri({"_meta": {"ui/resourceUri": "ui://a/c"}}) == "ui://a/c"
    assert app_uri({"_meta": {"ui": {"resourceUri": "https://evil.example/app"}}}) is None
    assert app_uri({"_meta": {"ui": "ui://a/b"}}) is None
    assert app_uri({"name": "x"}) is None


def test_the_mime_type_must_be_html_with_the_mcp_app_profile() -> None:
    assert is_app_mime("text/html;profile=mcp-app")
    assert is_app_mime('Text/HTML; charset=utf-8; profile="mcp-app"')
    for wrong in ("text/html", "text/plain;profile=mcp-app", "text/html;profile=other", None):
        assert not is_app_mime(wrong)


def test_a_lone_surrogate_or_a_bad_blob_is_refused() -> None:
    base = {"uri": "ui://a", "mimeType": "text/html;profile=mcp-app"}
    with pytest.raises(AppProblem, match="not UTF-8"):
        app_html("ui://a", [dict(base, text="<p>\ud800</p>")])
    with pytest.raises(AppProblem, match="not base64"):
        app_html("ui://a", [dict(base, blob="@@@")])
    html, csp = app_html("ui://a", [dict(base, blob="PHA+aGk8L3A+")])
    assert html == "<p>hi</p>" and csp is None
    with pytest.raises(AppProblem, match="no content"):
        app_html("ui://a", [dict(base, uri="ui://b"), dict(base, uri="ui://c")])
