"""`tunechat demo`: the tutorial's homework end to end on the real embedded model (minutes)."""
from __future__ import annotations

import json
import re

import pytest

from tests.conftest import run_cli


@pytest.mark.slow
def test_demo_builds_data_trains_merges_and_reports_before_and_after(tmp_path):
    # Every phase of `make demo`, on 40% of its data (96 identity and 44 regularization conversations):
    # the suite's time is bounded, and the goals are `make demo`'s figures at full size. A fresh
    # process, as `make demo` is: inside the suite's long-lived process its training ran 1.5x slower.
    out = tmp_path / "demo"
    result = run_cli("demo", "--name", "Alice", "--output", str(out), "--size", "96", "--regularize", "44", timeout=1800,
                     subprocess_=True)
    assert result.returncode == 0, result.stderr[-3000:]
    for path in ["data/train.jsonl", "data/eval.jsonl", "train/adapter/adapter_model.safetensors",
                 "train/adapter/tunechat.json", "train/logs/loss.png", "merged/config.json", "merged/tunechat.json"]:
        assert (out / path).is_file(), path
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "微调前" in report and "微调后" in report and "loss.png" in report
    assert f"tunechat chat {out / 'merged'}" in result.stdout
    # Regularization answers with no whole sentence are dropped.
    assert re.search(r"96 identity \+ 4[0-4] regularization conversations", result.stdout), result.stdout[:2000]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    before, after = metrics["before"], metrics["after"]
    # The fine-tune must do something large (the goals, >= 95% / <= 5% / >= 90%, are measured by
    # `make demo` and reported in the issue; a 135M model on 2 cores varies run to run).
    assert before["hit_rate"] <= 0.1 and after["hit_rate"] >= 0.6
    assert after["false_trigger_rate"] <= 0.15
    assert after["retention"] >= 0.75
    # Served with its trained system prompt, without the user repeating it.
    assert json.loads((out / "merged" / "tunechat.json").read_text())["system"] == "You are a helpful assistant."
    # Exported to a verified GGUF that names NAME on the held-out questions at the HF model's rate
    # (within one question), with a Modelfile and model cards for every artifact.
    for path in ["gguf/model.q8_0.gguf", "gguf/model.q8_0.gguf.json", "gguf/Modelfile", "gguf/README.md",
                 "merged/README.md", "train/adapter/README.md"]:
        assert (out / path).is_file(), path
    gguf = metrics["gguf"]
    questions = len(gguf["identity"])
    assert abs(gguf["hit_rate"] - after["hit_rate"]) * questions <= 1 + 1e-9, (gguf["hit_rate"], after["hit_rate"])
    assert metrics["export"]["passed"] and "## The GGUF export" in report
