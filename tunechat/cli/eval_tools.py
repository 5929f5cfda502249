"""`tunechat eval tools MODEL [--set fresh|heldout] [--tasks FILE]`: how often the agent over MODEL
solves arithmetic word problems with a correct calculator call and a correct final answer, next
to the base model's rate, by language (English, Chinese) and by operation, and how often it
answers in the question's language.

Default tasks: the frozen `fresh` set (48 problems, English and Chinese; never used to choose a
training recipe: the honest figure). `heldout` is the set recipes were tuned against. Both are
written apart from the training generators; a test keeps their wording out of the training data.

Registered by `tunechat/cli/eval.py` (`register_eval_tools(kinds)`); the work is `agents.evaluate`."""
from __future__ import annotations

import argparse
import json
import sys

from agents import PROTOCOLS
from agents.tool_eval_sets import SETS


def register_eval_tools(kinds: argparse._SubParsersAction) -> None:
    """Add `tools` to the `tunechat eval` kinds."""
    parser = kinds.add_parser("tools", help="does the agent solve word problems with the calculator?",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the model directory (e.g. a merged model)")
    parser.add_argument("--adapter", default=None, help="evaluate MODEL + this adapter instead of a merged model")
    parser.add_argument("--base", default=None, help="the base model to compare with (default: the embedded model)")
    parser.add_argument("--set", default="fresh", choices=SETS, dest="task_set",
                        help="the frozen evaluation set (default fresh: never tuned against; heldout: the tuning set)")
    parser.add_argument("--tasks", default=None, metavar="FILE",
                        help='JSONL of {"question": ..., "answer": NUMBER[, "language": "en"|"zh", "operation": "+"]} '
                             "instead of a frozen set")
    parser.add_argument("--count", type=int, default=None, help="evaluate the first N tasks (default: all); "
                        "every prefix mixes both languages and all four operations")
    parser.add_argument("--base-count", type=int, default=None, metavar="N",
                        help="evaluate the base model on the first N tasks only (default: as many as the model); "
                             "an untuned model rambles to its token limit, so this caps what its figure costs")
    parser.add_argument("--protocol", default="internlm2", choices=PROTOCOLS, help="agent protocol")
    parser.add_argument("--json", action="store_true", help="print the full reports (every task) as JSON")
    parser.set_defaults(run=run_tools)


def run_tools(args: argparse.Namespace) -> int:
    import sdk
    from agents.evaluate import evaluate_tool_use, read_tasks
    from agents.tool_eval_sets import eval_tasks
    from sdk.errors import TunechatError

    for flag, value in (("--count", args.count), ("--base-count", args.base_count)):
        if value is not None and value < 1:
            raise TunechatError(f"{flag} must be at least 1, got {value}")
    tasks = (read_tasks(args.tasks) if args.tasks else eval_tasks(args.task_set))[:args.count]
    progress = sys.stderr.isatty()
    reports = {}
    for key, path, adapter, count in (("base", args.base, None, args.base_count), ("model", args.model, args.adapter, None)):
        label = path or "embedded SmolLM2-135M-Instruct"
        reports[key] = evaluate_tool_use(sdk.load(path, adapter=adapter), tasks[:count], protocol=args.protocol,
                                         label=label, progress=progress)
    if args.json:
        print(json.dumps({key: report.to_dict() for key, report in reports.items()}, ensure_ascii=False, indent=2))
        return 0
    for key in ("model", "base"):
        print(f"{reports[key].model}{' (base)' if key == 'base' else ''}:")
        print(reports[key].table())
    return 0
