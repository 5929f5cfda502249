"""`tunechat eval identity MODEL --name NAME`: identity hit rate on held-out identity questions,
false-trigger rate on unrelated questions, and retention of the base model's right answers on a
general-knowledge control set. `tunechat eval tools MODEL`: see tunechat/cli/eval_tools.py."""
from __future__ import annotations

import argparse
import json

from tunechat.cli.eval_tools import register_eval_tools


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("eval", help="evaluate a fine-tuned model", description=__doc__)
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    identity = kinds.add_parser("identity", help="did the identity fine-tune work, without side effects?", description=__doc__)
    identity.add_argument("model", help="the model directory (e.g. a merged model)")
    identity.add_argument("--name", required=True, help="the NAME answers should contain")
    identity.add_argument("--adapter", default=None, help="evaluate MODEL + this adapter instead of a merged model")
    identity.add_argument("--base", default=None, help="the base model for retention (default: the embedded model)")
    identity.add_argument("--questions", default=None, help="a file of held-out identity questions (records; their inputs are used)")
    identity.add_argument("--unrelated", default=None, metavar="FILE",
                          help="a file of unrelated questions for the false-trigger rate (records; their inputs are used); "
                               "default: the built-in 20 English and Chinese ones")
    identity.add_argument("--control", default=None, metavar="FILE",
                          help='your own retention set, JSONL of {"question": ..., "keywords": [...]} (a right answer holds '
                               'one keyword); default: the built-in 74 English and Chinese general-knowledge questions')
    identity.add_argument("--json", action="store_true", help="print the full report as JSON")
    identity.set_defaults(run=run_identity)
    register_eval_tools(kinds)


def run_identity(args: argparse.Namespace) -> int:
    import sdk
    from sdk.evaluation import evaluate_identity

    questions, unrelated = _first_inputs(args.questions), _first_inputs(args.unrelated)
    control = None
    if args.control:
        from datasets_builders.identity import read_control

        control = read_control(args.control)
    asked = {"identity_questions": questions, "unrelated": unrelated, "control": control}
    baseline = evaluate_identity(sdk.load(args.base), args.name, **asked)
    report = evaluate_identity(sdk.load(args.model, adapter=args.adapter), args.name, baseline=baseline, **asked)
    if args.json:
        print(json.dumps({"model": report.to_dict(), "base": baseline.to_dict()}, ensure_ascii=False, indent=2))
    else:
        print(f"{args.model}:")
        print(report.table())
        print(f"base ({args.base or 'embedded'}): identity hit rate {baseline.hit_rate:.1%}, "
              f"false-trigger rate {baseline.false_trigger_rate:.1%}")
    return 0


def _first_inputs(path: str | None) -> list[str] | None:
    """The first user message of each record of `path` (None: no file given)."""
    if not path:
        return None
    from datasets_builders import RecordFile

    return [next(m["content"] for m in entry.messages if m["role"] == "user") for entry in RecordFile(path)]
