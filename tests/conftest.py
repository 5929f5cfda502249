"""Shared fixtures: one converted embedded model and one loaded Engine for the whole session
(conversion and loading take tens of seconds; every test reuses them), and `run_cli`."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent
# fp32 on every CPU, this process and the ones it starts: the suite checks exact equalities
# (streaming = whole answers, packed = alone, server = in-process) that bf16's rounding breaks.
os.environ.setdefault("TUNECHAT_CPU_BF16", "0")


@pytest.fixture(scope="session")
def model_path() -> Path:
    from sdk.models import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="session")
def engine(model_path):
    """The embedded model, full precision, shared by all tests: never mutate its settings."""
    import sdk

    return sdk.load(model_path)


def run_cli(*args: str, stdin: str | None = None, timeout: float = 300, env: dict | None = None,
            subprocess_: bool = False) -> subprocess.CompletedProcess:
    """Run `tunechat ARGS` as a user would, with `stdin` piped in: in this process (as click's
    CliRunner does: no second torch import, no model reload) unless `subprocess_` asks for a
    fresh process, for what only a process shows (exit by signal, inherited streams)."""
    if subprocess_:
        return subprocess.run([sys.executable, "-m", "tunechat.cli", *args], input=stdin, capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})
    from tunechat.cli import run_captured

    with mock.patch.dict(os.environ, env or {}), mock.patch.object(sys, "stdin", io.StringIO(stdin or "")):
        result = run_captured(list(args))
    return subprocess.CompletedProcess(["tunechat", *args], result.code, result.out, result.err)
