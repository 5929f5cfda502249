"""The engines, and `load`: which one a model source needs.

    sdk.load()                         the embedded SmolLM2-135M-Instruct (PyTorch)
    sdk.load("merged/", bits=4)        a local HF directory (PyTorch)
    sdk.load("http://host:8000/v1")    an OpenAI-compatible server (remote)

Every engine implements `BaseEngine` (`sdk.engines.base`); the engine modules import only that
base, never each other."""
from __future__ import annotations

import os

from sdk.engines.base import BaseEngine, Generation
from sdk.engines.pytorch import Engine, load_pytorch
from sdk.engines.remote import RemoteEngine
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig

__all__ = ["BaseEngine", "Engine", "Generation", "RemoteEngine", "load"]


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
    dtype: "auto" (fp32 on CPU, bf16 on CUDA), "fp32", "bf16" or "fp16".
    device: "auto" (CUDA when available), "cpu", "cuda", "cuda:1", ...
    template, system, stop_words: override what the model's tunechat.json says (template None
    means the tokenizer's chat template); with a URL only system, stop_words and generation
    apply (system None leaves the server's own), and the loading options are the server's."""
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        local = [name for name, given in [("adapter", adapter is not None), ("bits", bits is not None),
                                          ("dtype", dtype != "auto"), ("device", device != "auto"),
                                          ("template", template is not None), ("trust_remote_code", trust_remote_code),
                                          ("offload_folder", offload_folder is not None)] if given]
        if local:
            raise TunechatError(f"{', '.join(local)}: only for local models; the server at {source} loads its own")
        return RemoteEngine(source, model=model and str(model), api_key=api_key, system=system, stop_words=stop_words,
                            generation=generation)
    if source is not None and model is not None:
        raise TunechatError("give the model once: sdk.load(path) or sdk.load(model=path)")
    if api_key is not None:
        raise TunechatError("api_key is for a server URL, not a local model")
    return load_pytorch(source if source is not None else model, adapter=adapter, bits=bits, dtype=dtype, device=device,
                        template=template, system=system, stop_words=stop_words, generation=generation,
                        trust_remote_code=trust_remote_code, offload_folder=offload_folder)
