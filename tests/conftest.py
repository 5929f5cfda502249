"""Shared fixtures: one converted embedded model and one loaded Engine for the whole session
(conversion and loading take tens of seconds; every test reuses them)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def model_path() -> Path:
    from sdk.models import embedded_model_path

    return embedded_model_path()


@pytest.fixture(scope="session")
def engine(model_path):
    """The embedded model, full precision, shared by all tests: never mutate its settings."""
    import sdk

    return sdk.load(model_path)


def run_cli(*args: str, stdin: str | None = None, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `tunechat ARGS` in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "sdk.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
