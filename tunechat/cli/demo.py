"""`tunechat demo [--name NAME] [--output DIR]`: the XTuner tutorial's homework on the embedded
model, end to end in a few minutes on a laptop CPU: identity data (with self-distilled
regularization) → LoRA fine-tune (QLoRA on a GPU) → merge (verified) → before/after evaluation and a
report.

`tunechat demo --tools [--output DIR] [--seed N | --seeds N ...]`: the same pipeline for a
tool-using agent: calculator conversations (English and Chinese) → LoRA fine-tune → merge → the
agent's solve rate on frozen sets of English and Chinese word problems (fresh and heldout),
before and after, by language and operation."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sdk.training.config import METHODS
from tunechat.recipes.identity import DemoSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the tutorial pipeline end to end", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="Alice", help="whose assistant the model becomes (default Alice)")
    parser.add_argument("--bot-name", default=None, help="the assistant's own name, if it has one")
    parser.add_argument("--author", default=None, help="who fine-tuned it (default NAME)")
    parser.add_argument("--system", default=DemoSettings.system, help=f"the system prompt to train and serve with (default {DemoSettings.system!r})")
    parser.add_argument("--method", default=DemoSettings.method, choices=METHODS,
                        help="sft (default): identity + regularization conversations; dpo, ipo, orpo, simpo: the same "
                             "questions as preference pairs (identity answers over the base model's own, its answers to "
                             "general questions over identity answers)")
    parser.add_argument("--size", type=int, default=DemoSettings.size,
                        help=f"identity conversations to train on (default {DemoSettings.size}); fewer is faster, and names NAME less reliably")
    parser.add_argument("--regularize", type=int, default=None, metavar="N",
                        help="general questions the base model answers for regularization (default: the whole bank); "
                             "fewer is faster, and keeps the base model's behaviour less")
    parser.add_argument("--seed", type=int, default=0, help="the data's seed: question order and answer phrasings (default 0)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                        help="run the demo once per data seed (into OUTPUT/seed-N, no GGUF export) and print each "
                             "seed's figures, their mean and the worst seed's")
    parser.add_argument("--tools", action="store_true", help="the tool-using agent demo instead of the identity one")
    parser.add_argument("--output", default=None, help="output directory (default demo-out, or demo-tools-out with --tools)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.tools:
        from tunechat.recipes.tools import ToolDemoSettings, run_tool_demo, run_tool_seeds

        output = args.output or "demo-tools-out"
        settings = ToolDemoSettings(output=output, seed=args.seed)
        if args.seeds:
            _seeds_table(run_tool_seeds(settings, args.seeds), output)
            return 0
        _summary(*run_tool_demo(settings),
                 f"run the agent:  tunechat agent {output}/merged   ·   tunechat eval tools {output}/merged")
        return 0
    from tunechat.recipes.identity import run_demo, run_seeds

    output = args.output or "demo-out"
    settings = DemoSettings(name=args.name, output=output, bot_name=args.bot_name, author=args.author,
                            system=args.system, method=args.method, seed=args.seed, size=args.size, regularize=args.regularize)
    if args.seeds:
        _seeds_table(run_seeds(settings, args.seeds), output)
        return 0
    _summary(*run_demo(settings),
             f"chat with your assistant:  tunechat chat {output}/merged   ·   python cli_demo.py {output}/merged"
             f"   ·   tunechat web {output}/merged")
    return 0


def _seeds_table(summary: dict[str, Any], output: str) -> None:
    print(f"\n{summary['method']} over data seeds (held-out questions only):")
    keys = [key for key in summary["mean"] if key != "seconds"] + ["seconds"]
    widths = [max(len(key), 8) for key in keys]
    print(f"{'seed':>6}  " + "  ".join(f"{key:>{w}}" for key, w in zip(keys, widths)))
    rows = [(str(r["seed"]), r) for r in summary["runs"]] + [("mean", summary["mean"]), ("worst", summary["worst"])]
    for label, r in rows:
        print(f"{label:>6}  " + "  ".join(f"{r[k]:{w}.0f}" if k == "seconds" else f"{r[k]:{w}.1%}" for k, w in zip(keys, widths)))
    print(f"\nfigures: {output}/seeds.json; each seed's report: {output}/seed-N/report.md")


def _summary(before: Any, after: Any, report: Path, next_step: str) -> None:
    print()
    print("微调前 (before):")
    print(before.table())
    print("微调后 (after):")
    print(after.table())
    print(f"\nreport: {report}")
    print(next_step)
