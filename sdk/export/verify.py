"""Does the GGUF answer like the HF model it came from? Measured, never assumed: quantized kernels
change answers (llama.cpp quantizes activations too), and a small model's margins are thin.

On the probe prompts the HF model decodes 32 greedy tokens; llama.cpp then
- decodes greedily from the same prompt (how many tokens agree), and
- scores the HF text, teacher-forced (largest |logit difference|, top-1 agreement);
and both models score a fixed text (perplexity). The bounds are by quant type.

Greedy texts may part only where the file's own measured error can explain it: where the HF
model's top-2 logit margin is under twice the largest logit difference measured on that probe
(each of the two logits may move by that much). The logit difference itself is bounded per type.
A 135M model has such near-ties (its first token for "What is the capital of France?" leads by
0.08 logits) and llama.cpp's 8-bit kernels move its logits by up to ~2.5, so q8_0 may flip them;
f16 and bf16 move them by < 0.1 and must keep the text. A parting where the HF model was
decided is a failure."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sdk.engines.llamacpp import import_llama_cpp, load_params
from sdk.engines.pytorch import cache_kwarg
from sdk.templates import Template, render_prompt
from sdk.training.merge import PROBES

TOKENS = 32
# Mixed English, Chinese, digits and code: the perplexity text.
TEXT = ("The quick brown fox jumps over the lazy dog. In 1969, Apollo 11 landed on the Moon, and Neil Armstrong "
        "said: \"That's one small step for a man.\" 北京是中国的首都，有三千多年的历史。def area(r):\n    return 3.14159 * r ** 2\n"
        "Water boils at 100 degrees Celsius at sea level; at higher altitudes it boils at a lower temperature.")
# Float types and q8_0: greedy texts agree on all TOKENS (or part at a near-tie) and logits stay
# within MAX_LOGIT_DIFF of the HF model's.
MAX_LOGIT_DIFF = {"f32": 0.1, "f16": 0.5, "bf16": 1.0, "q8_0": 3.0}
# Quantized types: bounds on teacher-forced top-1 agreement and on the perplexity ratio.
# Set from the embedded 135M model, a hard case: its 576-wide rows are not a multiple of the
# k-quants' 256-block, so llama.cpp falls back to q5_0/q5_1/q8_0 for most tensors.
MIN_TOP1 = {"q8_0": 0.9, "q6_k": 0.85, "q5_k_m": 0.8, "q4_k_m": 0.75, "q4_0": 0.7}
MAX_PPL_RATIO = {"q8_0": 1.05, "q6_k": 1.15, "q5_k_m": 1.25, "q4_k_m": 1.35, "q4_0": 1.5}


@dataclass
class Verification:
    quant: str
    greedy_agreement: list[int]  # per probe: leading tokens (of TOKENS) where llama.cpp's greedy text matches
    parting_margins: list[float | None]  # per probe: the HF model's top-2 margin where the texts part (None: they don't)
    max_logit_diff: float  # teacher-forced, over every probe position
    top1_agreement: float  # teacher-forced, over probe positions and the perplexity text
    perplexity_hf: float
    perplexity_gguf: float
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        ties = [f"{m:.2f}" for m in self.parting_margins if m is not None]
        parted = f" (parted at HF margins {', '.join(ties)})" if ties else ""
        return (f"greedy agreement {'/'.join(map(str, self.greedy_agreement))} of {TOKENS} tokens{parted}, max |Δlogit| "
                f"{self.max_logit_diff:.3f}, top-1 agreement {self.top1_agreement:.1%}, perplexity "
                f"{self.perplexity_gguf:.2f} vs HF {self.perplexity_hf:.2f}")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "tokens": TOKENS,
                "bounds": {"max_logit_diff": MAX_LOGIT_DIFF.get(self.quant), "min_top1": MIN_TOP1.get(self.quant),
                           "max_perplexity_ratio": MAX_PPL_RATIO.get(self.quant)}}


def verify(model: Any, tokenizer: Any, template: Template | None, system: str | None, gguf: Path, quant: str) -> Verification:
    """Compare the HF `model` (any dtype; run in fp32) with the GGUF file at `gguf`."""
    import numpy as np
    import torch

    llama_cpp = import_llama_cpp()
    probes = []
    for messages in PROBES:
        messages = ([{"role": "system", "content": system}] if system else []) + messages
        probes.append(tokenizer(render_prompt(messages, template, tokenizer), add_special_tokens=False)["input_ids"])
    text_ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    longest = max(len(p) for p in probes) + TOKENS + len(text_ids) + 8
    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=longest, logits_all=True, verbose=False, **load_params())

    def gguf_logits(ids: list[int]) -> Any:
        llm.reset()
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)

    model = model.float().eval()
    agreement, margins, diffs, same, total = [], [], [], 0, 0
    with torch.inference_mode():
        for prompt in probes:
            ids = prompt + _greedy(model, prompt)
            hf = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
            top2 = np.sort(hf[len(prompt) - 1: -1], axis=-1)[:, -2:]
            ours = gguf_logits(ids)
            positions = slice(len(prompt) - 1, len(ids))
            diffs.append(float(np.abs(hf[positions] - ours[positions]).max()))
            same += int((hf[positions].argmax(-1) == ours[positions].argmax(-1)).sum())
            total += len(ids) - len(prompt) + 1
            llm.reset()
            greedy = [token for _, token in zip(range(TOKENS), llm.generate(prompt, temp=0.0, reset=True))]
            agreement.append(next((i for i, (a, b) in enumerate(zip(greedy, ids[len(prompt):])) if a != b), TOKENS))
            margins.append(None if agreement[-1] == TOKENS else float(top2[agreement[-1], 1] - top2[agreement[-1], 0]))
        hf_text = model(input_ids=torch.tensor([text_ids])).logits[0].float().numpy()
    ours_text = gguf_logits(text_ids)
    same += int((hf_text[:-1].argmax(-1) == ours_text[:-1].argmax(-1)).sum())
    total += len(text_ids) - 1
    result = Verification(quant, agreement, margins, max(diffs), same / total, _perplexity(hf_text, text_ids),
                          _perplexity(ours_text, text_ids))
    if quant in MAX_LOGIT_DIFF:
        decided = [(n, m, d) for n, m, d in zip(agreement, margins, diffs) if m is not None and m >= 2 * d]
        if decided:
            n, m, d = decided[0]
            result.failures.append(f"greedy text parts after {n} of {TOKENS} tokens where the HF model's margin is {m:.2f}, "
                                   f"more than twice the logit difference measured on that probe ({d:.2f})")
    if quant in MAX_LOGIT_DIFF and result.max_logit_diff > MAX_LOGIT_DIFF[quant]:
        result.failures.append(f"max |Δlogit| {result.max_logit_diff:.3f} > {MAX_LOGIT_DIFF[quant]}")
    if quant in MIN_TOP1 and result.top1_agreement < MIN_TOP1[quant]:
        result.failures.append(f"top-1 agreement {result.top1_agreement:.1%} < {MIN_TOP1[quant]:.0%}")
    if quant in MAX_PPL_RATIO and result.perplexity_gguf > MAX_PPL_RATIO[quant] * result.perplexity_hf:
        result.failures.append(f"perplexity {result.perplexity_gguf:.2f} > {MAX_PPL_RATIO[quant]}× HF's {result.perplexity_hf:.2f}")
    return result


def _greedy(model: Any, prompt: list[int]) -> list[int]:
    """TOKENS greedy tokens from the HF model with its KV cache, past any end-of-turn (a fixed
    number of tokens to compare)."""
    import torch

    name = cache_kwarg(model)
    out = model(input_ids=torch.tensor([prompt]), use_cache=True)
    ids: list[int] = []
    for _ in range(TOKENS):
        ids.append(int(out.logits[0, -1].argmax()))
        out = model(input_ids=torch.tensor([ids[-1:]]), use_cache=True, **{name: getattr(out, name)})
    return ids


def _perplexity(logits: Any, ids: list[int]) -> float:
    import numpy as np

    shifted = logits[:-1] - logits[:-1].max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return float(math.exp(-log_probs[np.arange(len(ids) - 1), ids[1:]].mean()))
