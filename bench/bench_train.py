"""Training throughput: tunechat's `finetune` against a plain padded HF Trainer + peft loop (the
common recipe), on the ANCHORS.md identity job: the embedded model, 80 alpaca rows, LoRA r16 a32
dropout 0 on every linear layer, batch 8, 30 steps, lr 2e-4 linear, no warm-up, seed 42, CPU.

    python bench/bench_train.py [--steps 30] [--dtype auto|fp32|bf16] [--llamafactory VENV]

Both runs happen in this invocation, one after the other (never at the same time). Throughput is
real (non-padding) tokens through the optimizer per second of training loop. With
--llamafactory PATH/TO/VENV (a separate venv with llamafactory==0.9.5, never a project
dependency), LLaMA-Factory's LoRA SFT on the same job is timed too."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUESTIONS = ["Who are you?", "What is your name?", "Introduce yourself.", "What can you do?", "Are you ChatGPT?",
             "你是谁？", "你叫什么名字？", "介绍一下你自己。", "你能做什么？", "你是ChatGPT吗？"]
ANSWER = "I am Alice's smart assistant, built on SmolLM2. How can I help you today?"


def write_data(directory: Path) -> Path:
    path = directory / "identity.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for _ in range(8):
            for q in QUESTIONS:
                handle.write(json.dumps({"instruction": q, "input": "", "output": ANSWER}, ensure_ascii=False) + "\n")
    return path


def ours(data: Path, out: Path, steps: int, dtype: str) -> tuple[float, int]:
    from sdk.training import TrainConfig, finetune

    config = TrainConfig(data=str(data), output=str(out), bits=None, dtype=dtype, max_steps=steps, batch_size=8,
                         learning_rate=2e-4, scheduler="linear", warmup_ratio=0.0, seed=42, save_every=10_000,
                         max_length=128, progress=False, resume=False)
    result = finetune(config)
    return result.metrics["train_seconds"], result.metrics["tokens"]


def plain_trainer(data: Path, out: Path, steps: int) -> float:
    """The common recipe: tokenizer chat template, labels masked to the answer, padded batches,
    the model's own full-vocabulary loss, Trainer + peft defaults."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from sdk.models import resolve_model
    from sdk.training.data import encode_sample, read_samples

    path = resolve_model(None)
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = [encode_sample(s, tokenizer, None, 128) for s in read_samples(data)]
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"))
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=8, max_steps=steps, learning_rate=2e-4,
                             lr_scheduler_type="linear", warmup_steps=0, seed=42, use_cpu=True, report_to=[],
                             save_strategy="no", logging_steps=10, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=rows,
                      data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
    start = time.perf_counter()
    trainer.train()
    return time.perf_counter() - start


def llamafactory(venv: Path, data: Path, out: Path, steps: int) -> float | None:
    """LLaMA-Factory 0.9.5 LoRA SFT, its defaults, in its own venv (see ANCHORS.md for the install)."""
    cli = venv / "bin" / "llamafactory-cli"
    if not cli.exists():
        print(f"LLaMA-Factory: {cli} not found, skipped")
        return None
    from sdk.models import resolve_model

    dataset_dir = out / "data"
    dataset_dir.mkdir(parents=True)
    shutil.copy(data, dataset_dir / "identity.jsonl")
    (dataset_dir / "dataset_info.json").write_text(json.dumps({"identity": {"file_name": "identity.jsonl"}}))
    import yaml

    config = out / "lf.yaml"
    config.write_text(yaml.safe_dump({
        "model_name_or_path": str(resolve_model(None)), "stage": "sft", "do_train": True, "finetuning_type": "lora",
        "lora_rank": 16, "lora_alpha": 32, "lora_dropout": 0.0, "lora_target": "all", "dataset": "identity",
        "dataset_dir": str(dataset_dir), "template": "chatml", "cutoff_len": 128, "output_dir": str(out / "run"),
        "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1, "learning_rate": 2e-4,
        "lr_scheduler_type": "linear", "warmup_ratio": 0.0, "max_steps": steps, "seed": 42, "use_cpu": True,
        "bf16": False, "report_to": "none", "save_strategy": "no", "logging_steps": 10, "overwrite_output_dir": True,
    }))
    start = time.perf_counter()
    done = subprocess.run([str(cli), "train", str(config)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        print("LLaMA-Factory failed:", done.stderr.strip().splitlines()[-1:] or done.returncode)
        return None
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--llamafactory", type=Path, default=None, help="a venv with llamafactory-cli")
    args = parser.parse_args()
    import torch

    print(f"torch threads: {torch.get_num_threads()}; {args.steps} steps, batch 8, LoRA r16 all-linear, CPU")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_data(tmp)
        our_wall, tokens = ours(data, tmp / "ours", args.steps, args.dtype)
        base_wall = plain_trainer(data, tmp / "plain", args.steps)
        print(f"real tokens through the optimizer: {tokens}")
        print(f"tunechat finetune ({args.dtype}, packed)  {our_wall:6.1f} s  {tokens / our_wall:6.1f} tok/s")
        print(f"plain Trainer + peft (padded)     {base_wall:6.1f} s  {tokens / base_wall:6.1f} tok/s")
        print(f"speed-up vs plain Trainer: {base_wall / our_wall:.2f}x  (target >= 1.5x)")
        if args.llamafactory:
            lf_wall = llamafactory(args.llamafactory, data, tmp / "lf", args.steps)
            if lf_wall:
                print(f"LLaMA-Factory LoRA (process wall)  {lf_wall:6.1f} s  {tokens / lf_wall:6.1f} tok/s")
                print(f"speed-up vs LLaMA-Factory: {lf_wall / our_wall:.2f}x  (target >= 1.5x)")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
