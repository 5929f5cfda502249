"""Agents over the real lagent: a real-model turn with a tool, and malformed model output.

Scripted replies (tests/agent_scripts.py) only exercise the parser and the loop; they never
stand in for the model's ability. The real-model tests check that a whole turn runs."""
from __future__ import annotations

import pytest
from agent_scripts import ScriptedEngine, plugin_call
from lagent.schema import ActionStatusCode, AgentStatusCode

from agents import GIVE_UP, EngineLLM, Internlm2ToolAgent, ReActToolAgent, build_agent, render_prompt
from sdk.errors import TunechatError

GREEDY = {"temperature": 0, "max_new_tokens": 48}
CALL_3367 = plugin_call("Calculator", expression="37 * 91")


def boom(text: str) -> str:
    """A tool that always fails.

    Args:
        text: anything
    """
    raise RuntimeError(f"boom: {text}")


def scripted_agent(replies, tools=("calculator",), protocol="internlm2", **kwargs):
    engine = ScriptedEngine(replies)
    return build_agent(engine, tools=list(tools), protocol=protocol, **kwargs), engine


# ---- the real model -------------------------------------------------------------------------

def test_real_model_turn_with_a_tool_prompt_ends_with_an_answer(engine):
    recorder = ScriptedEngine([], engine)
    result = build_agent(recorder, tools=["calculator"], **GREEDY).chat("What is 37 * 91?")
    assert result.state == AgentStatusCode.END and result.response.strip()
    assert '"name": "Calculator"' in recorder.prompts[0]  # the tool was offered in lagent's own format
    assert recorder.calls[0]["stop_words"][-2:] == ["<|action_end|>", "<|im_end|>"]


def test_real_model_continues_after_a_forced_tool_call(engine):
    """The first reply is forced (the base model cannot start a call on its own); the tool runs
    for real and the model's own next reply, with the result in its prompt, completes the turn."""
    recorder = ScriptedEngine([CALL_3367], engine)
    result = build_agent(recorder, tools=["calculator"], max_turn=3, **GREEDY).chat("What is 37 * 91?")
    assert result.state == AgentStatusCode.END and result.response
    first = result.actions[0]
    assert (first.type, first.args, first.format_result()) == ("Calculator", {"expression": "37 * 91"}, "3367")
    assert "<|im_start|>environment name=<|plugin|>\n3367<|im_end|>\n<|im_start|>assistant\n" in recorder.prompts[1]
    assert len(recorder.prompts) >= 2


def test_real_model_react_turn_prompts_with_react_and_answers_with_the_models_text(engine):
    recorder = ScriptedEngine([], engine)
    result = build_agent(recorder, tools=["calculator"], protocol="react", **GREEDY).chat("Hi!")
    assert result.state == AgentStatusCode.END
    prompt = recorder.prompts[0]
    assert prompt == render_prompt([{"role": "user", "content": "Hi!"}], protocol="react", tools=["calculator"])
    assert "Calculator" in prompt and "Final Answer" in prompt  # ReAct's instructions and the tool's description
    raw = engine.generate(prompt, **recorder.calls[0]).result()
    assert result.response.strip() and result.response.strip() in raw  # the answer is the model's own text


# ---- malformed output never crashes the agent ----------------------------------------------

