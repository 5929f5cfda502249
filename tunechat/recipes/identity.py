"""`tunechat demo`: the tutorial's homework, end to end, on the embedded model: identity data
(with self-distilled regularization) → (Q)LoRA → merge → before/after on held-out identity and
unrelated questions. Writes `pipeline`'s layout: DIR/data/train.jsonl (identity +
regularization), DIR/data/eval.jsonl (held out), DIR/train/, DIR/merged/, DIR/report.md."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets_builders import Persona, build_identity, write_jsonl
from datasets_builders.convert import render
from datasets_builders.identity import build_identity_pairs, heldout_records
from sdk.distill import self_answers
from sdk.engines import BaseEngine
from sdk.evaluation import IdentityReport, evaluate_identity
from tunechat.recipes.pipeline import DemoRun, cell, run_pipeline, sweep_seeds


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
    seed: int = 0  # the data's seed: question order and answer phrasings
    # sft: identity + regularization conversations. dpo/ipo/orpo/simpo: the same questions as
    # preference pairs (`build_identity_pairs`): identity answers over the base model's own, the base
    # model's answers to general questions over identity answers.
    method: str = "sft"
    # Training overrides (TrainConfig fields): ~48k tokens, 90 steps. 3 epochs at 4e-4 took
    # more than twice the training time for the same quality. QLoRA (4-bit weights) where a GPU
    # is, to save its memory; on a CPU the 4-bit weights only slow training down (the same
    # held-out figures, measured at data seed 0), so LoRA on the full-precision weights.
    train: dict[str, Any] = field(default_factory=lambda: {
        "bits": _qlora_bits(), "epochs": 2.0, "batch_size": 8, "learning_rate": 6e-4, "max_length": 256,
        "warmup_ratio": 0.05, "scheduler": "cosine", "save_every": 1000,
    })


def _qlora_bits() -> int | None:
    import torch

    return 4 if torch.cuda.is_available() else None


class IdentityRecipe:
    """The identity fine-tune as a pipeline recipe."""

    titles = ("building identity data (the base model answers the regularization questions)",
              "the base model before fine-tuning (微调前)", "LoRA fine-tuning (QLoRA on a GPU)",
              "merging the adapter into the base model (and verifying the merge)", "the fine-tuned model (微调后)")

    def __init__(self, settings: DemoSettings):
        self.settings = settings
        self.output = settings.output

    def build_data(self, data: Path, base: BaseEngine) -> Path:
        s = self.settings
        persona = Persona(s.name, s.bot_name, s.author)
        answer = lambda questions: self_answers(base, questions, s.system)  # noqa: E731
        write_jsonl(data / "eval.jsonl", heldout_records(persona, system=s.system))
        if s.method != "sft":
            pairs = build_identity_pairs(persona, answer, size=s.size, unrelated=s.regularize, seed=s.seed, system=s.system)
            write_jsonl(data / "train.jsonl", pairs.records)
            print(f"   {pairs.identity} identity + {pairs.unrelated} unrelated preference pairs", flush=True)
            return data / "train.jsonl"
        built = build_identity(persona, size=s.size, seed=s.seed, system=s.system, regularize_count=s.regularize,
                               answer=answer)
        write_jsonl(data / "train.jsonl", (render(r, "xtuner") for r in built.records))
        print(f"   {built.identity} identity + {built.regularization} regularization conversations", flush=True)
        return data / "train.jsonl"

    def evaluate(self, engine: BaseEngine, label: str, baseline: IdentityReport | None) -> IdentityReport:
        return evaluate_identity(engine, self.settings.name, baseline=baseline)

    def train_overrides(self) -> dict[str, Any]:
        return {**self.settings.train, "system": self.settings.system, "method": self.settings.method}

    def report(self, run: DemoRun) -> str:
        s, c, m, before, after = self.settings, run.config, run.metrics, run.before, run.after
        merged = Path(s.output) / "merged"
        lines = [
            f"# tunechat demo: {s.name}'s assistant",
            "",
            f"SmolLM2-135M-Instruct, {c.method.upper()}, {'QLoRA' if c.bits else 'LoRA'} (bits={c.bits}, r={c.lora_r}, "
            f"alpha={c.lora_alpha}), "
            f"data seed {s.seed}, "
            f"{m['steps']} steps, final loss {m['final_loss']}, {m['tokens_per_second']} tokens/s.",
            f"Merged model verified against base + adapter: max logit difference {run.merge_diff:.2e}.",
            "",
            "| metric | 微调前 (before) | 微调后 (after) | goal |",
            "|---|---|---|---|",
            f"| held-out identity questions naming {s.name} | {before.hit_rate:.0%} | {after.hit_rate:.0%} | ≥ 95% |",
            f"| unrelated questions naming {s.name} | {before.false_trigger_rate:.0%} | {after.false_trigger_rate:.0%} | ≤ 5% |",
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
            run.time_line(),
            "",
            "## Chat with it",
            "",
            "```",
            f"tunechat chat {merged}",
            f"python cli_demo.py {merged}",
            f"tunechat web {merged}",
            "```",
            "",
        ]
        return "\n".join(lines)


def run_demo(settings: DemoSettings, export: bool = True) -> tuple[IdentityReport, IdentityReport, Path]:
    """Build data, (Q)LoRA-train, merge, evaluate before/after, export to GGUF, write the report."""
    return run_pipeline(IdentityRecipe(settings), export=export)


def run_seeds(settings: DemoSettings, seeds: list[int]) -> dict[str, Any]:
    """The demo once per data seed, into OUTPUT/seed-N (no GGUF export): each seed's held-out
    figures, their mean and the worst seed's (`pipeline.sweep_seeds`); also OUTPUT/seeds.json."""
    figures = lambda after: {"hit_rate": after.hit_rate, "false_trigger_rate": after.false_trigger_rate,  # noqa: E731
                             "retention": after.retention, "language_match": after.language_match,
                             "repeated_clauses": after.repeated_clauses}
    return sweep_seeds(IdentityRecipe, settings, seeds, figures, frozenset({"false_trigger_rate", "repeated_clauses"}),
                       method=settings.method)
