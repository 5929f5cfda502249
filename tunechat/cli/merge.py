"""`tunechat merge BASE ADAPTER OUT`: fold a LoRA adapter into the full-precision base model and
write a standalone model (safetensors shards, tokenizer, chat template, generation config and the
adapter's tunechat.json). The result is verified: its logits must match base + adapter on probe
prompts (max difference printed; the merge fails beyond the tolerance). BASE may be `embedded`."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("merge", help="merge a LoRA adapter into its base model", description=__doc__)
    parser.add_argument("base", help="the base model directory, or `embedded`")
    parser.add_argument("adapter", help="the adapter directory (OUTPUT/adapter from `tunechat train`)")
    parser.add_argument("out", help="where to write the merged model (must be empty unless --force)")
    parser.add_argument("--max-shard-size", default="2GB", help="largest safetensors shard (default 2GB)")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16", "fp16"], help="dtype of the written weights (default fp32)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUT")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sdk.training.merge import merge

    result = merge(None if args.base == "embedded" else args.base, args.adapter, args.out,
                   max_shard_size=args.max_shard_size, dtype=args.dtype, force=args.force)
    print(f"merged into {result.path}; verified: max logit difference vs base + adapter "
          f"{result.max_logit_diff:.2e} (tolerance {result.tolerance})")
    print(f"chat with it: tunechat chat {result.path}")
    return 0
