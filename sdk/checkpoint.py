"""Reading a checkpoint into a model: the one place tunechat calls `from_pretrained` for a causal LM.

transformers maps every safetensors file of a checkpoint and keeps the maps until loading ends.
Where loading converts each tensor (quantizing it, or reading bf16 into fp32), the file pages it has
read stay resident beside the converted weights, so the peak holds the whole checkpoint twice over
(QLoRA's peak was mostly the mapped bf16 checkpoint beside its NF4 weights). Here the tensors are
read one by one with `pread` instead: each one's bytes are freed once it is converted."""
from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path
from typing import Any

SAFETENSORS_INDEX = "model.safetensors.index.json"
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
TENSOR_BUFFERS = 4 << 20  # mapped while tensors come and go one by one (return_freed_buffers)
GLIBC_CEILING = 32 << 20  # where glibc's own dynamic threshold settles once large buffers are freed


def tensor_files(path: str | os.PathLike) -> list[Path] | None:
    """The safetensors files of the checkpoint in directory `path`, or None where it has none (a
    .bin checkpoint), which transformers' own loading then reads."""
    path = Path(path)
    if (path / SAFETENSORS_INDEX).is_file():
        names = sorted(set(json.loads((path / SAFETENSORS_INDEX).read_text(encoding="utf-8"))["weight_map"].values()))
        return [path / name for name in names]
    return [path / "model.safetensors"] if (path / "model.safetensors").is_file() else None


def largest_tensor_bytes(files: list[Path]) -> int:
    """The largest tensor in these safetensors files, from their headers alone (no weights read)."""
    largest = 0
    for file in files:
        with file.open("rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        largest = max([largest, *(end - start for key, value in header.items() if key != "__metadata__"
                                  for start, end in [value["data_offsets"]])])
    return largest


def reads_by_tensor(path: str | os.PathLike, config: Any) -> bool:
    """Whether `load_causal_lm` reads this checkpoint tensor by tensor: safetensors files and a
    model class transformers itself ships."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING

    return (tensor_files(path) is not None and type(config) in MODEL_FOR_CAUSAL_LM_MAPPING
            and not getattr(config, "auto_map", None))


def return_freed_buffers(min_bytes: int) -> None:
    """Have glibc map every buffer of `min_bytes` or more, so that freeing one returns it. Below its
    mmap threshold (dynamic, up to 32 MiB) glibc serves buffers from its heaps and keeps freed ones
    there: a job that allocates and frees large tensors one after another (reading a checkpoint
    tensor by tensor, dequantizing 4-bit weights for every product) would hold much of what it ever
    freed. Process-wide; nothing happens where malloc is not glibc's (macOS)."""
    try:
        ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, min_bytes)
    except AttributeError:
        pass


def load_causal_lm(path: str | os.PathLike, **kwargs: Any) -> Any:
    """`AutoModelForCausalLM.from_pretrained(path, **kwargs)`, with a safetensors checkpoint read
    tensor by tensor into CPU memory. Models whose class comes with their own code
    (`trust_remote_code`), .bin checkpoints, a `device_map` off the CPU (a GPU's weights do not
    stay in the process's memory; that path is not tested here), offloading to disk and DeepSpeed
    ZeRO-3 (which partitions while it loads) take transformers' own path."""
    from safetensors import safe_open
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, AutoConfig, AutoModelForCausalLM, GenerationConfig
    from transformers.integrations import is_deepspeed_zero3_enabled

    path = Path(path)
    config = AutoConfig.from_pretrained(path, trust_remote_code=kwargs.get("trust_remote_code", False))
    device_map = kwargs.get("device_map") or {"": "cpu"}
    on_cpu = isinstance(device_map, dict) and all(str(device) == "cpu" for device in device_map.values())
    if not reads_by_tensor(path, config) or not on_cpu or "offload_folder" in kwargs or is_deepspeed_zero3_enabled():
        return AutoModelForCausalLM.from_pretrained(path, **kwargs)
    handles = [safe_open(file, framework="pt", device="cpu", backend="pread") for file in tensor_files(path) or []]
    try:
        state_dict = {name: handle.get_slice(name) for handle in handles for name in handle.keys()}
        return_freed_buffers(TENSOR_BUFFERS)
        model = MODEL_FOR_CAUSAL_LM_MAPPING[type(config)].from_pretrained(None, config=config, state_dict=state_dict, **kwargs)
    finally:
        return_freed_buffers(GLIBC_CEILING)
        for handle in handles:
            handle.__exit__(None, None, None)
    model.config.name_or_path = model.name_or_path = str(path)  # peft records it as the adapter's base
    if (path / "generation_config.json").is_file():  # as from_pretrained(path) reads it: its eos ids end answers
        model.generation_config = GenerationConfig.from_pretrained(path)
    return model
