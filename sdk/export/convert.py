"""An HF causal LM in memory → an f32 GGUF file, written with the `gguf` package (its writer, its
tensor-name maps, its special-vocabulary helper). Quantizing is llama.cpp's job (`export.py`).

Supported: the Llama family (SmolLM2, Llama 3) and Qwen2 / Qwen3, with byte-level BPE tokenizers.
The file carries the tokenizer, the chat template and tunechat's serving settings, so whoever
loads it renders and stops exactly as training did."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sdk.errors import TunechatError

# HF model_type → (GGUF architecture, whether q/k rows are permuted to llama.cpp's rotary layout).
ARCHITECTURES = {"llama": ("LLAMA", True), "qwen2": ("QWEN2", False), "qwen3": ("QWEN3", False)}
# tokenizer.json pre-tokenizer → llama.cpp's name for the same splitting ("tokenizer.ggml.pre").
# Each is then proven on probe texts (`check_tokenizer`), so a wrong guess fails the export.
_QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# Keys tunechat adds to the file (read back by the llama.cpp engine and the Ollama Modelfile).
KEY_TEMPLATE, KEY_SYSTEM, KEY_STOP_WORDS, KEY_NAME = "tunechat.template", "tunechat.system", "tunechat.stop_words", "tunechat.name"


def check_architecture(config: Any) -> tuple[str, bool]:
    model_type = getattr(config, "model_type", None)
    if model_type not in ARCHITECTURES:
        raise TunechatError(f"architecture {model_type!r} cannot be exported to GGUF yet; supported: {', '.join(ARCHITECTURES)}")
    rope = _rope_parameters(config)
    kind = rope.get("rope_type") or rope.get("type") or "default"
    if kind not in ("default", "llama3"):
        raise TunechatError(f"{model_type} with rope scaling {kind!r} cannot be exported to GGUF yet (supported: default, llama3)")
    return ARCHITECTURES[model_type]


def write_f32_gguf(model: Any, tokenizer: Any, tokenizer_dir: Path, out: Path, meta: dict[str, Any],
                   progress: bool = True) -> None:
    """Write `model` (fp32 or not: every tensor is written as f32) with `tokenizer` to `out`.
    `tokenizer_dir` holds the tokenizer's files (merges, special tokens); `meta` is tunechat.json."""
    import gguf
    import torch

    config = model.config
    arch_name, permute = check_architecture(config)
    arch = getattr(gguf.MODEL_ARCH, arch_name)
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[arch])
    heads, kv_heads = config.num_attention_heads, getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    rope = _rope_parameters(config)

    writer.add_name(str(meta.get("name") or Path(getattr(config, "_name_or_path", "") or "model").name))
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    _add_tokenizer(writer, tokenizer, tokenizer_dir, config.vocab_size)
    writer.add_string(KEY_TEMPLATE, meta.get("template") or "")
    writer.add_string(KEY_SYSTEM, meta.get("system") or "")
    writer.add_string(KEY_STOP_WORDS, json.dumps(list(meta.get("stop_words") or []), ensure_ascii=False))
    writer.add_string(KEY_NAME, str(meta.get("name") or ""))

    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    tied = bool(getattr(config, "tie_word_embeddings", False))
    if rope.get("rope_type") == "llama3":
        writer.add_tensor("rope_freqs.weight", _llama3_rope_factors(rope, head_dim))
    for hf_name, tensor in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reuses token_embd when there is no output tensor
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise TunechatError(f"tensor {hf_name} has no GGUF name for {config.model_type}: this model is not a plain "
                                f"{config.model_type} checkpoint")
        data = tensor.detach().to(torch.float32)
        if permute and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            data = _rotary_permute(data, heads if "q_proj" in hf_name else kv_heads)
        writer.add_tensor(name, data.contiguous().numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=progress)
    writer.close()


def _rope_parameters(config: Any) -> dict[str, Any]:
    """transformers 5 keeps rope settings in `rope_parameters`; older configs in rope_theta/rope_scaling."""
    params = dict(getattr(config, "rope_parameters", None) or {})
    if not params:
        params = dict(getattr(config, "rope_scaling", None) or {})
        params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    return params


def _rotary_permute(weight: Any, heads: int) -> Any:
    """HF Llama rotates the two halves of each head; llama.cpp rotates adjacent pairs: regroup
    each head's rows from (half, pair) to (pair, half) order."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _llama3_rope_factors(rope: dict[str, Any], head_dim: int) -> Any:
    """Llama 3.1's frequency-dependent rope scaling, as the per-frequency divisors llama.cpp reads."""
    import numpy as np

    base, factor = float(rope.get("rope_theta", 500000.0)), float(rope["factor"])
    low, high = float(rope.get("low_freq_factor", 1.0)), float(rope.get("high_freq_factor", 4.0))
    original = float(rope["original_max_position_embeddings"])
    factors = []
    for i in range(0, head_dim, 2):
        wavelength = 2 * math.pi * base ** (i / head_dim)
        if wavelength < original / high:
            factors.append(1.0)
        elif wavelength > original / low:
            factors.append(factor)
        else:
            smooth = (original / wavelength - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def _add_tokenizer(writer: Any, tokenizer: Any, tokenizer_dir: Path, vocab_size: int) -> None:
    """Vocabulary, token types, merges, special ids and the chat template (byte-level BPE only)."""
    import gguf

    backend = json.loads(tokenizer.backend_tokenizer.to_str()) if hasattr(tokenizer, "backend_tokenizer") else {}
    if backend.get("model", {}).get("type") != "BPE" or (backend.get("decoder") or {}).get("type") != "ByteLevel":
        raise TunechatError("only byte-level BPE tokenizers (SmolLM2, Llama 3, Qwen) can be exported to GGUF yet")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer_name(backend.get("pre_tokenizer") or {}))
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            tokens.append(added[index].content)
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(tokenizer_dir, load_merges=True, n_vocab=vocab_size)
    bos_id = tokenizer.bos_token_id
    encoded = tokenizer("a", add_special_tokens=True)["input_ids"]
    # What the HF tokenizer really does, not what a config file claims.
    special.add_special_token = {"bos": bool(encoded) and bos_id is not None and encoded[0] == bos_id,
                                 "eos": bool(encoded) and encoded[-1] == tokenizer.eos_token_id}
    special.chat_template = tokenizer.chat_template or None
    special.add_to_gguf(writer, quiet=True)


def _pre_tokenizer_name(pre: dict[str, Any]) -> str:
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"]:
        pattern = (steps[0].get("pattern") or {}).get("Regex")
        if pattern == _QWEN2_SPLIT:
            return "qwen2"
        if pattern == _LLAMA3_SPLIT:
            return "llama-bpe"
    raise TunechatError(f"this tokenizer's pre-tokenizer ({' + '.join(map(str, kinds))}) has no llama.cpp equivalent "
                        "that tunechat knows; supported: GPT-2, SmolLM, Qwen2, Llama 3 byte-level BPE")
