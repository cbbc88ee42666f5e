"""A safe arithmetic evaluator: the expression is parsed with ``ast`` and walked over an allow-list.

Nothing is ever passed to ``eval`` or ``exec``. Every node type, operator, function and name is
checked against the tables below, and the sizes of intermediate results are bounded so that a
short expression cannot make the worker spin on a gigantic power.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_EXPONENT", "MAX_LENGTH", "CalcError", "evaluate", "format_number", "rounded"]

Number = int | float

MAX_LENGTH = 500
MAX_EXPONENT = 10_000
#: Integers stay exact, but not without bound: 4000 digits is far beyond any real calculation
#: and below Python's own int-to-text limit (4300 digits).
MAX_INT_BITS = int(4000 * math.log2(10))
SIGNIFICANT_DIGITS = 12


class CalcError(ValueError):
    """The expression is not allowed or cannot be computed; the message says why."""


_BINARY: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}

_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}

_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _round(x: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return round(x)
    if not isinstance(digits, int):
        raise CalcError("round(x, n): n must be a whole number")
    return round(x, digits)


def _extreme(pick: Callable[[list[Number]], Number]) -> Callable[..., Number]:
    def call(*values: Number) -> Number:
        return pick(list(values))

    return call


# name -> (function, fewest arguments, most arguments or None for any number)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], int, int | None]] = {
    "sqrt": (math.sqrt, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "log": (_log, 1, 2),
    "log10": (math.log10, 1, 1),
    "exp": (math.exp, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "min": (_extreme(min), 1, None),
    "max": (_extreme(max), 1, None),
}

_HINTS: dict[type[ast.AST], str] = {
    ast.BitXor: "'^' is not a power here: write 2 ** 10",
    ast.Attribute: "attribute access (a.b) is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.Subscript: "indexing (a[b]) is not allowed",
    ast.Compare: "comparisons are not supported",
    ast.BoolOp: "and/or are not supported",
    ast.IfExp: "conditional expressions are not supported",
}


def evaluate(expr: str) -> Number:
    """Compute ``expr``; raise :class:`CalcError` with a one-line reason when that is not safe."""
    if not isinstance(expr, str):
        raise CalcError(f"expr must be a string, not {type(expr).__name__}")
    text = expr.strip()
    if not text:
        raise CalcError("expr is empty: give an expression such as 2 + 2")
    if len(text) > MAX_LENGTH:
        raise CalcError(f"expression is too long ({len(text)} characters, at most {MAX_LENGTH})")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as error:
        where = f" at column {error.offset}" if error.offset else ""
        raise CalcError(f"not a valid expression{where}: {error.msg}") from None
    except (RecursionError, MemoryError):
        raise CalcError("expression is nested too deeply") from None
    except ValueError as error:
        raise CalcError(f"not a valid expression: {error}") from None
    try:
        value = _eval(tree.body)
    except RecursionError:
        raise CalcError("expression is nested too deeply") from None
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except OverflowError:
        raise CalcError("result is too large") from None
    return _check(value)


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalcError(f"only numbers are allowed, not {value!r}")
        return _check(value)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if node.id in _FUNCTIONS:
            raise CalcError(f"{node.id} is a function: call it, as in {node.id}(x)")
        raise CalcError(f"unknown name {node.id!r} (constants: {', '.join(_CONSTANTS)})")
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        symbol, apply = _BINARY[type(node.op)]
        if symbol == "**":
            _guard_power(left, right)
        return _check(apply(left, right))
    if isinstance(node, ast.Call):
        return _call(node)
    what = node.op if isinstance(node, ast.BinOp | ast.UnaryOp) else node
    hint = _HINTS.get(type(what))
    raise CalcError(hint or f"{_describe(what)} is not allowed in an arithmetic expression")


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name):
        if isinstance(node.func, ast.Attribute):
            raise CalcError("attribute access (a.b) is not allowed")
        raise CalcError("only the listed functions can be called")
    name = node.func.id
    if name not in _FUNCTIONS:
        raise CalcError(f"unknown function {name!r} (allowed: {', '.join(_FUNCTIONS)})")
    if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
        raise CalcError(f"{name}() takes plain positional arguments only")
    function, fewest, most = _FUNCTIONS[name]
    count = len(node.args)
    if count < fewest or (most is not None and count > most):
        if most is None:
            wanted = f"at least {fewest} argument{'s' * (fewest != 1)}"
        elif fewest == most:
            wanted = f"exactly {fewest} argument{'s' * (fewest != 1)}"
        else:
            wanted = f"{fewest} or {most} arguments"
        raise CalcError(f"{name}() takes {wanted}, got {count}")
    values = [_eval(arg) for arg in node.args]
    try:
        result = function(*values)
    except ValueError as error:
        if isinstance(error, CalcError):
            raise
        shown = ", ".join(format_number(v) for v in values)
        raise CalcError(f"{name}({shown}) is undefined ({error})") from None
    return _check(result)


def _guard_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise CalcError(f"exponent {format_number(exponent)} is too large (at most {MAX_EXPONENT})")
    both_ints = isinstance(base, int) and isinstance(exponent, int)
    if (
        both_ints
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > MAX_INT_BITS
    ):
        raise CalcError("result is too large (more than 4000 digits)")


def _check(value: Any) -> Number:
    if isinstance(value, complex):
        raise CalcError("result is not a real number (e.g. a fractional power of a negative)")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalcError(f"unexpected result of type {type(value).__name__}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalcError("result is too large (more than 4000 digits)")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalcError("result is too large" if math.isinf(value) else "result is not a number")
    return value


_SYMBOLS: dict[type[ast.AST], str] = {
    ast.BitAnd: "'&'",
    ast.BitOr: "'|'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.MatMult: "'@'",
    ast.Invert: "'~'",
    ast.Not: "'not'",
    ast.Starred: "'*'",
    ast.NamedExpr: "':='",
}


def _describe(node: ast.AST) -> str:
    return _SYMBOLS.get(type(node), type(node).__name__)


def rounded(value: Number) -> Number:
    """The value as returned in data: ints unchanged, floats cut to 12 significant digits."""
    if isinstance(value, int):
        return value
    return float(format(value, f".{SIGNIFICANT_DIGITS}g"))


def format_number(value: Number) -> str:
    """Ints in full; floats like ``repr`` but to 12 significant digits (0.1 + 0.2 → 0.3)."""
    if isinstance(value, int):
        return str(value)
    text = format(value, f".{SIGNIFICANT_DIGITS}g")
    if text.lstrip("-").isdigit():
        text += ".0"
    return text
