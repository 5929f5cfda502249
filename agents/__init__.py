"""tunechat's Lagent integration: our model as a lagent LLM, safe tools, agents, and the
renderer that turns tool-call conversations into training text exactly as the agent prompts.

    import sdk, agents
    agent = agents.build_agent(sdk.load(), tools=["calculator"], protocol="internlm2")
    agent.chat("What is 12 * 7?").response
    agents.render_segments(messages, protocol="internlm2", tools=["calculator"])  # [(text, trainable)]

Names are imported on first use: importing lagent takes seconds, and a submodule such as the
equation solver's worker (`agents.tools.equations`) must not pay for it."""
from __future__ import annotations

import importlib
from typing import Any

PROTOCOLS = ("internlm2", "react")  # here, not in agents.protocols: the CLI lists them without importing lagent

_EXPORTS = {
    "EngineLLM": "agents.llm",
    "GIVE_UP": "agents.agent", "Internlm2ToolAgent": "agents.agent", "ReActToolAgent": "agents.agent",
    "build_agent": "agents.builder", "make_agent": "agents.builder",
    "is_agent_record": "datasets_builders.records", "render_prompt": "agents.render", "render_record": "agents.render",
    "render_segments": "agents.render",
}
__all__ = sorted([*_EXPORTS, "PROTOCOLS"])


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
