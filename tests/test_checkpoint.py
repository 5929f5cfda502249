"""sdk.checkpoint: a safetensors checkpoint read tensor by tensor is the very model transformers
loads, and a converting load (here 4-bit) holds about one tensor beside its weights, where
transformers' mapped load holds the whole checkpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdk.checkpoint import load_causal_lm, tensor_files
from sdk.memory import GiB, loading_bytes, model_size

PEAK = ("import json, sys, torch\nfrom transformers import AutoModelForCausalLM, BitsAndBytesConfig\n"
        "from sdk.checkpoint import load_causal_lm\n"
        "q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_compute_dtype=torch.float32)\n"
        "load = load_causal_lm if sys.argv[2] == 'by_tensor' else AutoModelForCausalLM.from_pretrained\n"
        "load(sys.argv[1], dtype='auto', quantization_config=q, device_map={'': 'cpu'})\n"
        "hwm = next(line for line in open('/proc/self/status') if line.startswith('VmHWM'))\n"
        "print(json.dumps(int(hwm.split()[1]) * 1024))\n")  # not ru_maxrss: exec keeps the forking process's


def random_qwen3(out: Path, *, hidden: int, layers: int, shard: str, vocab: int = 32000) -> Path:
    """A random-weight Qwen3, bf16 on disk, in shards of `shard`, with a generation config of its own."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model("qwen3", vocab_size=vocab, hidden_size=hidden, intermediate_size=4 * hidden,
                                  num_hidden_layers=layers, num_attention_heads=8, num_key_value_heads=2, head_dim=hidden // 8,
                                  tie_word_embeddings=False, eos_token_id=[2, 7], dtype="bfloat16")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(out, max_shard_size=shard)
    return out


def test_a_checkpoint_read_tensor_by_tensor_is_the_model_transformers_loads(tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path = random_qwen3(tmp_path / "qwen3", hidden=128, layers=2, shard="2MB")
    assert len(tensor_files(path)) > 1  # sharded: read through its index
    ours = load_causal_lm(path, dtype=torch.float32)
    theirs = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    assert all(torch.equal(a, theirs.state_dict()[name]) for name, a in ours.state_dict().items())
    assert ours.generation_config.eos_token_id == theirs.generation_config.eos_token_id == [2, 7]
    # Its adapter names its base, as one trained on transformers' own load does.
    adapter = get_peft_model(ours, LoraConfig(r=4, target_modules=["q_proj"]))
    assert adapter.peft_config["default"].base_model_name_or_path == str(path) == theirs.name_or_path


@pytest.mark.slow
def test_a_4_bit_load_holds_about_one_tensor_beside_its_weights_not_the_checkpoint(tmp_path):
    path = random_qwen3(tmp_path / "qwen3", hidden=1024, layers=8, shard="200MB", vocab=4096)  # about 130M parameters, 260 MB
    size = model_size(path)
    peaks = {}
    for way in ["by_tensor", "mapped"]:
        child = subprocess.run([sys.executable, "-c", PEAK, str(path), way], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
        assert child.returncode == 0, child.stderr[-2000:]
        peaks[way] = json.loads(child.stdout.strip().splitlines()[-1])
    assert size.read_by_tensor and peaks["mapped"] - peaks["by_tensor"] > 0.6 * size.checkpoint_bytes, (
        {k: v / GiB for k, v in peaks.items()}, size.checkpoint_bytes / GiB)
    # The estimate that `tunechat chat --bits 4` checks before it starts stays above the real peak.
    assert loading_bytes(size, 4, "fp32") > peaks["by_tensor"]
