"""`tunechat demo --tools`: the tool-use fine-tune pipeline on the real embedded model and the
real lagent agent, at a small scale (the full run is measured by hand: `tunechat demo --tools
--seeds 0 1 2`, reported in issue 19)."""
from __future__ import annotations

import argparse
import json

import pytest

from agents.tool_eval_sets import eval_tasks
from tests.conftest import run_cli
from tunechat.options import trained_agent
from tunechat.recipes.pipeline import summarize_seeds
from tunechat.recipes.tools import ToolDemoSettings, run_tool_demo


@pytest.mark.slow
def test_tool_demo_builds_data_trains_merges_and_reports_before_and_after(tmp_path):
    out = tmp_path / "demo"
    settings = ToolDemoSettings(output=str(out), conversations=8, questions=2, tasks=3,
                                train={**ToolDemoSettings().train, "max_steps": 2})
    before, after, report = run_tool_demo(settings)
    for path in ["data/train.jsonl", "data/tasks-fresh.jsonl", "data/tasks-heldout.jsonl", "train/adapter/adapter_model.safetensors",
                 "train/logs/loss.png", "merged/config.json", "metrics.json"]:
        assert (out / path).is_file(), path
    # The base model on the fresh set's prefix; the tuned one on both frozen sets, by language and operation.
    assert list(before.reports) == ["fresh"] and list(after.reports) == ["fresh", "heldout"]
    assert [len(r.results) for r in (before.reports["fresh"], *after.reports.values())] == [3, 3, 3]
    assert [r.question for r in after.reports["heldout"].results] == [t["question"] for t in eval_tasks("heldout", 3)]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["after"]["fresh"]["by_group"]) == {"en", "zh", "+", "-"}
    assert (out / "gguf" / "model.q8_0.gguf").is_file() and list(metrics["gguf"]) == ["fresh"]  # on llama.cpp
    assert len(metrics["gguf"]["fresh"]["results"]) == 3
    text = report.read_text(encoding="utf-8")
    assert "微调前" in text and "微调后" in text and f"tunechat agent {out / 'merged'}" in text
    assert "| Chinese questions |" in text and "heldout (tuning set)" in text
    # The merged model records what it was trained for, and `tunechat agent MODEL` serves that.
    agent = json.loads((out / "merged" / "tunechat.json").read_text())["agent"]
    assert agent == {"protocol": "internlm2", "tools": ["calculator"]}
    assert trained_agent(argparse.Namespace(model=str(out / "merged"), adapter=None)) == agent


def test_demo_help_offers_the_tool_demo():
    result = run_cli("demo", "--help")
    assert result.returncode == 0 and "--tools" in result.stdout and "word problems" in result.stdout


def test_a_seed_sweep_reports_the_mean_and_the_worst_seed():
    runs = [{"seed": 0, "fresh_solved": 0.9, "false_trigger_rate": 0.0, "seconds": 600.0},
            {"seed": 1, "fresh_solved": 0.7, "false_trigger_rate": 0.1, "seconds": 500.0}]
    summary = summarize_seeds(runs, frozenset({"false_trigger_rate", "seconds"}))
    assert summary["mean"] == pytest.approx({"fresh_solved": 0.8, "false_trigger_rate": 0.05, "seconds": 550.0})
    assert summary["worst"] == {"fresh_solved": 0.7, "false_trigger_rate": 0.1, "seconds": 600.0}
