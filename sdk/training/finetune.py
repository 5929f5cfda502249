"""`finetune(config)`: (Q)LoRA fine-tuning on the HF Trainer: supervised, or on preference pairs
(`sdk/training/preference.py`).

The Trainer brings what we should not rewrite: checkpoints and exact resume, `torchrun` /
`accelerate launch` data parallelism (gloo on CPU, NCCL on GPU) and DeepSpeed. What we add:
padding-free packed batches, loss (and vocabulary logits) only where answers are, the one
renderer for samples, and the output layout

    OUTPUT/adapter/      adapter_config.json, adapter_model.safetensors, tunechat.json
    OUTPUT/checkpoints/  Trainer checkpoints (resume)
    OUTPUT/logs/         train_log.jsonl, loss.png, eval_outputs.jsonl
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets_builders.atomic import write_text_atomic
from sdk.checkpoint import TENSOR_BUFFERS, load_causal_lm, return_freed_buffers
from sdk.errors import TunechatError
from sdk.hardware import bf16_is_fast
from sdk.memory import GiB, check_fits, model_size, training_bytes
from sdk.metadata import read_metadata, write_metadata
from sdk.model_card import write_model_card
from sdk.models import quiet_transformers, resolve_model
from sdk.templates import get_template
from sdk.training.attention import use_packed_attention
from sdk.training.config import PAIR_METHODS, TrainConfig
from sdk.training.data import (
    IGNORE,
    Collator,
    agent_settings,
    answer_positions,
    file_fingerprint,
    read_pairs,
    read_samples,
    tokenized_dataset,
)


@dataclass
class TrainResult:
    adapter: Path
    output: Path
    metrics: dict[str, Any] = field(default_factory=dict)


def finetune(config: TrainConfig) -> TrainResult:
    """Train a LoRA adapter as `config` says; returns where it went and the final metrics."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoTokenizer, Trainer, TrainingArguments, set_seed

    from sdk.training.callbacks import EvaluateChat, GracefulStop, JsonlLog, Progress, plot_losses

    if not config.data:
        raise TunechatError("no training data: give --data FILE (or `data:` in the config)")
    quiet_transformers()
    output = Path(config.output)
    base = resolve_model(config.model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    template = get_template(config.template)
    pairs = config.method in PAIR_METHODS
    read = read_pairs if pairs else read_samples
    samples = read(config.data, config.system)  # every record validated before the model loads
    train_set, overlong = tokenized_dataset(samples, config.data, tokenizer, template, config.max_length, config.overlength)
    if overlong:
        done = {"keep_end": "kept their last max_length tokens (their answers' ends)", "cut": "were cut at max_length",
                "skip": "were skipped"}[config.overlength]
        print(f"{config.data}: {overlong} of {len(samples)} samples are longer than max_length={config.max_length} "
              f"tokens and {done} (overlength={config.overlength})", file=sys.stderr, flush=True)
    eval_set = (tokenized_dataset(read(config.eval_data, config.system), config.eval_data, tokenizer, template,
                                  config.max_length, config.overlength)[0] if config.eval_data else None)

    cuda = torch.cuda.is_available()
    bf16 = config.dtype == "bf16" or (config.dtype == "auto" and bf16_is_fast(cuda))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    # Read in the checkpoint's own dtype, tensor by tensor (sdk/checkpoint.py): unquantized weights
    # are widened to fp32 afterwards, as merge does; quantized ones are quantized from it, and
    # prepare_model_for_kbit_training widens the rest.
    load_kwargs: dict[str, Any] = {"dtype": "auto"}
    if config.bits:
        from transformers import BitsAndBytesConfig

        load_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=config.bits == 4,
            load_in_8bit=config.bits == 8,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32,
        )
        load_kwargs["device_map"] = {"": f"cuda:{local_rank}" if cuda else "cpu"}
    checkpointing = config.checkpointing(config.bits)
    if not cuda:  # every local process holds its own copy
        size = model_size(base)
        tokens = config.batch_size * max(map(len, train_set["input_ids"]))  # a step's tokens, at most
        qlora = training_bytes(size, 4, tokens, checkpointing=config.checkpointing(4))
        check_fits(f"training {base.name} ({size.total / 1e9:.2f}B parameters, {f'{config.bits}-bit' if config.bits else 'fp32'})",
                   training_bytes(size, config.bits, tokens, checkpointing) * int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
                   f"train with --bits 4 (QLoRA: about {qlora / GiB:.1f} GiB)" if config.bits is None
                   else "use a smaller model, a smaller --batch-size or --max-length, or a machine with more memory")
    model = load_causal_lm(base, **load_kwargs)
    if not config.bits:
        model = model.float()
    model.config.use_cache = False  # packed samples stay apart only without the KV cache
    if config.packing:
        use_packed_attention(model)
    if config.bits:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        return_freed_buffers(TENSOR_BUFFERS)  # every product dequantizes its weight into a buffer of its own
    if checkpointing:  # non-reentrant: the frozen base's inputs need no gradient for the adapters' to flow
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    set_seed(config.seed)  # the LoRA A matrices are drawn here: same seed, same run (and resume matches it exactly)
    targets: Any = config.target_modules[0] if config.target_modules == ["all-linear"] else config.target_modules
    model = get_peft_model(model, LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=targets, task_type="CAUSAL_LM",
    ))

    steps_per_epoch = -(-len(train_set) // (config.batch_size * config.grad_accum * _world_size()))
    total_steps = config.max_steps or max(1, round(steps_per_epoch * config.epochs))
    if config.deepspeed and "RANK" not in os.environ:
        # Without a launcher DeepSpeed looks for MPI; one process needs no discovery.
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=os.environ.get("MASTER_PORT", "29517"))
    args = TrainingArguments(
        output_dir=str(output / "checkpoints"),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        max_steps=total_steps,
        lr_scheduler_type=config.scheduler,
        warmup_steps=int(total_steps * config.warmup_ratio),
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        bf16=bf16,
        use_cpu=not cuda,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_every,
        save_total_limit=config.save_total_limit,
        eval_strategy="steps" if eval_set is not None and config.eval_every else "no",
        eval_steps=config.eval_every or None,
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        deepspeed=config.deepspeed,
        ddp_find_unused_parameters=False,
    )
    collator = Collator(pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0, packing=config.packing)
    logs = output / "logs"
    log = JsonlLog(logs / "train_log.jsonl", collator)
    stop = GracefulStop()
    callbacks = [log, stop]
    if config.progress:
        callbacks.append(Progress(collator))
    if config.evaluation_inputs:
        callbacks.append(EvaluateChat(config.evaluation_inputs, tokenizer, template, config.system,
                                      logs / "eval_outputs.jsonl", config.eval_every, config.eval_max_new_tokens))
    common = {"model": model, "args": args, "train_dataset": train_set, "eval_dataset": eval_set,
              "data_collator": collator, "callbacks": callbacks}
    if pairs:
        from sdk.training.preference import DEFAULT_BETA, PreferenceTrainer

        trainer = PreferenceTrainer(**common, method=config.method, beta=config.beta or DEFAULT_BETA[config.method],
                                    rpo_alpha=config.rpo_alpha)
    else:
        trainer = Trainer(**common, compute_loss_func=answer_loss)
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    checkpoint = _last_checkpoint(output / "checkpoints") if config.resume else None
    _trim_logs(logs, _checkpoint_step(checkpoint))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    wall = time.perf_counter() - started
    metrics: dict[str, Any] = {
        "train_loss": round(float(result.training_loss), 6),
        "final_loss": log.last_loss,
        "steps": int(trainer.state.global_step),
        "train_seconds": round(wall, 2),
        "tokens": collator.tokens,
        "tokens_per_second": round(collator.tokens / wall, 1) if wall else None,
        "resumed_from": checkpoint.name if checkpoint else None,
        "overlong_samples": overlong,  # longer than max_length, handled as config.overlength says
        "stopped": stop.requested,  # by SIGTERM, at `steps` (of `max_steps`): the same command resumes
        "max_steps": total_steps,
        "gradient_checkpointing": checkpointing,
    }
    if eval_set is not None:
        metrics["eval_loss"] = round(float(trainer.evaluate()["eval_loss"]), 6)

    adapter = output / "adapter"
    if trainer.is_world_process_zero():
        model.save_pretrained(adapter)
        write_metadata(adapter, {
            "template": config.template,
            "system": config.system,
            "stop_words": [],
            "base_model": str(base.resolve()) if config.model else None,  # None: the embedded model
            "agent": None if pairs else agent_settings(samples),  # tools and protocol, for tool-call data
            "data": str(config.data),
            "data_sha256": file_fingerprint(config.data),
            "metrics": metrics,
            "config": config.to_dict(),
        })
        write_model_card(adapter, "adapter", read_metadata(adapter))
        plot_losses(logs / "train_log.jsonl", logs / "loss.png")
        write_text_atomic(logs / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return TrainResult(adapter=adapter, output=output, metrics=metrics)


def answer_loss(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
    """Cross-entropy on the answer tokens only. The collator asked the model for logits only at
    `answer_positions(labels)`, so here logits[:, i] predicts the label after that position."""
    import torch

    keep = answer_positions(labels)
    targets = labels[:, 1:][:, keep]
    logits = outputs.logits.float()
    total = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                              ignore_index=IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
    return total / count


def _checkpoint_step(checkpoint: Path | None) -> int:
    return int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint else 0


def _trim_logs(logs: Path, upto_step: int) -> None:
    """Forget log lines past the checkpoint we resume from (all of them on a fresh start)."""
    for name in ("train_log.jsonl", "eval_outputs.jsonl"):
        path = logs / name
        if path.is_file():
            rows = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= upto_step]
            write_text_atomic(path, "".join(row + "\n" for row in rows))


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _last_checkpoint(directory: Path) -> Path | None:
    from transformers.trainer_utils import get_last_checkpoint

    return Path(found) if directory.is_dir() and (found := get_last_checkpoint(str(directory))) else None
