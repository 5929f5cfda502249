"""Train/serve parity: a rendered tool-call training sample equals, byte for byte, the prompts
lagent builds at the matching points of a real agent run.

The run replays the sample's assistant turns as the model's replies (the trainable segments
without their end-of-turn marker: exactly what a model trained on the sample would write); the
tools really run and their results land in the next prompt. Every prompt the LLM receives must
equal the text of the sample before that assistant turn. This is checked with lagent's own,
unmodified `Internlm2Agent` / `ReAct` loops and with ours, on generated records of every kind."""
from __future__ import annotations

import pytest
from agent_scripts import ScriptedEngine
from lagent.agents import Internlm2Agent, ReAct

from agents import EngineLLM, build_agent, make_agent, render_prompt, render_record, render_segments
from agents.tools_data import generate
from sdk.errors import TunechatError

EOT = "<|im_end|>"


def kinds_of(records: list[dict]) -> dict[str, dict]:
    """One record per kind: no tool, one call, two calls, a tool error, the solver, Python."""
    def kind(record: dict) -> str:
        messages = record["messages"]
        results = [m for m in messages if m["role"] == "environment"]
        names = {m.get("name") for m in messages}
        if "interpreter" in names:
            return "python"
        if any("EquationSolver" in m["content"] for m in messages if m.get("name") == "plugin"):
            return "solver"
        if not results:
            return "no tool"
        if any(word in results[0]["content"] for word in ("division by zero", "too large", "domain")):
            return "tool error"
        return "two calls" if len(results) == 2 else "one call"

    found: dict[str, dict] = {}
    for record in records:
        found.setdefault(kind(record), record)
    return found


RECORDS = {
    protocol: kinds_of(generate(300, ["calculator", "solve", "python"], protocol=protocol, seed=7))
    for protocol in ("internlm2", "react")
}


def replay(record: dict, lagents_own_loop: bool) -> tuple[list[tuple[str, bool]], list[str]]:
    """Render the record, then run an agent whose model replies with the record's assistant turns."""
    segments = render_record(record)
    replies = [text.removesuffix(EOT) for text, trainable in segments if trainable]
    engine = ScriptedEngine(replies)
    protocol, tools = record["protocol"], record["tools"]
    if lagents_own_loop:
        parts = make_agent(None, tools, protocol)
        llm = build_agent(engine, tools=tools, protocol=protocol)._llm  # our LLM with the agent's stop words
        if protocol == "internlm2":
            agent = Internlm2Agent(llm, parts._action_executor, parts._interpreter_executor, protocol=parts._protocol)
        else:
            agent = ReAct(llm, parts._action_executor, protocol=parts._protocol, max_turn=len(replies) + 1)
    else:
        agent = build_agent(engine, tools=tools, protocol=protocol, max_turn=len(replies) + 1)
    agent.chat(record["messages"][0]["content"])
    return segments, engine.prompts


@pytest.mark.parametrize("lagents_own_loop", [True, False], ids=["lagent loop", "our loop"])
@pytest.mark.parametrize("protocol, kind", [(p, k) for p in RECORDS for k in RECORDS[p]])
def test_training_text_equals_the_prompts_of_an_agent_run(protocol, kind, lagents_own_loop):
    record = RECORDS[protocol][kind]
    segments, prompts = replay(record, lagents_own_loop)
    before_each_turn = ["".join(text for text, _ in segments[:i]) for i, (_, trainable) in enumerate(segments) if trainable]
    assert len(prompts) == len(before_each_turn)
    for prompt, rendered in zip(prompts, before_each_turn):
        assert prompt == rendered  # byte for byte
    assert prompts[-1] == render_prompt(record["messages"][:-1], protocol, record["tools"])


def test_all_kinds_are_covered():
    assert set(RECORDS["internlm2"]) == {"no tool", "one call", "two calls", "tool error", "solver", "python"}


def test_loss_is_on_assistant_text_and_its_end_marker_only():
    record = RECORDS["internlm2"]["two calls"]
    trained = [text for text, trainable in render_record(record) if trainable]
    assert len(trained) == 3 and all(text.endswith(EOT) for text in trained)
    assert trained[0].startswith("<|action_start|><|plugin|>\n{") and trained[0].endswith("<|action_end|>\n" + EOT)
    context = "".join(text for text, trainable in render_record(record) if not trainable)
    assert record["messages"][0]["content"] in context and '"name": "Calculator"' in context  # tool description
    assert all(m["content"] in context for m in record["messages"] if m["role"] == "environment")


def test_real_model_prompt_equals_the_rendered_sample(engine):
    """The embedded model answers through the agent; the sample rendered from the conversation
    has the agent's real prompt as its context and the model's answer as its trainable part."""
    recorder = ScriptedEngine([], engine)
    question = "Name a primary color."
    answer = build_agent(recorder, tools=["calculator"], temperature=0, max_new_tokens=24).chat(question).response
    messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    segments = render_segments(messages, "internlm2", ["calculator"])
    assert [trainable for _, trainable in segments] == [False, True, False]
    assert segments[0][0] == recorder.prompts[0] == render_prompt(messages[:1], "internlm2", ["calculator"])
    assert segments[1][0] == answer + EOT
    assert engine.encode(segments[0][0]) == engine.encode(recorder.prompts[0])


def test_a_system_message_is_the_agents_system_prompt():
    engine = ScriptedEngine(["Hello."])
    build_agent(engine, tools=["calculator"], system="You are Robo.").chat("Hi")
    messages = [{"role": "system", "content": "You are Robo."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello."}]
    assert render_segments(messages, "internlm2", ["calculator"])[0][0] == engine.prompts[0]
    assert engine.prompts[0].startswith("<|im_start|>system\nYou are Robo.<|im_end|>\n")


@pytest.mark.parametrize("messages, reason", [
    ([{"role": "user", "content": "x"}, {"role": "assistant", "name": "plugin", "content": '{"name": "Abacus", "parameters": {}}'}],
     "calls 'Abacus' but the tools offered are: Calculator"),
    ([{"role": "user", "content": "x"}, {"role": "environment", "content": "1"}], "must follow a tool call"),
    ([{"role": "user", "content": "x"}, {"role": "assistant", "name": "interpreter", "content": "print(1)"}],
     "tools do not include python"),
    ([{"role": "bot", "content": "x"}], "role must be one of"),
    ([], "empty"),
])
def test_bad_conversations_are_refused(messages, reason):
    with pytest.raises(TunechatError, match=reason):
        render_segments(messages, "internlm2", ["calculator"])


def test_generated_records_all_render_with_loss_on_every_assistant_turn():
    for record in generate(60, ["calculator", "solve", "python"], seed=3):
        segments = render_record(record)
        assistant_turns = sum(1 for m in record["messages"] if m["role"] == "assistant")
        assert sum(trainable for _, trainable in segments) == assistant_turns


def test_engine_llm_is_the_renderer_the_agent_uses(engine):
    assert build_agent(engine)._llm.template_parser.meta_template is EngineLLM(engine).template_parser.meta_template
