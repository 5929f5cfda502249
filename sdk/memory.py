"""Will it fit? A job's peak memory on the CPU, estimated from the model's config alone (the model
is built on torch's meta device: no weights read), checked against what the machine has free
before the job starts: a model too large for training, merging or loading says so at once, with
what to do, instead of being killed by the OOM killer half way.

What the peak is made of, as bench/bench_scale.py measures it beside these estimates (a 1.5B model:
LoRA fp32, QLoRA NF4, merge, loading at fp32, bf16 and 4-bit): loading dominates. A checkpoint read
in its own dtype is mapped, not copied; read into another dtype or quantized, its file pages stay
resident beside the converted weights until loading ends, so the peak is both. Training and merge
therefore read the checkpoint in its own dtype and widen or quantize it afterwards."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sdk.errors import TunechatError

GiB = 2**30
# Bytes per parameter for the weights alone: NF4 and 8-bit with their quantization state and
# allocator slack (as measured on the CPU), bf16/fp16, fp32.
WEIGHT_BYTES = {4: 0.75, 8: 1.25, "bf16": 2.0, "fp16": 2.0, "fp32": 4.0}
# Over the weights while training: activations, LoRA parameters, their gradients and AdamW state.
TRAIN_OVERHEAD = 1.4
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
    return ModelSize(quantizable=quantizable, other=total - quantizable,
                     checkpoint_bytes=sum(f.stat().st_size for f in files),
                     largest_file_bytes=max((f.stat().st_size for f in files), default=0), stored_dtype=stored)


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


def loading_bytes(size: ModelSize, bits: int | None, dtype: str) -> float:
    converted = bits is not None or dtype != size.stored_dtype
    return size.weight_bytes(bits, dtype) * 1.05 + (size.checkpoint_bytes if converted else 0) + BASELINE


def widened_bytes(size: ModelSize) -> float:
    """Read in the checkpoint's dtype, then widened to fp32 tensor by tensor (training without
    quantization, merge): the fp32 weights and, at worst, one file still mapped."""
    return size.weight_bytes(None) * 1.05 + size.largest_file_bytes + BASELINE


def training_bytes(size: ModelSize, bits: int | None) -> float:
    # Training keeps unquantized weights in fp32 (bf16 is autocast), quantized ones in 4 or 8 bits.
    load = loading_bytes(size, bits, "fp32") if bits else widened_bytes(size)
    return max(load, size.weight_bytes(bits) * TRAIN_OVERHEAD + BASELINE)


def merge_bytes(size: ModelSize) -> float:
    # The adapter is merged in place; the written model is then reloaded for the check (fp32,
    # mapped) once the first copy is freed.
    return widened_bytes(size)
