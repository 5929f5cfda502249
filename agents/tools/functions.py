"""`function_tool`: any typed, docstringed Python function as a lagent tool.

The description the model reads is built by lagent's own `tool_api` parser (Google-style
docstring + type hints), so a function tool is described exactly like lagent's built-in ones.
Type hints and a docstring are required: they are the only thing the model learns the tool from."""
from __future__ import annotations

import inspect
import re
from typing import Any, Callable

from lagent.actions import BaseAction, tool_api

from sdk.errors import TunechatError


class FunctionTool(BaseAction):
    """A Python function exposed as a tool (see `function_tool`)."""

    def __init__(self, function: Callable[..., Any], description: dict):
        self._function = function
        super().__init__(description=description)

    @tool_api
    def run(self, **kwargs: Any) -> Any:
        """Call the wrapped function with the model's arguments."""
        return self._function(**kwargs)


def function_tool(function: Callable[..., Any], name: str | None = None) -> FunctionTool:
    """Wrap `function` as a lagent tool named `name` (default: the function's name).

    Usable as a decorator. Raises TunechatError when the function has no docstring or a
    parameter without a type hint, or takes *args / **kwargs (a model can only pass named
    JSON arguments)."""
    label = getattr(function, "__name__", repr(function))
    if not callable(function):
        raise TunechatError(f"{label!r} is not a function")
    if not inspect.getdoc(function):
        raise TunechatError(f"function {label}: needs a docstring (the model reads it to know when to call the tool)")
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TunechatError(f"function {label}: *args and **kwargs cannot be described to a model")
        if parameter.annotation is inspect.Parameter.empty:
            raise TunechatError(f"function {label}: parameter {parameter.name!r} needs a type hint")
    description = dict(tool_api(_typed_docstring(function)).api_description)
    description["name"] = name or label
    return FunctionTool(function, description)


def _typed_docstring(function: Callable[..., Any]) -> Callable[..., Any]:
    """A stand-in with the same signature whose docstring spells `name (type): ...` for every
    argument: lagent's parser crashes on a Google-style `name: ...` line without a type."""
    doc = inspect.getdoc(function) or ""
    for parameter in inspect.signature(function).parameters.values():
        hint = getattr(parameter.annotation, "__name__", str(parameter.annotation))
        doc = re.sub(rf"^(\s+){re.escape(parameter.name)}\s*:", rf"\g<1>{parameter.name} ({hint}):", doc, flags=re.M)

    def stand_in(**kwargs: Any) -> Any:
        return function(**kwargs)

    stand_in.__name__, stand_in.__doc__ = function.__name__, doc
    stand_in.__signature__ = inspect.signature(function)  # type: ignore[attr-defined]
    return stand_in
