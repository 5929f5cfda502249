"""`tunechat demo --tools`: teach the embedded model to solve arithmetic word problems by calling
the calculator: calculator conversations → LoRA → merge → the agent's solve rate on the frozen
evaluation sets (`agents.tool_eval_sets`: `fresh`, the honest figure, and `heldout`, the set the
recipe was tuned against), before and after, by language and operation. Writes `pipeline`'s
layout: DIR/data/train.jsonl (calculator conversations), DIR/data/tasks-SET.jsonl, DIR/train/,
DIR/merged/, DIR/report.md.

The base model solves none of them and rambles to its token limit on each, so it is measured on
the first `base_tasks` problems of the fresh set only (both languages, every operation).

Training records are rendered by the agent's own prompt code path (the renderer the agents
package registers with `sdk.renderers`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluate import GROUP_LABELS, RATES, ToolEvalReport, evaluate_tool_use
from agents.tool_eval_sets import SETS, eval_tasks
from agents.tools_data import generate
from datasets_builders.records import write_jsonl
from sdk.engines import BaseEngine
from tunechat.recipes.pipeline import DemoRun, cell, run_pipeline, sweep_seeds


@dataclass
class ToolDemoSettings:
    output: str = "demo-tools-out"
    conversations: int = 250
    questions: int = 4  # per conversation: the ~220-token tool prompt is shared by several answers
    tasks: int | None = None  # the first N problems of each evaluation set (None: all)
    base_tasks: int = 16  # the base model's share of the fresh set
    seed: int = 0
    # Training overrides (TrainConfig fields): ~166k tokens, 63 steps. LoRA (bf16 autocast) on
    # full weights: no 4-bit dequantizing cost.
    train: dict[str, Any] = field(default_factory=lambda: {
        "bits": 0, "epochs": 1.0, "batch_size": 4, "learning_rate": 1e-3, "max_length": 1024,
        "warmup_ratio": 0.05, "scheduler": "cosine", "save_every": 1000,
    })


@dataclass
class ToolEvalSuite:
    """One model's reports on the evaluation sets, by set name (fresh first)."""

    reports: dict[str, ToolEvalReport]

    def table(self) -> str:
        return "\n".join(f"{name} set:\n{report.table()}" for name, report in self.reports.items())

    def to_dict(self) -> dict[str, Any]:
        return {name: report.to_dict() for name, report in self.reports.items()}


