"""tunechat's Lagent integration: our model as a lagent LLM, safe tools, agents, and the
renderer that turns tool-call conversations into training text exactly as the agent prompts.

    import sdk, agents
    agent = agents.build_agent(sdk.load(), tools=["calculator"], protocol="internlm2")
    agent.chat("What is 12 * 7?").response
    agents.render_segments(messages, protocol="internlm2", tools=["calculator"])  # [(text, trainable)]

Importing this package registers the agent's renderer for tool-call records with the engine
room (`sdk.renderers`), which never imports agents itself.

Names are imported on first use: importing lagent takes seconds, and a submodule such as the
equation solver's worker (`agents.tools.equations`) must not pay for it."""
from __future__ import annotations

import hashlib
import importlib
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from sdk.errors import TunechatError
from sdk.renderers import register_record_renderer

PROTOCOLS = ("internlm2", "react")  # the one list: the CLI and the pages offer these without importing lagent

_EXPORTS = {
    "EngineLLM": "agents.llm",
    "GIVE_UP": "agents.agent", "Internlm2ToolAgent": "agents.agent", "ReActToolAgent": "agents.agent",
    "build_agent": "agents.builder", "make_agent": "agents.builder",
    "AgentChat": "agents.session", "Transcript": "agents.session", "action_view": "agents.session",
    "is_agent_record": "datasets_builders.records", "render_prompt": "agents.render", "render_record": "agents.render",
    "render_segments": "agents.render",
}
__all__ = sorted([*_EXPORTS, "PROTOCOLS", "check_protocol"])


def check_protocol(name: str) -> str:
    """`name` if it is a protocol, else the one error every entry point gives."""
    if name not in PROTOCOLS:
        raise TunechatError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")
    return name


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def _render_record(record: dict[str, Any]) -> list[tuple[str, bool]]:
    return importlib.import_module("agents.render").render_record(record)


def _renderer_version() -> str:
    """A digest of the modules that shape the agent's prompt text (found, not imported: they
    import lagent)."""
    digest = hashlib.sha256()
    for module in ("agents.render", "agents.protocols", "agents.agent", "agents.builder"):
        digest.update(Path(find_spec(module).origin).read_bytes())
    return digest.hexdigest()[:16]


register_record_renderer("agent", _render_record, _renderer_version())
