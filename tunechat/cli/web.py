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

from sdk.errors import TunechatError
from tunechat.options import add_page_args, page_argv


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