class ToolRecipe:
    """The tool fine-tune as a pipeline recipe."""

    titles = ("building calculator conversations and held-out tasks",
              "the base model as an agent, before fine-tuning (微调前)", "fine-tuning on the conversations",
              "merging the adapter into the base model (and verifying the merge)",
              "the fine-tuned model as an agent (微调后)")

    def __init__(self, settings: ToolDemoSettings):
        self.settings = settings
        self.output = settings.output
        self.tasks = {name: eval_tasks(name, settings.tasks) for name in SETS}

    def build_data(self, data: Path, base: BaseEngine) -> Path:
        s = self.settings
        write_jsonl(data / "train.jsonl", generate(s.conversations, ["calculator"], seed=s.seed, questions=s.questions))
        for name, tasks in self.tasks.items():
            write_jsonl(data / f"tasks-{name}.jsonl", tasks)
        return data / "train.jsonl"

    def evaluate(self, engine: BaseEngine, label: str, baseline: ToolEvalSuite | None) -> ToolEvalSuite:
        """The base model ("before") on a capped sample of the fresh set; the merged model on both
        sets; its GGUF export on the fresh set (the same numbers: verified against the merge)."""
        if label == "after":
            return ToolEvalSuite({name: evaluate_tool_use(engine, tasks, label=label) for name, tasks in self.tasks.items()})
        tasks = self.tasks["fresh"][:self.settings.base_tasks] if baseline is None else self.tasks["fresh"]
        return ToolEvalSuite({"fresh": evaluate_tool_use(engine, tasks, label=label)})

    def train_overrides(self) -> dict[str, Any]:
        return dict(self.settings.train)

    def report(self, run: DemoRun) -> str:
        s, m = self.settings, run.metrics
        before, fresh, heldout = run.before.reports["fresh"], run.after.reports["fresh"], run.after.reports["heldout"]
        columns = ((before, "微调前 (before), fresh"), (fresh, "微调后 (after), fresh"), (heldout, "微调后, heldout (tuning set)"))
        header = ["| | " + " | ".join(f"{title} ({len(r.results)})" for r, title in columns) + " |", "|---|---|---|---|"]
        breakdowns = [r.breakdown() for r, _ in columns]
        groups = [(name, [b.get(name, {}) for b in breakdowns]) for name in GROUP_LABELS]
        answers = {b.question: b.response for b in before.results}
        lines = [
            "# tunechat demo --tools: a calculator-using agent",
            "",
            f"SmolLM2-135M-Instruct fine-tuned on {s.conversations} calculator conversations "
            f"({s.questions} questions each), {m.get('steps')} steps, final loss {m.get('final_loss')}, "
            f"{m.get('tokens_per_second')} tokens/s. Merge verified: max logit difference {run.merge_diff:.2e}.",
            "Evaluated greedily through the Lagent Internlm2 agent with the calculator, on the frozen evaluation sets "
            "(English and Chinese word problems written apart from the training data): **fresh**, never used to "
            "choose the recipe, and **heldout**, the set it was tuned against. The base model is measured on the "
            f"first {len(before.results)} fresh problems.",
            "",
            *header,
            *[f"| {label} | " + " | ".join(f"{r.rate(key):.0%}" for r, _ in columns) + " |" for key, label in RATES.items()],
            "",
            "Solved, by language and operation:",
            "",
            *header,
            *[f"| {GROUP_LABELS[name]} | " + " | ".join(f"{g['solved_rate']:.0%} of {g['tasks']}" if g else "–" for g in figures)
              + " |" for name, figures in groups],
            "",
            "![loss](train/logs/loss.png)",
            "",
            "## The fresh set",
            "",
            "| question | expected | 微调前 | 微调后 | solved |",
            "|---|---|---|---|---|",
            *[f"| {cell(a.question, 140)} | {a.expected} | {cell(answers.get(a.question, '(not asked)'), 100)} | "
              f"{cell(a.response, 140)} | {'yes' if a.solved else 'no'} |" for a in fresh.results],
            "",
            "## Time",
            "",
            run.time_line(),
            "",
            "## Run the agent",
            "",
            "```",
            f"tunechat agent {Path(s.output) / 'merged'} --tools calculator --temperature 0",
            f"tunechat eval tools {Path(s.output) / 'merged'} --set fresh",
            "```",
            "",
        ]
        return "\n".join(lines)


def run_tool_demo(settings: ToolDemoSettings) -> tuple[ToolEvalSuite, ToolEvalSuite, Path]:
    """Build data, fine-tune, merge, evaluate before/after on the frozen sets, write the report."""
    return run_pipeline(ToolRecipe(settings))


def run_tool_seeds(settings: ToolDemoSettings, seeds: list[int]) -> dict[str, Any]:
    """The tool demo once per data seed, into OUTPUT/seed-N (no GGUF export): the solve rates on
    both sets (overall, English, Chinese) and the fresh set's language match, their mean and the
    worst seed's (`pipeline.sweep_seeds`); also OUTPUT/seeds.json."""
    def figures(after: ToolEvalSuite) -> dict[str, float]:
        values = {}
        for name, report in after.reports.items():
            groups = report.groups()
            values[f"{name}_solved"] = report.solved_rate
            values.update({f"{name}_{language}": report.rate("solved", groups.get(language, [])) for language in ("en", "zh")})
        values["fresh_in_language"] = after.reports["fresh"].rate("in_language")
        return values

    return sweep_seeds(ToolRecipe, settings, seeds, figures, frozenset(), method="sft (tools)")
