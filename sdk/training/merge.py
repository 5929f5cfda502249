"""`merge(base, adapter, out)`: fold a LoRA adapter into the full-precision base weights and
prove the result is the same model.

A merged model that silently differs from base + adapter is a classic fine-tuning complaint, so
every merge is verified: the logits of the written merged model (reloaded from disk) are compared
with those of base + adapter on probe prompts; beyond the tolerance the merge fails and nothing is
written. The merge is always onto the unquantized base (a QLoRA adapter too): merging into 4-bit
weights would round the update away."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets_builders.atomic import atomic_dir
from sdk.checkpoint import load_causal_lm
from sdk.errors import TunechatError
from sdk.memory import check_fits, merge_bytes, model_size
from sdk.metadata import write_metadata
from sdk.model_card import write_model_card
from sdk.models import quiet_transformers, resolve_source

PROBES = [
    [{"role": "user", "content": "Who are you?"}],
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "user", "content": "你是谁？请介绍一下你自己。"}],
]
# Max |logit difference| allowed between merged and base + adapter, by the merged weights' dtype.
# fp32 merging only reorders additions (~1e-5); half precision rounds every weight.
TOLERANCE = {"fp32": 1e-3, "bf16": 0.5, "fp16": 0.1}


@dataclass
class MergeResult:
    path: Path
    max_logit_diff: float
    tolerance: float


def merge(
    base: str | os.PathLike | None,
    adapter: str | os.PathLike,
    out: str | os.PathLike,
    *,
    max_shard_size: str = "2GB",
    dtype: str = "fp32",
    force: bool = False,
) -> MergeResult:
    """Merge `adapter` into `base` (None: the base recorded in the adapter, else the embedded
    model), write `out`, verify it. Refuses a non-empty `out` unless `force`."""
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from sdk.templates import get_template, render_prompt

    if dtype not in TOLERANCE:
        raise TunechatError(f"--dtype must be one of {', '.join(TOLERANCE)}, got {dtype!r}")
    quiet_transformers()
    adapter, out = Path(adapter), Path(out)
    base_path, meta = resolve_source(base, adapter)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise TunechatError(f"{out} exists and is not empty: choose another directory or pass --force")

    tokenizer = AutoTokenizer.from_pretrained(base_path)
    template = get_template(meta.get("template"))
    probes = [tokenizer(render_prompt(p, template, tokenizer), add_special_tokens=False, return_tensors="pt")["input_ids"]
              for p in PROBES]
    size = model_size(base_path)
    check_fits(f"merging into {base_path.name} ({size.total / 1e9:.2f}B parameters, fp32)", merge_bytes(size),
               "merge on a machine with more memory (the adapter alone serves too: tunechat chat BASE --adapter DIR)")
    # Read in the checkpoint's own dtype, tensor by tensor (sdk/checkpoint.py), then widened to fp32.
    model = load_causal_lm(base_path, dtype="auto").float()
    model = PeftModel.from_pretrained(model, adapter)
    expected = _logits(model, probes)
    merged = model.merge_and_unload()
    merged.to({"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype])

    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp, max_shard_size=max_shard_size)
        tokenizer.save_pretrained(tmp)
        del merged, model
        reloaded = load_causal_lm(tmp, dtype=torch.float32)
        diff = max(float((a - b).abs().max()) for a, b in zip(expected, _logits(reloaded, probes)))
        if diff > TOLERANCE[dtype]:
            raise TunechatError(f"merge verification failed: merged logits differ from base + adapter by {diff:.3g} "
                                f"(tolerance {TOLERANCE[dtype]} for {dtype}); nothing was written")
        merged_meta = {**meta, "base_model": str(base_path), "adapter": str(adapter.resolve()),
                       "merge": {"dtype": dtype, "max_logit_diff": diff, "tolerance": TOLERANCE[dtype]}}
        write_metadata(tmp, merged_meta)
        write_model_card(tmp, "merged", merged_meta)
    return MergeResult(path=out, max_logit_diff=diff, tolerance=TOLERANCE[dtype])


def _logits(model: Any, probes: list[Any]) -> list[Any]:
    import torch

    model.eval()
    with torch.inference_mode():
        return [model(input_ids=ids, use_cache=False).logits[0].float() for ids in probes]
