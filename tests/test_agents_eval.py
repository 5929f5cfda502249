"""Tool-use evaluation: scoring (scripted agent replies) and held-out tasks."""
from __future__ import annotations

import argparse
import hashlib
import json
import re

import pytest
from agent_scripts import ScriptedEngine, plugin_call

from agents.evaluate import evaluate_tool_use, read_tasks, same_number
from agents.tool_eval_sets import LANGUAGES, OPERATIONS, SETS, eval_tasks
from agents.tools_data import generate
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


def test_a_report_breaks_the_rates_down_by_language_and_operation():
    tasks = [{"question": "What is 37 * 91?", "answer": "3367", "language": "en", "operation": "*"},
             {"question": "37乘91是多少？", "answer": "3367", "language": "zh", "operation": "*"},
             {"question": "12加5是多少？", "answer": "17", "language": "zh", "operation": "+"}]
    replies = [plugin_call("Calculator", expression="37 * 91"), "It is 3367.",
               plugin_call("Calculator", expression="37 * 91"), "The answer is 3367.",  # solved, but in English
               plugin_call("Calculator", expression="12 + 5"), "答案是17。"]
    report = evaluate_tool_use(ScriptedEngine(replies), tasks)
    groups = report.to_dict()["by_group"]
    assert {name: (g["tasks"], g["solved_rate"], g["in_language_rate"]) for name, g in groups.items()} == {
        "en": (1, 1.0, 1.0), "zh": (2, 1.0, 0.5), "*": (2, 1.0, 0.5), "+": (1, 1.0, 1.0)}
    assert report.rate("in_language") == pytest.approx(2 / 3)
    assert "Chinese questions" in report.table() and "answered in the question's language" in report.table()


@pytest.mark.parametrize("name, digest", [("fresh", "1c26cb71ce607535"), ("heldout", "cdd4f1d169e4eaee")])
def test_the_evaluation_sets_are_frozen(name, digest):
    """Changing a set's wording or numbers changes every figure measured on it: a new set gets a
    new name, never an edit."""
    tasks = eval_tasks(name)
    assert hashlib.sha256(json.dumps(tasks, ensure_ascii=False).encode()).hexdigest()[:16] == digest
    assert len(tasks) == 48 and len({t["question"] for t in tasks}) == 48
    assert all(float(t["answer"]) == pytest.approx(arithmetic(t["expression"]), rel=1e-9) for t in tasks)


def test_every_prefix_of_a_set_mixes_languages_and_operations():
    first = eval_tasks("fresh", 8)
    assert {(t["language"], t["operation"]) for t in first} == {(lang, op) for lang in LANGUAGES for op in OPERATIONS}
    assert sum(t["language"] == "zh" for t in eval_tasks("fresh")) == 24
    assert all(re.search(r"\d,\d{3}", t["question"]) for t in eval_tasks("fresh") if "Noor" in t["question"])


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
    # The frozen sets, the model on a prefix and the base on a shorter one: by language and operation.
    args = parser.parse_args(["tools", str(model_path), "--set", "heldout", "--count", "2", "--base-count", "1", "--json"])
    assert args.run(args) == 0
    reports = json.loads(capsys.readouterr().out)
    assert (reports["model"]["tasks"], reports["base"]["tasks"]) == (2, 1)
    assert [r["question"] for r in reports["model"]["results"]] == [t["question"] for t in eval_tasks("heldout", 2)]
    assert set(reports["model"]["by_group"]) == {"en", "zh", "+"}


def wording(text: str) -> set[str]:
    """A question's n-grams within each clause, every number as "#": English word 4-grams, or for
    Chinese, character 7-grams (about as many words: Chinese words are mostly two characters)."""
    grams = set()
    for clause in re.split(r"[,.;:?!，。；：？！]", re.sub(r"\d[\d,]*(?:\.\d+)?", "#", text.lower())):
        if re.search(r"[\u4e00-\u9fff]", clause):
            chars = re.sub(r"[^\u4e00-\u9fff#]", "", clause)
            grams |= {chars[i:i + 7] for i in range(len(chars) - 6)}
        else:
            words = re.findall(r"[a-z#]+", clause)
            grams |= {" ".join(words[i:i + 4]) for i in range(len(words) - 3)}
    return grams


def test_no_training_wording_appears_in_an_evaluation_question():
    training = {m["content"] for r in generate(3000, ["calculator"], seed=0) for m in r["messages"] if m["role"] == "user"}
    assert any(re.search(r"[\u4e00-\u9fff]", q) for q in training) and any(re.search(r"\d,\d{3}", q) for q in training)
    trained = set().union(*map(wording, training))
    leaks = {(task["question"], gram) for name in SETS for task in eval_tasks(name) for gram in wording(task["question"]) & trained}
    assert not leaks, "evaluation questions share wording with the training data:\n" + "\n".join(map(str, sorted(leaks)))
