"""`Chat`: a conversation with an engine — history as structured messages, a system prompt and
generation settings that persist across turns."""
from __future__ import annotations

from typing import Any, Iterator

from sdk.engines.base import BaseEngine
from sdk.generation import GenerationConfig
from sdk.templates import Message


class Chat:
    """chat = Chat(engine, system="You are ...", temperature=0.7); chat.send("hi") -> str.

    `system` None keeps the model's own system prompt (from its tunechat.json); "" removes it.
    Keyword arguments are GenerationConfig fields and apply to every turn."""

    def __init__(self, engine: BaseEngine, system: str | None = None, config: GenerationConfig | None = None, **settings: Any):
        self.engine = engine
        self.system = engine.system if system is None else system
        self.config = engine.settings(config, **settings)
        self.history: list[Message] = []

    def messages(self, user_text: str | None = None) -> list[Message]:
        """What the model sees: system prompt, history, and the new user message."""
        system = [{"role": "system", "content": self.system}] if self.system else []
        new = [{"role": "user", "content": user_text}] if user_text is not None else []
        return system + self.history + new

    def stream(self, text: str, **overrides: Any) -> Iterator[str]:
        """Send a message and yield the answer piece by piece. The turn is recorded when the
        answer ends, or with what was generated so far if the caller stops early (Ctrl-C)."""
        generation = self.engine.stream(self._with_system_kept(text), self.config.replace(**overrides))
        try:
            yield from generation
        finally:
            generation.close()
            self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": generation.text}]

    def send(self, text: str, **overrides: Any) -> str:
        """Send a message; return the whole answer."""
        return "".join(self.stream(text, **overrides))

    def reset(self) -> None:
        """Forget the conversation (the system prompt stays)."""
        self.history = []

    def _with_system_kept(self, text: str) -> list[Message]:
        messages = self.messages(text)
        if not self.system and self.engine.system:
            # An explicit "" system prompt must not be replaced by the model's default.
            messages = [{"role": "system", "content": ""}, *messages]
        return messages
