"""Decode speed of the Engine against a bare `model.generate`, load time of the cached model
against the first conversion, and decode tokens/s for fp32, bf16 and 4-bit.

    python bench/bench_decode.py [--tokens 128] [--repeats 3]

Everything is measured in this one invocation (these machines are noisy: compare ratios)."""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import torch

import sdk
from sdk.models import embedded_model_path

PROMPT = [{"role": "user", "content": "Write a long story about a dragon who learns to cook."}]


def engine_tokens_per_s(engine: sdk.Engine, tokens: int) -> float:
    engine._cache, engine._cached_ids = None, []  # a cold prefill, like generate()
    start = time.perf_counter()
    generation = engine.stream(PROMPT, max_new_tokens=tokens, temperature=0)
    for _ in generation:
        pass
    return generation.completion_tokens / (time.perf_counter() - start)


def generate_tokens_per_s(engine: sdk.Engine, tokens: int) -> float:
    ids = torch.tensor([engine.encode(engine.render(PROMPT))])
    start = time.perf_counter()
    with torch.inference_mode():
        out = engine.model.generate(ids, max_new_tokens=tokens, do_sample=False)
    return (out.shape[1] - ids.shape[1]) / (time.perf_counter() - start)


def median(fn, repeats: int) -> float:
    fn()  # warm-up
    return statistics.median(fn() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}, {args.tokens} new tokens, greedy, median of {args.repeats}")

    engine = sdk.load()
    ours = median(lambda: engine_tokens_per_s(engine, args.tokens), args.repeats)
    bare = median(lambda: generate_tokens_per_s(engine, args.tokens), args.repeats)
    print(f"Engine.stream      {ours:6.1f} tok/s")
    print(f"model.generate     {bare:6.1f} tok/s")
    print(f"ratio stream/generate = {ours / bare:.2f}x  (target >= 0.95x)")

    for label, kwargs in [("bf16", {"dtype": "bf16"}), ("4-bit", {"bits": 4})]:
        other = sdk.load(**kwargs)
        print(f"{label:<6} Engine.stream {median(lambda other=other: engine_tokens_per_s(other, args.tokens), args.repeats):6.1f} tok/s")
        del other
    print(f"fp32   Engine.stream {ours:6.1f} tok/s")

    # First conversion into a fresh cache directory against loading that cached conversion, in
    # this process (libraries already imported: both figures are the work itself).
    with tempfile.TemporaryDirectory() as home:
        os.environ["TUNECHAT_HOME"] = home
        start = time.perf_counter()
        embedded_model_path(progress=False)
        convert = time.perf_counter() - start
        start = time.perf_counter()
        sdk.load()
        load = time.perf_counter() - start
    print(f"first conversion {convert:5.1f} s; load of the cached conversion {load:4.2f} s")
    print(f"ratio conversion/cached-load = {convert / load:.1f}x  (target >= 10x)")


if __name__ == "__main__":
    main()
