"""`tunechat data show FILE [--model M] [--index I]`: one record exactly as training sees it."""
from __future__ import annotations

import argparse
import sys


def show_parser(actions: argparse._SubParsersAction) -> None:
    from sdk.templates import TEMPLATES

    parser = actions.add_parser(
        "show", help="print a sample as trained: trained parts highlighted, masked parts plain",
        description="Render one record with the model's template and tokenizer, the way `tunechat train` does, "
        "and show which tokens carry loss (green in a terminal, between ⟦ ⟧ otherwise), like XTuner's "
        "`log-dataset --show masked_text`.")
    parser.add_argument("file", help="a data file (any format `tunechat train` reads)")
    parser.add_argument("--model", default=None, help="the model whose tokenizer/template to use (default: embedded)")
    parser.add_argument("--index", type=int, default=0, help="which record, from 0 (default 0)")
    parser.add_argument("--prompt-template", default=None, choices=sorted(TEMPLATES), help="a named XTuner template")
    parser.add_argument("--system", default=None, help="system prompt for records without one (as in training)")
    parser.add_argument("--max-length", type=int, default=512, help="cut to this many tokens, as training does")
    parser.set_defaults(run=_show)


def _show(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from sdk.models import resolve_model
    from sdk.templates import get_template
    from sdk.training.data import show_sample

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(args.model))
    print(show_sample(args.file, tokenizer, get_template(args.prompt_template), args.system, args.index,
                      args.max_length, color=sys.stdout.isatty()))
    return 0
