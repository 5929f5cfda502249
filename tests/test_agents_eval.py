"""Tool-use evaluation: scoring (scripted agent replies) and held-out tasks."""
from __future__ import annotations

import argparse
import json

import pytest
from agent_scripts import ScriptedEngine, plugin_call

from agents.evaluate import evaluate_tool_use, read_tasks, same_number
from agents.tools_data import FRAMES, arithmetic_tasks, generate
from sdk.errors import TunechatError
from tunechat.cli.eval_tools import register_eval_tools

TASKS = [{"question": "What is 37 * 91?", "answer": "3367"}] * 4


def test_same_number_reads_numbers_as_people_write_them():
    assert same_number("It costs $19.50 in total.", "19.5")
    assert same_number("That is 1,234 apples", "1234")
    assert same_number("-8 degrees", "-8")
    assert not same_number("3367.5", "3367") and not same_number("13367", "3367")


def test_a_task_is_solved_only_with_a_correct_call_and_answer():
    replies = [
        plugin_call("Calculator", expression="37 * 91"), "It is 3367.",  # solved
        "It is 3367.",  # right answer, no call
        plugin_call("Calculator", expression="37 + 91"), "It is 3367.",  # wrong call
        plugin_call("Calculator", expression="37 * 91"), "It is 128.",  # right call, wrong answer
    ]
    report = evaluate_tool_use(ScriptedEngine(replies), TASKS)
    assert [(r.correct_call, r.correct_answer, r.solved) for r in report.results] == [
        (True, True, True), (False, True, False), (False, True, False), (True, False, False)]
    assert report.solved_rate == 0.25 and report.rate("called") == 0.75
    assert report.results[2].calls == [("37 + 91", "128")]
    assert "solved (correct call and answer)" in report.table() and report.to_dict()["solved_rate"] == 0.25


def test_held_out_tasks_use_phrasings_never_trained_on():
    tasks = arithmetic_tasks(40, seed=1)
    assert len(tasks) == 40 and len({t["question"] for t in tasks}) == 40
    trained = {q for f in FRAMES if f.split == "train" for q in f.questions}
    held_out = {q for f in FRAMES if f.split == "heldout" for q in f.questions}
    assert held_out and not held_out & trained
    training_questions = {m["content"] for r in generate(300, ["calculator"], seed=0) for m in r["messages"] if m["role"] == "user"}
    assert not training_questions & {t["question"] for t in tasks}
    assert all(float(t["answer"]) == pytest.approx(arithmetic(t["expressions"][-1]), rel=1e-9) for t in tasks)


def arithmetic(expression: str) -> float:
    """An independent oracle for the tasks' answers: + - * / over numbers, by walking the AST."""
    import ast
    import operator

    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

    def value(node: ast.AST) -> float:
        if isinstance(node, ast.BinOp):
            return ops[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        assert isinstance(node, ast.Constant), ast.dump(node)
        return float(node.value)

    return value(ast.parse(expression, mode="eval").body)


def test_tasks_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps({"question": "2+2?", "answer": 4}) + "\n\n")
    assert read_tasks(path) == [{"question": "2+2?", "answer": "4"}]
    path.write_text('{"question": "2+2?"}\n')
    with pytest.raises(TunechatError, match="line 1"):
        read_tasks(path)


def test_eval_tools_command_reports_the_model_next_to_the_base(model_path, tmp_path, capsys):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(json.dumps({"question": "What is 37 * 91?", "answer": 3367}) + "\n")
    parser = argparse.ArgumentParser()
    register_eval_tools(parser.add_subparsers())
    args = parser.parse_args(["tools", str(model_path), "--tasks", str(tasks), "--json"])
    assert args.run(args) == 0
    reports = json.loads(capsys.readouterr().out)
    assert set(reports) == {"base", "model"} and reports["model"]["tasks"] == 1
    assert reports["model"]["results"][0]["question"] == "What is 37 * 91?"
