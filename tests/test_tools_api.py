"""OpenAI function calling on the server (`tools`, `tool_choice`, `tool_calls`, `role: "tool"`),
driven by the official `openai` client against the real app on the real embedded model.

The embedded base model never starts a tool call on its own, so the full loop scripts only the
model's first reply (a calculator call, as a model tuned with `tunechat data tools` writes it);
everything after it, the tool result included, is the real model through the real server."""
from __future__ import annotations

import json

import openai
import pytest
from agent_scripts import ScriptedEngine, plugin_call
from fastapi.testclient import TestClient

from agents import build_agent
from agents.openai_tools import OpenAITools, openai_function, schema_tool
from agents.tools import resolve_tools
from agents.tools.calculator import calculate
from sdk.server import create_app

CALCULATOR = openai_function(resolve_tools(["calculator"])[0])
QUESTION = [{"role": "user", "content": "What is 37 * 91?"}]
CALL = "Let me compute. " + plugin_call("Calculator", expression="37 * 91")
GREEDY = {"temperature": 0, "max_tokens": 64}


def client_for(engine, **app_options) -> openai.OpenAI:
    """The official client over the app in this process (no second torch process)."""
    app = create_app(engine, tool_calling=OpenAITools(), **app_options)
    return openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=TestClient(app), max_retries=0)


def run_calls(message) -> list[dict]:
    """The client's side of the loop: run each call with the real calculator, answer with a tool message."""
    return [{"role": "tool", "tool_call_id": call.id, "content": calculate(**json.loads(call.function.arguments))}
            for call in message.tool_calls]


def test_a_tool_function_maps_to_the_description_the_model_was_trained_on():
    tool = resolve_tools(["calculator"])[0]
    assert schema_tool(CALCULATOR).description == tool.description
    assert CALCULATOR["function"]["parameters"] == {
        "type": "object", "required": ["expression"],
        "properties": {"expression": {"type": "string", "description": "numbers, + - * / ** and parentheses"}}}


