"""`tunechat eval tools MODEL [--tasks FILE]`: how often the agent over MODEL solves arithmetic
word problems with a correct calculator call and a correct final answer, next to the base
model's rate. Default tasks: held-out word problems (phrasings no training record uses).

Registered by `tunechat/cli/eval.py` (`register_eval_tools(kinds)`); the work is `agents.evaluate`."""
from __future__ import annotations

import argparse
import json
import sys

from agents import PROTOCOLS


def register_eval_tools(kinds: argparse._SubParsersAction) -> None:
    """Add `tools` to the `tunechat eval` kinds."""
    parser = kinds.add_parser("tools", help="does the agent solve word problems with the calculator?",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the model directory (e.g. a merged model)")
    parser.add_argument("--adapter", default=None, help="evaluate MODEL + this adapter instead of a merged model")
    parser.add_argument("--base", default=None, help="the base model to compare with (default: the embedded model)")
    parser.add_argument("--tasks", default=None, metavar="FILE",
                        help='JSONL of {"question": ..., "answer": NUMBER}; default: --count held-out word problems')
    parser.add_argument("--count", type=int, default=50, help="number of generated tasks (default 50)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated tasks (default 1)")
    parser.add_argument("--protocol", default="internlm2", choices=PROTOCOLS, help="agent protocol")
    parser.add_argument("--json", action="store_true", help="print the full reports (every task) as JSON")
    parser.set_defaults(run=run_tools)


def run_tools(args: argparse.Namespace) -> int:
    import sdk
    from agents.evaluate import evaluate_tool_use, read_tasks
    from agents.tools_data import arithmetic_tasks

    tasks = read_tasks(args.tasks) if args.tasks else arithmetic_tasks(args.count, seed=args.seed)
    progress = sys.stderr.isatty()
    reports = {}
    for key, path, adapter in (("base", args.base, None), ("model", args.model, args.adapter)):
        label = path or "embedded SmolLM2-135M-Instruct"
        reports[key] = evaluate_tool_use(sdk.load(path, adapter=adapter), tasks, protocol=args.protocol,
                                         label=label, progress=progress)
    if args.json:
        print(json.dumps({key: report.to_dict() for key, report in reports.items()}, ensure_ascii=False, indent=2))
        return 0
    for key in ("model", "base"):
        print(f"{reports[key].model}{' (base)' if key == 'base' else ''}:")
        print(reports[key].table())
    return 0
