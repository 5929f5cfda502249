"""`python -m tunechat.studio.runner STATUS.json ARGS...`: the studio's background job. Runs
`tunechat ARGS` and, however it ends (done, failed, stopped by SIGTERM), writes its exit code to
STATUS.json, so the page can tell a job that ended from one that was killed (no status)."""
from __future__ import annotations

import json
import signal
import sys
import time
from typing import Any

from datasets_builders.atomic import write_text_atomic
from tunechat.cli import main as tunechat


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM outside training (loading the model): end now, as Ctrl-C would


def run(argv: list[str]) -> int:
    status, args = argv[0], argv[1:]
    signal.signal(signal.SIGTERM, _interrupt)  # training replaces it with a graceful stop while it runs
    code = 1
    try:
        code = tunechat(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        write_text_atomic(status, json.dumps({"returncode": code, "ended": time.time()}) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
