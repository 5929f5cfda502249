"""The two prompt protocols, as lagent 0.2.4 defines them, with short English prompts.

Formatting (role messages → the prompt) is lagent's own code, untouched: training samples are
rendered by it too (`agents.render`), so a model is trained on exactly what it is prompted
with. Only parsing is replaced for Internlm2: lagent's unpacks `split()` into two values, so a
reply holding two tool calls raises instead of being answered."""
from __future__ import annotations

from typing import Any

from lagent.agents.internlm2_agent import Internlm2Protocol as LagentInternlm2Protocol
from lagent.agents.react import ReActProtocol as LagentReActProtocol

from agents import check_protocol

# Lean prompts: the tool descriptions (lagent's JSON) are most of the prompt already.
META_PROMPT = "You are a helpful assistant. Use a tool when the question needs one; otherwise answer directly."
PLUGIN_PROMPT = "You can use these tools:\n{prompt}\nCall a tool only when you need it, and never invent tools or results."
INTERPRETER_PROMPT = "You can run Python code: send the code to the interpreter and you will get back what it prints."


class Internlm2Protocol(LagentInternlm2Protocol):
    """lagent's Internlm2Protocol with a parser that survives any reply."""

    def parse(self, message: str, plugin_executor: Any = None, interpreter_executor: Any = None) -> tuple:
        """(kind, language, action): kind 'plugin' (action: the JSON text), 'interpreter' (action:
        lagent's {'name', 'parameters': {'command'}}) or None (a plain answer). The first call
        in the reply counts; anything after its end marker (a second call) is dropped."""
        if self.language["begin"]:
            message = message.split(self.language["begin"])[-1]
        start, names, end = self.tool["start_token"], self.tool["name_map"], self.tool["end"].strip()
        found = [(message.find(start + names[k]), k) for k in ("plugin", "interpreter") if start + names[k] in message]
        if not found:
            if names["interpreter"] in message:  # lagent also accepts the interpreter name without the start token
                position, kind, marker = message.find(names["interpreter"]), "interpreter", names["interpreter"]
            else:
                return None, message.split(start)[0], None
        else:
            position, kind = min(found)
            marker = start + names[kind]
        language = message[:position]
        action = message[position + len(marker):].split(end)[0]
        if kind == "plugin":
            return "plugin", language, action
        if marker == names["interpreter"]:  # as lagent: drop a dangling start token, strip
            cut = language.rfind(start)
            language = (language[:cut] if cut != -1 else language).strip()
        command = action.strip()
        name = interpreter_executor.action_names()[0] if interpreter_executor else "IPythonInterpreter"
        return "interpreter", language, {"name": name, "parameters": {"command": command}}


class ReActProtocol(LagentReActProtocol):
    """lagent's ReActProtocol, unchanged (named here so both protocols come from one place)."""


def make_protocol(name: str, system: str | None = None) -> Internlm2Protocol | ReActProtocol:
    """The protocol object for `name`. `system` is the agent's system prompt: Internlm2's meta
    prompt (default: a short English one); for ReAct, a paragraph before its instructions."""
    if check_protocol(name) == "internlm2":
        return Internlm2Protocol(
            meta_prompt=META_PROMPT if system is None else system,
            interpreter_prompt=INTERPRETER_PROMPT,
            plugin_prompt=PLUGIN_PROMPT,
        )
    protocol = ReActProtocol()
    if system:  # call_protocol is a format string: the system text's braces are literal
        protocol.call_protocol = system.replace("{", "{{").replace("}", "}}") + "\n" + protocol.call_protocol
    return protocol
