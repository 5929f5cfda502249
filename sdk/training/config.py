"""`TrainConfig`: every training setting, defaulted and documented in one place. A YAML file and
`tunechat train --flags` set the same fields (flags win over the file)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdk.errors import TunechatError


def _doc(default: Any, help: str, **kwargs: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


OVERLENGTH = ("keep_end", "cut", "skip")
METHODS = ("sft", "dpo", "ipo", "orpo", "simpo")
PAIR_METHODS = METHODS[1:]  # trained on preference pairs (sdk/training/preference.py)


@dataclass
class TrainConfig:
    # --- what to train -------------------------------------------------------------------------
    model: str | None = _doc(None, "base model directory; default: the embedded SmolLM2-135M-Instruct")
    data: str | None = _doc(None, "training data: XTuner conversation JSONL/JSON array, OpenAI messages, alpaca, or tool-call messages")
    eval_data: str | None = _doc(None, "held-out data for evaluation loss (same formats)")
    output: str = _doc("out", "output directory: adapter/, checkpoints/, logs/")
    template: str | None = _doc(None, "named XTuner prompt template; default: the tokenizer's chat template")
    system: str | None = _doc(None, "system prompt for records that have none; also the served model's default")
    method: str = _doc("sft", "sft (supervised, on conversations), or on preference pairs: dpo, ipo (reference: the base "
                       "model, i.e. the adapter switched off), orpo, simpo (no reference)")
    beta: float | None = _doc(None, "preference strength: DPO/IPO β, ORPO λ, SimPO β; default 0.1 (simpo 2.0)")
    rpo_alpha: float = _doc(0.0, "dpo/ipo: add this multiple of the chosen answers' NLL (TRL's rpo_alpha); DPO alone "
                           "may push rejected answers down without making the chosen ones likely")
    # --- model and LoRA ------------------------------------------------------------------------
    bits: int | None = _doc(4, "4 = QLoRA (NF4, double quantization), 8, or 0/none = LoRA on unquantized weights")
    dtype: str = _doc("auto", "compute dtype: auto (bf16 autocast where the hardware has fast bf16: AVX512-BF16/AMX CPUs, bf16 GPUs; else fp32), fp32, bf16")
    lora_r: int = _doc(16, "LoRA rank")
    lora_alpha: int = _doc(32, "LoRA alpha (scale = alpha / r)")
    lora_dropout: float = _doc(0.0, "LoRA dropout")
    target_modules: list[str] = _doc(["all-linear"], "modules to adapt; all-linear = every linear layer but the output head")
    gradient_checkpointing: str = _doc("auto", "keep only each layer's input and recompute its activations in the backward "
                                       "pass: less memory for more compute; auto = on with bits (QLoRA, whose point is "
                                       "memory), off without; on, off")
    # --- optimisation --------------------------------------------------------------------------
    learning_rate: float = _doc(2e-4, "peak learning rate")
    epochs: float = _doc(3.0, "passes over the data (ignored when max_steps > 0)")
    max_steps: int = _doc(0, "optimizer steps; 0 = use epochs")
    batch_size: int = _doc(8, "samples per step per process")
    grad_accum: int = _doc(1, "gradient accumulation steps")
    max_length: int = _doc(512, "longest sample in tokens; see overlength")
    overlength: str = _doc("keep_end", "a sample longer than max_length: keep_end (drop its oldest tokens, so its last "
                           "answer keeps its end-of-turn), cut (keep its start: the answer loses its end) or skip it")
    packing: bool = _doc(True, "concatenate a batch's samples into one padding-free row; they never attend to each other")
    warmup_ratio: float = _doc(0.03, "fraction of steps spent warming the learning rate up")
    scheduler: str = _doc("cosine", "learning-rate schedule: cosine, linear, constant, constant_with_warmup")
    weight_decay: float = _doc(0.0, "AdamW weight decay")
    max_grad_norm: float = _doc(1.0, "gradient clipping")
    seed: int = _doc(42, "random seed (data order, LoRA init)")
    # --- evaluation, saving, logging -----------------------------------------------------------
    evaluation_inputs: list[str] = _doc([], "prompts answered during training (XTuner's EvaluateChatHook)")
    eval_every: int = _doc(0, "steps between evaluations (loss and evaluation_inputs); 0 = only at the end")
    eval_max_new_tokens: int = _doc(64, "answer length for evaluation_inputs")
    save_every: int = _doc(50, "steps between checkpoints (for resume)")
    save_total_limit: int = _doc(2, "checkpoints kept")
    logging_steps: int = _doc(1, "steps between log lines")
    deepspeed: str | None = _doc(None, "a DeepSpeed config JSON (ZeRO); needs deepspeed installed")
    resume: bool = _doc(True, "resume from the last checkpoint in OUTPUT/checkpoints when there is one")
    progress: bool = _doc(True, "show a progress bar")

    def __post_init__(self) -> None:
        if self.bits in (0, "none", "None", "0"):
            self.bits = None
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not _type_ok(value, f.type):
                raise TunechatError(f"train config: {f.name} must be {f.type.replace(' | None', ' or none')}, got {value!r}")
        checks = [
            ("bits", self.bits in (None, 4, 8), "4, 8 or none"),
            ("dtype", self.dtype in ("auto", "fp32", "bf16"), "auto, fp32 or bf16"),
            ("lora_r", self.lora_r >= 1, ">= 1"),
            ("learning_rate", self.learning_rate > 0, "> 0"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("grad_accum", self.grad_accum >= 1, ">= 1"),
            ("max_length", self.max_length >= 16, ">= 16"),
            ("overlength", self.overlength in OVERLENGTH, ", ".join(OVERLENGTH)),
            ("gradient_checkpointing", self.gradient_checkpointing in ("auto", "on", "off"), "auto, on or off"),
            ("method", self.method in METHODS, ", ".join(METHODS)),
            ("beta", self.beta is None or self.beta > 0, "> 0"),
            ("rpo_alpha", self.rpo_alpha >= 0, ">= 0"),
            ("epochs", self.max_steps > 0 or self.epochs > 0, "> 0 (or set max_steps)"),
            ("scheduler", self.scheduler in ("cosine", "linear", "constant", "constant_with_warmup"), "cosine, linear, constant or constant_with_warmup"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise TunechatError(f"train config: {name} must be {what}, got {getattr(self, name)!r}")

    def checkpointing(self, bits: int | None) -> bool:
        """Whether training with `bits` recomputes activations: `auto` means on with quantized weights."""
        return self.gradient_checkpointing == "on" or (self.gradient_checkpointing == "auto" and bool(bits))

    @classmethod
    def from_sources(cls, yaml_path: str | None = None, **overrides: Any) -> "TrainConfig":
        """Defaults, then the YAML file, then explicit overrides (None means "not given")."""
        values: dict[str, Any] = {}
        if yaml_path:
            values.update(_read_yaml(Path(yaml_path)))
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            where = yaml_path or "arguments"
            raise TunechatError(f"{where}: unknown training setting(s) {', '.join(unknown)}; see `tunechat train --help`")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _type_ok(value: Any, annotation: str) -> bool:
    """Check a value against a field's annotation (str, int, float, bool, list[str], X | None)."""
    base, _, optional = annotation.partition(" | ")
    if value is None:
        return bool(optional)
    if base == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if base == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if base == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool}[base])


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    if not path.is_file():
        raise TunechatError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise TunechatError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise TunechatError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return {str(k).replace("-", "_"): v for k, v in data.items()}
