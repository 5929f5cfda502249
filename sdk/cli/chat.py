"""`tunechat chat [MODEL]`: chat in the terminal. Accepts `xtuner chat`'s flags, so the tutorial's
commands work with `xtuner` replaced by `tunechat`.

In a terminal: streamed answers, input history, Alt+Enter (or Esc then Enter) for a new line,
Ctrl-C stops an answer, Ctrl-D or /exit leaves; /reset, /system TEXT, /help.
With stdin not a terminal: one message per line in, one answer per message out (scriptable)."""
from __future__ import annotations

import argparse
import sys

from sdk.cli.common import add_generation_args, add_model_args, generation_config, load_engine

HELP = "/reset  forget the conversation · /system TEXT  set the system prompt · /exit  leave · Ctrl-C stops an answer"


def register(sub: argparse._SubParsersAction) -> None:
    from sdk.templates import SYSTEM_TEMPLATES

    parser = sub.add_parser("chat", help="chat with a model in the terminal", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_args(parser)
    parser.add_argument("--system", default=None, help="system prompt (default: the model's own, from its tunechat.json)")
    parser.add_argument("--system-template", default=None, choices=sorted(SYSTEM_TEMPLATES),
                        help="one of XTuner's ready-made system prompts ({bot_name} is filled in)")
    parser.add_argument("--bot-name", default="BOT", help="the assistant's name, shown before answers (default BOT)")
    parser.add_argument("--no-streamer", action="store_true", help="print each answer whole instead of streaming it")
    parser.add_argument("--lagent", action="store_true", help="chat through a Lagent tool-calling agent")
    parser.add_argument("--with-plugins", nargs="+", default=None, metavar="PLUGIN",
                        help="tools for the agent, e.g. calculate solve (implies --lagent)")
    parser.add_argument("--command-stop-word", default=None, help="XTuner plugin mode: the word that ends a tool command")
    parser.add_argument("--answer-stop-word", default=None, help="a word that ends an answer (added to the stop words)")
    add_generation_args(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sdk.templates import SYSTEM_TEMPLATES

    extra_stops = [word for word in (args.answer_stop_word, args.command_stop_word) if word]
    config = generation_config(args)
    config = config.replace(stop_words=config.stop_words + extra_stops)
    system = args.system
    if args.system_template:
        system = SYSTEM_TEMPLATES[args.system_template].format(bot_name=args.bot_name)
    if args.lagent or args.with_plugins:
        # XTuner's plugin mode, without its MOSS prompt format: the tools run through a Lagent agent.
        from sdk.cli.agent import run_agent

        return run_agent(args, config, tools=args.with_plugins or ["calculator"], protocol="internlm2", system=system)
    import sdk

    engine = load_engine(args, config, system=system)
    chat = sdk.Chat(engine)
    if sys.stdin.isatty():
        return _interactive(chat, args)
    return _scripted(chat, args)


def _scripted(chat, args: argparse.Namespace) -> int:
    """One message per input line, one answer per message (blank lines are skipped)."""
    for line in sys.stdin:
        message = line.rstrip("\r\n")
        if not message.strip():
            continue
        outcome = _command(chat, message.strip())
        if outcome == "exit":
            break
        if outcome is not None:
            continue
        if args.no_streamer:
            print(chat.send(message), flush=True)
        else:
            for piece in chat.stream(message):
                print(piece, end="", flush=True)
            print(flush=True)
    return 0


def _interactive(chat, args: argparse.Namespace) -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    from sdk.models import tunechat_home

    keys = KeyBindings()

    @keys.add("escape", "enter")
    def _newline(event) -> None:  # Alt+Enter / Esc Enter: a new line instead of sending
        event.current_buffer.insert_text("\n")

    tunechat_home().mkdir(parents=True, exist_ok=True)
    session = PromptSession(history=FileHistory(str(tunechat_home() / "chat_history")), key_bindings=keys,
                            multiline=False, prompt_continuation="... ")
    print(f"Chatting with {chat.engine.name}. {HELP}")
    while True:
        try:
            message = session.prompt("You: ")
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the line
        except EOFError:
            return 0
        if not message.strip():
            continue
        outcome = _command(chat, message.strip())
        if outcome == "exit":
            return 0
        if outcome is not None:
            print(outcome)
            continue
        print(f"{args.bot_name}: ", end="", flush=True)
        try:
            if args.no_streamer:
                print(chat.send(message), end="")
            else:
                for piece in chat.stream(message):
                    print(piece, end="", flush=True)
        except KeyboardInterrupt:
            print(" [stopped]", end="")
        print()


def _command(chat, text: str) -> str | None:
    """Run a /command; returns what to tell the user, "exit", or None for an ordinary message."""
    if text in ("/exit", "/quit", "exit"):
        return "exit"
    if text == "/reset":
        chat.reset()
        return "(conversation cleared)"
    if text == "/system" or text.startswith("/system "):
        chat.system = text[len("/system"):].strip()
        chat.reset()
        return f"(system prompt set{': ' + chat.system if chat.system else ' to none'}; conversation cleared)"
    if text == "/help":
        return HELP
    return None
