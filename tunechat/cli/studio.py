"""`tunechat studio [--workspace DIR] [--port P]`: the whole pipeline in the browser.

Pages: Data (upload a sheet, map its columns, check, split, identity data) → Train (a background
`tunechat train` with live progress and loss chart, Stop and Resume) → Evaluate (identity and
tool use, before/after; base and tuned side by side) → Chat (the web chat over the workspace's
models) → Export (verified merge, GGUF, downloads). Every page shows the shell commands that do
what it did.

Everything it reads and writes stays in the workspace folder (made if missing). It listens on
127.0.0.1 (this machine only) unless --host says otherwise. Training jobs outlive the browser tab
and the server; starting the studio again on the same workspace shows them. Ctrl-C stops the server."""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from sdk.errors import TunechatError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("studio", help="the whole pipeline in the browser (Streamlit)", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", default="tunechat-studio", metavar="DIR",
                        help="the folder for data, runs, models and exports (default ./tunechat-studio)")
    parser.add_argument("--port", type=int, default=8502, help="port to listen on (default 8502)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--max-upload-mb", type=int, default=50, help="largest file an upload may be (default 50 MB)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("streamlit") is None:
        raise TunechatError("the studio needs Streamlit: pip install 'tunechat[web]'")
    app = importlib.util.find_spec("tunechat.studio.app")
    if app is None or app.origin is None:
        raise TunechatError("the studio's pages are not installed (reinstall tunechat)")
    workspace = Path(args.workspace).expanduser().resolve()
    if workspace.exists() and not workspace.is_dir():
        raise TunechatError(f"--workspace {args.workspace}: not a folder")
    workspace.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "streamlit", "run", app.origin,
        "--server.address", args.host, "--server.port", str(args.port), "--server.headless", "true",
        "--server.maxUploadSize", str(args.max_upload_mb), "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
        # No full garbage collection after every run: the Train page reruns every few seconds while
        # a job trains, and collecting a server that has imported torch took most of each redraw's
        # CPU, which the job on the same cores needs. Python's own collector still runs.
        "--runner.postScriptGC", "false",
        "--", "--workspace", str(workspace), "--max-upload-mb", str(args.max_upload_mb),
    ]
    print(f"tunechat studio: {workspace} on http://{args.host}:{args.port} (Ctrl-C stops; training jobs go on)",
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execv(sys.executable, command)  # Streamlit becomes this process: signals reach it, no orphan
    return 0  # not reached
