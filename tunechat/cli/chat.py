"""`tunechat chat [MODEL]`: chat in the terminal. Accepts `xtuner chat`'s flags, so the tutorial's
commands work with `xtuner` replaced by `tunechat`.

In a terminal: streamed answers, input history, Alt+Enter (or Esc then Enter) for a new line,
Ctrl-C stops an answer, Ctrl-D or /exit leaves; /reset, /system TEXT, /help.
With stdin not a terminal: one message per line in, one answer per message out (scriptable)."""
from __future__ import annotations

import argparse

from tunechat.options import add_generation_args, add_model_args, generation_config, load_engine
from tunechat.terminal import converse, run_agent


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
        return run_agent(args, config, tools=args.with_plugins or ["calculator"], protocol="internlm2", system=system)
    import sdk

    engine = load_engine(args, config, system=system)
    return converse(sdk.Chat(engine), args.bot_name, args.no_streamer)
