"""Tool-use evaluation: does the agent solve arithmetic word problems by calling the calculator?

A task is solved when the agent made a correct calculator call (its last successful calculator
result is the expected answer) and its final answer states that number. The default tasks are
held-out word problems (`agents.tools_data.arithmetic_tasks`): phrasings that no
training record uses, with fresh numbers."""
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

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


@dataclass
class TaskResult:
    question: str
    expected: str
    response: str
    calls: list[tuple[str, str]]  # (expression, result or error) per calculator call
    correct_call: bool
    correct_answer: bool

    @property
    def solved(self) -> bool:
        return self.correct_call and self.correct_answer


@dataclass
class ToolEvalReport:
    model: str
    results: list[TaskResult] = field(default_factory=list)

    def rate(self, what: str) -> float:
        """The share of tasks that were `what`: solved, called (the calculator at all),
        correct_call or correct_answer."""
        values = [bool(r.calls) if what == "called" else getattr(r, what) for r in self.results]
        return sum(values) / len(values) if values else 0.0

    @property
    def solved_rate(self) -> float:
        return self.rate("solved")

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "tasks": len(self.results), **{f"{k}_rate": self.rate(k) for k in RATES},
                "results": [asdict(r) for r in self.results]}

    def table(self) -> str:
        return "\n".join(f"  {label:34} {self.rate(key):6.1%}" for key, label in RATES.items()) + f"  ({len(self.results)} tasks)"


RATES = {"solved": "solved (correct call and answer)", "called": "called the calculator",
         "correct_call": "correct calculator call", "correct_answer": "correct final answer"}


def same_number(text: str, expected: str) -> bool:
    """Whether `text` states the number `expected` (19.5 matches "$19.50"; 1,234 matches 1234)."""
    target = float(expected)
    for match in _NUMBER.findall(text):
        value = float(match.replace(",", ""))
        if math.isclose(value, target, rel_tol=1e-9, abs_tol=1e-9):
            return True
    return False


def read_tasks(path: str | Path) -> list[dict]:
    """A JSONL file of {"question": ..., "answer": ...} (the answer a number)."""
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
        tasks.append({"question": task["question"], "answer": str(task["answer"])})
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
        ))
        if progress:
            print(f"\r  {report.model}: {index}/{len(tasks)} tasks, {report.solved_rate:.0%} solved",
                  end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr, flush=True)
    return report
