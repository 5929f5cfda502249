"""`Engine`: the PyTorch engine, a loaded HF model with its tokenizer, template and serving
settings, and the decode loop. `sdk.load(directory)` builds one (`load_pytorch`)."""
from __future__ import annotations

import inspect
import os
import threading
from pathlib import Path
from typing import Any, Generator

from sdk.checkpoint import load_causal_lm
from sdk.engines.base import Generation, LocalEngine, decode
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig
from sdk.hardware import bf16_decodes_fast
from sdk.memory import check_fits, loading_bytes, model_size
from sdk.models import quiet_transformers, resolve_source
from sdk.templates import Message, Template, get_template, stop_words_for

DTYPES = {"auto": None, "fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
          "fp16": "float16", "float16": "float16"}


class Engine(LocalEngine):
    """A model ready to chat. Thread-safe: generations are serialised by a lock (one model, one
    KV cache), and the cache is reused across calls whose prompts share a prefix, so the next
    turn of a chat only prefills the new tokens."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        template: Template | None = None,
        system: str | None = None,
        stop_words: list[str] | None = None,
        generation: GenerationConfig | None = None,
        name: str = "model",
        path: Path | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.system = system
        self.stop_words = list(stop_words or [])
        self.generation = generation or GenerationConfig()
        self.name = name
        self.path = path
        self.device = next(model.parameters()).device
        self.context_length = int(getattr(model.config, "max_position_embeddings", 0) or 4096)
        self._lock = threading.Lock()
        self._cache: Any = None
        self._cached_ids: list[int] = []
        self._cache_kwarg = cache_kwarg(model)
        self._logits_to_keep = "logits_to_keep" in _forward_parameters(model)
        end_words = stop_words_for(template, tokenizer)
        self._end_words = end_words
        self._eos_ids = _eos_ids(model, tokenizer, end_words)

    # ---- generation --------------------------------------------------------------------------

    def chat_many(self, conversations: list[list[Message]], config: GenerationConfig | None = None,
                  batch_size: int = 128, **overrides: Any) -> list[Generation]:
        """Answer many conversations, `batch_size` at a time (left-padded batches through HF
        `generate`): several times the throughput of one by one for evaluations and data
        building, where nobody watches a stream. Decoding is bound by reading the weights, so a
        step costs about the same at batch 16 as at 128. Stop words and end-of-turn apply as in `chat`."""
        import torch

        settings = self.settings(config, **overrides)
        prompts = [self.fit_prompt(messages, settings.max_new_tokens) for messages in conversations]
        answers: list[Generation] = []
        sampling = {"do_sample": False} if settings.temperature == 0 else {
            "do_sample": True, "temperature": settings.temperature, "top_k": settings.top_k, "top_p": settings.top_p}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(self._eos_ids)
        with self._lock:
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            for start in range(0, len(prompts), batch_size):
                batch = prompts[start:start + batch_size]
                width = max(map(len, batch))
                ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch], device=self.device)
                mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=self.device)
                with torch.inference_mode():
                    out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=settings.max_new_tokens,
                                              repetition_penalty=settings.repetition_penalty, pad_token_id=pad,
                                              eos_token_id=sorted(self._eos_ids), **sampling)
                for prompt, row in zip(batch, out[:, width:].tolist()):
                    answers.append(self._detokenize(prompt, row, settings))
        return answers

    def _detokenize(self, prompt: list[int], tokens: list[int], settings: GenerationConfig) -> Generation:
        """Generated ids → a finished Generation, ending at EOS or a stop word exactly as streaming does."""
        done = Generation(lambda out: decode(iter(tokens), self._text(prompt, settings), self._eos_ids, out, len(tokens)))
        done.result()
        done.prompt_tokens = len(prompt)
        return done

    def _tokens(self, prompt_ids: list[int], settings: GenerationConfig) -> Generator[int, None, None]:
        import torch

        sampler = _Sampler(settings, self.device)
        try:
            logits = self._prefill(prompt_ids)
            seen = torch.tensor(prompt_ids, device=self.device)
            while True:
                token = sampler.next(logits, seen)
                yield token  # the cache is consistent here: closing the generator keeps it
                logits = self._forward([token])
                if settings.repetition_penalty != 1.0:
                    seen = torch.cat([seen, torch.tensor([token], device=self.device)])
        except (Exception, KeyboardInterrupt):  # not GeneratorExit: a close at the yield is clean
            self._cache, self._cached_ids = None, []  # a half-updated cache is never reused
            raise

    def _prefill(self, ids: list[int]) -> Any:
        """Feed the prompt, reusing the KV cache for the prefix it shares with the last call."""
        from transformers import DynamicCache

        common = 0
        for a, b in zip(self._cached_ids, ids):
            if a != b:
                break
            common += 1
        common = min(common, len(ids) - 1)  # at least one token must be fed to get logits
        if self._cache is not None and common > 0:
            self._cache.crop(common - len(self._cached_ids))  # negative: drop that many tokens
            self._cached_ids = self._cached_ids[:common]
        else:
            self._cache, self._cached_ids, common = DynamicCache(config=self.model.config), [], 0
        return self._forward(ids[common:])

    def _forward(self, ids: list[int]) -> Any:
        import torch

        kwargs = {self._cache_kwarg: self._cache, "use_cache": True}
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1  # the prompt's other positions need no vocabulary logits
        with torch.inference_mode():
            output = self.model(input_ids=torch.tensor([ids], device=self.device), **kwargs)
        self._cache = getattr(output, self._cache_kwarg)
        self._cached_ids.extend(ids)
        return output.logits[0, -1]


class _Sampler:
    """Greedy when temperature is 0; else temperature, top-k, top-p. Repetition penalty as in
    HF transformers (over prompt and answer). A seed makes sampling reproducible."""

    def __init__(self, settings: GenerationConfig, device: Any):
        import torch

        self.settings = settings
        self.generator = torch.Generator()  # sampling runs on the CPU: same results on any device
        self.generator.manual_seed(settings.seed if settings.seed is not None else int.from_bytes(os.urandom(8), "little") >> 1)

    def next(self, logits: Any, seen: Any) -> int:
        import torch

        s = self.settings
        logits = logits.float()
        if s.repetition_penalty != 1.0:
            scores = logits.gather(0, seen)
            scores = torch.where(scores < 0, scores * s.repetition_penalty, scores / s.repetition_penalty)
            logits = logits.scatter(0, seen, scores)
        if s.temperature == 0:
            return int(torch.argmax(logits))
        logits = (logits / s.temperature).cpu()
        if s.top_k > 0 and s.top_k < logits.numel():
            kth = torch.topk(logits, s.top_k).values[-1]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if s.top_p < 1.0:
            ordered, order = torch.sort(logits, descending=True)
            probs = torch.softmax(ordered, dim=-1)
            drop = probs.cumsum(-1) - probs > s.top_p  # keep the smallest set reaching top_p
            logits = logits.index_fill(0, order[drop], float("-inf"))
        probs = torch.softmax(logits, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))


def _eos_ids(model: Any, tokenizer: Any, end_words: list[str]) -> set[int]:
    """Token ids that end an answer: EOS (tokenizer and generation config) and end-of-turn markers
    that are single tokens. Multi-token markers are caught as text by the stop-word filter."""
    ids: set[int] = set()
    candidates = [tokenizer.eos_token_id, getattr(getattr(model, "generation_config", None), "eos_token_id", None)]
    for value in candidates:
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(v for v in value if isinstance(v, int))
    for word in end_words:
        encoded = tokenizer(word, add_special_tokens=False)["input_ids"]
        if len(encoded) == 1:
            ids.add(encoded[0])
    return ids


def _forward_parameters(model: Any) -> Any:
    return inspect.signature(getattr(model, "get_base_model", lambda: model)().forward).parameters


def cache_kwarg(model: Any) -> str:
    """transformers renamed `past_key_values` to `cache` (5.x): the name this model's forward takes."""
    return "cache" if "cache" in _forward_parameters(model) else "past_key_values"


