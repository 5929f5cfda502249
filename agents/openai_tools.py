"""OpenAI function calling over a Lagent tool protocol: what `tunechat serve` uses to accept
`tools`, `tool_choice`, assistant `tool_calls` and `role: "tool"` messages (`sdk.tool_calls`).

Everything goes through the agent's own code: an OpenAI function becomes a lagent tool whose
description is lagent's format (`schema_tool`; `openai_function` is the way back, so a model
tuned on `tunechat data tools` sees, when served, the description text it was trained on), the
conversation becomes the `messages` form and is rendered by `agents.render.render_prompt` (the
prompt the Lagent agent sends, byte for byte), and replies are parsed by the agent's
`parse_reply`.

What each protocol supports:
- internlm2: one call per reply (the protocol's parser reads the first call); `tool_choice`
  "required" prefills the call's opening (`<|action_start|><|plugin|>`), a named function also
  the start of its JSON (`{"name": "NAME", "parameters": `), so the model writes a call to it;
  "none" stops the model at a call's opening, so the reply is prose.
- react: one call per reply; "required" and a named function are asked for in the prompt only
  (ReAct replies open with a thought, which the server does not write for the model), so a reply
  without a call comes back as prose; "none" drops any call.
A call the model writes malformed (not JSON, an unknown tool, arguments that are not an object)
comes back as plain content with `finish_reason: "stop"`."""
from __future__ import annotations

import json
import uuid
from typing import Any

from lagent.actions.parser import JsonParser
from lagent.llms import INTERNLM2_META

from agents import check_protocol
from agents.agent import _hold_back
from agents.builder import PROTOCOL_STOP_WORDS, make_agent
from agents.llm import end_markers
from agents.protocols import make_protocol
from agents.render import render_prompt
from agents.tools.functions import FunctionTool
from sdk.tool_calls import ToolPrompt, ToolReply, ToolRequestError

JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


def schema_tool(spec: Any, where: str = "tools[0]") -> FunctionTool:
    """An OpenAI tool (`{"type": "function", "function": {"name", "description", "parameters"}}`)
    as a lagent tool described in lagent's own format. The server never runs it: the client does."""
    if not isinstance(spec, dict) or spec.get("type", "function") != "function" or not isinstance(spec.get("function"), dict):
        raise ToolRequestError(f'{where}: a tool is {{"type": "function", "function": {{"name": ...}}}}', where)
    function = spec["function"]
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ToolRequestError(f"{where}.function.name: every function needs a name", f"{where}.function.name")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    here = f"{where}.function.parameters"
    if not isinstance(parameters, dict) or parameters.get("type", "object") != "object":
        raise ToolRequestError(f'{here}: must be a JSON schema of type "object"', here)
    properties = parameters.get("properties", {})
    required = parameters.get("required", [])
    if not isinstance(properties, dict) or not all(isinstance(p, dict) for p in properties.values()):
        raise ToolRequestError(f"{here}.properties: must map each parameter name to its JSON schema", here)
    if not isinstance(required, list) or not set(required) <= set(properties):
        raise ToolRequestError(f"{here}.required: must list parameter names from properties", here)
    described = []
    for key, schema in properties.items():
        kind = schema.get("type", "string")
        if not isinstance(kind, str) or kind not in JSON_TYPES:
            raise ToolRequestError(f"{here}.properties.{key}.type: not a JSON schema type ({kind!r})", here)
        described.append({"name": key, "type": kind.upper(), "description": str(schema.get("description", ""))})
    description = {"name": name, "description": str(function.get("description", "")), "parameters": described,
                   "required": list(required), "parameter_description": JsonParser.PARAMETER_DESCRIPTION}
    return FunctionTool(_client_side, description)


def openai_function(tool: Any) -> dict[str, Any]:
    """A lagent tool (one of `agents.tools`, or a `function_tool`) as an OpenAI tool spec: what a
    client sends to call it. `schema_tool(openai_function(t))` describes it as `t` is described."""
    api = tool.description
    properties = {p["name"]: {"type": p["type"].lower(), "description": p.get("description", "")} for p in api["parameters"]}
    return {"type": "function", "function": {"name": api["name"], "description": api.get("description", ""),
                                             "parameters": {"type": "object", "properties": properties,
                                                            "required": list(api.get("required", []))}}}


