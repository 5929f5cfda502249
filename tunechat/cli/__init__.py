"""`tunechat` — one command with sub-commands. Each sub-command lives in its own module with a
`register(subparsers)` function; heavy imports (torch, transformers) happen only when a command
runs, so `--help` is instant."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import sys
from dataclasses import dataclass

from sdk.errors import TunechatError

# Sub-command modules, in the order `tunechat --help` lists them.
COMMANDS = ["model", "data", "train", "merge", "export", "chat", "agent", "web", "studio", "serve", "eval", "demo"]


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


@dataclass
class Captured:
    """What `tunechat ARGV` printed and its exit code, as a shell would see them."""

    code: int
    out: str
    err: str

    @property
    def error(self) -> str:
        """Why it failed, in the one line `tunechat` ends with (`tunechat X: error: ...`)."""
        return last_line(self.err) or f"exit code {self.code}"


def last_line(text: str) -> str:
    """The last non-blank line of `text` ("" if none): where a command says why it stopped."""
    return next((line for line in reversed(text.splitlines()) if line.strip()), "")


def run_captured(argv: list[str]) -> Captured:
    """Run `tunechat ARGV` in this process with its output captured (no second torch import, no
    model reload): the studio's pages run their commands so, and the tests. stdout and stderr are
    process-wide: callers run one command at a time."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Captured(code, out.getvalue(), err.getvalue())


if __name__ == "__main__":
    sys.exit(main())
