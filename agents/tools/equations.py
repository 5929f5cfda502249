"""Equations as text → solutions as text, with sympy, without `eval`.

sympy's own parsers (`sympify`, `parse_expr`) call `eval`, so the text is never given to them:
it is tokenized here (implicit multiplication `2x` and `^` for powers accepted, as people write
them), parsed and folded by `safe_ast`, and each allowed node is turned into a sympy object
directly. Sizes are bounded. Even so some small-looking polynomial systems make sympy run for
hours: `agents.tools.solver` runs this module in a worker process it can kill.

`serve()` is that worker's main loop. This module imports neither lagent nor the project's
packages beyond `safe_ast`, so the worker starts in about a second."""
from __future__ import annotations

import ast
import json
import re
import resource
import sys
from typing import Any

from agents.tools.safe_ast import ExpressionError, Rules, fold, parse

MAX_CHARS = 300
MAX_EQUATIONS = 4
MAX_VARIABLES = 4
MAX_DEGREE = 8
MEMORY_BYTES = 2 << 30
FUNCTIONS = ("sqrt",)  # polynomial, rational and radical equations: what sympy solves quickly

_TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)|([A-Za-z_][A-Za-z_0-9]*)|(\*\*|[-+*/^()=,;]))")


def _tokens(text: str) -> list[str]:
    """Split into numbers, names and operators; refuse anything else."""
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ExpressionError(f"unexpected character {text[position:].lstrip()[0]!r} in {text!r}")
        tokens.append(match.group(match.lastindex))
        position = match.end()
    return tokens


def _python_text(tokens: list[str]) -> str:
    """Tokens → Python expression text: `^` is a power, and `2x`, `3(x+1)`, `(x)(y)` multiply."""
    out: list[str] = []
    for token in tokens:
        if out:
            previous = out[-1]
            ends_operand = previous[0].isalnum() or previous[0] in "._" or previous == ")"
            starts_operand = token[0].isalnum() or token[0] in "._" or token == "("
            calls_function = token == "(" and previous in FUNCTIONS
            if token == "(" and len(previous) > 1 and previous[0].isalpha() and not calls_function:
                raise ExpressionError(f"unknown function {previous}(): only {', '.join(FUNCTIONS)} is available")
            if ends_operand and starts_operand and not calls_function:
                out.append("*")
        out.append("**" if token == "^" else token)
    return " ".join(out)


def _rules(sympy: Any) -> Rules:
    def constant(value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"only numbers and variables are allowed, not {value!r}")
        return sympy.Rational(repr(value)) if isinstance(value, float) else sympy.Integer(value)

    def name(identifier: str) -> Any:
        if identifier == "pi":
            return sympy.pi
        if identifier in FUNCTIONS:
            raise ExpressionError(f"{identifier} is a function: write {identifier}(...)")
        return sympy.Symbol(identifier)

    def power(base: Any, exponent: Any) -> Any:
        if not exponent.is_number or abs(exponent) > MAX_DEGREE:
            raise ExpressionError(f"exponents must be numbers between -{MAX_DEGREE} and {MAX_DEGREE}")
        return base ** exponent

    def divide(a: Any, b: Any) -> Any:
        if b == 0:
            raise ExpressionError("division by zero")
        return a / b

    def function(name: str) -> Any:
        target = getattr(sympy, name)

        def call(*args: Any) -> Any:
            if len(args) != 1:
                raise ExpressionError(f"{name}() takes one argument")
            return target(args[0])

        return call

    return Rules(
        constant=constant,
        binary={ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
                ast.Div: divide, ast.Pow: power},
        unary={ast.UAdd: lambda a: a, ast.USub: lambda a: -a},
        names=name,
        functions={f: function(f) for f in FUNCTIONS},
    )


def _side(text: str, rules: Rules) -> Any:
    return fold(parse(_python_text(_tokens(text)), max_chars=MAX_CHARS * 2), rules)


def solve(equations: str) -> str:
    """Solve `equations` ("2x + 3 = 11", or several separated by commas or semicolons; an
    expression without `=` is taken as `... = 0`). Returns the solutions as text; raises
    ExpressionError for input that is malformed, not allowed or too big. No time limit."""
    import sympy

    if not isinstance(equations, str) or not equations.strip():
        raise ExpressionError("give the equations as text, e.g. 2x + 3 = 11")
    if len(equations) > MAX_CHARS:
        raise ExpressionError(f"the equations are too long (at most {MAX_CHARS} characters)")
    rules = _rules(sympy)
    parts = [p for p in re.split(r"[,;]|\band\b", equations) if p.strip()]
    if len(parts) > MAX_EQUATIONS:
        raise ExpressionError(f"at most {MAX_EQUATIONS} equations at once")
    system = []
    for part in parts:
        sides = part.split("=")
        if len(sides) > 2:
            raise ExpressionError(f"one '=' per equation: {part.strip()!r}")
        left = _side(sides[0], rules)
        right = _side(sides[1], rules) if len(sides) == 2 else sympy.Integer(0)
        equation = sympy.Eq(left, right)
        if equation is sympy.false:
            return "no solution"
        if equation is not sympy.true:
            system.append(equation)
    variables = sorted(set().union(*(eq.free_symbols for eq in system)), key=str)
    if not variables:
        return "every value is a solution"
    if len(variables) > MAX_VARIABLES:
        raise ExpressionError(f"at most {MAX_VARIABLES} variables")
    solutions = sympy.solve(system, variables, dict=True)
    if not solutions:
        return "no solution"
    return " or ".join(", ".join(f"{v} = {_value(s[v])}" if v in s else f"{v} is free" for v in variables)
                       for s in solutions)


def _value(value: Any) -> str:
    """Exact value, with a decimal approximation when it is not a plain rational number."""
    if value.is_Rational or not value.is_number:
        return str(value)
    return f"{value} ≈ {value.evalf(10)}"


def serve() -> None:
    """Worker loop: one JSON string (the equations) per stdin line → one JSON [ok, text] line."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    import sympy  # noqa: F401  (imported once, before the first request)

    for line in sys.stdin:
        try:
            answer = [True, solve(json.loads(line))]
        except MemoryError:
            answer = [False, "the solver ran out of memory: try fewer or simpler equations"]
        except Exception as exc:  # sympy's NotImplementedError ("could not solve ...") and the like
            answer = [False, str(exc) or type(exc).__name__]
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
