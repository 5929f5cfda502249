"""A scripted engine for agent tests: it answers with given replies (to exercise the agent's
parser and loop with exact, possibly malformed, model output) and records every prompt the agent
sent. Replies are cut at the first stop word, as the real Engine cuts them. Once the script is
used up it hands over to a real engine, if one was given."""
from __future__ import annotations

from typing import Any

from sdk.engine import Generation
from sdk.generation import GenerationConfig


class ScriptedEngine:
    def __init__(self, replies: list[str], engine: Any = None):
        self.replies = list(replies)
        self.engine = engine
        self.prompts: list[str] = []
        self.settings: list[dict] = []
        self.name = "scripted"
        self.generation = engine.generation if engine is not None else GenerationConfig()

    def generate(self, prompt: str, **settings: Any) -> Generation:
        self.prompts.append(prompt)
        self.settings.append(settings)
        if not self.replies:
            if self.engine is None:
                raise AssertionError(f"the script ran out of replies; prompt was:\n{prompt}")
            return self.engine.generate(prompt, **settings)
        reply = self.replies.pop(0)
        stops = [reply.find(w) for w in settings.get("stop_words", []) if w in reply]
        if stops:
            reply = reply[: min(stops)]

        def pieces(out: Generation):
            for index in range(0, len(reply), 7):  # several pieces, as a real stream
                out.text += reply[index:index + 7]
                yield reply[index:index + 7]
            out.finish_reason = "stop"

        return Generation(pieces)


def plugin_call(name: str, **parameters: Any) -> str:
    """What a model trained on our data writes to call a tool (internlm2 protocol)."""
    import json

    return f'<|action_start|><|plugin|>\n{json.dumps({"name": name, "parameters": parameters})}<|action_end|>\n'
