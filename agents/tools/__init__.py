"""Tools for agents, all lagent actions: `Calculator`, `EquationSolver`, `PythonSandbox`, any
function via `function_tool`, and `resolve_tools` for names ("calculator", "solve", "python").

Names are imported on first use (see `agents/__init__.py`)."""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Calculator": "agents.tools.calculator",
    "EquationSolver": "agents.tools.solver",
    "FunctionTool": "agents.tools.functions", "function_tool": "agents.tools.functions",
    "PythonSandbox": "agents.tools.sandbox", "SandboxError": "agents.tools.sandbox",
    "TOOL_NAMES": "agents.tools.registry", "resolve_tools": "agents.tools.registry", "tool_names": "agents.tools.registry",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents.tools' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
