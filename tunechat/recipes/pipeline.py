"""The one demo pipeline, in the layout every demo writes:

    DIR/data/      train.jsonl and the held-out evaluation data
    DIR/train/     adapter/, checkpoints/, logs/ (loss.png)
    DIR/merged/    the merged model
    DIR/gguf/      its verified q8_0 GGUF, an Ollama Modelfile and a model card (with llama.cpp installed)
    DIR/report.md  before/after (微调前 / 微调后); DIR/metrics.json the same as data

A recipe says what its data, evaluation, training overrides and report are; the pipeline runs the
phases in order (the sixth, the GGUF export and its evaluation on llama.cpp, is the same for
every recipe), times them and writes the outputs atomically."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from datasets_builders.atomic import write_text_atomic
from sdk.engines import BaseEngine
from sdk.training import TrainConfig


class Report(Protocol):
    """An evaluation's result, as the pipeline needs it."""

    def table(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...


class Recipe(Protocol):
    output: str
    titles: tuple[str, str, str, str, str]  # what each phase says it is doing, in order

    def build_data(self, data: Path, base: BaseEngine) -> Path:
        """Write the training file (and any held-out data) into `data`; return the training file."""

    def evaluate(self, engine: BaseEngine, label: str, baseline: Any | None) -> Report:
        """Evaluate `engine`; `baseline` is the "before" report when evaluating "after"."""

    def train_overrides(self) -> dict[str, Any]:
        """TrainConfig fields for this recipe (data, output and resume are the pipeline's)."""

    def report(self, run: "DemoRun") -> str:
        """report.md's text."""


@dataclass
class DemoRun:
    """What a finished pipeline knows: the inputs to the report."""

    output: Path
    config: TrainConfig
    before: Any = None
    after: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)  # the training run's final metrics
    merge_diff: float = 0.0
    gguf: Any = None  # the recipe's evaluation of the GGUF export, on llama.cpp
    timings: dict[str, float] = field(default_factory=dict)

    def time_line(self) -> str:
        return " · ".join(f"{k} {v:.0f} s" for k, v in self.timings.items()) + f" · total {sum(self.timings.values()):.0f} s"


def run_pipeline(recipe: Recipe, export: bool = True) -> tuple[Any, Any, Path]:
    """Build data, evaluate the base model, fine-tune, merge (verified), evaluate the merged
    model, export it to GGUF (unless `export` is False) and write report.md and metrics.json.
    Returns (before, after, report path)."""
    import sdk
    from sdk.training import finetune
    from sdk.training.merge import merge

    out = Path(recipe.output)
    clock = _Clock()
    phases = 6 if export else 5
    say = lambda step, text: print(f"== [{step}/{phases}] {text}", flush=True)  # noqa: E731

    say(1, recipe.titles[0])
    base = sdk.load()
    train_file = recipe.build_data(out / "data", base)
    clock.phase("data")

    say(2, recipe.titles[1])
    before = recipe.evaluate(base, "before", None)
    del base
    clock.phase("before")

    say(3, recipe.titles[2])
    config = TrainConfig.from_sources(None, **{**recipe.train_overrides(), "data": str(train_file),
                                               "output": str(out / "train"), "resume": False})
    result = finetune(config)
    clock.phase("train")

    say(4, recipe.titles[3])
    merged = merge(None, result.adapter, out / "merged", force=True)
    print(f"   merged model matches base + adapter: max logit difference {merged.max_logit_diff:.2e}", flush=True)
    clock.phase("merge")

    say(5, recipe.titles[4])
    after = recipe.evaluate(sdk.load(out / "merged"), "after", before)
    clock.phase("after")

    exported, gguf, gguf_section = None, None, ""
    if export:
        say(6, "export to GGUF (q8_0 + Ollama Modelfile) and evaluate it on llama.cpp")
        exported, gguf, gguf_section = _export(recipe, out, before)
        clock.phase("gguf")

    run = DemoRun(output=out, config=config, before=before, after=after, metrics=result.metrics,
                  merge_diff=merged.max_logit_diff, gguf=gguf, timings=clock.timings)
    report = out / "report.md"
    write_text_atomic(report, recipe.report(run) + gguf_section)
    figures = {"before": before.to_dict(), "after": after.to_dict(), "train": result.metrics, "timings": clock.timings}
    if gguf is not None:
        figures.update(gguf=gguf.to_dict(), export=exported.verification.to_json())
    write_text_atomic(out / "metrics.json", json.dumps(figures, ensure_ascii=False, indent=2) + "\n")
    return before, after, report


