"""What every engine shares: `Generation` (a generation in progress) and `BaseEngine`, the one
interface that the PyTorch engine, the remote (OpenAI-compatible) engine and any later engine
implement, and that `Chat`, the evaluations, the agents and the server are typed against.

An engine implements two things, `stream(messages)` and `generate(prompt)`; system-prompt
handling, settings, `chat` (in terms of `stream`) and `chat_many` come from here, so the engines
agree on them by construction. `LocalEngine` adds what engines that hold a tokenizer share
(PyTorch, llama.cpp): rendering, fitting the context, and `stream`/`generate` on top of one
`_generate(prompt_ids, settings)`."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Generator, Iterator

from sdk.errors import TunechatError
from sdk.generation import GenerationConfig, TextStream
from sdk.templates import Message, Template, render_prompt


class Generation:
    """A generation in progress: iterate it for text pieces. Once exhausted, `text`,
    `finish_reason` ("stop" or "length"), `prompt_tokens` and `completion_tokens` are set."""

    def __init__(self, start: Callable[["Generation"], Generator[str, None, None]]):
        self.text = ""
        self.finish_reason: str | None = None
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self._pieces = start(self)  # a generator: nothing runs until the first piece is asked for

    def __iter__(self) -> "Generation":
        return self

    def __next__(self) -> str:
        return next(self._pieces)

    def close(self) -> None:
        """Stop early (e.g. the user pressed Ctrl-C); the model is free again at once."""
        self._pieces.close()

    @classmethod
    def finished(cls, text: str, finish_reason: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> "Generation":
        """A generation that is already complete (from a batch)."""
        done = cls(lambda out: iter(()))
        done.text, done.finish_reason = text, finish_reason
        done.prompt_tokens, done.completion_tokens = prompt_tokens, completion_tokens
        return done

    def result(self) -> str:
        for _ in self:
            pass
        return self.text


class BaseEngine(ABC):
    """A model ready to chat, wherever it runs.

    name: what the model is called (shown by front ends, served as the model id).
    system: the system prompt added to conversations that bring none (None: none added).
    stop_words: the model's own stop words, applied on top of each call's.
    generation: the default settings; each call may override any field.
    context_length: prompt + answer tokens the model takes (None where unknown).
    path: the local model directory (None when the model is not local)."""

    name: str = "model"
    system: str | None = None
    stop_words: list[str]
    generation: GenerationConfig
    context_length: int | None = None
    path: Path | None = None

    @abstractmethod
    def stream(self, messages: list[Message], config: GenerationConfig | None = None, **overrides: Any) -> Generation:
        """Answer a conversation, piece by piece."""

    @abstractmethod
    def generate(self, prompt: str, config: GenerationConfig | None = None, **overrides: Any) -> Generation:
        """Continue a raw prompt, no template applied (the agents' prompts stay byte-exact)."""

    def chat(self, messages: list[Message], config: GenerationConfig | None = None, **overrides: Any) -> str:
        """Answer a conversation; returns the whole answer."""
        return self.stream(messages, config, **overrides).result()

    def chat_many(self, conversations: list[list[Message]], config: GenerationConfig | None = None,
                  batch_size: int = 128, **overrides: Any) -> list[Generation]:
        """Answer many conversations (evaluations, data building): finished Generations, in order
        (`text`, `finish_reason`, token counts). One at a time here; engines that can batch
        override it (at most `batch_size` at once), with the same answers as `chat` under greedy
        decoding."""
        settings = self.settings(config, **overrides)
        return [self._answered(messages, settings) for messages in conversations]

    def _answered(self, messages: list[Message], settings: GenerationConfig) -> Generation:
        generation = self.stream(messages, settings)
        generation.result()
        return generation

    def with_system(self, messages: list[Message]) -> list[Message]:
        """Messages with the model's own system prompt first, unless they bring one."""
        if self.system and (not messages or messages[0].get("role") != "system"):
            return [{"role": "system", "content": self.system}, *messages]
        return list(messages)

    def settings(self, config: GenerationConfig | None = None, **overrides: Any) -> GenerationConfig:
        """The engine's defaults, then `config`, then keyword overrides (validated)."""
        return (config or self.generation).replace(**overrides)


class LocalEngine(BaseEngine):
    """An engine that renders, tokenizes and decodes itself. Subclasses set `tokenizer` (what the
    renderer and `TextStream` need of one: an HF tokenizer, or llama.cpp's vocabulary behind the
    same calls), `template`, `context_length`, `_end_words` (end-of-turn strings), `_eos_ids`
    (ids that end an answer) and `_lock`, and implement `_tokens`: the model's side of decoding."""

    tokenizer: Any
    template: Template | None = None
    context_length: int | None = 4096
    _end_words: list[str]
    _eos_ids: set[int]
    _lock: Any

    @abstractmethod
    def _tokens(self, prompt_ids: list[int], settings: GenerationConfig) -> Generator[int, None, None]:
        """Sampled token ids after the prompt, one per `next` (each computed only when asked for;
        closing the generator leaves the model ready for the next call)."""

    def encode(self, text: str) -> list[int]:
        """Token ids of text, no special tokens added (special-token text is parsed)."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _text(self, prompt_ids: list[int], settings: GenerationConfig) -> TextStream:
        return TextStream(self.tokenizer, [*settings.stop_words, *self.stop_words, *self._end_words], prompt_ids)

    def _generate(self, prompt_ids: list[int], settings: GenerationConfig) -> Generation:
        def run(out: Generation) -> Generator[str, None, None]:
            out.prompt_tokens = len(prompt_ids)
            max_new = min(settings.max_new_tokens, self.context_length - len(prompt_ids))
            with self._lock:
                tokens = self._tokens(prompt_ids, settings)
                try:
                    yield from decode(tokens, self._text(prompt_ids, settings), self._eos_ids, out, max_new)
                finally:
                    tokens.close()

        return Generation(run)

    def render(self, messages: list[Message]) -> str:
        """The exact prompt text for these messages (the same renderer training uses)."""
        return render_prompt(self.with_system(messages), self.template, self.tokenizer)

    def fit_prompt(self, messages: list[Message], max_new_tokens: int) -> list[int]:
        """Prompt ids for messages, dropping the oldest turns (never the system prompt, never the
        last user message) until prompt + max_new_tokens fits the model's context."""
        messages = self.with_system(messages)
        system = messages[:1] if messages and messages[0]["role"] == "system" else []
        turns = messages[len(system):]
        while True:
            ids = self.encode(render_prompt(system + turns, self.template, self.tokenizer))
            if len(ids) + max_new_tokens <= self.context_length or len(turns) <= 1:
                break
            turns = turns[2:]  # one user + assistant pair
        if len(ids) + 1 > self.context_length:
            raise TunechatError(
                f"the prompt is {len(ids)} tokens but the model's context is {self.context_length}: shorten the message"
            )
        return ids

    def stream(self, messages: list[Message], config: GenerationConfig | None = None, **overrides: Any) -> Generation:
        """Answer a conversation, piece by piece."""
        settings = self.settings(config, **overrides)
        return self._generate(self.fit_prompt(messages, settings.max_new_tokens), settings)

    def generate(self, prompt: str, config: GenerationConfig | None = None, **overrides: Any) -> Generation:
        """Continue a raw prompt (no template applied): for agents and /v1/completions."""
        settings = self.settings(config, **overrides)
        ids = self.encode(prompt)
        if not ids:
            raise TunechatError("the prompt is empty")
        if len(ids) + 1 > self.context_length:
            raise TunechatError(f"the prompt is {len(ids)} tokens but the model's context is {self.context_length}")
        return self._generate(ids, settings)


def decode(tokens: Iterator[int], text: TextStream, eos_ids: set[int], out: Generation, max_new: int) -> Generator[str, None, None]:
    """The one decode loop: token ids → text pieces, until an end-of-answer id, a stop word or
    `max_new` tokens. Sets `out.text`, `finish_reason` and `completion_tokens` as it goes."""
    for step, token in enumerate(tokens):
        out.completion_tokens = step + 1
        if token in eos_ids:
            out.finish_reason = "stop"
            return
        piece = text.push(token)
        if piece:
            out.text += piece
            yield piece
        if text.stopped:
            out.finish_reason = "stop"
            return
        if step + 1 == max_new:
            break
    out.finish_reason = "length"
    rest = text.finish()
    if rest:
        out.text += rest
        yield rest
