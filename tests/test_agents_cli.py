"""`tunechat agent`, `tunechat chat --lagent / --with-plugins`, `tunechat data tools`."""
from __future__ import annotations

import json

from agent_scripts import ScriptedEngine, plugin_call
from conftest import run_cli

from agents import AgentChat, build_agent, render_record

FAST = ["--temperature", "0", "--max-new-tokens", "24"]


def transcripts(engine, messages: list[str], tools: list[str], **settings) -> str:
    """What the agent command prints for piped `messages`: each message's transcript on its lines."""
    session = AgentChat(build_agent(engine, tools=tools, temperature=0, max_new_tokens=24, **settings), engine)
    return "".join(session.send(message) + "\n" for message in messages)


def test_agent_command_prints_one_transcript_per_message(model_path, engine):
    result = run_cli("agent", str(model_path), "--tools", "calculator", "solve", *FAST, stdin="Hello!\nWhat is 2 + 2?\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == transcripts(engine, ["Hello!", "What is 2 + 2?"], ["calculator", "solve"])
    assert result.stdout.count("\n") >= 2 and result.stderr == ""


def test_chat_with_xtuner_plugins_runs_the_agent_with_the_command_stop_word(model_path, engine):
    result = run_cli("chat", str(model_path), "--with-plugins", "calculate", "solve", "--command-stop-word", "<eoc>",
                     *FAST, stdin="Hi\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == transcripts(engine, ["Hi"], ["calculate", "solve"], stop_words=["<eoc>"])


def test_unavailable_or_unknown_tools_fail_in_one_line_before_loading():
    for args, reason in [(["chat", "--with-plugins", "search"], "internet"), (["agent", "--tools", "abacus"], "unknown tool")]:
        result = run_cli(*args, stdin="")
        assert result.returncode == 1 and reason in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_transcript_shows_calls_and_results_apart_from_text():
    engine = ScriptedEngine(["Let me compute. " + plugin_call("Calculator", expression="37 * 91"),
                             plugin_call("Calculator", expression="1 / 0"), "It is 3367."])
    session = AgentChat(build_agent(engine, tools=["calculator"]), engine)
    text = session.send("What is 37 * 91?")
    assert text == ("Let me compute. \n"
                    '[tool] Calculator {"expression": "37 * 91"}\n[result] 3367\n'
                    '[tool] Calculator {"expression": "1 / 0"}\n[error] division by zero\n'
                    "It is 3367.")
    assert [step["role"] for step in session.history][:2] == ["user", "language"]
    engine.replies = ["Bye."]
    assert session.send("Thanks") == "Bye."
    assert "It is 3367.<|im_end|>\n<|im_start|>user\nThanks" in engine.prompts[-1]  # the history carried over
    scripted = ScriptedEngine([plugin_call("Calculator", expression="2"), "2."])
    colored = AgentChat(build_agent(scripted, tools=["calculator"]), scripted, color=True)
    assert "\033[36m[tool] Calculator" in "".join(colored.stream("x"))


def test_data_tools_writes_renderable_records(tmp_path):
    out = tmp_path / "tools.jsonl"
    result = run_cli("data", "tools", "-o", str(out), "--tools", "calculator", "solve", "--count", "25", "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote 25 conversations to {out} (calculator, solve; internlm2; 1 question(s) each)")
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 25 and all(r["tools"] == ["calculator", "solve"] for r in records)
    assert all(any(trainable for _, trainable in render_record(r)) for r in records)
    assert run_cli("data", "check", str(out)).returncode == 0  # the data reader accepts tool roles
