"""Benchmark `tunechat serve`: the overhead of one request through the server against
`Engine.chat` in process (target <= 1.15x), and the generated tokens/s of 8 concurrent streaming
clients against one client alone.

    python bench/bench_server.py [MODEL] [--max-tokens 64] [--repeats 3]

In-process and server requests alternate one at a time, so the engine and the server (a child
process) never compete for the cores, and background load hits both alike. Greedy decoding
makes both sides generate the same tokens. The server serialises generation, so 8 clients should get about the
throughput of one (each waits its turn): the ratio shows the server adds no loss when
contended, not a gain."""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

import sdk  # noqa: E402
from sdk.server import ServerProcess  # noqa: E402

PROMPTS = [
    "Explain what a neural network is.", "Write a short poem about the sea.", "How do plants make food?",
    "Describe a day in the life of a cat.", "Why is the sky blue?", "Give three tips for learning to cook.",
    "What is the history of the bicycle?", "Tell me about the planet Mars.",
]


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) this process and the server process have used so far: the
    work a request costs, which, unlike wall time, other jobs on a shared machine don't inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return time.process_time() + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def overhead(engine, remote, http: httpx.Client, server_pid: int, prompts: list[str], repeats: int,
             max_tokens: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds per request: in process, streamed through `sdk.load(url)` (what
    tunechat's front ends do), and one plain JSON POST with no client library. The three are
    interleaved request by request (never running at once), so a busy machine slows them alike."""
    messages = [[{"role": "user", "content": p}] for p in prompts]
    body = {"temperature": 0, "max_tokens": max_tokens}
    ways = {
        "in process": lambda m: engine.chat(m, temperature=0, max_new_tokens=max_tokens),
        "streamed": lambda m: remote.chat(m, temperature=0, max_new_tokens=max_tokens),
        "json": lambda m: http.post("chat/completions", json={**body, "messages": m}).raise_for_status(),
    }
    for run in ways.values():
        run(messages[0])  # warm-up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for _ in range(repeats):
        for m in messages:
            for name, run in ways.items():
                wall, cpu = time.perf_counter(), cpu_seconds(server_pid)
                run(m)
                times[name].append((time.perf_counter() - wall, cpu_seconds(server_pid) - cpu))
    return {name: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for name, v in times.items()}


def throughput(remote, server_pid: int, prompts: list[str], max_tokens: int, concurrent: bool) -> tuple[float, float, float]:
    """(generated tokens per wall second, per CPU second, mean wait for the first piece) for the
    prompts sent by one client one after another, or by one client each, all at once. The wait
    counts from the request's own start when alone, from the common start when concurrent."""
    tokens, first_piece = [], []

    def client(prompt: str, start: float) -> None:
        generation = remote.stream([{"role": "user", "content": prompt}], temperature=0, max_new_tokens=max_tokens)
        began = start if concurrent else time.perf_counter()
        for i, _ in enumerate(generation):
            if i == 0:
                first_piece.append(time.perf_counter() - began)
        tokens.append(generation.completion_tokens)

    began, cpu = time.perf_counter(), cpu_seconds(server_pid)
    if concurrent:
        threads = [threading.Thread(target=client, args=(p, began)) for p in prompts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for prompt in prompts:
            client(prompt, began)
    wall, cpu = time.perf_counter() - began, cpu_seconds(server_pid) - cpu
    return sum(tokens) / wall, sum(tokens) / cpu, statistics.mean(first_piece)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=None, help="model directory (default: the embedded model)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the overhead prompts (median taken)")
    args = parser.parse_args()
    model = str(args.model or sdk.embedded_model_path())
    overhead_prompts = PROMPTS[:4]

    engine = sdk.load(model)
    with ServerProcess(model) as server, httpx.Client(base_url=server.url + "/", timeout=600) as http:
        remote = sdk.load(server.url)
        times = overhead(engine, remote, http, server.process.pid, overhead_prompts, args.repeats, args.max_tokens)
        alone = throughput(remote, server.process.pid, PROMPTS, args.max_tokens, concurrent=False)
        crowd = throughput(remote, server.process.pid, PROMPTS, args.max_tokens, concurrent=True)
    local = times["in process"]
    print(f"model {Path(model).name}, greedy, {args.max_tokens} new tokens max, median of {args.repeats} x {len(overhead_prompts)} prompts")
    print(f"  {'':36}{'wall s':>8}{'ratio':>8}{'CPU s':>8}{'ratio':>8}")
    for name, label in [("in process", "Engine.chat in process"), ("streamed", "server, streamed via sdk.load(url)"),
                        ("json", "server, one JSON POST (httpx)")]:
        wall, cpu = times[name]
        print(f"  {label:36}{wall:8.3f}{wall / local[0]:8.3f}{cpu:8.3f}{cpu / local[1]:8.3f}")
    print("  (target: server / in process <= 1.15x; CPU s = client + server processes)")
    print(f"throughput over {len(PROMPTS)} prompts, streamed   tok/s   tok/CPU s   first piece after")
    print(f"  1 client, one request at a time {alone[0]:9.1f}{alone[1]:12.1f}{alone[2]:10.2f} s")
    print(f"  {len(PROMPTS)} concurrent clients            {crowd[0]:9.1f}{crowd[1]:12.1f}{crowd[2]:10.2f} s on average")
    print(f"  ratio {len(PROMPTS)} clients / 1 client       {crowd[0] / alone[0]:9.3f}{crowd[1] / alone[1]:12.3f}"
          "   (serialised: ~1x expected)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
