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
# `make test` runs two pytest-xdist workers on two cores: each worker, and every process it starts
# (torch and llama.cpp both read this), gets one thread, since two processes of two threads each on
# two cores slow each other many times over.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with minutes-long (`slow`) tests first, so that under xdist (`--dist loadfile
    --no-loadscope-reorder`) the longest files start at once and do not end the run alone."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


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
