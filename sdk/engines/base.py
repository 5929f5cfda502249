"""What every engine shares: `Generation` (a generation in progress) and `BaseEngine`, the one
interface that the PyTorch engine, the remote (OpenAI-compatible) engine and any later engine
implement, and that `Chat`, the evaluations, the agents and the server are typed against.

An engine implements two things, `stream(messages)` and `generate(prompt)`; system-prompt
handling, settings, `chat` (in terms of `stream`) and `chat_many` come from here, so the engines
agree on them by construction."""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, Generator

from sdk.generation import GenerationConfig
from sdk.templates import Message


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
