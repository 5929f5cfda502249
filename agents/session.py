"""An agent conversation with `sdk.Chat`'s interface, and the one way agent steps are shown.

`action_view` turns a tool call (lagent's `ActionReturn`) into plain data: the terminal
(`Transcript`, as text lines) and the web page (as expanders) both draw from it."""
from __future__ import annotations

import json
from typing import Any, Iterator

from agents.protocols import make_protocol
from sdk.engines import BaseEngine

COLORS = {"tool": "\033[36m", "result": "\033[32m", "error": "\033[31m"}
RESET = "\033[0m"


def action_view(action: Any) -> dict[str, Any]:
    """A tool call as data: tool name, arguments, the thought before it, its result, and the
    error ("" when it succeeded)."""
    failed = action.state != 0
    return {"tool": action.type or "tool", "args": action.args or {}, "thought": action.thought or "",
            "result": "" if failed else action.format_result(),
            "error": (action.errmsg or f"the tool failed (state {action.state})") if failed else ""}


class AgentChat:
    """An agent conversation with `sdk.Chat`'s interface (stream, send, reset, system, history,
    engine), so that the terminal loops drive it unchanged. `stream` yields the transcript as
    display text; the history keeps every step (tool calls included), so the next message's
    prompt extends the previous one exactly."""

    def __init__(self, agent: Any, engine: BaseEngine, color: bool = False):
        self.agent, self.engine, self.color = agent, engine, color
        self.history: list[dict] = []

    @property
    def system(self) -> str | None:
        return getattr(self.agent._protocol, "meta_prompt", None)

    @system.setter
    def system(self, text: str) -> None:
        self.agent._protocol = make_protocol("react" if hasattr(self.agent._protocol, "call_protocol") else "internlm2",
                                             text)

    def stream(self, text: str, **overrides: Any) -> Iterator[str]:
        messages = [*self.history, {"role": "user", "content": text}]
        display = Transcript(self.color)
        for snapshot in self.agent.stream_chat(messages, **overrides):
            yield from display.update(snapshot)
            if snapshot.state == 0:  # END: the turn is complete, keep it
                self.history = messages + list(snapshot.inner_steps)

    def send(self, text: str, **overrides: Any) -> str:
        return "".join(self.stream(text, **overrides))

    def reset(self) -> None:
        self.history = []


class Transcript:
    """Turns the agent's progress snapshots into display text, printing only what is new: the
    model's text as it is written, and each tool call and its result on their own lines
    ([tool] / [result] / [error], in colour on a terminal)."""

    def __init__(self, color: bool):
        self.color = color
        self.state: int | None = None
        self.shown = ""  # the text of the current segment printed so far

    def update(self, snapshot: Any) -> Iterator[str]:
        from lagent.schema import AgentStatusCode as S

        state = snapshot.state
        if state in (S.STREAM_ING, S.ANSWER_ING):
            text = snapshot.response or ""
            if state != self.state and self.shown:
                yield "\n"
                self.shown = ""
            if text.startswith(self.shown):
                yield text[len(self.shown):]
                self.shown = text
        elif state in (S.PLUGIN_RETURN, S.CODE_RETURN):
            yield from self._action(action_view(snapshot.actions[-1]))
        elif state == S.END and snapshot.response and snapshot.response.strip() != self.shown.strip():
            yield ("\n" if self.shown else "") + snapshot.response
            self.shown = snapshot.response
        elif state < 0:
            yield self._paint(f"[error] {snapshot.errmsg or S(state).name}", "error")
        if state >= 0:
            self.state = state

    def _action(self, view: dict[str, Any]) -> Iterator[str]:
        if self.shown:
            yield "\n"
        self.shown = ""
        args = view["args"]
        if isinstance(args, dict) and set(args) == {"command"}:
            call = f"[tool] {view['tool']}:\n{args['command']}"
        else:
            call = f"[tool] {view['tool']} {json.dumps(args, ensure_ascii=False, default=str)}"
        yield self._paint(call, "tool") + "\n"
        if view["error"]:
            yield self._paint(f"[error] {view['error']}", "error") + "\n"
        else:
            yield self._paint(f"[result] {view['result']}", "result") + "\n"

    def _paint(self, text: str, kind: str) -> str:
        return f"{COLORS[kind]}{text}{RESET}" if self.color else text
