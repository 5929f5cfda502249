"""Which dtype pays on this machine: bf16 for training (batched matrix products) and, measured
separately, bf16 for decoding (one row at a time).

The two differ: a CPU with AVX512-BF16 multiplies batches of rows in bf16 much faster than in fp32,
yet its one-row products, which decoding is made of, can be slower in bf16 than in fp32. So the
decoding choice is measured once per CPU, torch version, thread count and model shape, and cached."""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from datasets_builders.atomic import write_text_atomic
from sdk.models import tunechat_home

# bf16 decodes when its one-row product takes at most this share of fp32's time.
BF16_DECODE_GAIN = 0.9


def cpu_threads() -> int:
    """The threads llama.cpp runs on: `OMP_NUM_THREADS` when set, the variable torch honours too, so
    one setting caps both runtimes (two processes sharing the cores); else every core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else os.cpu_count() or 1


def _cpu_flags() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def bf16_is_fast(cuda: bool) -> bool:
    """bf16 autocast pays for training on GPUs that support it and on CPUs with AVX512-BF16 or
    AMX; elsewhere it is emulated and slower. `TUNECHAT_CPU_BF16=0` keeps a CPU in fp32 (the test
    suite sets it: its exactness checks, such as streaming against whole answers, hold in fp32)."""
    import torch

    if cuda:
        return torch.cuda.is_bf16_supported()
    if os.environ.get("TUNECHAT_CPU_BF16") == "0":
        return False
    flags = _cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _cpu_name() -> str:
    for line in _cpu_flags().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _one_row_seconds(dtype, hidden: int, intermediate: int) -> float:
    """The best of five timings of a decode-shaped product (one row through an MLP projection)."""
    import torch

    weight = torch.nn.Linear(hidden, intermediate, bias=False).to(dtype)
    row = torch.randn(1, hidden, dtype=dtype)
    repeats = max(8, int(2e8 / (hidden * intermediate)))
    best = float("inf")
    with torch.inference_mode():
        weight(row)
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeats):
                weight(row)
            best = min(best, (time.perf_counter() - start) / repeats)
    return best


def bf16_decodes_fast(hidden: int, intermediate: int) -> bool:
    """Whether this CPU decodes a model of this shape faster in bf16 than in fp32: never where
    bf16 is emulated, else measured (under a second) and remembered in `$TUNECHAT_HOME/hardware.json`."""
    import torch

    if not bf16_is_fast(cuda=False):
        return False
    key = f"{_cpu_name()}|torch {torch.__version__}|{torch.get_num_threads()} threads|{hidden}x{intermediate}"
    path = tunechat_home() / "hardware.json"
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        fp32 = _one_row_seconds(torch.float32, hidden, intermediate)
        bf16 = _one_row_seconds(torch.bfloat16, hidden, intermediate)
        known[key] = {"fp32_us": round(fp32 * 1e6, 1), "bf16_us": round(bf16 * 1e6, 1)}
        write_text_atomic(path, json.dumps(known, indent=1) + "\n")
    times = known[key]
    return times["bf16_us"] <= BF16_DECODE_GAIN * times["fp32_us"]
