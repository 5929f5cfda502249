"""The calculator, the equation solver, function tools and tool names (no model needed)."""
from __future__ import annotations

import time

import pytest
from lagent.actions import ActionExecutor
from lagent.schema import ActionStatusCode

from agents.tools import Calculator, EquationSolver, PythonSandbox, function_tool, resolve_tools, tool_names
from agents.tools.calculator import calculate
from agents.tools.safe_ast import ExpressionError
from agents.tools.solver import solve
from sdk.errors import TunechatError


@pytest.mark.parametrize("expression, value", [
    ("(12 + 7) * 3 / 4", "14.25"), ("37 * 91", "3367"), ("84 / 2", "42"), ("1 / 3", "0.333333333333"),
    ("2^10", "1024"), ("12 x 7", "84"), ("7 // 2", "3"), ("-7 % 3", "2"), ("sqrt(16) + abs(-2)", "6"),
    ("round(2.567, 2)", "2.57"), ("max(3, 9, 4)", "9"), ("10 ** 300 // 10 ** 299", "10"), ("2 * pi", "6.28318530718"),
])
def test_calculator_computes(expression, value):
    assert calculate(expression) == value


@pytest.mark.parametrize("expression, reason", [
    ('__import__("os").system("id")', "only these functions"),
    ("().__class__.__bases__", "attribute access"),
    ("open('/etc/passwd')", "only these functions"),
    ("lambda: 1", "lambda"),
    ("[x for x in range(9)]", "not allowed"),
    ("'a' * 10", "only numbers"),
    ("True + 1", "only numbers"),
    ("x + 1", "unknown name"),
    ("9 ** 9 ** 9", "exponent is too large"),
    ("10 ** 5000", "too large"),
    ("(10 ** 1000) * (10 ** 1000)", "too large"),
    ("1e308 * 10", "too large"),
    ("5 / 0", "division by zero"),
    ("sqrt(-1)", "math domain error"),
    ("1,234", "thousands separators"),
    ("1 +", "cannot parse"),
    ("1" + "+1" * 400, "too long"),
    ("-" * 400 + "1", "too complex"),
])
def test_calculator_refuses_unsafe_or_unbounded_input_quickly(expression, reason):
    start = time.perf_counter()
    with pytest.raises(ExpressionError, match=reason):
        calculate(expression)
    assert time.perf_counter() - start < 0.1  # refused before any big number is built


def test_calculator_as_a_lagent_action_reports_errors_as_results():
    executor = ActionExecutor([Calculator()])
    ok = executor("Calculator", {"expression": "6 * 7"})
    assert ok.state == ActionStatusCode.SUCCESS and ok.format_result() == "42"
    bad = executor("Calculator", {"expression": "6 / 0"})
    assert bad.state == ActionStatusCode.API_ERROR and bad.errmsg == "division by zero"
    assert executor("Calculator", '{"expr": "1"}').state == ActionStatusCode.ARGS_ERROR


@pytest.mark.parametrize("equations, solution", [
    ("2x + 3 = 11", "x = 4"),
    ("x^2 - 5x + 6 = 0", "x = 2 or x = 3"),
    ("x + y = 10, x - y = 2", "x = 6, y = 4"),
    ("3(x + 1) = 12", "x = 3"),
    ("1.5x = 3", "x = 2"),
    ("2x = 2x + 1", "no solution"),
    ("x^2 = 2", "x = -sqrt(2) ≈ -1.414213562 or x = sqrt(2) ≈ 1.414213562"),
])
def test_solver_solves(equations, solution):
    assert solve(equations) == solution


@pytest.mark.parametrize("equations, reason", [
    ('__import__("os").system("id")', "unexpected character"),
    ("x.__class__ = 1", "unexpected character"),
    ("lambda: 1", "unexpected character"),
    ("sin(x) = 1", "unknown function"),
    ("x**100 = 1", "exponents must be numbers"),
    ("x^y = 2", "exponents must be numbers"),
    ("a + b + c + d + e = 1", "at most 4 variables"),
    ("x = 1 = 2", "one '='"),
])
def test_solver_refuses_unsafe_or_unbounded_input(equations, reason):
    with pytest.raises(ExpressionError, match=reason):
        solve(equations)


def test_solver_stops_a_runaway_sympy_and_recovers():
    start = time.monotonic()
    with pytest.raises(ExpressionError, match="took longer than 2 s"):
        solve("x^8 + y^8 + z^8 = 1, x^7 - y = 2, z^5 + x^8 = y", timeout=2)
    assert time.monotonic() - start < 4
    assert solve("x - 1 = 0") == "x = 1"  # a fresh worker answers the next request


def test_solver_action_description_and_call():
    solver = EquationSolver()
    assert solver.name == "EquationSolver" and solver.description["required"] == ["equations"]
    assert solver({"equations": "x + 1 = 3"}).format_result() == "x = 2"


def forecast(city: str, days: int = 1) -> str:
    """Forecast the weather for a city.

    Args:
        city: the city name
        days: how many days ahead
    """
    if city == "Atlantis":
        raise ValueError("no weather data under the sea")
    return f"{city}: sunny for {days} day(s)"


def test_function_tool_is_described_from_hints_and_docstring():
    tool = function_tool(forecast)
    assert tool.name == "forecast"
    assert tool.description["description"] == "Forecast the weather for a city."
    assert tool.description["parameters"] == [
        {"name": "city", "type": "STRING", "description": "the city name"},
        {"name": "days", "type": "NUMBER", "description": "how many days ahead"},
    ]
    assert tool.description["required"] == ["city"]
    assert tool({"city": "Oslo", "days": 2}).format_result() == "Oslo: sunny for 2 day(s)"
    failed = tool({"city": "Atlantis"})
    assert failed.state == ActionStatusCode.API_ERROR and failed.errmsg == "no weather data under the sea"


def test_function_tool_needs_what_the_model_reads():
    def undocumented(x: int) -> int:
        return x

    def untyped(x):
        """Do something."""

    def variadic(*numbers: int) -> int:
        """Add numbers."""

    for function, reason in [(undocumented, "docstring"), (untyped, "type hint"), (variadic, r"\*args")]:
        with pytest.raises(TunechatError, match=reason):
            function_tool(function)


def test_tools_resolve_by_name_xtuner_names_included():
    actions = resolve_tools(["calculate", "calculator", "solve", "python", forecast, Calculator()])
    assert [a.name for a in actions] == ["Calculator", "EquationSolver", "PythonSandbox", "forecast"]
    assert isinstance(actions[2], PythonSandbox)
    assert tool_names(actions) == ["calculator", "solve", "python", "forecast"]
    with pytest.raises(TunechatError, match="unknown tool 'abacus'"):
        resolve_tools(["abacus"])
    with pytest.raises(TunechatError, match="internet"):
        resolve_tools(["search"])