class OpenAITools:
    """`sdk.tool_calls.ToolCalling` for one protocol (the one the served model was tuned with)."""

    def __init__(self, protocol: str = "internlm2"):
        self.protocol = check_protocol(protocol)
        self._stop_words = [*PROTOCOL_STOP_WORDS[protocol], *end_markers(INTERNLM2_META)]
        self._format = make_protocol(protocol)  # its markers and parser (internlm2's), for prefill and streaming

    def prompt(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], tool_choice: Any) -> ToolPrompt:
        actions = [schema_tool(spec, f"tools[{i}]") for i, spec in enumerate(tools)]
        names = [a.description["name"] for a in actions]
        if len(set(names)) != len(names):
            raise ToolRequestError("tools: two functions have the same name", "tools")
        choice = _choice(tool_choice, names)
        text = render_prompt(_messages_form(messages), self.protocol, actions)
        stop_words = list(self._stop_words)
        prefill = ""
        if self.protocol == "internlm2":
            tool = self._format.tool
            start = tool["begin"].format(start_token=tool["start_token"], name=tool["name_map"]["plugin"])
            if choice == "none":
                stop_words.append(tool["start_token"])
            elif choice == "required":
                prefill = start
            elif choice not in ("auto",):
                prefill = start + '{"name": ' + json.dumps(choice, ensure_ascii=False) + ', "parameters": '
        return ToolPrompt(text=text + prefill, prefill=prefill, stop_words=stop_words)

    def content(self, partial: str) -> str:
        if self.protocol != "internlm2":
            return ""  # a ReAct reply is understood only once complete
        kind, language, _ = self._format.parse(partial)  # the prose before a call, as the agent's parser cuts it
        tool = self._format.tool
        return language if kind else _hold_back(language, [tool["start_token"] + name for name in tool["name_map"].values()])

    def parse(self, reply: str, tools: list[dict[str, Any]]) -> ToolReply:
        agent = make_agent(None, [schema_tool(spec, f"tools[{i}]") for i, spec in enumerate(tools)], self.protocol)
        step = agent.parse_reply(reply)
        if step.final is not None or step.kind != "plugin" or step.error:
            return ToolReply(content=reply if step.final is None else step.final)
        parameters = step.parameters
        if isinstance(parameters, str):  # ReAct's Action Input is JSON text
            try:
                parameters = json.loads(parameters)
            except json.JSONDecodeError:
                return ToolReply(content=reply)
        if not isinstance(parameters, dict):
            return ToolReply(content=reply)
        call = {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                "function": {"name": step.tool, "arguments": json.dumps(parameters, ensure_ascii=False)}}
        return ToolReply(content=step.thought if self.protocol == "internlm2" else "", tool_calls=[call])


def _client_side(**arguments: Any) -> Any:
    raise RuntimeError("an OpenAI tool runs on the client, not in tunechat")


def _choice(tool_choice: Any, names: list[str]) -> str:
    """"auto", "none", "required" or the named function."""
    if tool_choice is None:
        return "auto" if names else "none"
    if isinstance(tool_choice, str):
        if tool_choice not in ("auto", "none", "required"):
            raise ToolRequestError('tool_choice: "auto", "none", "required" or {"type": "function", "function": '
                                   '{"name": NAME}}', "tool_choice")
        if tool_choice == "required" and not names:
            raise ToolRequestError('tool_choice: "required" needs tools', "tool_choice")
        return tool_choice
    name = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    if name not in names:
        raise ToolRequestError(f"tool_choice: names {name!r}, which is not among the tools ({', '.join(names) or 'none'})",
                               "tool_choice")
    return name


def _messages_form(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI messages → the `messages` form the agent renders: an assistant turn's calls become
    assistant messages named plugin, each followed by its result (the matching "tool" message)
    as an environment message, as the agent's own loop records them."""
    out: list[dict[str, Any]] = []
    pending: dict[str, dict[str, Any]] = {}  # call id → the call message, until its result comes
    first = True  # the next result is that of the assistant turn's first call (its thought is recorded already)
    for i, message in enumerate(messages):
        role, content = message["role"], message.get("content") or ""
        if role == "tool":
            call = pending.pop(message.get("tool_call_id") or "", None)
            if call is None:
                raise ToolRequestError(f"messages[{i}].tool_call_id: no earlier assistant tool call has the id "
                                       f"{message.get('tool_call_id')!r}", f"messages[{i}].tool_call_id")
            if not first:  # the agent's loop records an (empty) thought before each later call
                out.append({"role": "assistant", "content": ""})
            out += [call, {"role": "environment", "name": "plugin", "content": content}]
            first = False
            continue
        if pending:
            raise ToolRequestError(f"messages[{i}]: the tool calls {', '.join(pending)} have no tool result before it",
                                   f"messages[{i}]")
        if role == "assistant" and message.get("tool_calls"):
            for j, call in enumerate(message["tool_calls"]):
                where = f"messages[{i}].tool_calls[{j}].function.arguments"
                try:
                    arguments = json.loads(call["function"]["arguments"] or "{}")
                except json.JSONDecodeError as exc:
                    raise ToolRequestError(f"{where}: not valid JSON ({exc.msg})", where) from None
                pending[call["id"]] = {"role": "assistant", "name": "plugin",
                                       "content": json.dumps({"name": call["function"]["name"], "parameters": arguments},
                                                             ensure_ascii=False)}
            out.append({"role": "assistant", "content": content})  # the thought before the calls
            first = True
            continue
        out.append({"role": "system" if role == "developer" else role, "content": content})
    if pending:
        raise ToolRequestError(f"messages: the tool calls {', '.join(pending)} have no tool result", "messages")
    return out
