"""Model cards: the `README.md` in Hugging Face's format that every artifact leaving tunechat carries
(the adapter, the merged model, the GGUF folder): a YAML header the Hub reads (base_model,
library_name, tags, license), the figures measured on it, and how to use it.

The card is rewritten whenever its artifact is; a README.md tunechat did not write is never
overwritten (it would be the user's own)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets_builders.atomic import write_text_atomic

MARKER = "<!-- written by tunechat: rewritten with the model -->"
# Licences of the models tunechat knows; others are left out of the header rather than guessed.
_LICENSES = {"SmolLM2-135M-Instruct": "apache-2.0"}
_LIBRARY = {"adapter": "peft", "merged": "transformers", "gguf": "gguf"}
_WHAT = {"adapter": "LoRA adapter (fine-tuned on CPU or GPU with QLoRA/LoRA)", "merged": "merged fine-tune",
         "gguf": "GGUF export (llama.cpp, Ollama, LM Studio)"}


def write_model_card(directory: Path, kind: str, meta: dict[str, Any], figures: dict[str, Any] | None = None,
                     gguf_name: str | None = None) -> Path | None:
    """Write `directory/README.md` for an artifact of `kind` ("adapter", "merged" or "gguf") and
    return its path; None when a README.md that tunechat did not write is already there."""
    path = Path(directory) / "README.md"
    if path.is_file() and MARKER not in path.read_text(encoding="utf-8", errors="replace"):
        return None
    base = str(meta.get("base_model") or "SmolLM2-135M-Instruct")
    base_name = Path(base).name
    header = {"base_model": base_name, "library_name": _LIBRARY[kind],
              "tags": ["tunechat", kind, *(["lora", "qlora"] if kind == "adapter" else []),
                       *(["llama.cpp", "ollama"] if kind == "gguf" else [])]}
    if base_name in _LICENSES:
        header["license"] = _LICENSES[base_name]
    lines = ["---", *(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in header.items()), "---", MARKER, "",
             f"# {meta.get('name') or Path(directory).name}", "",
             f"A {_WHAT[kind]} of `{base_name}`, made with tunechat ({_origin(meta)}).", ""]
    if meta.get("system"):
        lines += ["System prompt it was trained with (applied automatically by tunechat, and by Ollama through the "
                  "Modelfile):", "", "```text", str(meta["system"]), "```", ""]
    lines += ["## Figures", "", *_figure_lines(meta, figures or {}), "", "## Use it", "", *_usage(kind, directory, gguf_name), ""]
    write_text_atomic(path, "\n".join(lines))
    return path


def _origin(meta: dict[str, Any]) -> str:
    template = meta.get("template") or "the tokenizer's chat template"
    data = meta.get("data")
    return f"template {template}" + (f", data {Path(str(data)).name}" if data else "")


def _figure_lines(meta: dict[str, Any], figures: dict[str, Any]) -> list[str]:
    lines = []
    metrics = meta.get("metrics") or {}
    if metrics:
        lines.append(f"- training: {metrics.get('steps', '?')} steps, final loss {metrics.get('train_loss', '?')}, "
                     f"{metrics.get('tokens_per_second', '?')} tokens/s")
    if meta.get("merge"):
        merge = meta["merge"]
        lines.append(f"- merge verified: max |logit difference| vs base + adapter {merge['max_logit_diff']:.2e} "
                     f"(tolerance {merge['tolerance']}, {merge['dtype']})")
    for key, value in figures.items():
        lines.append(f"- {key}: {value}")
    return lines or ["- none recorded yet"]


def _usage(kind: str, directory: Path, gguf_name: str | None) -> list[str]:
    here = Path(directory).name
    if kind == "adapter":
        return ["```bash", f"tunechat chat --adapter {here}          # base model + adapter",
                f"tunechat merge embedded {here} merged/  # a standalone model", "```", "", "```python",
                "from peft import AutoPeftModelForCausalLM",
                f'model = AutoPeftModelForCausalLM.from_pretrained("{here}")', "```"]
    if kind == "merged":
        return ["```bash", f"tunechat chat {here}", f"tunechat serve {here}   # OpenAI-compatible API",
                f"tunechat export gguf {here} {here}.q8_0.gguf --ollama", "```", "", "```python",
                "from transformers import AutoModelForCausalLM, AutoTokenizer",
                f'model = AutoModelForCausalLM.from_pretrained("{here}")',
                f'tokenizer = AutoTokenizer.from_pretrained("{here}")', "```"]
    name = gguf_name or "model.gguf"
    return ["```bash", f"tunechat chat {name}", f"llama-cli -m {name} -cnv    # llama.cpp",
            "ollama create mymodel -f Modelfile && ollama run mymodel", "```", "", "```python",
            "from llama_cpp import Llama", f'llm = Llama("{name}")', "```",
            "", "With plain llama.cpp, pass the stop words listed in the Modelfile (`PARAMETER stop`)."]
