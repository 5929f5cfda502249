"""llama.cpp's own quantizer (`llama_model_quantize`, through llama-cpp-python): an f32 GGUF → the
type asked for. Nothing is shelled out; llama.cpp's per-tensor log is captured, not printed."""
from __future__ import annotations

import contextlib
import ctypes
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from sdk.engines.llamacpp import import_llama_cpp
from sdk.errors import TunechatError
from sdk.hardware import cpu_threads

# --quant name → llama.cpp file type. The float types keep the verification strict; k-quants
# are graded by agreement and perplexity (`verify.py`).
QUANTS = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0", "q6_k": "MOSTLY_Q6_K",
          "q5_k_m": "MOSTLY_Q5_K_M", "q4_k_m": "MOSTLY_Q4_K_M", "q4_0": "MOSTLY_Q4_0"}


def check_quant(quant: str) -> str:
    name = quant.lower()
    if name not in QUANTS:
        raise TunechatError(f"unknown quant type {quant!r}; choose one of: {', '.join(QUANTS)}")
    return name


def quantize(source: Path, out: Path, quant: str) -> str:
    """Quantize `source` (f32 GGUF) into `out`; returns llama.cpp's note on tensors it had to
    quantize to another type (rows not a multiple of the block size), or ""."""
    llama_cpp = import_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{QUANTS[quant]}")
    params.nthread = cpu_threads()
    with _captured_stderr() as log:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    text = log.read_text(errors="replace") if log.exists() else ""
    log.unlink(missing_ok=True)
    if status != 0:
        last = next((line for line in reversed(text.splitlines()) if line.strip()), "no message")
        raise TunechatError(f"llama.cpp could not quantize to {quant}: {last.strip()}")
    fallback = re.search(r"(\d+) of (\d+) tensor\(s\) required fallback quantization", text)
    return f"{fallback.group(1)} of {fallback.group(2)} tensors fell back to another type" if fallback else ""


@contextlib.contextmanager
def _captured_stderr() -> Iterator[Path]:
    """Send file descriptor 2 (where llama.cpp's C code writes) to a temporary file."""
    fd, name = tempfile.mkstemp(prefix="tunechat-quantize-", suffix=".log")
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        yield Path(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
