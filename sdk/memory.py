"""Will it fit? A job's peak memory on the CPU, estimated from the model's config alone (the model
is built on torch's meta device: no weights read), checked against what the machine has free
before the job starts: a model too large for training, merging or loading says so at once, with
what to do, instead of being killed by the OOM killer half way.

What the peak is made of, as bench/bench_scale.py measures it beside these estimates (a 1.5B model:
LoRA fp32, QLoRA NF4, merge, loading at fp32, bf16 and 4-bit): loading dominates. sdk/checkpoint.py
reads a safetensors checkpoint tensor by tensor, so converting (quantizing, widening) holds the
converted weights and about one tensor besides. Where transformers maps the files instead (a model
with its own code, a .bin checkpoint), a converting load keeps the file pages it read resident
beside the converted weights until it ends, so the peak is both."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sdk.checkpoint import largest_tensor_bytes, reads_by_tensor, tensor_files
from sdk.errors import TunechatError

GiB = 2**30
# Bytes per parameter for the weights alone: NF4 and 8-bit with their quantization state and
# allocator slack (as measured on the CPU), bf16/fp16, fp32.
WEIGHT_BYTES = {4: 0.75, 8: 1.25, "bf16": 2.0, "fp16": 2.0, "fp32": 4.0}
# Over the weights while training: LoRA parameters, their gradients and AdamW state, allocator slack
# and the dequantized copy of the weight each 4-bit product makes. Activations are counted apart.
TRAIN_OVERHEAD = 1.15
# Activations kept for the backward pass, per token and layer, in units of (hidden + intermediate)
# fp32 values: the inputs of every projection, the MLP's intermediates, attention's outputs.
ACTIVATIONS_PER_LAYER = 12
BASELINE = 0.8 * GiB  # the interpreter, torch, tokenizers and datasets themselves


@dataclass(frozen=True)
class ModelSize:
    """Parameters of a model: in the Linear layers a quantizer converts (all but the output head)
    and the rest (embeddings, output head, norms), which stay in full precision."""

    quantizable: int
    other: int
    checkpoint_bytes: int = 0  # the weights' files on disk
    largest_file_bytes: int = 0
    stored_dtype: str = "fp32"
    largest_tensor_bytes: int = 0
    read_by_tensor: bool = False  # sdk/checkpoint.py reads it tensor by tensor rather than mapped
    layers: int = 0
    hidden: int = 0
    intermediate: int = 0
    vocab: int = 0

    @property
    def total(self) -> int:
        return self.quantizable + self.other

    def weight_bytes(self, bits: int | None, dtype: str = "fp32") -> float:
        if bits in (4, 8):
            return self.quantizable * WEIGHT_BYTES[bits] + self.other * WEIGHT_BYTES[dtype]
        return self.total * WEIGHT_BYTES[dtype]


def model_size(path: str | os.PathLike, trust_remote_code: bool = False) -> ModelSize:
    """The parameter counts of the model in directory `path`, from its config.json."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    head = model.get_output_embeddings()
    quantizable = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear) and m is not head)
    total = sum(p.numel() for p in model.parameters())  # tied weights are counted once
    files = [*Path(path).glob("*.safetensors"), *Path(path).glob("*.bin")]
    stored = {"bfloat16": "bf16", "float16": "fp16"}.get(str(getattr(config, "dtype", None) or "").removeprefix("torch."), "fp32")
    by_tensor = reads_by_tensor(path, config)
    text = config.get_text_config()
    return ModelSize(quantizable=quantizable, other=total - quantizable,
                     checkpoint_bytes=sum(f.stat().st_size for f in files),
                     largest_file_bytes=max((f.stat().st_size for f in files), default=0), stored_dtype=stored,
                     largest_tensor_bytes=largest_tensor_bytes(tensor_files(path) or []) if by_tensor else 0,
                     read_by_tensor=by_tensor, layers=text.num_hidden_layers, hidden=text.hidden_size,
                     intermediate=getattr(text, "intermediate_size", None) or 4 * text.hidden_size, vocab=text.vocab_size)


def available_bytes() -> int | None:
    """Memory this process can still take: MemAvailable, or the cgroup's limit if lower; None
    where neither can be read (the check is then skipped)."""
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        return None
    try:
        limit, used = (Path("/sys/fs/cgroup", name).read_text().strip() for name in ("memory.max", "memory.current"))
        if limit != "max":
            free = min(free if free is not None else 2**62, int(limit) - int(used))
    except (OSError, ValueError):
        pass
    return free


def check_fits(what: str, need: float, hint: str) -> None:
    """Refuse a job that needs more memory than is available, before it starts."""
    free = available_bytes()
    if free is not None and need > free:
        raise TunechatError(f"{what} needs about {need / GiB:.1f} GiB of memory and this machine has {free / GiB:.1f} GiB "
                            f"available: {hint}")


def _conversion_bytes(size: ModelSize) -> float:
    """Held beside the converted weights while a load converts: one tensor read and its converted
    copy (by tensor), or the whole mapped checkpoint."""
    return 2 * size.largest_tensor_bytes if size.read_by_tensor else size.checkpoint_bytes


def loading_bytes(size: ModelSize, bits: int | None, dtype: str) -> float:
    converted = bits is not None or dtype != size.stored_dtype
    return size.weight_bytes(bits, dtype) * 1.05 + (_conversion_bytes(size) if converted else 0) + BASELINE


def widened_bytes(size: ModelSize) -> float:
    """Read in the checkpoint's dtype, then widened to fp32 tensor by tensor (training without
    quantization, merge): the fp32 weights and one tensor, or, mapped, at worst one file."""
    extra = 2 * size.largest_tensor_bytes if size.read_by_tensor else size.largest_file_bytes
    return size.weight_bytes(None) * 1.05 + extra + BASELINE


def activation_bytes(size: ModelSize, tokens: int, checkpointing: bool) -> float:
    """What a step of `tokens` keeps for its backward pass: every layer's activations, or with
    gradient checkpointing every layer's input and one layer's activations; and the logits."""
    layer = ACTIVATIONS_PER_LAYER * (size.hidden + size.intermediate) * 4
    kept = size.layers * size.hidden * 4 * 2 + layer if checkpointing else size.layers * layer
    return tokens * (kept + size.vocab * 4 * 4)  # logits, their softmax, its gradient, the labels' gather


def training_bytes(size: ModelSize, bits: int | None, tokens: int = 0, checkpointing: bool = False) -> float:
    """Training's peak: loading, or the weights (unquantized in fp32, bf16 being autocast; quantized
    in 4 or 8 bits) with the adapter's state and the activations of steps of `tokens` tokens."""
    load = loading_bytes(size, bits, "fp32") if bits else widened_bytes(size)
    train = size.weight_bytes(bits) * TRAIN_OVERHEAD + activation_bytes(size, tokens, checkpointing) + BASELINE
    return max(load, train)


def merge_bytes(size: ModelSize) -> float:
    # The adapter is merged in place; the written model is then reloaded for the check (fp32,
    # mapped) once the first copy is freed.
    return widened_bytes(size)
