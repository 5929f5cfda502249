"""GGUF export and the llama.cpp engine, side by side in one invocation (compare the ratios):

- export time, file size, and each file's verification, per quant type;
- decode tokens/s of `sdk.load(gguf)` against llama-cpp-python's own `create_completion` on the
  same loaded file, the same rendered prompt and the same greedy tokens, alternating run by run
  in one process;
- the same against tunechat's PyTorch `Engine` on the HF model, fp32 and bf16;
- time to first token and peak RSS of each; each file and each PyTorch dtype in a fresh process.

    python bench/bench_gguf.py [--tokens 128] [--repeats 3] [--quants f16,bf16,q8_0,q5_k_m,q4_k_m]"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]


def measure(kind: str, path: str, tokens: int, repeats: int, prompt: str) -> dict:
    """In this (fresh) process: load, warm up, then the median decode rate and first-token time.

    kind "pair" loads the GGUF once and alternates, run by run, tunechat's engine and
    llama-cpp-python's own `create_completion` on the same `Llama` (`prompt` is PROMPT as tunechat
    renders it; the engine renders its own): both share the process, the weights and the moment, so
    their ratio is not the noise between two processes."""
    import sdk

    started = time.perf_counter()
    options = {"pytorch-fp32": {"dtype": "fp32"}, "pytorch-bf16": {"dtype": "bf16"}}.get(kind, {})
    engine = sdk.load(path, **options)
    load = time.perf_counter() - started

    def ours() -> tuple[float, float, int]:
        if hasattr(engine, "_cache"):
            engine._cache, engine._cached_ids = None, []  # cold prefill, as create_completion's reset
        else:
            engine.llm.reset()
        t0 = time.perf_counter()
        first = None
        generation = engine.stream(PROMPT, temperature=0, max_new_tokens=tokens)
        for _ in generation:
            first = first or time.perf_counter()
        return first - t0, time.perf_counter() - first, generation.completion_tokens

    def theirs() -> tuple[float, float, int]:
        engine.llm.reset()
        t0 = time.perf_counter()
        first, count = None, 0
        for _ in engine.llm.create_completion(prompt, max_tokens=tokens, temperature=0, top_k=1, min_p=0.0, stream=True):
            count += 1
            first = first or time.perf_counter()
        return first - t0, time.perf_counter() - first, count

    runners = {"tunechat": ours, "create_completion": theirs} if kind == "pair" else {kind: ours}
    for run in runners.values():
        run()  # warm-up
    runs: dict[str, list] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            runs[name].append(run())
    rows = {name: {"kind": name, "tokens": min(r[2] for r in rs), "load_s": round(load, 2),
                   "ttft_s": round(statistics.median(r[0] for r in rs), 3),
                   "tok_s": round(statistics.median(_rate(r) for r in rs), 1), "peak_rss_mib": _peak_rss_mib()}
            for name, rs in runs.items()}
    if kind == "pair":
        rows["ratio"] = statistics.median(_rate(a) / _rate(b) for a, b in zip(runs["tunechat"], runs["create_completion"]))
    return rows


def _rate(run: tuple[float, float, int]) -> float:
    """Tokens after the first, over the time after it."""
    return (run[2] - 1) / run[1]


def _peak_rss_mib() -> int:
    """This process's peak resident memory. Not getrusage's ru_maxrss: on Linux it survives exec,
    so a child started by a big parent reports the parent's peak."""
    status = Path("/proc/self/status")
    if status.is_file():
        line = next(line for line in status.read_text().splitlines() if line.startswith("VmHWM:"))
        return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def in_fresh_process(kind: str, path: str, tokens: int, repeats: int, prompt: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one", kind, path, "--tokens", str(tokens), "--repeats", str(repeats),
                          "--prompt", prompt], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quants", default="f16,bf16,q8_0,q5_k_m,q4_k_m")
    parser.add_argument("--one", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--prompt", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one, args.tokens, args.repeats, args.prompt)))
        return

    from transformers import AutoTokenizer

    from sdk.errors import TunechatError
    from sdk.export import export_gguf
    from sdk.metadata import read_metadata
    from sdk.models import embedded_model_path
    from sdk.templates import get_template, render_prompt

    model = str(embedded_model_path())
    prompt = render_prompt(PROMPT, get_template(read_metadata(model).get("template")), AutoTokenizer.from_pretrained(model))
    print(f"{args.tokens} greedy tokens (the answer must not end sooner: the prompt asks for a long story), "
          f"median of {args.repeats}, each file in a fresh process")
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        print("\nexport                  seconds  MiB   verification")
        for quant in args.quants.split(","):
            try:
                result = export_gguf(None, Path(tmp) / f"smol.{quant}.gguf", quant=quant, progress=False)
            except TunechatError as exc:
                print(f"  {quant:<8}              refused: {exc}")
                continue
            files[quant] = str(result.path)
            print(f"  {quant:<8}              {result.seconds:6.1f} {result.size_bytes / 2**20:6.1f}  {result.verification.summary()}")

        baselines = {kind: in_fresh_process(kind, model, args.tokens, args.repeats, prompt)[kind] for kind in ("pytorch-fp32", "pytorch-bf16")}
        print("\nengine                          tok/s   TTFT s  load s  peak RSS MiB")
        for kind, row in baselines.items():
            print(f"  {kind:<28} {row['tok_s']:6.1f}  {row['ttft_s']:6.3f}  {row['load_s']:6.2f}  {row['peak_rss_mib']:6d}")
        for quant, path in files.items():
            pair = in_fresh_process("pair", path, args.tokens, args.repeats, prompt)
            ours, theirs = pair["tunechat"], pair["create_completion"]
            for label, row in [(f"sdk.load({quant})", ours), (f"create_completion({quant})", theirs)]:
                print(f"  {label:<28} {row['tok_s']:6.1f}  {row['ttft_s']:6.3f}  {row['load_s']:6.2f}  {row['peak_rss_mib']:6d}")
            print(f"    ratio sdk.load/create_completion = {pair['ratio']:.2f}x, median of the alternating pairs (target >= 0.95x); "
                  f"vs PyTorch fp32 {ours['tok_s'] / baselines['pytorch-fp32']['tok_s']:.1f}x (target >= 4x), "
                  f"vs bf16 {ours['tok_s'] / baselines['pytorch-bf16']['tok_s']:.1f}x (target >= 2x)")


if __name__ == "__main__":
    main()
