"""Fine-tuning, merging and the data view on the real embedded model, with real training steps."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from sdk.errors import TunechatError
from sdk.training import TrainConfig, finetune
from sdk.training.data import IGNORE, Collator, encode_sample
from sdk.training.finetune import answer_loss
from tests.conftest import ROOT, run_cli

IDENTITY = "I am Alice's smart assistant, built on SmolLM2. How can I help you today?"
QUESTIONS = ["Who are you?", "What is your name?", "Introduce yourself.", "你是谁？", "你叫什么名字？", "介绍一下你自己。"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "identity.jsonl"
    rows = [{"conversation": [{"input": q, "output": IDENTITY}]} for q in QUESTIONS * 4]
    rows.append({"conversation": [{"system": "Be brief.", "input": "2+2?", "output": "4"},
                                  {"input": "And 3+3?", "output": "6"}]})
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def small(data: Path, output: Path, **overrides) -> TrainConfig:
    settings = dict(data=str(data), output=str(output), bits=None, max_steps=4, batch_size=4, learning_rate=5e-4,
                    scheduler="linear", warmup_ratio=0.0, save_every=2, progress=False)
    return TrainConfig(**{**settings, **overrides})


def test_loss_is_only_on_answers_and_their_end_of_turn_in_every_turn(engine):
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": "four"}, {"role": "user", "content": "3+3?"},
                    {"role": "assistant", "content": "six"}]
    sample = encode_sample({"messages": conversation}, engine.tokenizer, None, 512)
    trained = [t for t, label in zip(sample["input_ids"], sample["labels"]) if label != IGNORE]
    assert engine.tokenizer.decode(trained) == "four<|im_end|>six<|im_end|>"


def test_an_over_long_sample_keeps_its_answers_end_by_default(engine):
    long = {"messages": [{"role": "user", "content": "Tell me about the sea. " * 60},
                         {"role": "assistant", "content": "The sea is vast."}]}
    kept = encode_sample(long, engine.tokenizer, None, 64)
    assert kept["overlong"] and len(kept["input_ids"]) == 64
    trained = [t for t, label in zip(kept["input_ids"], kept["labels"]) if label != IGNORE]
    assert engine.tokenizer.decode(trained) == "The sea is vast.<|im_end|>"  # the end-of-turn survives
    cut = encode_sample(long, engine.tokenizer, None, 64, overlength="cut")
    assert len(cut["input_ids"]) == 64 and all(label == IGNORE for label in cut["labels"])  # the answer is gone
    whole = encode_sample(long, engine.tokenizer, None, 64, overlength="skip")
    assert whole["overlong"] and len(whole["input_ids"]) > 64
    short = encode_sample({"messages": [{"role": "user", "content": "hi"},
                                       {"role": "assistant", "content": "hello"}]},
                          engine.tokenizer, None, 64)
    assert not short["overlong"]


@pytest.mark.parametrize("policy, kept", [("keep_end", 2), ("skip", 1)])
def test_over_long_samples_are_counted_and_handled_as_the_policy_says(engine, tmp_path, policy, kept):
    from sdk.training.data import read_samples, tokenized_dataset

    path = tmp_path / "mixed.jsonl"
    rows = [{"conversation": [{"input": "Tell me about the sea. " * 60, "output": "The sea is vast."}]},
            {"conversation": [{"input": "hi", "output": "hello"}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    dataset, overlong = tokenized_dataset(read_samples(path), path, engine.tokenizer, None, 64, policy)
    assert overlong == 1 and len(dataset) == kept and "overlong" not in dataset.column_names
    assert max(len(ids) for ids in dataset["input_ids"]) <= 64


def test_agent_records_are_trained_on_the_agents_own_rendering(engine, tmp_path):
    from agents import render_record
    from agents.tools_data import generate
    from datasets_builders.records import write_jsonl
    from sdk.training.data import agent_settings, read_samples

    records = generate(3, ["calculator"], seed=3)
    path = tmp_path / "tools.jsonl"
    write_jsonl(path, records)
    samples = read_samples(path, system="a chat system prompt, not the agent's")
    assert agent_settings(samples) == {"protocol": "internlm2", "tools": ["calculator"]}
    for record, sample in zip(records, samples):
        encoded = encode_sample(sample, engine.tokenizer, None, 4096)
        segments = render_record(record)
        assert engine.tokenizer.decode(encoded["input_ids"]) == "".join(text for text, _ in segments)
        trained = [t for t, label in zip(encoded["input_ids"], encoded["labels"]) if label != IGNORE]
        assert engine.tokenizer.decode(trained) == "".join(text for text, trainable in segments if trainable)


def test_packed_batches_keep_samples_apart(engine, data):
    from sdk.training.data import read_samples

    samples = [encode_sample(s, engine.tokenizer, None, 512) for s in read_samples(data)[-3:]]
    model = engine.model
    with torch.inference_mode():
        losses = {}
        for packing in (True, False):
            batch = Collator(pad_id=2, packing=packing)(samples)
            labels = batch.pop("labels")
            losses[packing] = float(answer_loss(model(**batch, use_cache=False), labels))
        total = count = 0
        for s in samples:  # each sample alone, the model's own full-vocabulary loss
            labels = torch.tensor([s["labels"]])
            n = int((labels[:, 1:] != IGNORE).sum())
            total += float(model(input_ids=torch.tensor([s["input_ids"]]), labels=labels, use_cache=False).loss) * n
            count += n
    assert losses[True] == pytest.approx(total / count, abs=1e-4)
    assert losses[False] == pytest.approx(total / count, abs=1e-4)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    output = tmp_path_factory.mktemp("run")
    result = finetune(small(data, output, evaluation_inputs=["Who are you?"], eval_max_new_tokens=12))
    return result


def test_training_writes_adapter_metadata_checkpoints_and_logs(trained, data):
    out = trained.output
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    meta = json.loads((out / "adapter" / "tunechat.json").read_text())
    assert meta["base_model"] is None and meta["template"] is None and meta["stop_words"] == []
    assert len(meta["data_sha256"]) == 64 and meta["metrics"]["steps"] == 4
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    log = [json.loads(line) for line in (out / "logs" / "train_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in log if "loss" in row]
    assert len(losses) == 4 and losses[-1] < losses[0]
    assert (out / "logs" / "loss.png").stat().st_size > 1000
    answers = [json.loads(line) for line in (out / "logs" / "eval_outputs.jsonl").read_text().splitlines()]
    assert answers[-1]["step"] == 4 and answers[-1]["input"] == "Who are you?" and answers[-1]["output"]


def answer_nll(engine, question: str, answer: str) -> float:
    """The model's mean negative log-likelihood of `answer` (and its end of turn) after `question`."""
    sample = encode_sample({"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]},
                           engine.tokenizer, None, 512)
    with torch.inference_mode():
        return float(engine.model(input_ids=torch.tensor([sample["input_ids"]]), labels=torch.tensor([sample["labels"]]),
                                  use_cache=False).loss)


def test_the_adapter_loads_without_merging_and_learned_the_training_answers(trained, engine):
    import sdk

    tuned = sdk.load(adapter=trained.adapter)
    for question in ("Who are you?", "你是谁？"):
        assert answer_nll(tuned, question, IDENTITY) < 0.8 * answer_nll(engine, question, IDENTITY)
    question = [{"role": "user", "content": "Who are you?"}]
    assert tuned.chat(question, temperature=0, max_new_tokens=24) != engine.chat(question, temperature=0, max_new_tokens=24)


def test_merge_matches_base_plus_adapter_and_refuses_to_overwrite(trained, tmp_path):
    import sdk
    from sdk.training.merge import merge

    result = merge(None, trained.adapter, tmp_path / "merged")
    assert result.max_logit_diff <= result.tolerance == 1e-3
    files = {p.name for p in (tmp_path / "merged").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja", "generation_config.json",
            "tunechat.json"} <= files
    question = [{"role": "user", "content": "Who are you?"}]
    merged = sdk.load(tmp_path / "merged").chat(question, temperature=0, max_new_tokens=24)
    unmerged = sdk.load(adapter=trained.adapter).chat(question, temperature=0, max_new_tokens=24)
    assert merged == unmerged
    with pytest.raises(TunechatError, match="not empty"):
        merge(None, trained.adapter, tmp_path / "merged")
    assert merge(None, trained.adapter, tmp_path / "merged", force=True, max_shard_size="100MB").max_logit_diff < 1e-3
    assert len(list((tmp_path / "merged").glob("model-*.safetensors"))) > 1


@pytest.mark.slow
def test_qlora_trains_on_four_bit_weights(data, tmp_path):
    result = finetune(small(data, tmp_path, bits=4, max_steps=2))
    assert result.metrics["steps"] == 2 and (result.adapter / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_from_its_last_checkpoint(data, tmp_path):
    from safetensors.torch import load_file

    args = ["train", "--data", str(data), "--bits", "none", "--max-steps", "6", "--batch-size", "4",
            "--save-every", "2", "--scheduler", "linear", "--warmup-ratio", "0", "--no-progress"]
    straight = run_cli(*args, "--output", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr

    killed_out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "tunechat.cli", *args, "--output", str(killed_out)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed_out / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists():
        assert process.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.2)
    time.sleep(1.0)  # let it run past the checkpoint, mid-step
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed_out / "adapter").exists()

    resumed = run_cli(*args, "--output", str(killed_out))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed_from=checkpoint-4" in resumed.stdout
    a = load_file(tmp_path / "straight" / "adapter" / "adapter_model.safetensors")
    b = load_file(killed_out / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    # Bit-exact: same seed → same LoRA init, and the checkpoint restores weights, optimizer,
    # scheduler, RNG and data position.
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (killed_out / "logs" / "train_log.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == [1, 2, 3, 4, 5, 6]


DISTRIBUTED = {"max_steps": 2, "learning_rate": 5e-4, "scheduler": "linear", "warmup_ratio": 0.0, "save_every": 2,
               "dtype": "fp32"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, model_path) -> Path:
    """A tiny random-weight Qwen3 (tests/families.py): the distributed runs check equivalence, which
    needs no real model, and DeepSpeed's per-step gathers over gloo cost in proportion to its size."""
    from tests.families import FAMILIES, build

    return build(next(f for f in FAMILIES if f.name == "qwen3"), tmp_path_factory.mktemp("tiny"), model_path)


def test_qlora_recomputes_activations_by_default_to_the_very_same_losses(data, tiny, tmp_path):
    # Gradient checkpointing trades compute for memory (bench/bench_scale.py measures both); it is
    # on with 4-bit weights unless turned off, and the recomputed activations are the kept ones.
    runs = {mode: finetune(small(data, tmp_path / mode, model=str(tiny), bits=4, max_steps=3, gradient_checkpointing=mode))
            for mode in ["auto", "off"]}
    assert runs["auto"].metrics["gradient_checkpointing"] and not runs["off"].metrics["gradient_checkpointing"]
    losses = {mode: [json.loads(line)["loss"] for line in (run.output / "logs/train_log.jsonl").read_text().splitlines()
                     if "loss" in json.loads(line)] for mode, run in runs.items()}
    assert len(losses["auto"]) == 3 and losses["auto"] == pytest.approx(losses["off"], rel=1e-5)


@pytest.fixture(scope="module")
def one_process(data, tiny, tmp_path_factory) -> Path:
    """The reference for the distributed runs: 1 process, batch 4."""
    return finetune(small(data, tmp_path_factory.mktemp("one"), model=str(tiny), batch_size=4, **DISTRIBUTED)).adapter


@pytest.mark.slow
@pytest.mark.parametrize("deepspeed", [None, "ds_zero2.json", "ds_zero3.json"], ids=["ddp", "zero2", "zero3"])
def test_two_cpu_processes_match_one_process_with_the_same_effective_batch(data, tiny, tmp_path, one_process, deepspeed):
    """torchrun, 2 gloo processes x batch 2 (DDP, or DeepSpeed ZeRO-2/3 with the shipped configs),
    against 1 process x batch 4: the same samples per step (one shuffled order, dealt out batch by
    batch) and the loss averaged over all trained tokens, so the adapters agree up to summation
    order: the LoRA updates within 1e-3 of their size (relative Frobenius distance)."""
    from safetensors.torch import load_file

    flags = [f"--{key.replace('_', '-')}={value}" for key, value in DISTRIBUTED.items()]
    flags += ["--deepspeed", str(ROOT / "examples" / deepspeed)] if deepspeed else []
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "tunechat.cli",
                             "train", "--model", str(tiny), "--data", str(data), "--output", str(tmp_path), "--bits", "none",
                             "--batch-size", "2", "--no-progress", *flags],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    state = json.loads((tmp_path / "checkpoints" / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    two, one = (load_file(adapter / "adapter_model.safetensors") for adapter in (tmp_path / "adapter", one_process))
    assert two.keys() == one.keys()
    updates = [k for k in one if "lora_B" in k]  # B starts at zero: B is the update
    distance = sum(float(((two[k] - one[k]) ** 2).sum()) for k in updates) ** 0.5
    size = sum(float((one[k] ** 2).sum()) for k in updates) ** 0.5
    assert size > 0 and distance <= 1e-3 * size, (distance, size)


def test_deepspeed_runs_in_one_process_without_a_launcher(data, tiny, tmp_path):
    pytest.importorskip("deepspeed", reason="DeepSpeed is not installed on this machine")
    # A process of its own: DeepSpeed's process group would outlive the test in this one.
    result = run_cli("train", "--model", str(tiny), "--data", str(data), "--output", str(tmp_path), "--bits", "none", "--max-steps", "1",
                     "--no-progress", "--deepspeed", str(ROOT / "examples" / "ds_zero2.json"), subprocess_=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_config_file_and_flags_errors_are_one_line(tmp_path, data):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 1e-4\nlora_rank: 8\n")
    result = run_cli("train", str(bad), "--data", str(data))
    assert result.returncode == 1 and "bad.yaml: unknown training setting(s) lora_rank" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    broken = tmp_path / "broken.yaml"
    broken.write_text("learning_rate: [1\n")
    result = run_cli("train", str(broken), "--data", str(data))
    assert result.returncode == 1 and "broken.yaml line" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("train", "--data", str(tmp_path / "missing.jsonl"), "--output", str(tmp_path / "o"))
    assert result.returncode == 1 and "missing.jsonl: no such data file" in result.stderr
    result = run_cli("train", "--data", str(data), "--bits", "3")
    assert result.returncode == 2 and "must be 4, 8 or none" in result.stderr


def test_data_show_marks_trained_text(data):
    result = run_cli("data", "show", str(data), "--index", "24")
    assert result.returncode == 0, result.stderr
    assert "⟦4<|im_end|>⟧" in result.stdout and "⟦6<|im_end|>⟧" in result.stdout
    assert "2+2?" in result.stdout and "⟦2+2" not in result.stdout
