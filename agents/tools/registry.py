"""Tools by name: what `--tools`, `--with-plugins` and `build_agent(tools=[...])` accept.

A tool may be named ("calculator"; XTuner's plugin names "calculate" and "solve" too), be a
lagent action already, or be a plain typed, docstringed function (wrapped by `function_tool`)."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from lagent.actions import BaseAction

from agents.tools.calculator import Calculator
from agents.tools.functions import function_tool
from agents.tools.sandbox import PythonSandbox
from agents.tools.solver import EquationSolver
from sdk.errors import TunechatError

TOOL_NAMES: dict[str, Callable[[], BaseAction]] = {
    "calculator": Calculator, "calculate": Calculator,
    "solve": EquationSolver, "solver": EquationSolver,
    "python": PythonSandbox, "interpreter": PythonSandbox, "sandbox": PythonSandbox,
}
UNAVAILABLE = {"search": "XTuner's search plugin needs a web search API key and the internet; it is not available here"}


def resolve_tools(tools: Iterable[Any] | None) -> list[BaseAction]:
    """Names, actions and functions → lagent actions, one per tool (a tool named twice, e.g.
    "calculate" and "calculator", is kept once)."""
    actions: dict[str, BaseAction] = {}
    for tool in tools or []:
        action = _resolve(tool)
        actions.setdefault(action.name, action)
    return list(actions.values())


def _resolve(tool: Any) -> BaseAction:
    if isinstance(tool, BaseAction):
        return tool
    if isinstance(tool, str):
        key = tool.strip().lower()
        if key in UNAVAILABLE:
            raise TunechatError(f"tool {tool!r}: {UNAVAILABLE[key]}")
        if key not in TOOL_NAMES:
            raise TunechatError(f"unknown tool {tool!r}; choose from: {', '.join(sorted(TOOL_NAMES))}")
        return TOOL_NAMES[key]()
    if callable(tool):
        return function_tool(tool)
    raise TunechatError(f"a tool must be a name, a lagent action or a function, got {type(tool).__name__}")


def tool_names(actions: Iterable[BaseAction]) -> list[str]:
    """Short names for actions built from names (for records and messages), else their own name."""
    short = {factory.__name__: name for name, factory in reversed(list(TOOL_NAMES.items()))}
    return [short.get(type(a).__name__, a.name) for a in actions]
