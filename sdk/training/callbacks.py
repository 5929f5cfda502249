"""What a training run shows and writes while it runs: a progress bar with loss, tokens/s and
ETA; a JSONL log; XTuner's EvaluateChatHook (answers to fixed prompts every N steps and at the
end); the loss plot; and a graceful stop on SIGTERM (a checkpoint first)."""
from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from datasets_builders.atomic import atomic_file
from sdk.templates import Template


class JsonlLog(TrainerCallback):
    """One JSON line per Trainer log event (loss, learning rate, eval loss) plus throughput."""

    def __init__(self, path: Path, collator: Any):
        self.path = path
        self.collator = collator
        self.last_loss: float | None = None
        self._start = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()
        if state.is_world_process_zero:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            self.last_loss = round(float(logs["loss"]), 6)
        elapsed = time.perf_counter() - self._start
        row = {"step": state.global_step, "max_steps": state.max_steps, "time": round(time.time(), 3),
               **{k: _plain(v) for k, v in logs.items()},
               "tokens_per_second": round(self.collator.tokens / elapsed, 1) if elapsed else None}
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


class GracefulStop(TrainerCallback):
    """SIGTERM during training ends it after the current step, with a checkpoint of that step, so
    the same command resumes from there (the studio's Stop; `kill PID` in a shell). Outside
    `train()` the previous handler is back. Only the main thread can take signals."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._request)

    def _request(self, signum: int, frame: Any) -> None:
        self.requested = True

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True

    def on_train_end(self, args, state, control, **kwargs):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


class Progress(TrainerCallback):
    """A tqdm bar over optimizer steps with the latest loss and tokens/s (rank 0 only)."""

    def __init__(self, collator: Any):
        self.collator = collator
        self.bar = None
        self._start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="training", unit="step", dynamic_ncols=True)
            self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            rate = self.collator.tokens / max(time.perf_counter() - self._start, 1e-9)
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", tok_s=f"{rate:.0f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()


class EvaluateChat(TrainerCallback):
    """Answers `prompts` with the model being trained, through the serving Engine (same template
    and system prompt as serving), every `every` steps (0: only at the end). Answers go to a
    JSONL file and the log."""

    def __init__(self, prompts: list[str], tokenizer: Any, template: Template | None, system: str | None,
                 path: Path, every: int, max_new_tokens: int):
        self.prompts = prompts
        self.tokenizer = tokenizer
        self.template = template
        self.system = system
        self.path = path
        self.every = every
        self.max_new_tokens = max_new_tokens

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every and state.global_step % self.every == 0 and state.global_step < state.max_steps:
            self._answer(state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._answer(state, model)

    def _answer(self, state: Any, model: Any) -> None:
        if not state.is_world_process_zero or model is None:
            return
        from sdk.engines import Engine

        was_training = model.training
        model.eval()
        model.config.use_cache = True
        engine = Engine(model, self.tokenizer, template=self.template, system=self.system)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            for prompt in self.prompts:
                answer = engine.chat([{"role": "user", "content": prompt}], temperature=0, max_new_tokens=self.max_new_tokens)
                handle.write(json.dumps({"step": state.global_step, "input": prompt, "output": answer}, ensure_ascii=False) + "\n")
                print(f"[eval step {state.global_step}] {prompt!r} -> {answer!r}", flush=True)
        model.config.use_cache = False
        model.train(was_training)


def plot_losses(log: Path, out: Path) -> None:
    """loss.png: training loss per step, and eval loss where it was measured; for preference
    training, beside it the reward margin and accuracy (chosen over rejected)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()] if log.is_file() else []
    series = lambda key: [(r["step"], r[key]) for r in rows if key in r]  # noqa: E731
    preference = bool(series("reward_margin"))
    fig, axes = plt.subplots(1, 2 if preference else 1, figsize=(12 if preference else 7, 4), dpi=100, squeeze=False)
    panels = [(axes[0][0], "loss", [("loss", "train loss", "-"), ("eval_loss", "eval loss", "o-")])]
    if preference:
        panels.append((axes[0][1], "reward", [("reward_margin", "reward margin", "-"), ("reward_accuracy", "accuracy", "-"),
                                               ("eval_reward_margin", "eval reward margin", "o-")]))
    for ax, ylabel, lines in panels:
        for key, label, style in lines:
            if series(key):
                ax.plot(*zip(*series(key)), style, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_file(out, "wb") as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def _plain(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value
