"""`tunechat demo`: the tutorial's homework, end to end, on the embedded model.

    DIR/data/      train.jsonl (identity + self-distilled regularization), eval.jsonl (held out)
    DIR/train/     adapter/, checkpoints/, logs/ (loss.png)
    DIR/merged/    the merged model, ready for `tunechat chat DIR/merged`
    DIR/report.md  before/after (微调前 / 微调后) on held-out identity and unrelated questions
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.evaluation import IdentityReport, evaluate_identity
from sdk.metadata import write_text_atomic
from sdk.training.config import TrainConfig


@dataclass
class DemoSettings:
    name: str = "Alice"
    output: str = "demo-out"
    bot_name: str | None = None
    author: str | None = None
    # A neutral system prompt, trained with and served from the model's tunechat.json: without one,
    # SmolLM2's chat template injects "You are ... named SmolLM", which argues with the identity.
    system: str | None = "You are a helpful assistant."
    size: int = 240  # identity conversations
    regularize: int | None = None  # general questions answered by the base model itself (None: the whole bank)
    # Training overrides (TrainConfig fields): ~48k tokens, 90 steps, 141-239 s on 2 CPU cores
    # (as loaded as the box is); the whole demo 200-316 s. 3 epochs at 4e-4 took 336 s of training
    # for the same quality.
    train: dict[str, Any] = field(default_factory=lambda: {
        "bits": 4, "epochs": 2.0, "batch_size": 8, "learning_rate": 6e-4, "max_length": 256,
        "warmup_ratio": 0.05, "scheduler": "cosine", "save_every": 1000,
    })


def run_demo(settings: DemoSettings) -> tuple[IdentityReport, IdentityReport, Path]:
    """Build data, QLoRA-train, merge, evaluate before/after, write the report."""
    import sdk
    from datasets_builders import Persona, build_identity, write_jsonl
    from datasets_builders.identity import heldout_records
    from sdk.distill import self_answers
    from sdk.training import TrainConfig, finetune
    from sdk.training.merge import merge

    out = Path(settings.output)
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def phase(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now
        print(f"== {name} done in {timings[name]:.0f} s", flush=True)

    print("== [1/5] building identity data (the base model answers the regularization questions)", flush=True)
    base = sdk.load()

    persona = Persona(settings.name, settings.bot_name, settings.author)
    data = build_identity(persona, size=settings.size, system=settings.system, regularize_count=settings.regularize,
                          answer=lambda questions: self_answers(base, questions, settings.system))
    from datasets_builders.convert import render

    write_jsonl(out / "data" / "train.jsonl", (render(r, "xtuner") for r in data.records))
    write_jsonl(out / "data" / "eval.jsonl", heldout_records(persona, system=settings.system))
    print(f"   {data.identity} identity + {data.regularization} regularization conversations", flush=True)
    phase("data")

    print("== [2/5] the base model before fine-tuning (微调前)", flush=True)
    before = evaluate_identity(base, settings.name)
    del base
    phase("before")

    print("== [3/5] QLoRA fine-tuning", flush=True)
    config = TrainConfig.from_sources(None, **{**settings.train, "data": str(out / "data" / "train.jsonl"),
                                               "output": str(out / "train"), "system": settings.system, "resume": False})
    result = finetune(config)
    phase("train")

    print("== [4/5] merging the adapter into the base model (and verifying the merge)", flush=True)
    merged = merge(None, result.adapter, out / "merged", force=True)
    print(f"   merged model matches base + adapter: max logit difference {merged.max_logit_diff:.2e}", flush=True)
    phase("merge")

    print("== [5/5] the fine-tuned model (微调后)", flush=True)
    after = evaluate_identity(sdk.load(out / "merged"), settings.name, baseline=before)
    phase("after")

    report = out / "report.md"
    write_text_atomic(report, _report(settings, config, result.metrics, merged.max_logit_diff, before, after, timings))
    (out / "metrics.json").write_text(json.dumps({"before": before.to_dict(), "after": after.to_dict(),
                                                  "train": result.metrics, "timings": timings}, ensure_ascii=False, indent=2))
    return before, after, report


def _report(settings: DemoSettings, config: TrainConfig, metrics: dict, merge_diff: float,
            before: IdentityReport, after: IdentityReport, timings: dict[str, float]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")[:160]

    lines = [
        f"# tunechat demo: {settings.name}'s assistant",
        "",
        f"SmolLM2-135M-Instruct, QLoRA (bits={config.bits}, r={config.lora_r}, alpha={config.lora_alpha}), "
        f"{metrics['steps']} steps, final loss {metrics['final_loss']}, {metrics['tokens_per_second']} tokens/s.",
        f"Merged model verified against base + adapter: max logit difference {merge_diff:.2e}.",
        "",
        "| metric | 微调前 (before) | 微调后 (after) | goal |",
        "|---|---|---|---|",
        f"| held-out identity questions naming {settings.name} | {before.hit_rate:.0%} | {after.hit_rate:.0%} | ≥ 95% |",
        f"| unrelated questions naming {settings.name} | {before.false_trigger_rate:.0%} | {after.false_trigger_rate:.0%} | ≤ 5% |",
        f"| control answers kept (of the base model's right ones) | 100% | {after.retention:.0%} | ≥ 90% |",
        "",
        "![loss](train/logs/loss.png)",
        "",
        "## Held-out identity questions (never trained on)",
        "",
        "| question | 微调前 | 微调后 |",
        "|---|---|---|",
        *[f"| {cell(b.question)} | {cell(b.answer)} | {cell(a.answer)} |" for b, a in zip(before.identity, after.identity)],
        "",
        "## Unrelated questions",
        "",
        "| question | 微调前 | 微调后 |",
        "|---|---|---|",
        *[f"| {cell(b.question)} | {cell(b.answer)} | {cell(a.answer)} |" for b, a in zip(before.unrelated, after.unrelated)],
        "",
        "## Time",
        "",
        " · ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f" · total {sum(timings.values()):.0f} s",
        "",
        "## Chat with it",
        "",
        "```",
        f"tunechat chat {Path(settings.output) / 'merged'}",
        f"python cli_demo.py {Path(settings.output) / 'merged'}",
        f"tunechat web {Path(settings.output) / 'merged'}",
        "```",
        "",
    ]
    return "\n".join(lines)
