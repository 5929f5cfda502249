"""`tunechat` — one command with sub-commands. Each sub-command lives in its own module with a
`register(subparsers)` function; heavy imports (torch, transformers) happen only when a command
runs, so `--help` is instant."""
from __future__ import annotations

import argparse
import importlib
import sys

from sdk.errors import TunechatError

# Sub-command modules, in the order `tunechat --help` lists them.
COMMANDS = ["model", "data", "train", "merge", "export", "chat", "agent", "web", "serve", "eval", "demo"]


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> Parser:
    parser = Parser(
        prog="tunechat",
        description="Make a chat assistant of your own: build data, QLoRA fine-tune, merge, chat, serve.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, required=True)
    for name in COMMANDS:
        importlib.import_module(f"tunechat.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except TunechatError as exc:
        print(f"tunechat {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
