"""Tiny random-weight chat models of five families, built locally (no download): each with its
architecture from transformers' own configs and a tokenizer set up as its family's is: the
embedded SmolLM2 vocabulary plus the family's special tokens, its chat template (the shape of the
family's own Jinja, quirks kept: Gemma 3 folds the system prompt into the first user turn and
says `model`, Phi-3 ends a finished conversation with EOS, Llama 3 and Gemma 3 `trim` contents),
its BOS, its EOS versus end-of-turn, and its pad token (none for Llama 3, EOS for Phi-3)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@dataclass(frozen=True)
class Family:
    name: str
    model_type: str
    chat_template: str
    end_of_turn: str  # what ends an answer in the template
    eos: str  # the tokenizer's EOS: the end-of-turn marker, or not
    bos: str | None = None  # added by the tokenizer to every encoding (and written by the template)
    pad: str | None = None
    new_tokens: tuple[str, ...] = ()
    generation_eos: tuple[str, ...] = ()  # generation_config.eos_token_id, as the family ships it
    config: dict[str, Any] = field(default_factory=dict)
    gguf: bool = False  # tunechat's GGUF export supports the architecture


FAMILIES = [
    Family("qwen3", "qwen3", CHATML, "<|im_end|>", eos="<|im_end|>", pad="<|endoftext|>",
           generation_eos=("<|im_end|>", "<|endoftext|>"), config={"head_dim": 16}, gguf=True),
    Family("internlm3", "internlm3", "{{ bos_token }}" + CHATML, "<|im_end|>", eos="</s>", bos="<s>", pad="</s>",
           new_tokens=("<s>", "</s>"), generation_eos=("</s>", "<|im_end|>"), config={"head_dim": 16}),
    Family("gemma3", "gemma3_text",
           "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\\n\\n' %}"
           "{% set loop_messages = messages[1:] %}{% else %}{% set prefix = '' %}{% set loop_messages = messages %}{% endif %}"
           "{% for m in loop_messages %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
           "{{ '<start_of_turn>' + role + '\\n' + (prefix if loop.first else '') }}{{ m['content'] | trim }}{{ '<end_of_turn>\\n' }}"
           "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
           "<end_of_turn>", eos="<eos>", bos="<bos>", pad="<pad>", new_tokens=("<bos>", "<eos>", "<pad>", "<start_of_turn>",
                                                                               "<end_of_turn>"),
           generation_eos=("<eos>", "<end_of_turn>"), config={"head_dim": 16}),
    Family("llama3", "llama",
           "{% for m in messages %}{% set content = '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim"
           " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
           "<|eot_id|>", eos="<|end_of_text|>", bos="<|begin_of_text|>",
           new_tokens=("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
           generation_eos=("<|end_of_text|>", "<|eot_id|>"),
           config={"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                    "original_max_position_embeddings": 128}}, gguf=True),
    Family("phi3", "phi3",
           "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endfor %}"
           "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
           "<|end|>", eos="<|endoftext|>", pad="<|endoftext|>", new_tokens=("<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
           generation_eos=("<|endoftext|>", "<|assistant|>", "<|end|>"), config={"pad_token_id": None}),
]


def build(family: Family, out: Path, smol: Path) -> Path:
    """Write the family's tiny model and tokenizer to `out` (a model directory tunechat loads)."""
    import torch
    from tokenizers import processors
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smol)
    tokenizer.add_special_tokens({"additional_special_tokens": list(family.new_tokens)} if family.new_tokens else {})
    tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token = family.bos, family.eos, family.pad
    tokenizer.chat_template = family.chat_template
    if family.bos:
        bos_id = tokenizer.convert_tokens_to_ids(family.bos)
        tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{family.bos} $A", pair=f"{family.bos} $A {family.bos} $B", special_tokens=[(family.bos, bos_id)])
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in {family.eos, family.pad, family.bos} - {None}}
    torch.manual_seed(0)
    config = AutoConfig.for_model(
        family.model_type, vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        initializer_range=0.3,  # at the usual 0.02 a 64-wide model's logits are too flat for LoRA to learn an answer
        bos_token_id=ids.get(family.bos), eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in family.generation_eos],
        **{"pad_token_id": ids.get(family.pad), **family.config})
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
