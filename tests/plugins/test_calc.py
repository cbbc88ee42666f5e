"""The calc plugin: a safe evaluator, never eval."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from deeting_tui.sdk import normalize_result

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture
def calc(load_plugin: Any, make_ctx: Any) -> Any:
    index: ModuleType = load_plugin("calc")
    ctx = make_ctx("calc")

    def run(expr: Any) -> dict[str, Any]:
        return normalize_result(index.invoke(ctx, "calc", {"expr": expr}))

    return run


def value(calc: Any, expr: str) -> Any:
    return calc(expr)["data"]["result"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("2+2", 4),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("2 ** 3 ** 2", 512),
        ("-2 ** 2", -4),
        ("(-2) ** 2", 4),
        ("+5 - -3", 8),
        ("7 // 2", 3),
        ("-7 % 3", 2),
        ("7 / 2", 3.5),
        ("2 ** -2", 0.25),
        ("10 - 4 - 3", 3),
        ("100 / 10 / 5", 2.0),
        ("2 * (3 + 4) ** 2", 98),
        ("1_000 * 3", 3000),
    ],
)
def test_arithmetic_and_precedence(calc: Any, expr: str, expected: Any) -> None:
    result = value(calc, expr)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("sqrt(16)", 4.0),
        ("abs(-3)", 3),
        ("floor(2.7)", 2),
        ("ceil(2.1)", 3),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("min(4, 2, 8)", 2),
        ("max(4, 2, 8)", 8),
        ("log10(1000)", 3.0),
        ("log(8, 2)", 3.0),
        ("log(e)", 1.0),
        ("exp(0)", 1.0),
        ("sin(0)", 0.0),
        ("cos(pi)", -1.0),
        ("tan(0)", 0.0),
        ("tau / pi", 2.0),
        ("sqrt(2)", 1.41421356237),
    ],
)
def test_functions_and_constants(calc: Any, expr: str, expected: Any) -> None:
    assert value(calc, expr) == expected


def test_result_shape(calc: Any) -> None:
    out = calc("  2 + 2 ")
    assert out == {
        "data": {"expression": "2 + 2", "result": 4},
        "text": "2 + 2 = 4",
        "renderer": "key-value",
    }


def test_floats_are_shown_with_12_significant_digits(calc: Any) -> None:
    assert calc("0.1 + 0.2")["text"] == "0.1 + 0.2 = 0.3"
    assert calc("0.1 + 0.2")["data"]["result"] == 0.3
    assert calc("4 / 2")["text"] == "4 / 2 = 2.0"
    assert calc("1 / 3")["text"] == "1 / 3 = 0.333333333333"
    assert calc("2.0 ** 100")["text"] == "2.0 ** 100 = 1.26765060023e+30"


def test_ints_stay_exact(calc: Any) -> None:
    assert value(calc, "2 ** 100") == 1267650600228229401496703205376
    assert value(calc, "2 ** 10000") == 2**10000


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("__import__('os')", "unknown function '__import__'"),
        ("__import__('os').system('true')", "attribute access"),
        ("(1).__class__", "attribute access"),
        ("().__class__.__bases__", "attribute access"),
        ("math.pi", "attribute access"),
        ("x + 1", "unknown name 'x'"),
        ("os", "unknown name 'os'"),
        ("lambda: 1", "lambda"),
        ("(lambda x: x)(1)", "only the listed functions"),
        ("eval('1')", "unknown function 'eval'"),
        ("'abc'", "only numbers"),
        ("True + 1", "only numbers"),
        ("1j", "only numbers"),
        ("[1, 2]", "not allowed"),
        ("{}", "not allowed"),
        ("1 if 1 else 2", "conditional"),
        ("1 < 2", "comparisons"),
        ("2 ^ 3", "write 2 ** 10"),
        ("1 << 3", "'<<' is not allowed"),
        ("~1", "'~' is not allowed"),
        ("sqrt", "is a function"),
        ("sqrt(x=4)", "positional"),
        ("max(*[1, 2])", "positional"),
        ("abs(1, 2)", "exactly 1 argument"),
        ("min()", "at least 1 argument"),
        ("(x := 3)", "not allowed"),
        ("2 +", "not a valid expression"),
        ("", "empty"),
        ("   ", "empty"),
    ],
)
def test_refuses_what_is_not_arithmetic(calc: Any, expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        calc(expr)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("2 ** 100000", "exponent 100000 is too large"),
        ("9 ** 9999", "too large"),
        ("(2 ** 10000) ** 2", "too large"),
        ("10 ** 4000 * 10 ** 4000", "too large"),
        ("10.0 ** 400", "too large"),
        ("exp(1000)", "too large"),
        ("1e308 * 10", "too large"),
        ("2 ** 0.5 ** -100000", "too large"),
    ],
)
def test_refuses_huge_results(calc: Any, expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        calc(expr)


def test_refuses_overlong_input(calc: Any) -> None:
    expr = "+".join(["1"] * 251)  # 501 characters
    with pytest.raises(ValueError, match=r"too long \(501 characters, at most 500\)"):
        calc(expr)
    assert value(calc, "+".join(["1"] * 250)) == 250


@pytest.mark.parametrize("expr", ["1 / 0", "1 // 0", "5 % 0", "0 ** -1", "1.0 / 0.0"])
def test_division_by_zero(calc: Any, expr: str) -> None:
    with pytest.raises(ValueError, match="division by zero"):
        calc(expr)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("sqrt(-1)", "sqrt(-1) is undefined"),
        ("log(0)", "log(0) is undefined"),
        ("(-8) ** (1 / 3)", "not a real number"),
        ("round(1.5, 0.5)", "whole number"),
    ],
)
def test_undefined_values(calc: Any, expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        calc(expr)


def test_deep_nesting_is_an_error_not_a_crash(calc: Any) -> None:
    assert value(calc, "-" * 300 + "1") == 1
    with pytest.raises(ValueError):
        calc("(" * 240 + "1" + ")" * 240)


def test_validates_arguments(load_plugin: Any, make_ctx: Any) -> None:
    index = load_plugin("calc")
    ctx = make_ctx("calc")
    with pytest.raises(ValueError, match="missing argument 'expr'"):
        index.invoke(ctx, "calc", {})
    with pytest.raises(ValueError, match="expr must be a string, not int"):
        index.invoke(ctx, "calc", {"expr": 3})
    with pytest.raises(ValueError, match="unknown argument"):
        index.invoke(ctx, "calc", {"expr": "1", "mode": "x"})
    with pytest.raises(ValueError, match="no tool 'calculate'"):
        index.invoke(ctx, "calculate", {"expr": "1"})


def test_never_calls_eval_or_exec() -> None:
    source = (PLUGINS / "calc" / "src" / "handler.py").read_text()
    source += (PLUGINS / "calc" / "src" / "index.py").read_text()
    assert not re.search(r"\b(eval|exec|compile)\s*\(", source)


def trigger() -> tuple[re.Pattern[str], str]:
    spec = json.loads((PLUGINS / "calc" / "kimai.json").read_text())["trigger"]
    return re.compile(spec["regex"]), spec["tool"]


@pytest.mark.parametrize(
    ("message", "expr"),
    [("calc 2+2", "2+2"), ("= 3*4", "3*4"), ("=3*4", "3*4"), ("calc  sqrt(2)", "sqrt(2)")],
)
def test_trigger_matches(message: str, expr: str) -> None:
    pattern, tool = trigger()
    match = pattern.match(message)
    assert match is not None and tool == "calc"
    assert match.groupdict() == {"expr": expr}


@pytest.mark.parametrize("message", ["calculate my taxes", "calculator", "what is 2+2", "calc"])
def test_trigger_leaves_other_messages_alone(message: str) -> None:
    pattern, _ = trigger()
    assert pattern.match(message) is None


def test_trigger_arguments_reach_the_tool(calc: Any) -> None:
    pattern, _ = trigger()
    match = pattern.match("= 3*4")
    assert match is not None
    assert calc(match["expr"])["text"] == "3*4 = 12"
