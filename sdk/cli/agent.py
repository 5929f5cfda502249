"""`tunechat agent [MODEL]`: chat with a tool-using Lagent agent in the terminal.

The model's text streams as it is written; each tool call and its result are shown on their
own lines ([tool] / [result] / [error], in colour on a terminal), so thoughts, calls and results
are easy to tell apart. Same keys and /commands as `tunechat chat`; with stdin not a terminal,
one message per line in, one transcript per message out. `tunechat chat --lagent` and
`--with-plugins calculate solve` run this too."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from sdk.cli.common import add_generation_args, add_model_args, generation_config, load_engine
from sdk.generation import GenerationConfig

COLORS = {"tool": "\033[36m", "result": "\033[32m", "error": "\033[31m"}
RESET = "\033[0m"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("agent", help="chat with a tool-using Lagent agent", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="example:\n  tunechat agent --tools calculator solve python --temperature 0")
    add_model_args(parser)
    parser.add_argument("--tools", nargs="+", default=None, metavar="TOOL",
                        help="calculator (XTuner: calculate), solve, python (default: the tools the model was "
                             "fine-tuned with, as its tunechat.json records, else calculator)")
    parser.add_argument("--protocol", default=None, choices=["internlm2", "react"],
                        help="internlm2: Lagent's Internlm2Agent; react: Lagent's ReAct agent (default: the "
                             "fine-tune's protocol, else internlm2)")
    parser.add_argument("--system", default=None, help="the agent's system prompt (default: a short one)")
    parser.add_argument("--max-turn", type=int, default=None,
                        help="model turns per message, tool calls included (default 3 internlm2, 4 react)")
    parser.add_argument("--bot-name", default="BOT", help="the assistant's name, shown before answers (default BOT)")
    parser.add_argument("--no-streamer", action="store_true", help="print each transcript whole instead of streaming it")
    add_generation_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    trained = trained_agent(args)
    return run_agent(args, generation_config(args), tools=args.tools or trained.get("tools") or ["calculator"],
                     protocol=args.protocol or trained.get("protocol") or "internlm2", system=args.system)


def trained_agent(args: argparse.Namespace) -> dict[str, Any]:
    """The tools and protocol a tool fine-tune recorded in the adapter's or model's tunechat.json
    ({} for other models): serving them by default is serving what was trained."""
    from sdk.metadata import read_metadata

    for directory in (args.adapter, args.model):
        if directory and Path(directory).is_dir() and (agent := read_metadata(directory).get("agent")):
            return agent
    return {}


def run_agent(args: argparse.Namespace, config: GenerationConfig, tools: list[str], protocol: str,
              system: str | None) -> int:
    """Load the model the flags describe and run an agent over it in the terminal (also used by
    `tunechat chat --lagent / --with-plugins`)."""
    from agents import build_agent
    from agents.tools import resolve_tools
    from sdk.cli.chat import _interactive, _scripted

    actions = resolve_tools(tools)  # an unknown tool fails before the model loads
    engine = load_engine(args, config)
    agent = build_agent(engine, tools=actions, protocol=protocol, system=system, max_turn=getattr(args, "max_turn", None))
    session = AgentChat(agent, engine, color=sys.stdout.isatty())
    return _interactive(session, args) if sys.stdin.isatty() else _scripted(session, args)


class AgentChat:
    """An agent conversation with `sdk.Chat`'s interface (stream, send, reset, system, history,
    engine), so that `tunechat chat`'s terminal loops drive it unchanged. `stream` yields the
    transcript as display text; the history keeps every step (tool calls included), so the next
    message's prompt extends the previous one exactly."""

    def __init__(self, agent: Any, engine: Any, color: bool = False):
        self.agent, self.engine, self.color = agent, engine, color
        self.history: list[dict] = []

    @property
    def system(self) -> str | None:
        return getattr(self.agent._protocol, "meta_prompt", None)

    @system.setter
    def system(self, text: str) -> None:
        from agents.protocols import make_protocol

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
    """Turns the agent's progress snapshots into display text, printing only what is new."""

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
            yield from self._action(snapshot.actions[-1])
        elif state == S.END and snapshot.response and snapshot.response.strip() != self.shown.strip():
            yield ("\n" if self.shown else "") + snapshot.response
            self.shown = snapshot.response
        elif state < 0:
            yield self._paint(f"[error] {snapshot.errmsg or S(state).name}", "error")
        if state >= 0:
            self.state = state

    def _action(self, action: Any) -> Iterator[str]:
        if self.shown:
            yield "\n"
        self.shown = ""
        args = action.args or {}
        if isinstance(args, dict) and set(args) == {"command"}:
            call = f"[tool] {action.type}:\n{args['command']}"
        else:
            call = f"[tool] {action.type} {json.dumps(args, ensure_ascii=False, default=str)}"
        yield self._paint(call, "tool") + "\n"
        if action.state == 0:
            yield self._paint(f"[result] {action.format_result()}", "result") + "\n"
        else:
            yield self._paint(f"[error] {action.errmsg}", "error") + "\n"

    def _paint(self, text: str, kind: str) -> str:
        return f"{COLORS[kind]}{text}{RESET}" if self.color else text
