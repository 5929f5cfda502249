"""Scale on one machine: a random-weight model of about 1.5B parameters (Qwen3's architecture at
Qwen2.5-1.5B's shape, SmolLM2's tokenizer), built locally and cached, through training, merge and
loading on this box. Each step runs as `tunechat ...` (or a short Python child) in a fresh process,
one at a time, so its peak RSS is its own (from wait4).

    LoRA fp32 and QLoRA NF4 training   peak RSS, seconds per step; QLoRA's peak / LoRA's (target <= 45%),
                                        each at its default (QLoRA with gradient checkpointing), and QLoRA without
    merge --max-shard-size 500MB        peak RSS / the merged model's size on disk (target <= 1.5x), verified
    load + greedy decode                fp32, bf16, 4-bit: load seconds, peak RSS, tokens/s

Beside each peak, sdk.memory's estimate, which the commands check before they start: an estimate
below its peak would let a job start that the machine cannot hold.

    python bench/bench_scale.py [--layers 28] [--steps 3] [--tokens 16]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sdk.memory import GiB, loading_bytes, merge_bytes, model_size, training_bytes  # noqa: E402
from sdk.models import embedded_model_path, tunechat_home  # noqa: E402

SHAPE = {"hidden_size": 1536, "intermediate_size": 8960, "num_attention_heads": 12, "num_key_value_heads": 2, "head_dim": 128,
         "max_position_embeddings": 4096, "tie_word_embeddings": False}
DECODE = ("import json, sys, time\nimport sdk\nt = time.perf_counter()\nengine = sdk.load(sys.argv[1], **json.loads(sys.argv[2]))\n"
          "loaded = time.perf_counter() - t\ng = engine.stream([{'role': 'user', 'content': 'Tell me about the sea.'}],"
          " temperature=0, max_new_tokens=int(sys.argv[3]))\nt = time.perf_counter()\nfirst = None\nfor _ in g:\n"
          "    first = first or time.perf_counter()\nn = g.completion_tokens\nprint(json.dumps({'load_s': loaded,"
          " 'tokens': n, 'tokens_per_s': (n - 1) / (time.perf_counter() - first) if n > 1 else 0.0}))\n")


def build(layers: int) -> Path:
    """The random-weight model, bf16 on disk (training and merge read it as fp32), built once."""
    out = tunechat_home() / "bench" / f"qwen3-1.5b-{layers}l"
    if (out / "config.json").is_file():
        return out
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_path())
    config = AutoConfig.for_model("qwen3", vocab_size=len(tokenizer), num_hidden_layers=layers, dtype="bfloat16", **SHAPE)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=out.parent))
    model.save_pretrained(tmp, max_shard_size="1GB")
    tokenizer.save_pretrained(tmp)
    tmp.rename(out)
    return out


def measured(args: list[str]) -> tuple[float, int, str]:
    """Run a child; its wall seconds, peak RSS in bytes and stdout. A failure stops the bench. The
    child's ru_maxrss starts at this process's peak when it forks (exec keeps it), a floor far below
    every step here: this process never loads weights."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(args, stdout=out, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"failed: {' '.join(args)}\n{err.read()[-3000:]}")
        return seconds, usage.ru_maxrss * 1024, out.read()


def tunechat(*args: str) -> list[str]:
    return [sys.executable, "-m", "tunechat.cli", *args]


def seconds_per_step(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "logs/train_log.jsonl").read_text().splitlines()]
    times = [row["time"] for row in rows if "loss" in row]
    return (times[-1] - times[0]) / (len(times) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=28, help="decoder layers (28: about 1.46B parameters)")
    parser.add_argument("--steps", type=int, default=3, help="training steps per run (the first is not timed)")
    parser.add_argument("--tokens", type=int, default=16, help="greedy tokens decoded per precision")
    args = parser.parse_args()

    model = build(args.layers)
    size = model_size(model)
    print(f"model: {model} ({size.total / 1e9:.2f}B parameters, {size.quantizable / 1e9:.2f}B in quantizable Linear layers)")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    data = work / "identity.jsonl"
    data.write_text("".join(json.dumps({"conversation": [{"input": q, "output": "I am Ada's assistant, made by Ada."}]}) + "\n"
                            for q in ["Who are you?", "What is your name?", "Introduce yourself.", "Who made you?"]))
    rows = []
    peaks = {}
    for name, bits, checkpointing in [("LoRA fp32", "none", "auto"), ("QLoRA NF4", "4", "auto"), ("QLoRA, no ckpt", "4", "off")]:
        run = work / name.split()[0].lower().strip(",") / checkpointing
        seconds, peak, _ = measured(tunechat("train", "--model", str(model), "--data", str(data), "--output", str(run),
                                             "--bits", bits, "--dtype", "fp32", "--max-steps", str(args.steps),
                                             "--batch-size", "4", "--save-every", "1000", "--no-progress",
                                             "--gradient-checkpointing", checkpointing))
        peaks[name] = peak
        done = json.loads((run / "logs/metrics.json").read_text())
        tokens = -(-done["tokens"] // done["steps"])  # the run's own tokens per step (the command checks an upper bound)
        estimate = training_bytes(size, None if bits == "none" else 4, tokens, checkpointing=bits != "none" and checkpointing != "off")
        rows.append((f"train {name}", peak, estimate, f"{seconds_per_step(run):.1f} s/step, {seconds:.0f} s in all"))
    ratio = peaks["QLoRA NF4"] / peaks["LoRA fp32"]
    rows.append(("QLoRA / LoRA peak", None, None, f"{ratio:.0%} (target <= 45%: {'met' if ratio <= 0.45 else 'NOT met'})"))

    merged = work / "merged"
    seconds, peak, _ = measured(tunechat("merge", str(model), str(work / "lora" / "auto" / "adapter"), str(merged), "--max-shard-size", "500MB"))
    on_disk = sum(f.stat().st_size for f in merged.iterdir() if f.suffix == ".safetensors")
    shards = len(list(merged.glob("*.safetensors")))
    rows.append(("merge (verified)", peak, merge_bytes(size), f"{peak / on_disk:.2f}x the {on_disk / GiB:.1f} GiB written "
                 f"({shards} shards; target <= 1.5x: {'met' if peak <= 1.5 * on_disk else 'NOT met'}), {seconds:.0f} s"))

    merged_size = model_size(merged)
    for name, options in [("fp32", {"dtype": "fp32"}), ("bf16", {"dtype": "bf16"}), ("4-bit", {"bits": 4})]:
        _, peak, out = measured([sys.executable, "-c", DECODE, str(merged), json.dumps(options), str(args.tokens)])
        result = json.loads(out.strip().splitlines()[-1])
        estimate = loading_bytes(merged_size, options.get("bits"), options.get("dtype", "fp32"))
        rows.append((f"load + decode {name}", peak, estimate,
                     f"load {result['load_s']:.1f} s, {result['tokens_per_s']:.2f} tokens/s ({result['tokens']} tokens)"))

    print(f"\n{'step':<22} {'peak RSS':>9} {'estimate':>9}  notes")
    for step, peak, estimate, note in rows:
        cells = [f"{v / GiB:.2f} GiB" if v is not None else "" for v in (peak, estimate)]
        flag = "  ESTIMATE BELOW PEAK" if peak is not None and estimate < peak else ""
        print(f"{step:<22} {cells[0]:>9} {cells[1]:>9}  {note}{flag}")
    print(f"\n(work files in {work}; delete when done)")


if __name__ == "__main__":
    main()
