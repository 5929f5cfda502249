"""`tunechat demo --tools`: teach the embedded model to solve arithmetic word problems by calling
the calculator, end to end, in the identity demo's layout:

    DIR/data/      train.jsonl (calculator conversations), tasks.jsonl (held-out word problems)
    DIR/train/     adapter/, checkpoints/, logs/ (loss.png)
    DIR/merged/    the merged model, ready for `tunechat agent DIR/merged`
    DIR/report.md  before/after solve rates on the held-out tasks

Training records are rendered by `agents.render_record` (the agent's own prompt code path):
`sdk.training` routes every record that names its tools or holds tool roles there."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.evaluate import RATES, ToolEvalReport


@dataclass
class ToolDemoSettings:
    output: str = "demo-tools-out"
    conversations: int = 250
    questions: int = 4  # per conversation: the ~220-token tool prompt is shared by several answers
    tasks: int = 50
    seed: int = 0
    # Training overrides (TrainConfig fields): ~150k tokens, 63 steps; 544-566 s measured on 2 idle
    # CPU cores (the whole demo 16-19 min: evaluating the base model takes 4-5 of them). LoRA
    # (bf16 autocast) on full weights: no 4-bit dequantizing cost.
    train: dict[str, Any] = field(default_factory=lambda: {
        "bits": 0, "epochs": 1.0, "batch_size": 4, "learning_rate": 1e-3, "max_length": 1024,
        "warmup_ratio": 0.05, "scheduler": "cosine", "save_every": 1000,
    })


def run_tool_demo(settings: ToolDemoSettings) -> tuple[ToolEvalReport, ToolEvalReport, Path]:
    """Build data, fine-tune, merge, evaluate before/after on held-out tasks, write the report."""
    import sdk
    from agents.evaluate import evaluate_tool_use
    from datasets_builders.records import write_jsonl
    from datasets_builders.tools_data import arithmetic_tasks, generate
    from sdk.metadata import write_text_atomic
    from sdk.training import TrainConfig, finetune
    from sdk.training.merge import merge

    out = Path(settings.output)
    clock = _Clock()
    print("== [1/5] building calculator conversations and held-out tasks", flush=True)
    records = generate(settings.conversations, ["calculator"], seed=settings.seed, questions=settings.questions)
    write_jsonl(out / "data" / "train.jsonl", records)
    tasks = arithmetic_tasks(settings.tasks, seed=settings.seed + 1)
    write_jsonl(out / "data" / "tasks.jsonl", ({"question": t["question"], "answer": t["answer"]} for t in tasks))
    clock.phase("data")

    print("== [2/5] the base model as an agent, before fine-tuning (微调前)", flush=True)
    before = evaluate_tool_use(sdk.load(), tasks, label="before")
    clock.phase("before")

    print("== [3/5] fine-tuning on the conversations", flush=True)
    config = TrainConfig.from_sources(None, **{**settings.train, "data": str(out / "data" / "train.jsonl"),
                                               "output": str(out / "train"), "resume": False})
    result = finetune(config)
    clock.phase("train")

    print("== [4/5] merging the adapter into the base model (and verifying the merge)", flush=True)
    merged = merge(None, result.adapter, out / "merged", force=True)
    clock.phase("merge")

    print("== [5/5] the fine-tuned model as an agent (微调后)", flush=True)
    after = evaluate_tool_use(sdk.load(out / "merged"), tasks, label="after")
    clock.phase("after")

    report = out / "report.md"
    write_text_atomic(report, _report(settings, result.metrics, merged.max_logit_diff, before, after, clock.timings))
    (out / "metrics.json").write_text(json.dumps({"before": before.to_dict(), "after": after.to_dict(),
                                                  "train": result.metrics, "timings": clock.timings},
                                                 ensure_ascii=False, indent=2))
    return before, after, report


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.start = time.perf_counter()

    def phase(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.start, 1)
        self.start = now
        print(f"== {name} done in {self.timings[name]:.0f} s", flush=True)


def _report(settings: ToolDemoSettings, metrics: dict, merge_diff: float, before: ToolEvalReport,
            after: ToolEvalReport, timings: dict[str, float]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")[:140]

    lines = [
        "# tunechat demo --tools: a calculator-using agent",
        "",
        f"SmolLM2-135M-Instruct fine-tuned on {settings.conversations} calculator conversations "
        f"({settings.questions} questions each), {metrics.get('steps')} steps, final loss {metrics.get('final_loss')}, "
        f"{metrics.get('tokens_per_second')} tokens/s. Merge verified: max logit difference {merge_diff:.2e}.",
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
        *[f"| {cell(b.question)} | {b.expected} | {cell(b.response)} | {cell(a.response)} |"
          for b, a in zip(before.results, after.results)],
        "",
        "## Time",
        "",
        " · ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f" · total {sum(timings.values()):.0f} s",
        "",
        "## Run the agent",
        "",
        "```",
        f"tunechat agent {Path(settings.output) / 'merged'} --tools calculator --temperature 0",
        "```",
        "",
    ]
    return "\n".join(lines)
