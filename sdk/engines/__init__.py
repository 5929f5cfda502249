"""The engines, and `load`: which one a model source needs.

    sdk.load()                         the embedded SmolLM2-135M-Instruct (PyTorch)
    sdk.load("merged/", bits=4)        a local HF directory (PyTorch)
    sdk.load("model.gguf")             a GGUF file (llama.cpp)
    sdk.load(backend="llama.cpp")      the embedded model on llama.cpp (a verified bf16 export, made once)
    sdk.load("http://host:8000/v1")    an OpenAI-compatible server (remote)

Every engine implements `BaseEngine` (`sdk.engines.base`); the engine modules import only that
base, never each other."""
from __future__ import annotations

import os

from sdk.engines.base import BaseEngine, Generation
from sdk.engines.llamacpp import LlamaCppEngine, load_llamacpp
from sdk.engines.pytorch import Engine, load_pytorch
from sdk.engines.remote import RemoteEngine
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig

__all__ = ["BACKENDS", "BaseEngine", "Engine", "Generation", "LlamaCppEngine", "RemoteEngine", "load"]
BACKENDS = ("auto", "pytorch", "llama.cpp")


def load(
    source: str | os.PathLike | None = None,
    /,
    *,
    model: str | os.PathLike | None = None,
    api_key: str | None = None,
    adapter: str | os.PathLike | None = None,
    bits: int | None = None,
    dtype: str = "auto",
    device: str = "auto",
    template: str | None = None,
    system: str | None = None,
    stop_words: list[str] | None = None,
    generation: GenerationConfig | None = None,
    trust_remote_code: bool = False,
    offload_folder: str | os.PathLike | None = None,
    backend: str = "auto",
) -> BaseEngine:
    """Load a model for chat, or connect to one served over HTTP.

    source: a local HF model directory; None is the embedded SmolLM2-135M-Instruct; the
    http(s) URL of an OpenAI-compatible API (`tunechat serve`, vLLM, LMDeploy: ".../v1") gives a
    `RemoteEngine` with the same interface, e.g. `sdk.load("http://host:8000/v1", model="m")`.
    model: with a URL, the served model's name (default: the only one served); otherwise the
    model directory, as `source` (`sdk.load(model="merged/")`).
    api_key: with a URL, the server's key (default $TUNECHAT_API_KEY, then $OPENAI_API_KEY).
    adapter: a PEFT (LoRA) adapter directory applied on top, without merging.
    bits: 4 (NF4, double quantization) or 8 via bitsandbytes; None loads unquantized.
    dtype: "auto" (bf16 on CUDA; on a CPU, bf16 only where it decodes this model faster than fp32,
        measured once and cached in `$TUNECHAT_HOME/hardware.json`), "fp32", "bf16" or "fp16".
    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    template, system, stop_words: override what the model's tunechat.json says (template None
    means the tokenizer's chat template); with a URL only system, stop_words and generation
    apply (system None leaves the server's own), and the loading options are the server's.
    backend: "auto" (llama.cpp for a .gguf file, PyTorch for a directory), "pytorch" or
    "llama.cpp"; "llama.cpp" without a source runs the embedded model's verified bf16 GGUF
    export, written once beside its cached checkpoint (`sdk.export.embedded_gguf`)."""
    if backend not in BACKENDS:
        raise TunechatError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    # The PyTorch loading options the caller set: neither a server nor a GGUF file takes them.
    loading = [name for name, given in [("adapter", adapter is not None), ("bits", bits is not None),
                                        ("dtype", dtype != "auto"), ("device", device not in ("auto", "cpu")),
                                        ("trust_remote_code", trust_remote_code),
                                        ("offload_folder", offload_folder is not None)] if given]
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        local = [*loading, *(["template"] if template is not None else [])]
        if local:
            raise TunechatError(f"{', '.join(local)}: only for local models; the server at {source} loads its own")
        return RemoteEngine(source, model=model and str(model), api_key=api_key, system=system, stop_words=stop_words,
                            generation=generation)
    if source is not None and model is not None:
        raise TunechatError("give the model once: sdk.load(path) or sdk.load(model=path)")
    if api_key is not None:
        raise TunechatError("api_key is for a server URL, not a local model")
    source = source if source is not None else model
    gguf = source is not None and str(source).endswith(".gguf")
    if gguf or backend == "llama.cpp":
        if loading:
            raise TunechatError(f"{', '.join(loading)}: only for the PyTorch backend (a GGUF file carries its own "
                                "weights and quantization)")
        if backend == "pytorch":
            raise TunechatError(f"{source}: a GGUF file runs on llama.cpp, not the PyTorch backend")
        if source is None or str(source) in ("embedded", "SmolLM2-135M-Instruct"):
            from sdk.export import embedded_gguf

            source = embedded_gguf()
        elif not gguf:
            raise TunechatError(f"{source}: backend llama.cpp runs a GGUF file: export it first "
                                f"(tunechat export gguf {source} OUT.gguf) and load OUT.gguf")
        return load_llamacpp(source, template=template, system=system, stop_words=stop_words, generation=generation)
    return load_pytorch(source, adapter=adapter, bits=bits, dtype=dtype, device=device,
                        template=template, system=system, stop_words=stop_words, generation=generation,
                        trust_remote_code=trust_remote_code, offload_folder=offload_folder)