def test_the_tools_prompt_is_the_lagent_agents_prompt_byte_for_byte(engine):
    agent_engine = ScriptedEngine(["It is 3367."])
    build_agent(agent_engine, tools=["calculator"]).chat(QUESTION[0]["content"])
    served = ScriptedEngine(["It is 3367."], engine)
    client_for(served).chat.completions.create(model=engine.name, messages=QUESTION, tools=[CALCULATOR], **GREEDY)
    assert served.prompts == agent_engine.prompts
    assert served.calls[0]["stop_words"][-2:] == agent_engine.calls[0]["stop_words"][-2:] == ["<|action_end|>", "<|im_end|>"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_complete_function_calling_loop_through_the_openai_client(engine, stream):
    scripted = ScriptedEngine([CALL], engine)
    client = client_for(scripted)

    def ask(messages):
        if not stream:
            return client.chat.completions.create(model=engine.name, messages=messages, tools=[CALCULATOR], **GREEDY).choices[0]
        chunks = list(client.chat.completions.create(model=engine.name, messages=messages, tools=[CALCULATOR], stream=True,
                                                     **GREEDY))
        deltas = [c.choices[0] for c in chunks if c.choices]
        content = "".join(d.delta.content or "" for d in deltas)
        calls: dict[int, dict] = {}
        for d in deltas:
            for part in d.delta.tool_calls or []:
                call = calls.setdefault(part.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                call["id"] += part.id or ""
                call["function"]["name"] += part.function.name or ""
                call["function"]["arguments"] += part.function.arguments or ""
        finish = [d.finish_reason for d in deltas if d.finish_reason]
        assert len(finish) == 1
        return openai.types.chat.chat_completion.Choice.model_validate(
            {"index": 0, "finish_reason": finish[0],
             "message": {"role": "assistant", "content": content or None, "tool_calls": list(calls.values()) or None}})

    first = ask(QUESTION)
    assert first.finish_reason == "tool_calls" and first.message.content == "Let me compute. "
    (call,) = first.message.tool_calls
    assert call.id.startswith("call_") and call.function.name == "Calculator"
    assert json.loads(call.function.arguments) == {"expression": "37 * 91"}
    messages = [*QUESTION, first.message.model_dump(exclude_none=True), *run_calls(first.message)]
    final = ask(messages)
    assert final.finish_reason == "stop" and not final.message.tool_calls
    assert "3367" in final.message.content
    # The model saw the result where the agent puts it.
    assert "<|im_start|>environment name=<|plugin|>\n3367<|im_end|>\n<|im_start|>assistant\n" in scripted.prompts[-1]


def test_streamed_content_and_calls_equal_the_whole_reply(engine):
    whole = client_for(ScriptedEngine([CALL], engine)).chat.completions.create(
        model=engine.name, messages=QUESTION, tools=[CALCULATOR], **GREEDY).choices[0].message
    chunks = list(client_for(ScriptedEngine([CALL], engine)).chat.completions.create(
        model=engine.name, messages=QUESTION, tools=[CALCULATOR], stream=True, **GREEDY))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    kinds = ["content" if d.content else "call" if d.tool_calls else None for d in deltas]
    assert kinds.index("call") > max(i for i, k in enumerate(kinds) if k == "content")  # content first, then the call
    assert "".join(d.content or "" for d in deltas) == whole.content
    assert "".join(p.function.arguments or "" for d in deltas for p in d.tool_calls or []) == whole.tool_calls[0].function.arguments


def test_tool_choice_none_gives_prose_and_no_calls(engine):
    scripted = ScriptedEngine([CALL], engine)
    reply = client_for(scripted).chat.completions.create(model=engine.name, messages=QUESTION, tools=[CALCULATOR],
                                                         tool_choice="none", **GREEDY).choices[0]
    assert reply.message.tool_calls is None and reply.finish_reason == "stop"
    assert reply.message.content == "Let me compute. "  # the model was stopped at the call's opening
    assert "<|action_start|>" in scripted.calls[0]["stop_words"]


def test_a_named_function_or_required_prefills_the_call(engine):
    named = ScriptedEngine(['{"expression": "12 * 7"}}'], engine)
    reply = client_for(named).chat.completions.create(
        model=engine.name, messages=[{"role": "user", "content": "What is 12 * 7?"}], tools=[CALCULATOR],
        tool_choice={"type": "function", "function": {"name": "Calculator"}}, **GREEDY).choices[0]
    assert named.prompts[0].endswith('<|im_start|>assistant\n<|action_start|><|plugin|>\n{"name": "Calculator", "parameters": ')
    assert reply.finish_reason == "tool_calls" and json.loads(reply.message.tool_calls[0].function.arguments) == {
        "expression": "12 * 7"}
    required = ScriptedEngine([], engine)  # the real model, made to open a call: it writes no valid JSON
    reply = client_for(required).chat.completions.create(model=engine.name, messages=QUESTION, tools=[CALCULATOR],
                                                         tool_choice="required", **GREEDY).choices[0]
    assert required.prompts[0].endswith("<|im_start|>assistant\n<|action_start|><|plugin|>\n")
    assert reply.message.tool_calls is None and reply.finish_reason in ("stop", "length")  # malformed: plain content
    assert reply.message.content.startswith("<|action_start|><|plugin|>\n")


@pytest.mark.parametrize("change, param", [
    ({"tools": {"type": "function"}}, "tools"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]},
     "tools[0].function.parameters"),
    ({"messages": [*QUESTION, {"role": "tool", "tool_call_id": "call_x", "content": "12"}]}, "messages[1].tool_call_id"),
    ({"tool_choice": {"type": "function", "function": {"name": "Abacus"}}}, "tool_choice"),
])
def test_bad_tool_requests_get_a_400_naming_the_field(engine, change, param):
    client = client_for(ScriptedEngine([], engine))
    request = {"model": engine.name, "messages": QUESTION, "tools": [CALCULATOR], **GREEDY, **change}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**request)
    assert caught.value.status_code == 400 and caught.value.body["param"] == param


def test_a_server_without_tool_calling_says_what_to_install(engine):
    app = create_app(engine)
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="none", http_client=TestClient(app), max_retries=0)
    with pytest.raises(openai.BadRequestError, match=r"tunechat\[agents\]"):
        client.chat.completions.create(model=engine.name, messages=QUESTION, tools=[CALCULATOR], **GREEDY)
