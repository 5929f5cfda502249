"""`tunechat demo [--name NAME] [--output DIR]`: the XTuner tutorial's homework on the embedded
model, end to end in a few minutes on a laptop CPU: identity data (with self-distilled
regularization) → QLoRA fine-tune → merge (verified) → before/after evaluation and a report.

`tunechat demo --tools [--output DIR]`: the same pipeline for a tool-using agent: calculator
conversations → LoRA fine-tune → merge → the agent's solve rate on held-out word problems,
before and after (about 18 minutes on 2 CPU cores)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tunechat.recipes.identity import DemoSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the tutorial pipeline end to end", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="Alice", help="whose assistant the model becomes (default Alice)")
    parser.add_argument("--bot-name", default=None, help="the assistant's own name, if it has one")
    parser.add_argument("--author", default=None, help="who fine-tuned it (default NAME)")
    parser.add_argument("--system", default=DemoSettings.system, help=f"the system prompt to train and serve with (default {DemoSettings.system!r})")
    parser.add_argument("--tools", action="store_true", help="the tool-using agent demo instead of the identity one")
    parser.add_argument("--output", default=None, help="output directory (default demo-out, or demo-tools-out with --tools)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.tools:
        from tunechat.recipes.tools import ToolDemoSettings, run_tool_demo

        output = args.output or "demo-tools-out"
        _summary(*run_tool_demo(ToolDemoSettings(output=output)),
                 f"run the agent:  tunechat agent {output}/merged   ·   tunechat eval tools {output}/merged")
        return 0
    from tunechat.recipes.identity import run_demo

    output = args.output or "demo-out"
    _summary(*run_demo(DemoSettings(name=args.name, output=output, bot_name=args.bot_name, author=args.author,
                                    system=args.system)),
             f"chat with your assistant:  tunechat chat {output}/merged   ·   python cli_demo.py {output}/merged"
             f"   ·   tunechat web {output}/merged")
    return 0


def _summary(before: Any, after: Any, report: Path, next_step: str) -> None:
    print()
    print("微调前 (before):")
    print(before.table())
    print("微调后 (after):")
    print(after.table())
    print(f"\nreport: {report}")
    print(next_step)
