"""`tunechat agent [MODEL]`: chat with a tool-using Lagent agent in the terminal.

The model's text streams as it is written; each tool call and its result are shown on their
own lines ([tool] / [result] / [error], in colour on a terminal), so thoughts, calls and results
are easy to tell apart. Same keys and /commands as `tunechat chat`; with stdin not a terminal,
one message per line in, one transcript per message out. `tunechat chat --lagent` and
`--with-plugins calculate solve` run this too."""
from __future__ import annotations

import argparse

from agents import PROTOCOLS
from tunechat.options import add_generation_args, add_model_args, agent_protocol, generation_config, trained_agent
from tunechat.terminal import run_agent


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("agent", help="chat with a tool-using Lagent agent", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="example:\n  tunechat agent --tools calculator solve python --temperature 0")
    add_model_args(parser)
    parser.add_argument("--tools", nargs="+", default=None, metavar="TOOL",
                        help="calculator (XTuner: calculate), solve, python (default: the tools the model was "
                             "fine-tuned with, as its tunechat.json records, else calculator)")
    parser.add_argument("--protocol", default=None, choices=PROTOCOLS,
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
    return run_agent(args, generation_config(args), tools=args.tools or trained_agent(args).get("tools") or ["calculator"],
                     protocol=agent_protocol(args), system=args.system)
