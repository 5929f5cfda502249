"""The terminal chat loops that `tunechat chat`, `tunechat agent` (and `cli_demo.py`) share.

In a terminal: streamed answers, input history, Alt+Enter (or Esc then Enter) for a new line,
Ctrl-C stops an answer, Ctrl-D or /exit leaves; /reset, /system TEXT, /help. With stdin not a
terminal: one message per line in, one answer per message out (scriptable). A session is
anything with `sdk.Chat`'s interface: `sdk.Chat` itself or `agents.AgentChat`."""
from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Iterator
from typing import Any

from sdk.generation import GenerationConfig
from tunechat.options import load_engine

HELP = "/reset  forget the conversation · /system TEXT  set the system prompt · /exit  leave · Ctrl-C stops an answer"


def converse(session: Any, bot_name: str = "BOT", no_streamer: bool = False) -> int:
    """Run `session` in the terminal, or over piped stdin."""
    if sys.stdin.isatty():
        return interactive(session, bot_name, no_streamer)
    return scripted(session, no_streamer)


def run_agent(args: argparse.Namespace, config: GenerationConfig, tools: list[str], protocol: str,
              system: str | None) -> int:
    """Load the model the flags describe and run an agent over it in the terminal (`tunechat
    agent`, and `tunechat chat --lagent / --with-plugins`)."""
    from agents import AgentChat, build_agent
    from agents.tools import resolve_tools

    actions = resolve_tools(tools)  # an unknown tool fails before the model loads
    engine = load_engine(args, config)
    agent = build_agent(engine, tools=actions, protocol=protocol, system=system, max_turn=getattr(args, "max_turn", None))
    return converse(AgentChat(agent, engine, color=sys.stdout.isatty()), args.bot_name, args.no_streamer)


def scripted(session: Any, no_streamer: bool = False) -> int:
    """One message per input line, one answer per message (blank lines are skipped)."""
    for line in sys.stdin:
        message = line.rstrip("\r\n")
        if not message.strip():
            continue
        outcome = command(session, message.strip())
        if outcome == "exit":
            break
        if outcome is not None:
            continue
        if no_streamer:
            print(session.send(message), flush=True)
        else:
            for piece in session.stream(message):
                print(piece, end="", flush=True)
            print(flush=True)
    return 0


def interactive(session: Any, bot_name: str = "BOT", no_streamer: bool = False) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    from sdk.models import tunechat_home

    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _newline(event) -> None:  # Alt+Enter / Esc Enter: a new line instead of sending
        event.current_buffer.insert_text("\n")

    tunechat_home().mkdir(parents=True, exist_ok=True)
    prompt = PromptSession(history=FileHistory(str(tunechat_home() / "chat_history")), key_bindings=keys,
                           multiline=False, prompt_continuation="... ")
    print(f"Chatting with {session.engine.name}. {HELP}")
    while True:
        try:
            message = prompt.prompt("You: ")
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the line
        except EOFError:
            return 0
        if not message.strip():
            continue
        outcome = command(session, message.strip())
        if outcome == "exit":
            return 0
        if outcome is not None:
            print(outcome)
            continue
        print(f"{bot_name}: ", end="", flush=True)
        with ctrl_c() as pressed:
            try:
                if no_streamer:
                    print(session.send(message), end="")
                else:
                    for piece in session.stream(message):
                        print(piece, end="", flush=True)
                        if pressed:
                            raise KeyboardInterrupt
            except KeyboardInterrupt:
                print(" [stopped]", end="")
        print()


@contextlib.contextmanager
def ctrl_c() -> Iterator[list[bool]]:
    """Ctrl-C raises KeyboardInterrupt as usual and is also remembered (the list becomes true):
    an interrupt raised while Python runs a finalizer is printed and dropped, and the answer would
    then run on to its token limit; the loop checks the list after each piece instead."""
    pressed: list[bool] = []

    def handler(signum: int, frame: Any) -> None:
        pressed.append(True)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)


def command(session: Any, text: str) -> str | None:
    """Run a /command; returns what to tell the user, "exit", or None for an ordinary message."""
    if text in ("/exit", "/quit", "exit"):
        return "exit"
    if text == "/reset":
        session.reset()
        return "(conversation cleared)"
    if text == "/system" or text.startswith("/system "):
        session.system = text[len("/system"):].strip()
        session.reset()
        return f"(system prompt set{': ' + session.system if session.system else ' to none'}; conversation cleared)"
    if text == "/help":
        return HELP
    return None
