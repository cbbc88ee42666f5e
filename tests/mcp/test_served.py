"""What an MCP client sees of a kernel outcome (deeting_tui/mcp/served.py), and how progress
maps onto MCP's never-decreasing ``progress`` (serve.py's ProgressScale): pure functions."""

from __future__ import annotations

import math

import pytest

from deeting_tui.kernel.assistant import ToolOutcome
from deeting_tui.mcp.serve import ProgressScale
from deeting_tui.mcp.served import call_result


@pytest.mark.parametrize(
    ("data", "structured"),
    [
        ({"sum": 3}, {"sum": 3}),
        ([1, 2], {"result": [1, 2]}),
        ("text", {"result": "text"}),
        (0, {"result": 0}),
        (False, {"result": False}),
        (None, None),
    ],
)
def test_data_becomes_an_object_or_nothing(data: object, structured: object) -> None:
    result = call_result(ToolOutcome(True, "t", "p", data=data, text="said", renderer="table"))
    assert result.structured_content == structured
    assert [block.text for block in result.content] == ["said"]
    assert result.is_error is False
    assert result.meta == {"deeting/plugin": "p", "deeting/renderer": "table"}


def test_without_text_the_data_is_the_text() -> None:
    result = call_result(ToolOutcome(True, "t", "p", data={"a": [1]}))
    assert [block.text for block in result.content] == ['{"a":[1]}']


def test_a_failure_is_an_error_result_with_the_kernels_line() -> None:
    failed = call_result(
        ToolOutcome(False, "t", "p", error="plugin 'p' timed out"), session_id="s", call_id="c"
    )
    assert failed.is_error is True and failed.structured_content is None
    assert [block.text for block in failed.content] == ["plugin 'p' timed out"]
    assert failed.meta == {"deeting/plugin": "p", "deeting/session": "s", "deeting/call": "c"}
    cancelled = call_result(ToolOutcome(False, "t", "p", error="x", cancelled=True))
    assert [block.text for block in cancelled.content] == ["cancelled"]


def test_progress_never_goes_down_and_stays_within_one() -> None:
    scale = ProgressScale()
    values = [scale.value(f) for f in (None, 0.3, None, 0.1, math.nan, 2.0, 0.5)]
    assert values == [0.0, 0.3, 0.3, 0.3, 0.3, 1.0, 1.0]
