"""A job too large for the machine's free memory is refused before it starts, with one line that
says how much it needs, how much there is, and what to do; the estimates are from the config alone."""
from __future__ import annotations

import json

import pytest

from sdk.memory import GiB, model_size, training_bytes
from tests.conftest import run_cli


@pytest.fixture
def little_memory(monkeypatch):
    """The injected fault: a machine with 0.3 GiB free."""
    monkeypatch.setattr("sdk.memory.available_bytes", lambda: int(0.3 * GiB))


def test_the_parameter_count_comes_from_the_config_without_loading_weights(model_path):
    size = model_size(model_path)
    assert size.total == 134_515_008  # SmolLM2-135M, its tied embedding counted once
    assert size.stored_dtype == "fp32" and size.checkpoint_bytes == sum(f.stat().st_size for f in model_path.glob("*.safetensors"))
    assert training_bytes(size, None) > 4 * size.total  # at least its fp32 weights
    # Activations grow with a step's tokens; gradient checkpointing keeps only each layer's input.
    assert training_bytes(size, 4, 8192) > training_bytes(size, 4, 8192, checkpointing=True) > training_bytes(size, 4, 0)


def test_training_that_cannot_fit_is_refused_before_the_model_loads(little_memory, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"conversation": [{"input": "Hi", "output": "Hello"}]}) + "\n")
    result = run_cli("train", "--data", str(data), "--output", str(tmp_path / "out"), "--bits", "none", "--max-steps", "1")
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "of memory and this machine has 0.3 GiB available: train with --bits 4 (QLoRA: about" in result.stderr
    assert not (tmp_path / "out" / "adapter").exists()


def test_merging_and_loading_that_cannot_fit_are_refused(little_memory, tmp_path):
    result = run_cli("chat", "--temperature", "0", stdin="Hi\n")
    assert result.returncode == 1 and "GiB available: load it with --bits 4, or --dtype bf16" in result.stderr, result.stderr
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "target_modules": ["q_proj"], "r": 4}))
    result = run_cli("merge", "embedded", str(adapter), str(tmp_path / "merged"))
    assert result.returncode == 1 and "merging into" in result.stderr and "GiB available" in result.stderr, result.stderr
    assert not (tmp_path / "merged").exists()
