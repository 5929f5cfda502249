"""Packed attention without the quadratic bill: each packed sample attends only to itself, and
only its own block is computed.

transformers keeps packed samples apart with a block-diagonal mask over the whole packed row, so
SDPA on a CPU still computes every block: (sum of lengths)^2 work where sum(length^2) suffices —
on the identity job that made packing slower than padding. This attention function cuts the row at
the position-id restarts and runs causal SDPA per sample. It falls back to plain SDPA (with the
usual mask) whenever the batch is not a single packed row, e.g. during generation."""
from __future__ import annotations

from typing import Any

NAME = "tunechat_packed"


def packed_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
                dropout: float = 0.0, position_ids: Any = None, **kwargs: Any) -> tuple[Any, None]:
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    starts = _sample_starts(position_ids, query)
    if starts is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs)
    ends = starts[1:] + [query.shape[2]]
    outputs = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, s:e], key[:, :, s:e], value[:, :, s:e], is_causal=True, scale=scaling, dropout_p=dropout,
            enable_gqa=query.shape[1] != key.shape[1])
        for s, e in zip(starts, ends)
    ]
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), None


def _sample_starts(position_ids: Any, query: Any) -> list[int] | None:
    """Where packed samples begin (position id 0), or None when this is not a packed row of
    several samples without a KV cache."""
    if position_ids is None or query.shape[0] != 1 or position_ids.shape[-1] != query.shape[2]:
        return None
    starts = (position_ids[0] == 0).nonzero().flatten().tolist()
    return starts if len(starts) > 1 and starts[0] == 0 else None


def use_packed_attention(model: Any) -> None:
    """Switch a model to packed attention (registering it with transformers once)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(NAME, packed_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)  # the fallback path still gets its mask
    model.set_attn_implementation(NAME)
