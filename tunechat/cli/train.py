"""`tunechat train [CONFIG.yaml] [--data TRAIN.jsonl] [--output DIR] [--key value ...]`: QLoRA/LoRA
fine-tuning. Every setting has a default; a YAML file and flags set the same fields (flags win).
Runs unchanged under `torchrun --nproc_per_node N -m tunechat.cli train ...` or `accelerate launch`.
A run killed half way resumes from its last checkpoint when started again with the same command;
SIGTERM (`kill PID`, the studio's Stop) first finishes the current step and saves a checkpoint of it."""
from __future__ import annotations

import argparse
import dataclasses


def register(sub: argparse._SubParsersAction) -> None:
    from sdk.training.config import TrainConfig

    parser = sub.add_parser("train", help="fine-tune a model with (Q)LoRA", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", default=None, metavar="CONFIG.yaml", help="a YAML file of the settings below")
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {_shown(f)})"
        base = f.type.split(" | ")[0]
        if base == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif base == "list[str]":
            parser.add_argument(flag, nargs="+", default=None, metavar="TEXT", help=help_text)
        elif f.name == "bits":
            parser.add_argument(flag, type=_bits, default=None, metavar="{4,8,none}", help=help_text)
        else:
            parser.add_argument(flag, type={"int": int, "float": float}.get(base, str), default=None, help=help_text)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sdk.training import TrainConfig, finetune

    overrides = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig.from_sources(args.config, **overrides)
    result = finetune(config)
    if result.metrics["stopped"]:
        print(f"stopped at step {result.metrics['steps']} of {result.metrics['max_steps']} (checkpoint kept): "
              "run the same command again to resume")
    print(f"adapter: {result.adapter}")
    print("metrics: " + ", ".join(f"{k}={v}" for k, v in result.metrics.items() if v is not None))
    print(f"next: tunechat merge {config.model or 'embedded'} {result.adapter} merged/   "
          f"or chat now: tunechat chat --adapter {result.adapter}")
    return 0


def _bits(text: str) -> int:
    if text.lower() in ("none", "0", "16", "32"):
        return 0
    if text in ("4", "8"):
        return int(text)
    raise argparse.ArgumentTypeError(f"must be 4, 8 or none, got {text!r}")


def _shown(f: dataclasses.Field) -> str:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return "none" if default is None else " ".join(default) if isinstance(default, list) else str(default)