def sweep_seeds(recipe: Callable[[Any], Recipe], settings: Any, seeds: Iterable[int], figures: Callable[[Any], dict[str, float]],
                worse_high: frozenset[str], **about: Any) -> dict[str, Any]:
    """Run `recipe(settings)` once per data seed, into OUTPUT/seed-N without the GGUF export
    (`settings` is a dataclass with `seed` and `output`); return and write OUTPUT/seeds.json:
    each seed's `figures(after)` and seconds, their mean and the worst seed's (the highest of the
    `worse_high` figures, the lowest of the others), which is what a user meets. `about` is
    recorded beside them (e.g. the method)."""
    output = Path(settings.output)
    runs = []
    for seed in seeds:
        print(f"\n======== data seed {seed} ========", flush=True)
        seed_output = output / f"seed-{seed}"
        _, after, _ = run_pipeline(recipe(replace(settings, seed=seed, output=str(seed_output))), export=False)
        timings = json.loads((seed_output / "metrics.json").read_text())["timings"]
        runs.append({"seed": seed, **figures(after), "seconds": round(sum(timings.values()), 1)})
    summary = {**about, **summarize_seeds(runs, worse_high | {"seconds"})}
    write_text_atomic(output / "seeds.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return summary


def summarize_seeds(runs: list[dict[str, Any]], worse_high: frozenset[str]) -> dict[str, Any]:
    """{"runs", "mean", "worst"} over the runs' figures (every key but "seed")."""
    keys = [key for key in runs[0] if key != "seed"]
    return {"runs": runs, "mean": {k: sum(r[k] for r in runs) / len(runs) for k in keys},
            "worst": {k: (max if k in worse_high else min)(r[k] for r in runs) for k in keys}}


def _export(recipe: Recipe, out: Path, before: Any) -> tuple[Any, Any, str]:
    """Export the merged model to DIR/gguf/ and evaluate it as "after" was; without llama.cpp,
    say so and go on (everything else works without it)."""
    import importlib.util

    import sdk
    from sdk.engines.llamacpp import INSTALL
    from sdk.export import export_gguf

    if importlib.util.find_spec("llama_cpp") is None:
        print(f"   skipped: {INSTALL}", flush=True)
        return None, None, ""
    exported = export_gguf(out / "merged", out / "gguf" / "model.q8_0.gguf", force=True, ollama=True, progress=False)
    print(f"   {exported.path}: {exported.verification.summary()}", flush=True)
    gguf = recipe.evaluate(sdk.load(exported.path), "gguf", before)
    section = "\n".join(["", "## The GGUF export (llama.cpp, Ollama)", "",
                          f"`{exported.path}` ({exported.size_bytes / 2**20:.0f} MiB, q8_0), verified against the merged "
                          f"model: {exported.verification.summary()}. The same evaluation, run on llama.cpp:", "",
                          "```", gguf.table(), "```", "",
                          f"Ollama: `ollama create mymodel -f {exported.modelfile}` then `ollama run mymodel`.", ""])
    return exported, gguf, section


def cell(text: str, width: int = 160) -> str:
    """Text for one markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")[:width]


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.start = time.perf_counter()

    def phase(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self.start, 1)
        self.start = now
        print(f"== {name} done in {self.timings[name]:.0f} s", flush=True)
