"""`tunechat demo [--name NAME] [--output DIR]`: the XTuner tutorial's homework on the embedded
model, end to end in a few minutes on a laptop CPU: identity data (with self-distilled
regularization) → QLoRA fine-tune → merge (verified) → before/after evaluation and a report."""
from __future__ import annotations

import argparse

from sdk.demo import DemoSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the tutorial pipeline end to end", description=__doc__)
    parser.add_argument("--name", default="Alice", help="whose assistant the model becomes (default Alice)")
    parser.add_argument("--bot-name", default=None, help="the assistant's own name, if it has one")
    parser.add_argument("--author", default=None, help="who fine-tuned it (default NAME)")
    parser.add_argument("--system", default=DemoSettings.system, help=f"the system prompt to train and serve with (default {DemoSettings.system!r})")
    parser.add_argument("--output", default="demo-out", help="output directory (default demo-out)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sdk.demo import run_demo

    before, after, report = run_demo(DemoSettings(name=args.name, output=args.output, bot_name=args.bot_name,
                                                  author=args.author, system=args.system))
    print()
    print("微调前 (before):")
    print(before.table())
    print("微调后 (after):")
    print(after.table())
    print(f"\nreport: {report}")
    print(f"chat with your assistant:  tunechat chat {args.output}/merged   ·   python cli_demo.py {args.output}/merged"
          f"   ·   tunechat web {args.output}/merged")
    return 0