def _auto_dtype(path: Path, device: str, trust_remote_code: bool):
    """bf16 on CUDA; on a CPU, bf16 where it decodes this model's shape faster than fp32."""
    import torch
    from transformers import AutoConfig

    if device.startswith("cuda"):
        return torch.bfloat16
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code).get_text_config()
        shape = (config.hidden_size, config.intermediate_size)
    except (OSError, ValueError, KeyError, AttributeError):
        return torch.float32  # the load below reports an unloadable model
    return torch.bfloat16 if bf16_decodes_fast(*shape) else torch.float32


def load_pytorch(
    model: str | os.PathLike | None = None,
    *,
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
) -> Engine:
    """An HF model directory (None: the embedded model) as an `Engine`; `sdk.load` documents
    the arguments."""
    import torch
    from transformers import AutoTokenizer

    if bits not in (None, 4, 8):
        raise TunechatError(f"bits must be 4, 8 or omitted (full precision), got {bits}")
    if dtype not in DTYPES:
        raise TunechatError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    path, meta = resolve_source(model, adapter)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TunechatError(f"device {device!r} asked for, but no CUDA device is available")
    torch_dtype = getattr(torch, DTYPES[dtype]) if DTYPES[dtype] else _auto_dtype(path, device, trust_remote_code)

    quiet_transformers()
    if device == "cpu" and offload_folder is None:
        size = model_size(path, trust_remote_code)
        dtype_name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(torch_dtype, "fp32")
        check_fits(f"loading {path.name} ({size.total / 1e9:.2f}B parameters, {f'{bits}-bit' if bits else dtype_name})",
                   loading_bytes(size, bits, dtype_name),
                   "load it with --bits 4, or --dtype bf16" if not bits else "use a smaller model or a machine with more memory")
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "trust_remote_code": trust_remote_code}
    if bits is not None:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=bits == 4,
            load_in_8bit=bits == 8,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype,
        )
        kwargs["device_map"] = {"": device}
    if offload_folder is not None:
        kwargs["offload_folder"] = str(offload_folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        llm = load_causal_lm(path, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TunechatError(f"model {path}: cannot be loaded ({first})") from None
    if bits is None:
        llm.to(device)
    if adapter is not None:
        from peft import PeftModel

        llm = PeftModel.from_pretrained(llm, adapter)
    llm.eval()
    return Engine(
        llm,
        tokenizer,
        template=get_template(template if template is not None else meta.get("template")),
        system=system if system is not None else meta.get("system"),
        stop_words=stop_words if stop_words is not None else meta.get("stop_words"),
        generation=generation,
        name=str(meta.get("name") or path.name),
        path=path,
    )
