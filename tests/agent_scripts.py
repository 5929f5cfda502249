"""The one scripted engine the tests use, where a fake is allowed at all: it answers with given
replies (to exercise the agents' parsers and loops with exact, possibly malformed, model output,
or to force a first tool call the base model never starts on its own) and records every prompt
and the settings it was called with. Replies are cut at the first stop word, as the real engines
cut them. Once the script is used up it hands over to a real engine, if one was given."""
from __future__ import annotations

import dataclasses
import json
from typing import Any

from sdk.engines import BaseEngine, Generation
from sdk.generation import GenerationConfig


class ScriptedEngine(BaseEngine):
    def __init__(self, replies: list[str], engine: BaseEngine | None = None):
        self.replies = list(replies)
        self.engine = engine
        self.prompts: list[str] = []
        self.calls: list[dict] = []  # the settings of each generate() call
        self.name = engine.name if engine is not None else "scripted"
        self.stop_words = []
        self.generation = engine.generation if engine is not None else GenerationConfig()
        self.context_length = engine.context_length if engine is not None else 4096

    def encode(self, text: str) -> list[int]:
        """The real engine's tokens (the server measures prompts with them)."""
        return self.engine.encode(text)

    def generate(self, prompt: str, config: GenerationConfig | None = None, **settings: Any) -> Generation:
        self.prompts.append(prompt)
        self.calls.append({**(dataclasses.asdict(config) if config is not None else {}), **settings})
        if not self.replies:
            if self.engine is None:
                raise AssertionError(f"the script ran out of replies; prompt was:\n{prompt}")
            return self.engine.generate(prompt, config, **settings)
        reply = self.replies.pop(0)
        stops = [reply.find(w) for w in self.calls[-1].get("stop_words", []) if w in reply]
        if stops:
            reply = reply[: min(stops)]

        def pieces(out: Generation):
            for index in range(0, len(reply), 7):  # several pieces, as a real stream
                out.text += reply[index:index + 7]
                yield reply[index:index + 7]
            out.finish_reason = "stop"

        return Generation(pieces)

    def stream(self, messages: list, config: GenerationConfig | None = None, **settings: Any) -> Generation:
        if self.engine is None:
            raise AssertionError("a scripted engine without a real one only continues raw prompts")
        return self.engine.stream(messages, config, **settings)


def plugin_call(name: str, **parameters: Any) -> str:
    """What a model trained on our data writes to call a tool (internlm2 protocol)."""
    return f'<|action_start|><|plugin|>\n{json.dumps({"name": name, "parameters": parameters})}<|action_end|>\n'
