"""`EquationSolver`: solves equations and small systems with sympy (XTuner's `solve` plugin).

The parsing and solving live in `agents.tools.equations` (no `eval`). They run in a long-lived
worker process, started on first use, so that a request sympy cannot finish in time is
stopped by killing the worker (a thread could not be stopped); the next request starts a new
one. The worker is a plain subprocess, not multiprocessing: fork would copy this (threaded)
process, and forkserver/spawn re-import the caller's `__main__`."""
from __future__ import annotations

import atexit
import json
import selectors
import subprocess
import sys
import threading
from pathlib import Path

from lagent.actions import BaseAction, tool_api

from agents.tools.safe_ast import ExpressionError

TIMEOUT_SECONDS = 10.0
ROOT = Path(__file__).resolve().parents[2]  # where the `agents` package lives


class _Worker:
    """One child process with sympy loaded, answering one request at a time."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.lock = threading.Lock()
        atexit.register(self.stop)

    def ask(self, equations: str, timeout: float) -> list:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process = subprocess.Popen(
                    [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                                           "from agents.tools.equations import serve; serve()"],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                )
            self.process.stdin.write(json.dumps(equations) + "\n")
            self.process.stdin.flush()
            with selectors.DefaultSelector() as selector:
                selector.register(self.process.stdout, selectors.EVENT_READ)
                ready = selector.select(timeout)
            line = self.process.stdout.readline() if ready else ""
            if not line:
                self.stop()
                if not ready:
                    raise ExpressionError(f"solving took longer than {timeout:g} s: try fewer or simpler equations")
                raise ExpressionError("the solver stopped (out of memory?): try fewer or simpler equations")
            return json.loads(line)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()
        self.process = None


_WORKER = _Worker()


def solve(equations: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """Solve equations (see `agents.tools.equations.solve`) in the worker, within `timeout`
    seconds; raises ExpressionError with a message for the model otherwise."""
    ok, text = _WORKER.ask(equations, timeout)
    if not ok:
        raise ExpressionError(text)
    return text


class EquationSolver(BaseAction):
    """Solves equations and systems of equations."""

    @tool_api
    def run(self, equations: str) -> str:
        """Solve equations for their variables, e.g. 2x + 3 = 11 or x + y = 10, x - y = 2.

        Args:
            equations (str): one equation, or several separated by commas
        """
        return solve(equations)
