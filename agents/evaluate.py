"""Tool-use evaluation: does the agent solve arithmetic word problems by calling the calculator?

A task is solved when the agent made a correct calculator call (its last successful calculator
result is the expected answer) and its final answer states that number. The default tasks are
the frozen evaluation sets of `agents.tool_eval_sets` (English and Chinese, four operations),
kept apart from the training generators; the report breaks the rates down by language and by
operation, and says how often the answer was in the question's language."""
from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdk.engines.base import BaseEngine
from sdk.errors import TunechatError
from sdk.evaluation import same_language, wilson

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


@dataclass
class TaskResult:
    question: str
    expected: str
    response: str
    calls: list[tuple[str, str]]  # (expression, result or error) per calculator call
    correct_call: bool
    correct_answer: bool
    language: str = ""  # "en" / "zh" where the task says, else ""
    operation: str = ""  # "+", "-", "*", "/" where the task says
    in_language: bool = True  # the final answer is in the question's language

    @property
    def solved(self) -> bool:
        return self.correct_call and self.correct_answer


@dataclass
class ToolEvalReport:
    model: str
    results: list[TaskResult] = field(default_factory=list)

    def rate(self, what: str, results: list[TaskResult] | None = None) -> float:
        """The share of tasks (of `results`, default all) that were `what`: solved, called (the
        calculator at all), correct_call, correct_answer or in_language."""
        values = [bool(r.calls) if what == "called" else getattr(r, what) for r in (self.results if results is None else results)]
        return sum(values) / len(values) if values else 0.0

    def groups(self) -> dict[str, list[TaskResult]]:
        """The results by language ("en", "zh") and by operation ("+", ...), for tasks that say."""
        grouped: dict[str, list[TaskResult]] = {}
        for key in ("language", "operation"):
            for result in self.results:
                if getattr(result, key):
                    grouped.setdefault(getattr(result, key), []).append(result)
        return grouped

    def breakdown(self) -> dict[str, dict[str, Any]]:
        """Per group: its task count, solved rate (with its 95% interval) and language match."""
        return {name: {"tasks": len(group), "solved_rate": self.rate("solved", group),
                       "solved_interval": wilson(sum(r.solved for r in group), len(group)),
                       "in_language_rate": self.rate("in_language", group)}
                for name, group in self.groups().items()}

    @property
    def solved_rate(self) -> float:
        return self.rate("solved")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "tasks": len(self.results), **{f"{k}_rate": self.rate(k) for k in RATES},
                "solved_interval": wilson(sum(r.solved for r in self.results), len(self.results)),
                "by_group": self.breakdown(), "results": [asdict(r) for r in self.results]}

    def table(self) -> str:
        lines = [f"  {label:34} {self.rate(key):6.1%}" for key, label in RATES.items()]
        lines[-1] += f"  ({len(self.results)} tasks)"
        lines += [f"  solved, {GROUP_LABELS.get(name, name):27} {figures['solved_rate']:6.1%}  "
                  f"({figures['tasks']} tasks; in its language {figures['in_language_rate']:.0%})"
                  for name, figures in self.breakdown().items()]
        return "\n".join(lines)


RATES = {"solved": "solved (correct call and answer)", "called": "called the calculator",
         "correct_call": "correct calculator call", "correct_answer": "correct final answer",
         "in_language": "answered in the question's language"}
GROUP_LABELS = {"en": "English questions", "zh": "Chinese questions", "+": "addition", "-": "subtraction",
                "*": "multiplication", "/": "division"}


def same_number(text: str, expected: str) -> bool:
    """Whether `text` states the number `expected` (19.5 matches "$19.50"; 1,234 matches 1234)."""
    target = float(expected)
    for match in _NUMBER.findall(text):
        value = float(match.replace(",", ""))
        if math.isclose(value, target, rel_tol=1e-9, abs_tol=1e-9):
            return True
    return False


def read_tasks(path: str | Path) -> list[dict]:
    """A JSONL file of {"question": ..., "answer": ...} (the answer a number; "language" and
    "operation" are kept where given, for the breakdown)."""
    tasks = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            task = json.loads(line)
            float(task["answer"])
            if not isinstance(task["question"], str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise TunechatError(f'{path} line {number}: expected {{"question": TEXT, "answer": NUMBER}}') from None
        tasks.append({"question": task["question"], "answer": str(task["answer"]),
                      **{key: str(task[key]) for key in ("language", "operation") if key in task}})
    if not tasks:
        raise TunechatError(f"{path}: no tasks")
    return tasks


def evaluate_tool_use(model: BaseEngine, tasks: list[dict], protocol: str = "internlm2", max_new_tokens: int = 96,
                      label: str | None = None, progress: bool = False) -> ToolEvalReport:
    """Run each task through an agent with the calculator over `model` (any engine), greedily."""
    from agents.builder import build_agent

    agent = build_agent(model, tools=["calculator"], protocol=protocol, temperature=0,
                        max_new_tokens=max_new_tokens, max_turn=4)
    report = ToolEvalReport(label or str(getattr(model, "name", "model")))
    for index, task in enumerate(tasks, 1):
        result = agent.chat(task["question"])
        calls = [(str((a.args or {}).get("expression", a.args)), a.format_result() if a.state == 0 else str(a.errmsg))
                 for a in result.actions if a.type == "Calculator"]
        successes = [a.format_result() for a in result.actions if a.type == "Calculator" and a.state == 0]
        report.results.append(TaskResult(
            question=task["question"], expected=task["answer"], response=result.response, calls=calls,
            correct_call=bool(successes) and same_number(successes[-1], task["answer"]),
            correct_answer=same_number(result.response, task["answer"]),
            language=task.get("language", ""), operation=task.get("operation", ""),
            in_language=same_language(task["question"], result.response),
        ))
        if progress:
            print(f"\r  {report.model}: {index}/{len(tasks)} tasks, {report.solved_rate:.0%} solved",
                  end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr, flush=True)
    return report
