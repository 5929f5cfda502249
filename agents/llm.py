"""`EngineLLM`: our model as a lagent 0.2.4 `BaseModel`.

lagent renders its own prompts (role dicts → text, through the meta template), so the LLM only
continues raw text: it calls `generate(prompt, ...)` on any sdk engine (`sdk.BaseEngine`), or on anything with the
same method (the remote OpenAI-compatible backend). lagent's HF wrappers are not used: they need
CUDA, break on current transformers, keep only the last token of each stop word, and can drop
special markers while decoding. Here stop words are matched as text (a multi-token
`<|action_end|>` is never collapsed to one token), and decoding keeps special markers."""
from __future__ import annotations

from typing import Any, Iterator

from lagent.llms import INTERNLM2_META, BaseModel
from lagent.schema import ModelStatusCode

from sdk.engines.base import BaseEngine
from sdk.errors import TunechatError
from sdk.generation import GenerationConfig

# lagent's generation parameter names that map 1:1 onto GenerationConfig.
SETTINGS = ("max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "seed", "stop_words")


class EngineLLM(BaseModel):
    """A lagent LLM backed by an engine.

    engine: an sdk engine (`sdk.BaseEngine`), or any object with `generate(prompt, **settings)` returning an
        iterator of text pieces (the remote backend).
    meta_template: lagent's role template; None means INTERNLM2_META (lagent renders nothing
        useful without one). Its end-of-turn markers always stop generation.
    Keyword arguments: generation defaults (lagent's names: max_new_tokens, temperature, top_k,
    top_p, repetition_penalty, stop_words, seed; do_sample=False means greedy). Unset ones come
    from the engine's own settings. Every call may override any of them for that call only."""

    def __init__(self, engine: BaseEngine, meta_template: list[dict] | None = None, **gen_params: Any):
        defaults = getattr(engine, "generation", None) or GenerationConfig()
        meta_template = meta_template or INTERNLM2_META
        super().__init__(
            path=str(getattr(engine, "path", None) or getattr(engine, "name", "engine")),
            meta_template=meta_template,
            max_new_tokens=defaults.max_new_tokens,
            top_p=defaults.top_p,
            top_k=defaults.top_k,
            temperature=defaults.temperature,
            repetition_penalty=defaults.repetition_penalty,
            stop_words=list(defaults.stop_words),
        )
        self.gen_params["seed"] = defaults.seed
        self.engine = engine
        self.meta_template = meta_template
        self.end_words = end_markers(meta_template)
        self.last_generation: Any = None  # the engine's Generation of the latest call (token counts)
        self.gen_params = self.update_gen_params(**self._settings(gen_params, with_end_words=False))

    # ---- lagent's interface -------------------------------------------------------------------

    def generate(self, inputs: str | list[str], **gen_params: Any) -> str | list[str]:
        """Continue a prompt, or each of a list of prompts (run one after another: the engine
        serves one generation at a time)."""
        if isinstance(inputs, str):
            return self._complete(inputs, gen_params)
        return [self._complete(prompt, gen_params) for prompt in inputs]

    def stream_generate(self, inputs: str, **gen_params: Any) -> Iterator[tuple[ModelStatusCode, str, None]]:
        """(STREAM_ING, text so far, None) per piece, at least once, then (END, text, None)."""
        generation = self.engine.generate(inputs, **self._settings(gen_params))
        self.last_generation = generation
        text, streamed = "", False
        try:
            for piece in generation:
                text += piece
                streamed = True
                yield ModelStatusCode.STREAM_ING, text, None
        finally:
            close = getattr(generation, "close", None)
            if close:
                close()  # stopped early by the consumer: free the model at once
        if not streamed:
            yield ModelStatusCode.STREAM_ING, text, None
        yield ModelStatusCode.END, text, None

    def stream_chat(self, inputs: list[dict], **gen_params: Any) -> Iterator[tuple[ModelStatusCode, str, None]]:
        """Render role messages with the meta template, then stream the continuation."""
        yield from self.stream_generate(self.template_parser(inputs), **gen_params)

    # ---- helpers ------------------------------------------------------------------------------

    def _complete(self, prompt: str, gen_params: dict) -> str:
        generation = self.engine.generate(prompt, **self._settings(gen_params))
        self.last_generation = generation
        return "".join(generation)

    def _settings(self, overrides: dict, with_end_words: bool = True) -> dict:
        """lagent parameters → validated engine settings (unknown names are an error, not ignored)."""
        overrides = dict(overrides)
        do_sample = overrides.pop("do_sample", None)
        unknown = set(overrides) - set(SETTINGS)
        if unknown:
            raise TunechatError(f"unknown generation setting(s) for the agent LLM: {', '.join(sorted(unknown))}")
        params = {**getattr(self, "gen_params", {}), **overrides}
        if do_sample is False:
            params["temperature"] = 0
        stop_words = params.get("stop_words") or []
        if isinstance(stop_words, str):
            stop_words = [stop_words]
        if with_end_words:
            stop_words = [*stop_words, *(w for w in self.end_words if w not in stop_words)]
        params["stop_words"] = list(stop_words)
        settings = {k: params[k] for k in SETTINGS if params.get(k) is not None}
        GenerationConfig().replace(**settings)  # validate now, with a message naming the field
        return settings


def end_markers(meta_template: list[dict]) -> list[str]:
    """The end-of-turn markers of a meta template ('<|im_end|>' for INTERNLM2_META)."""
    words: list[str] = []
    for role in meta_template:
        end = str(role.get("end", "")).strip()
        if end and end not in words:
            words.append(end)
    return words
