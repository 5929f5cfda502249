"""`LlamaCppEngine`: a GGUF file run by llama.cpp (`llama-cpp-python`), the fast engine on a CPU.

Prompts come from tunechat's one renderer with the template recorded in the file (tunechat's
`tunechat.template` key, else the file's chat template rendered as transformers renders it),
never from llama.cpp's template guess, so training, serving and export render the same text.
Decoding goes through `Llama.generate`, which keeps the KV cache for the prefix a prompt shares
with the previous one: the next chat turn prefills only its new tokens."""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Generator

from sdk.engines.base import LocalEngine
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig
from sdk.hardware import cpu_threads
from sdk.templates import Message, get_template, stop_words_for

INSTALL = ("llama.cpp is not installed: `pip install 'tunechat[gguf]'` (builds llama-cpp-python from source: cmake "
           "and a C++ compiler, a few minutes), or `make install`")
_GGUF_MAGIC = b"GGUF"


def import_llama_cpp() -> Any:
    """llama_cpp, or a one-line error saying how to install it."""
    import logging

    try:
        import llama_cpp
    except ImportError:
        raise TunechatError(INSTALL) from None
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp's load and quantize logs
    return llama_cpp


class GGUFTokenizer:
    """The part of an HF tokenizer that the renderer and `TextStream` use, served by llama.cpp's
    own vocabulary: the ids are the ones the model was exported with."""

    def __init__(self, llm: Any, metadata: dict[str, str]):
        self._llm = llm
        self.chat_template = metadata.get("tokenizer.chat_template") or None
        self.bos_token_id = _int(metadata.get("tokenizer.ggml.bos_token_id"))
        self.eos_token_id = _int(metadata.get("tokenizer.ggml.eos_token_id"))
        self.pad_token_id = _int(metadata.get("tokenizer.ggml.padding_token_id"))
        self.bos_token = self._piece(self.bos_token_id)
        self.eos_token = self._piece(self.eos_token_id)

    def _piece(self, token: int | None) -> str | None:
        return None if token is None else self.decode([token])

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self._llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)}

    def decode(self, ids: list[int], skip_special_tokens: bool = False, clean_up_tokenization_spaces: bool = False) -> str:
        return self._llm.detokenize(ids, special=not skip_special_tokens).decode("utf-8", errors="replace")

    def apply_chat_template(self, messages: list[Message], tokenize: bool = False, add_generation_prompt: bool = False) -> str:
        """The file's Jinja chat template, rendered by transformers' own renderer (same output as
        the HF tokenizer's `apply_chat_template`)."""
        from transformers.utils.chat_template_utils import render_jinja_template

        specials = {"bos_token": self.bos_token or "", "eos_token": self.eos_token or ""}
        rendered, _ = render_jinja_template(conversations=[messages], chat_template=self.chat_template,
                                            add_generation_prompt=add_generation_prompt, **specials)
        return rendered[0]


class LlamaCppEngine(LocalEngine):
    """A GGUF model ready to chat; same interface and settings as the PyTorch `Engine`.
    Generations are serialised by a lock (one model, one KV cache)."""

    def __init__(self, llm: Any, metadata: dict[str, str], *, template: str | None = None, system: str | None = None,
                 stop_words: list[str] | None = None, generation: GenerationConfig | None = None, path: Path | None = None):
        self.llm = llm
        self.tokenizer = GGUFTokenizer(llm, metadata)
        recorded_stops = json.loads(metadata.get("tunechat.stop_words") or "[]")
        self.template = get_template(template if template is not None else metadata.get("tunechat.template") or None)
        self.system = system if system is not None else (metadata.get("tunechat.system") or None)
        self.stop_words = list(stop_words if stop_words is not None else recorded_stops)
        self.generation = generation or GenerationConfig()
        self.path = path
        self.name = metadata.get("tunechat.name") or (path.stem if path else "model")
        self.context_length = llm.n_ctx()
        self._lock = threading.Lock()
        self._end_words = stop_words_for(self.template, self.tokenizer)
        ends = {self.tokenizer.eos_token_id, _int(metadata.get("tokenizer.ggml.eot_token_id"))}
        ends |= {ids[0] for ids in (self.encode(w) for w in self._end_words) if len(ids) == 1}
        self._eos_ids = {token for token in ends if token is not None}

    def _tokens(self, prompt_ids: list[int], settings: GenerationConfig) -> Generator[int, None, None]:
        # A fresh random seed unless one is given, as the PyTorch engine (else one seeded call would
        # fix the sampler's state for every later unseeded one).
        self.llm.set_seed(settings.seed if settings.seed is not None else int.from_bytes(os.urandom(4), "little"))
        # min_p and typical_p off: the same filters as the PyTorch engine (temperature, top-k, top-p).
        yield from self.llm.generate(prompt_ids, temp=settings.temperature, top_k=settings.top_k, top_p=settings.top_p,
                                     min_p=0.0, typical_p=1.0, repeat_penalty=settings.repetition_penalty, reset=True)


def _int(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def load_params() -> dict[str, Any]:
    """How tunechat has llama.cpp load every model (the engine, the export's verification)."""
    return {"n_threads": cpu_threads()}


def check_gguf_file(path: Path) -> None:
    """A one-line error for what is not a GGUF file, before llama.cpp reads it."""
    if not path.is_file():
        raise TunechatError(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(4) != _GGUF_MAGIC:
            raise TunechatError(f"{path}: not a GGUF file (it does not start with the GGUF magic bytes)")


def load_llamacpp(
    path: str | os.PathLike,
    *,
    template: str | None = None,
    system: str | None = None,
    stop_words: list[str] | None = None,
    generation: GenerationConfig | None = None,
    context_length: int = 8192,
) -> LlamaCppEngine:
    """A `.gguf` file as an engine; `sdk.load` documents the arguments. context_length: the KV
    cache size, capped at the model's own context."""
    path = Path(path).expanduser()
    check_gguf_file(path)
    llama_cpp = import_llama_cpp()
    try:
        llm = llama_cpp.Llama(model_path=str(path), n_ctx=context_length, verbose=False, **load_params())
    except (ValueError, RuntimeError):
        raise TunechatError(f"{path}: llama.cpp cannot load it (a truncated or damaged file, or an architecture this "
                            "llama.cpp does not know)") from None
    metadata = dict(llm.metadata)
    engine = LlamaCppEngine(llm, metadata, template=template, system=system, stop_words=stop_words,
                            generation=generation, path=path)
    trained = _int(metadata.get(f"{metadata.get('general.architecture')}.context_length"))
    engine.context_length = min(llm.n_ctx(), trained or llm.n_ctx())
    return engine
