"""`Calculator`: exact, bounded arithmetic for an agent (XTuner's `calculate` plugin).

The model's expression is parsed and folded by `safe_ast` (no `eval`); every operation checks
its operands first, so `9**9**9` or a 10,000-digit product is refused in microseconds instead
of freezing the agent or exhausting memory."""
from __future__ import annotations

import ast
import math
import re
from typing import Any

from lagent.actions import BaseAction, tool_api

from agents.tools.safe_ast import ExpressionError, Rules, fold, parse

MAX_INT_BITS = 4096  # about 1,230 decimal digits
MAX_EXPONENT = 10_000


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _checked(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("the result is too large (or not a number)")
    if _int_bits(value) > MAX_INT_BITS:
        raise ExpressionError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    return value


def _mul(a: Any, b: Any) -> Any:
    if _int_bits(a) + _int_bits(b) > MAX_INT_BITS + 1:
        raise ExpressionError("the result is too large")
    return _checked(a * b)


def _div(a: Any, b: Any) -> Any:
    if b == 0:
        raise ExpressionError("division by zero")
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b  # exact for big integers, where a float would round
    return _checked(a / b)


def _floordiv(a: Any, b: Any) -> Any:
    if b == 0:
        raise ExpressionError("division by zero")
    return _checked(a // b)


def _mod(a: Any, b: Any) -> Any:
    if b == 0:
        raise ExpressionError("modulo by zero")
    return _checked(a % b)


def _pow(base: Any, exponent: Any) -> Any:
    if abs(exponent) > MAX_EXPONENT:
        raise ExpressionError(f"the exponent is too large (at most {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if _int_bits(base) * exponent > MAX_INT_BITS + exponent:
            raise ExpressionError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    if base == 0 and exponent < 0:
        raise ExpressionError("division by zero")
    try:
        result = base ** exponent
    except OverflowError:
        raise ExpressionError("the result is too large") from None
    if isinstance(result, complex):
        raise ExpressionError("the result is not a real number")
    return _checked(result)


def _constant(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExpressionError(f"only numbers are allowed, not {value!r}")
    return _checked(value)


def _name(name: str) -> Any:
    if name in CONSTANTS:
        return CONSTANTS[name]
    raise ExpressionError(f"unknown name {name!r}: use numbers (constants: {', '.join(CONSTANTS)})")


def _real(function: Any) -> Any:
    def call(*args: Any) -> Any:
        try:
            return _checked(function(*args))
        except (ValueError, OverflowError) as exc:
            raise ExpressionError(f"{function.__name__}: {exc}") from None
        except TypeError:
            raise ExpressionError(f"{function.__name__}() got the wrong number of arguments") from None

    return call


CONSTANTS = {"pi": math.pi, "e": math.e}
RULES = Rules(
    constant=_constant,
    binary={ast.Add: lambda a, b: _checked(a + b), ast.Sub: lambda a, b: _checked(a - b), ast.Mult: _mul,
            ast.Div: _div, ast.FloorDiv: _floordiv, ast.Mod: _mod, ast.Pow: _pow},
    unary={ast.UAdd: lambda a: a, ast.USub: lambda a: -a},
    names=_name,
    functions={f.__name__: _real(f) for f in (abs, round, min, max, math.sqrt, math.floor, math.ceil, math.log,
                                              math.log10, math.exp, math.sin, math.cos, math.tan)},
)

# What people and models write for arithmetic that Python spells differently.
_REWRITES = [(re.compile(r"\^"), "**"), (re.compile(r"(?<=[\d)])\s*[×xX]\s*(?=[\d(])"), " * "), (re.compile("÷"), "/")]


def calculate(expression: str) -> str:
    """Evaluate arithmetic text; returns the result as text, raises ExpressionError otherwise."""
    if isinstance(expression, (int, float)) and not isinstance(expression, bool):
        expression = str(expression)
    if isinstance(expression, str):
        for pattern, replacement in _REWRITES:
            expression = pattern.sub(replacement, expression)
    return format_number(fold(parse(expression), RULES))


def format_number(value: Any) -> str:
    """Integers exactly; floats to 12 significant digits, without a trailing `.0`."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".12g")
    return str(value)


class Calculator(BaseAction):
    """Evaluates arithmetic expressions exactly."""

    @tool_api
    def run(self, expression: str) -> str:
        """Evaluate arithmetic, e.g. (12 + 7) * 3 / 4.

        Args:
            expression (str): numbers, + - * / ** and parentheses
        """
        return calculate(expression)
