"""Tool-call conversations → training text, by the code path that prompts the agent.

A conversation in the `messages` form (docs/architecture.md) is turned into the agent's own history
(`history_from_messages`: what the agent's loop would have recorded), formatted by the agent's
protocol (lagent's `Internlm2Protocol.format` / `ReActProtocol.format`, with the agent's tool
executors built by `make_agent`) and rendered by lagent's `LMTemplateParser` with the same meta
template as `EngineLLM`. So the text before each assistant turn is, byte for byte, the prompt the
agent sends the model at that point (tests/test_agents_parity.py checks it on a real run).

Records written by `tunechat data tools` look like
    {"messages": [{"role": "user", "content": "..."},
                  {"role": "assistant", "content": "Let me compute."},              # thought
                  {"role": "assistant", "name": "plugin",
                   "content": "{\\"name\\": \\"Calculator\\", \\"parameters\\": {\\"expression\\": \\"3*4\\"}}"},
                  {"role": "environment", "name": "plugin", "content": "12"},
                  {"role": "assistant", "content": "It is 12."}],
     "tools": ["calculator"], "protocol": "internlm2"}
A leading unnamed `system` message is the agent's system (meta) prompt."""
from __future__ import annotations

from typing import Any, Iterable

from lagent.llms import INTERNLM2_META
from lagent.llms.base_llm import LMTemplateParser

from agents.agent import json_or_text
from agents.builder import make_agent
from datasets_builders.records import CALL_NAMES
from sdk.errors import TunechatError

ROLES = {"system", "user", "assistant", "environment"}


def render_segments(messages: list[dict], protocol: str = "internlm2", tools: Iterable[Any] | None = None,
                    meta_template: list[dict] | None = None) -> list[tuple[str, bool]]:
    """(text, trainable) pieces of a whole conversation; they join into the full text. Trainable:
    each assistant turn's text and its end-of-turn marker; everything else (system prompts, tool
    descriptions, user turns, tool results, role headers) is context only."""
    parser = LMTemplateParser(meta_template or INTERNLM2_META)
    formatted = _formatted(messages, protocol, tools)
    assistant = parser.roles["assistant"]
    end = assistant.get("end", "")
    marker = end.rstrip()
    segments: list[tuple[str, bool]] = []
    for index, message in enumerate(formatted):
        text = parser._prompt2str(message, last=index == len(formatted) - 1)  # what parser(...) joins
        if message["role"] != "assistant":
            segments.append((text, False))
            continue
        begin = parser._format_begin(assistant, message)
        if text != begin + message["content"] + end:
            raise TunechatError("the meta template renders assistant turns in an unexpected way")
        segments += [(begin, False), (message["content"] + marker, True), (end[len(marker):], False)]
    if "".join(text for text, _ in segments) != parser(formatted):
        raise TunechatError("internal error: the segments do not join into lagent's rendering")
    return _merged(segments)


def render_prompt(messages: list[dict], protocol: str = "internlm2", tools: Iterable[Any] | None = None,
                  meta_template: list[dict] | None = None) -> str:
    """The prompt the agent sends the model after `messages` (which end with a user message or
    a tool result): what the model should continue from."""
    return LMTemplateParser(meta_template or INTERNLM2_META)(_formatted(messages, protocol, tools))


def render_record(record: dict) -> list[tuple[str, bool]]:
    """`render_segments` for a record of `tunechat data tools` (its messages, tools, protocol)."""
    return render_segments(record["messages"], record.get("protocol", "internlm2"), record.get("tools", []))


def _formatted(messages: list[dict], protocol: str, tools: Iterable[Any] | None) -> list[dict]:
    """The role messages the agent's protocol builds for this conversation."""
    messages = list(messages)
    _validate(messages)
    system = None
    if messages and messages[0]["role"] == "system":
        system, messages = messages[0]["content"], messages[1:]
    agent = make_agent(None, list(tools or []), protocol, system=system)
    _check_calls(agent, messages, protocol)
    return agent.format_prompt(agent.history_from_messages(messages), 0)


def _validate(messages: list[dict]) -> None:
    if not messages:
        raise TunechatError("the conversation is empty")
    for index, message in enumerate(messages):
        role, name = message.get("role"), message.get("name")
        if role not in ROLES:
            raise TunechatError(f"messages[{index}]: role must be one of {sorted(ROLES)}, got {role!r}")
        if not isinstance(message.get("content"), (str, dict)):
            raise TunechatError(f"messages[{index}]: content must be text")
        if role == "system" and (index or name):
            raise TunechatError(f"messages[{index}]: only one unnamed system message, first, is supported")
        if role == "assistant" and name not in (None, *CALL_NAMES):
            raise TunechatError(f"messages[{index}]: an assistant message's name must be plugin or interpreter")
        if role == "environment":
            previous = messages[index - 1] if index else {}
            if previous.get("role") != "assistant" or previous.get("name") not in CALL_NAMES:
                raise TunechatError(f"messages[{index}]: a tool result must follow a tool call")
    if not any(m["role"] == "user" for m in messages):
        raise TunechatError("the conversation has no user message")


def _check_calls(agent: Any, messages: list[dict], protocol: str) -> None:
    """Calls to tools the prompt does not offer would train the model to invent tools."""
    executor = agent._action_executor
    offered = set(executor.actions) if executor else set()
    if protocol == "internlm2" and agent._interpreter_executor is not None:
        offered.add("interpreter")
    for message in messages:
        kind = message.get("name")
        if message["role"] != "assistant" or kind is None:
            continue
        call = json_or_text(message["content"])
        if kind == "interpreter":
            tool = "interpreter" if protocol == "internlm2" else "PythonSandbox"
        elif isinstance(call, dict) and isinstance(call.get("name"), str):
            tool = call["name"].split(".")[0]
        else:
            raise TunechatError(f"a plugin call must be JSON with a name and parameters, got {message['content']!r}")
        if tool not in offered:
            listed = ", ".join(sorted(offered)) or "none"
            if kind == "interpreter":
                raise TunechatError(f"the conversation runs Python code but the tools do not include python (offered: {listed})")
            raise TunechatError(f"the conversation calls {tool!r} but the tools offered are: {listed}")


def _merged(segments: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    merged: list[tuple[str, bool]] = []
    for text, trainable in segments:
        if not text:
            continue
        if merged and merged[-1][1] == trainable:
            merged[-1] = (merged[-1][0] + text, trainable)
        else:
            merged.append((text, trainable))
    return merged
