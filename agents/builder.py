"""`build_agent`: a model and some tools → a lagent agent, one call.

`make_agent` is the single place an agent's protocol and tool executors are assembled; the
training renderer (`agents.render`) uses it too, without a model, so that the prompts it renders
come from the very objects an agent at inference uses."""
from __future__ import annotations

import copy
from typing import Any, Iterable

from lagent.actions import ActionExecutor
from lagent.llms import BaseModel

from agents import check_protocol
from agents.agent import Internlm2ToolAgent, ReActToolAgent
from agents.llm import EngineLLM
from agents.protocols import make_protocol
from agents.tools import PythonSandbox, resolve_tools
from sdk.engines.base import BaseEngine
from sdk.errors import TunechatError

# Extra stop words per protocol: the end of a call (nothing useful follows it before the tool
# has run), and ReAct's tool-result label, which only the environment may write.
PROTOCOL_STOP_WORDS = {"internlm2": ["<|action_end|>"], "react": ["Response:"]}


def build_agent(model: BaseEngine | BaseModel, tools: Iterable[Any] = (), protocol: str = "internlm2", *, system: str | None = None,
                max_turn: int | None = None, **gen_params: Any) -> Internlm2ToolAgent | ReActToolAgent:
    """An agent over `model` (an sdk Engine, an engine-like remote backend, or an EngineLLM)
    with `tools` (names such as "calculator", "solve", "python"; lagent actions; or typed,
    docstringed functions).

    protocol "internlm2": lagent's Internlm2Agent (plugin calls as JSON; a PythonSandbox among
    the tools becomes its code interpreter). protocol "react": lagent's ReAct agent.
    system: the Internlm2 meta prompt (default: a short English one).
    max_turn: model turns per user message (default: lagent's, 3 for internlm2, 4 for react).
    gen_params: generation defaults for the LLM (max_new_tokens, temperature, ...)."""
    return make_agent(_as_llm(model, protocol, gen_params), tools, protocol, system=system, max_turn=max_turn)


def make_agent(llm: Any, tools: Iterable[Any] = (), protocol: str = "internlm2", *, system: str | None = None,
               max_turn: int | None = None) -> Internlm2ToolAgent | ReActToolAgent:
    """The agent for `protocol` with `tools` over `llm` (None: an agent used only to render)."""
    check_protocol(protocol)
    if max_turn is not None and max_turn < 1:
        raise TunechatError(f"max_turn must be at least 1, got {max_turn}")
    actions = resolve_tools(tools)
    if protocol == "react":
        return ReActToolAgent(llm, ActionExecutor(actions), protocol=make_protocol("react", system),
                              max_turn=max_turn or 4)
    plugins = [a for a in actions if not isinstance(a, PythonSandbox)]
    interpreters = [a for a in actions if isinstance(a, PythonSandbox)]
    return Internlm2ToolAgent(
        llm,
        plugin_executor=ActionExecutor(plugins) if plugins else None,
        interpreter_executor=ActionExecutor(interpreters[:1]) if interpreters else None,
        protocol=make_protocol("internlm2", system),
        max_turn=max_turn or 3,
    )


def _as_llm(model: Any, protocol: str, gen_params: dict) -> BaseModel:
    """Our LLM for an engine; a copy of a given EngineLLM with the protocol's stop words added
    (the caller's object is left as it was); any other lagent model as it is."""
    extra = PROTOCOL_STOP_WORDS.get(protocol, [])
    if isinstance(model, EngineLLM):
        llm = copy.copy(model)
        llm.gen_params = model.update_gen_params(**model._settings(gen_params, with_end_words=False))
    elif isinstance(model, BaseModel):
        if gen_params:
            raise TunechatError("generation settings can be given to build_agent only with an Engine or an EngineLLM")
        return model
    elif callable(getattr(model, "generate", None)):
        llm = EngineLLM(model, **gen_params)
    else:
        raise TunechatError(f"build_agent needs an sdk Engine or an EngineLLM, got {type(model).__name__}")
    stop_words = list(llm.gen_params.get("stop_words") or [])
    llm.gen_params["stop_words"] = stop_words + [w for w in extra if w not in stop_words]
    return llm
