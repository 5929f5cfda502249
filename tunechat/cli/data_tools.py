"""`tunechat data tools`: tool-call conversations for fine-tuning an agent.

Registered by `tunechat/cli/data.py` (its ACTIONS list holds `register_tools`); the records are built
by `agents/tools_data.py` and rendered for training by `agents.render_record`."""
from __future__ import annotations

import argparse

from agents import PROTOCOLS

DESCRIPTION = """Write tool-call conversations (JSON Lines, the `messages` form with tool roles) for the chosen
tools, in English and Chinese (answered in the question's language): word problems and bare arithmetic that need the calculator (one and two steps), equations
for the solver, small programs for the Python sandbox, questions that need no tool, and tool
errors answered gracefully. Every tool result comes from running the real tool.

Each record names its tools and protocol; training renders it exactly as the agent prompts:
  {"messages": [{"role": "user", ...}, {"role": "assistant", "name": "plugin", "content": "{\\"name\\": ...}"},
                {"role": "environment", "name": "plugin", ...}, {"role": "assistant", ...}],
   "tools": ["calculator"], "protocol": "internlm2"}"""


def register_tools(actions: argparse._SubParsersAction) -> None:
    """Add `tools` to the `tunechat data` actions."""
    parser = actions.add_parser("tools", help="tool-call conversations for fine-tuning an agent",
                                description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  tunechat data tools -o calc.jsonl --tools calculator --count 600")
    parser.add_argument("-o", "--out", required=True, metavar="OUT.jsonl",
                        help="output file (JSON Lines, UTF-8); written only when everything succeeds")
    parser.add_argument("--tools", nargs="+", default=["calculator"], metavar="TOOL",
                        help="calculator (XTuner: calculate), solve, python (default: calculator)")
    parser.add_argument("--protocol", default="internlm2", choices=PROTOCOLS,
                        help="the agent protocol the data is rendered for (default internlm2)")
    parser.add_argument("--count", type=int, default=500, help="number of conversations (default 500)")
    parser.add_argument("--questions", type=int, default=1,
                        help="questions per conversation (default 1); later ones see the earlier turns, as in a chat")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    from agents.tools_data import generate
    from datasets_builders.records import write_jsonl

    records = generate(args.count, args.tools, protocol=args.protocol, seed=args.seed, questions=args.questions)
    count = write_jsonl(args.out, records)
    calls = [sum(1 for m in r["messages"] if m["role"] == "environment") for r in records]
    print(f"wrote {count} conversations to {args.out} ({', '.join(records[0]['tools'])}; {args.protocol}; "
          f"{args.questions} question(s) each): {sum(1 for c in calls if c == 1)} with one tool call, "
          f"{sum(1 for c in calls if c > 1)} with several, {calls.count(0)} without tools")
    return 0
