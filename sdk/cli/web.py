"""`tunechat web [MODEL]`: chat with a model in the browser (the Streamlit page `web_demo.py`).

Starts Streamlit on 127.0.0.1 (this machine only; `--host 0.0.0.0` lets others in), headless and
without usage statistics. The model flags and generation flags become the page's starting
settings; everything can then be changed in the page's sidebar. Ctrl-C stops the server.

`streamlit run web_demo.py -- [MODEL] [flags]` does the same with Streamlit's own options."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from sdk.cli.common import add_generation_args, add_model_args
from sdk.errors import TunechatError


def add_page_args(parser: argparse.ArgumentParser) -> None:
    """The flags the page itself understands: shared by `tunechat web` and `web_demo.py`."""
    add_model_args(parser)
    parser.add_argument("--system", default=None, help="system prompt (default: the model's own, from its tunechat.json)")
    add_generation_args(parser)


class _PageParser(argparse.ArgumentParser):
    """A bad flag given to the page becomes a TunechatError the page shows, not a SystemExit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise TunechatError(f"web_demo.py arguments: {message}")


def parse_page_args(argv: list[str]) -> argparse.Namespace:
    """The page's settings from the script arguments after `streamlit run web_demo.py --`."""
    parser = _PageParser(prog="web_demo.py", add_help=False)
    add_page_args(parser)
    return parser.parse_args(argv)


def page_argv(args: argparse.Namespace) -> list[str]:
    """The parsed page flags turned back into arguments, so `tunechat web` can hand them to the
    page (only the flags that differ from their defaults)."""
    parser = argparse.ArgumentParser(add_help=False)
    add_page_args(parser)
    argv: list[str] = []
    for action in parser._actions:
        value = getattr(args, action.dest, action.default)
        if value == action.default:
            continue
        if not action.option_strings:
            argv.insert(0, str(value))  # the positional MODEL goes first
        elif action.nargs == 0:
            argv.append(action.option_strings[0])  # a store_true switch
        else:
            values = value if isinstance(value, list) else [value]
            argv += [action.option_strings[0], *map(str, values)]
    return argv


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("web", help="chat with a model in the browser (Streamlit)", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    add_page_args(parser)
    parser.add_argument("--port", type=int, default=8501, help="port to listen on (default 8501)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sdk.models import resolve_model

    if importlib.util.find_spec("streamlit") is None:
        raise TunechatError("the web chat needs Streamlit: pip install 'tunechat[web]'")
    page = importlib.util.find_spec("web_demo")  # located, not imported: importing would run the page
    if page is None or page.origin is None:
        raise TunechatError("web_demo.py is not installed alongside the sdk (reinstall tunechat)")
    if not str(args.model or "").startswith(("http://", "https://")):
        resolve_model(args.model)  # a bad MODEL fails here, in one line, before a server starts
    command = [
        sys.executable, "-m", "streamlit", "run", page.origin,
        "--server.address", args.host, "--server.port", str(args.port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
        "--", *page_argv(args),
    ]
    print(f"tunechat web: serving on http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execv(sys.executable, command)  # Streamlit becomes this process: signals reach it, no orphan
    return 0  # not reached
