"""The server's view of OpenAI function calling: what it needs from whoever knows the model's
tool protocol. The agents package implements it (`agents.openai_tools.OpenAITools`, over the
Lagent protocol the model was tuned with); `tunechat serve` hands it to `create_app`. The engine
room itself never imports agents, so a server started without it answers tool requests with a
400 that says what to install."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sdk.errors import TunechatError


class ToolRequestError(TunechatError):
    """A tools request the client must fix; `param` names the field (OpenAI's error `param`)."""

    def __init__(self, message: str, param: str):
        super().__init__(message)
        self.param = param


@dataclass
class ToolPrompt:
    """The raw prompt for a tools request. `prefill` ends `text` and is the start of the reply
    (a forced tool call's opening, for tool_choice "required" or a named function); the model
    continues it. `stop_words` end the model's turn after a call."""

    text: str
    prefill: str = ""
    stop_words: list[str] = field(default_factory=list)


@dataclass
class ToolReply:
    """A model reply, understood: its prose, and the tool calls it makes (OpenAI's shape:
    {"id", "type": "function", "function": {"name", "arguments": JSON text}})."""

    content: str
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


class ToolCalling(Protocol):
    protocol: str  # the protocol's name, e.g. "internlm2"

    def prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], tool_choice: Any) -> ToolPrompt:
        """Render OpenAI messages (tool_calls, role "tool") with OpenAI `tools` as the protocol does;
        ToolRequestError for anything malformed."""

    def content(self, partial: str) -> str:
        """The part of a reply still being written that is surely prose (a prefix of it): what
        may be streamed before the reply is complete."""

    def parse(self, reply: str, tools: list[dict[str, Any]]) -> ToolReply:
        """The complete reply to a request offering `tools`, understood; a malformed call, or one
        to a tool not offered, is prose (no tool_calls)."""