MALFORMED = {
    "invalid JSON": ("<|action_start|><|plugin|>\n{name: Calculator}<|action_end|>\n", "not valid JSON"),
    "JSON that is not an object": ('<|action_start|><|plugin|>\n["Calculator"]<|action_end|>\n', 'needs a "name"'),
    "missing parameters": ('<|action_start|><|plugin|>\n{"name": "Calculator"}<|action_end|>\n', "missing required arguments"),
    "unknown tool": (plugin_call("Abacus", expression="1+1"), "there is no tool named 'Abacus'; the tools are: Calculator"),
    "wrong argument": (plugin_call("Calculator", expr="1+1"), "unknown arguments"),
    "truncated call (no end marker)": ('<|action_start|><|plugin|>\n{"name": "Calculator", "param', "not valid JSON"),
    "interpreter without one": ("<|action_start|><|interpreter|>\nprint(1)<|action_end|>\n", "no Python interpreter"),
    "tool raises": (plugin_call("boom", text="x"), "boom: x"),
    "calculator refuses": (plugin_call("Calculator", expression="9**9**9"), "exponent is too large"),
    "name with dots": (plugin_call("Calculator.run.x", expression="1"), "the tool failed"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
@pytest.mark.parametrize("streaming", [False, True])
def test_malformed_call_becomes_an_error_result_and_the_turn_goes_on(case, streaming):
    reply, reason = MALFORMED[case]
    agent, engine = scripted_agent([reply, "Sorry, that failed."], tools=["calculator", boom])
    result = list(agent.stream_chat("What is 1+1?"))[-1] if streaming else agent.chat("What is 1+1?")
    assert result.state == AgentStatusCode.END and result.response == "Sorry, that failed."
    assert len(result.actions) == 1 and result.actions[0].state != ActionStatusCode.SUCCESS
    assert reason in result.actions[0].errmsg
    assert reason in engine.prompts[1]  # the model is shown the error on its next turn
    assert [step["role"] for step in result.inner_steps] == ["language", "tool", "environment", "language"]


def test_two_calls_in_one_reply_run_the_first_only():
    both = plugin_call("Calculator", expression="2 * 3") + plugin_call("Calculator", expression="4 * 5")
    agent, engine = scripted_agent([both, "It is 6."])
    result = agent.chat("What is 2*3?")
    assert [a.format_result() for a in result.actions] == ["6"] and result.response == "It is 6."
    assert engine.prompts[1].count("<|action_start|>") == 1


def test_a_model_that_never_stops_calling_is_cut_off_with_a_message():
    agent, engine = scripted_agent([CALL_3367] * 5, max_turn=3)
    result = agent.chat("Loop forever")
    assert result.state == AgentStatusCode.END and result.response == GIVE_UP
    assert len(result.actions) == 3 and len(engine.prompts) == 3


def test_interpreter_calls_run_in_the_sandbox():
    code = "<|action_start|><|interpreter|>\nprint(sum(range(10)))<|action_end|>\n"
    agent, engine = scripted_agent([code, "The sum is 45."], tools=["python"])
    result = agent.chat("Sum 0..9 with Python")
    assert result.actions[0].type == "PythonSandbox" and result.actions[0].format_result() == "45\n"
    assert "<|im_start|>environment name=<|interpreter|>\n45\n<|im_end|>" in engine.prompts[1]
    assert result.response == "The sum is 45."


def test_streaming_shows_text_then_the_call_then_its_result():
    agent, _ = scripted_agent(["Let me compute. " + CALL_3367, "It is 3367."])
    states = [(s.state, s.response) for s in agent.stream_chat("What is 37 * 91?")]
    kinds = [state for state, _ in states]
    assert kinds[0] == AgentStatusCode.STREAM_ING and kinds[-1] == AgentStatusCode.END
    assert AgentStatusCode.PLUGIN_START in kinds and AgentStatusCode.PLUGIN_RETURN in kinds
    assert not any("<|action" in text for state, text in states if state == AgentStatusCode.STREAM_ING)
    assert states[-1][1] == "It is 3367."


# ---- ReAct --------------------------------------------------------------------------------

REACT_CALL = 'Thought: I need to multiply.\nAction: Calculator\nAction Input: {"expression": "37 * 91"}'


def test_react_runs_a_call_and_finishes():
    agent, engine = scripted_agent([REACT_CALL, "Thought: done\nFinal Answer: 3367"], protocol="react")
    result = agent.chat("What is 37 * 91?")
    assert result.response == "3367" and result.actions[0].format_result() == "3367"
    assert "<|im_start|>system\nResponse:3367\n<|im_end|>\n<|im_start|>assistant\n" in engine.prompts[1]
    assert engine.calls[0]["stop_words"][-2:] == ["Response:", "<|im_end|>"]


@pytest.mark.parametrize("reply, reason", [
    ("Action: Abacus\nAction Input: {}", "there is no tool named 'Abacus'"),
    ("Action: Calculator\nAction Input: {expression: 1}", "invalid json format"),
    ("Thought: hmm\nAction: Calculator", "write a tool call as"),
])
def test_react_malformed_calls_become_error_results(reply, reason):
    agent, engine = scripted_agent([reply, "Final Answer: no idea"], protocol="react")
    result = agent.chat("What is 1+1?")
    assert result.response == "no idea" and reason in result.actions[0].errmsg and reason in engine.prompts[1]


def test_react_plain_reply_is_taken_as_the_answer():
    agent, _ = scripted_agent(["Paris is the capital of France."], protocol="react")
    assert agent.chat("Capital of France?").response == "Paris is the capital of France."


# ---- building -----------------------------------------------------------------------------

def test_build_agent_kinds_and_tools():
    engine = ScriptedEngine([])
    agent = build_agent(engine, tools=["calculator", "solve", "python"])
    assert isinstance(agent, Internlm2ToolAgent) and agent.max_turn == 3
    assert agent._action_executor.action_names() == ["Calculator", "EquationSolver"]
    assert agent._interpreter_executor.action_names() == ["PythonSandbox"]
    react = build_agent(engine, tools=["python", boom], protocol="react", max_turn=6)
    assert isinstance(react, ReActToolAgent) and react.max_turn == 6
    assert react._action_executor.action_names() == ["PythonSandbox", "boom"]
    with pytest.raises(TunechatError, match="unknown protocol"):
        build_agent(engine, protocol="autogpt")


def test_build_agent_leaves_a_given_llm_unchanged():
    llm = EngineLLM(ScriptedEngine([]), stop_words=["###"])
    agent = build_agent(llm, tools=["calculator"], max_new_tokens=7)
    assert llm.gen_params["stop_words"] == ["###"] and llm.gen_params["max_new_tokens"] != 7
    assert agent._llm.gen_params["stop_words"] == ["###", "<|action_end|>"] and agent._llm.gen_params["max_new_tokens"] == 7
