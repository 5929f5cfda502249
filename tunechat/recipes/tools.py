"""`tunechat demo --tools`: teach the embedded model to solve arithmetic word problems by calling
the calculator: calculator conversations → LoRA → merge → the agent's solve rate on held-out
word problems, before and after. Writes `pipeline`'s layout: DIR/data/train.jsonl (calculator
conversations), DIR/data/tasks.jsonl (held-out problems), DIR/train/, DIR/merged/, DIR/report.md.

Training records are rendered by the agent's own prompt code path (the renderer the agents
package registers with `sdk.renderers`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluate import RATES, ToolEvalReport, evaluate_tool_use
from agents.tools_data import arithmetic_tasks, generate
from datasets_builders.records import write_jsonl
from sdk.engines import BaseEngine
from tunechat.recipes.pipeline import DemoRun, cell, run_pipeline


@dataclass
class ToolDemoSettings:
    output: str = "demo-tools-out"
    conversations: int = 250
    questions: int = 4  # per conversation: the ~220-token tool prompt is shared by several answers
    tasks: int = 50
    seed: int = 0
    # Training overrides (TrainConfig fields): ~150k tokens, 63 steps. LoRA (bf16 autocast) on
    # full weights: no 4-bit dequantizing cost.
    train: dict[str, Any] = field(default_factory=lambda: {
        "bits": 0, "epochs": 1.0, "batch_size": 4, "learning_rate": 1e-3, "max_length": 1024,
        "warmup_ratio": 0.05, "scheduler": "cosine", "save_every": 1000,
    })


class ToolRecipe:
    """The tool fine-tune as a pipeline recipe."""

    titles = ("building calculator conversations and held-out tasks",
              "the base model as an agent, before fine-tuning (微调前)", "fine-tuning on the conversations",
              "merging the adapter into the base model (and verifying the merge)",
              "the fine-tuned model as an agent (微调后)")

    def __init__(self, settings: ToolDemoSettings):
        self.settings = settings
        self.output = settings.output
        self.tasks: list[dict] = []

    def build_data(self, data: Path, base: BaseEngine) -> Path:
        s = self.settings
        write_jsonl(data / "train.jsonl", generate(s.conversations, ["calculator"], seed=s.seed, questions=s.questions))
        self.tasks = arithmetic_tasks(s.tasks, seed=s.seed + 1)
        write_jsonl(data / "tasks.jsonl", ({"question": t["question"], "answer": t["answer"]} for t in self.tasks))
        return data / "train.jsonl"

    def evaluate(self, engine: BaseEngine, label: str, baseline: ToolEvalReport | None) -> ToolEvalReport:
        return evaluate_tool_use(engine, self.tasks, label=label)

    def train_overrides(self) -> dict[str, Any]:
        return dict(self.settings.train)

    def report(self, run: DemoRun) -> str:
        s, m, before, after = self.settings, run.metrics, run.before, run.after
        lines = [
            "# tunechat demo --tools: a calculator-using agent",
            "",
            f"SmolLM2-135M-Instruct fine-tuned on {s.conversations} calculator conversations "
            f"({s.questions} questions each), {m.get('steps')} steps, final loss {m.get('final_loss')}, "
            f"{m.get('tokens_per_second')} tokens/s. Merge verified: max logit difference {run.merge_diff:.2e}.",
            f"Evaluated on {len(after.results)} held-out word problems (phrasings never trained on), greedy, "
            "through the Lagent Internlm2 agent with the calculator.",
            "",
            "| metric | 微调前 (before) | 微调后 (after) | goal |",
            "|---|---|---|---|",
            *[f"| {label} | {before.rate(key):.0%} | {after.rate(key):.0%} | {'≥ 90%' if key == 'solved' else ''} |"
              for key, label in RATES.items()],
            "",
            "![loss](train/logs/loss.png)",
            "",
            "## Held-out tasks",
            "",
            "| question | expected | 微调前 | 微调后 |",
            "|---|---|---|---|",
            *[f"| {cell(b.question, 140)} | {b.expected} | {cell(b.response, 140)} | {cell(a.response, 140)} |"
              for b, a in zip(before.results, after.results)],
            "",
            "## Time",
            "",
            run.time_line(),
            "",
            "## Run the agent",
            "",
            "```",
            f"tunechat agent {Path(s.output) / 'merged'} --tools calculator --temperature 0",
            "```",
            "",
        ]
        return "\n".join(lines)


def run_tool_demo(settings: ToolDemoSettings) -> tuple[ToolEvalReport, ToolEvalReport, Path]:
    """Build data, fine-tune, merge, evaluate before/after on held-out tasks, write the report."""
    return run_pipeline(ToolRecipe(settings))
