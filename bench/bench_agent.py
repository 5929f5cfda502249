"""Benchmark the agent's overhead: a tool-free Lagent agent turn against a plain `Engine.chat`
turn on the same prompt (target <= 1.1x).

    python bench/bench_agent.py [MODEL] [--max-new-tokens 64] [--repeats 3]

Fair by construction: the plain chat gets the agent's system prompt, so both send the model the
same prompt text (checked), and greedy decoding makes both generate the same tokens (checked
and reported). Calls alternate one at a time, each starting from a cold KV cache, so machine
noise and caching hit both alike. Also reported: the agent's own Python work per turn (lagent
formatting, rendering, parsing) without the model."""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sdk  # noqa: E402
from agents import build_agent, render_prompt  # noqa: E402
from agents.protocols import META_PROMPT  # noqa: E402

PROMPTS = [
    "Explain what a neural network is.", "Write a short poem about the sea.", "How do plants make food?",
    "Describe a day in the life of a cat.", "Why is the sky blue?", "Give three tips for learning to cook.",
]


def timed(run) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = run()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=None)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    engine = sdk.load(args.model)
    settings = {"temperature": 0, "max_new_tokens": args.max_new_tokens}
    agent = build_agent(engine, tools=[], **settings)
    llm = agent._llm

    def cold() -> None:
        engine._cache, engine._cached_ids = None, []  # each call prefills its whole prompt

    def agent_turn(question: str):
        cold()
        result = agent.chat(question)
        return result.response, llm.last_generation

    def plain_turn(question: str):
        cold()
        generation = engine.stream([{"role": "system", "content": META_PROMPT}, {"role": "user", "content": question}],
                                   **settings)
        return generation.result(), generation

    for question in PROMPTS:  # same prompt text, same tokens generated
        messages = [{"role": "system", "content": META_PROMPT}, {"role": "user", "content": question}]
        assert engine.render(messages) == render_prompt(messages[1:], "internlm2", [])
    agent_turn(PROMPTS[0]), plain_turn(PROMPTS[0])  # warm-up

    rows: dict[str, list[tuple[float, float]]] = {"agent": [], "plain": []}
    tokens = {"prompt": [], "completion": []}
    for _ in range(args.repeats):
        for question in PROMPTS:
            a_wall, a_cpu, (a_text, a_gen) = timed(lambda question=question: agent_turn(question))
            p_wall, p_cpu, (p_text, p_gen) = timed(lambda question=question: plain_turn(question))
            assert a_text == p_text and a_gen.completion_tokens == p_gen.completion_tokens, (a_text, p_text)
            assert a_gen.prompt_tokens == p_gen.prompt_tokens
            rows["agent"].append((a_wall, a_cpu))
            rows["plain"].append((p_wall, p_cpu))
            tokens["prompt"].append(a_gen.prompt_tokens)
            tokens["completion"].append(a_gen.completion_tokens)

    python_only = []
    messages = [{"role": "user", "content": PROMPTS[0]}]
    for _ in range(200):  # the agent's own work per turn, no model: format, render, parse
        start = time.perf_counter()
        prompt = agent.format_prompt(messages, 0)
        llm.template_parser(prompt)
        agent.parse_reply("Plants make food by photosynthesis.")
        python_only.append(time.perf_counter() - start)

    def med(name: str, index: int) -> float:
        return statistics.median(row[index] for row in rows[name])

    calls = len(rows["agent"])
    print(f"{calls} turns each, greedy, alternating, cold cache; prompt tokens per turn: "
          f"{min(tokens['prompt'])}-{max(tokens['prompt'])}, generated tokens per turn: "
          f"{min(tokens['completion'])}-{max(tokens['completion'])} (identical text and tokens on both sides)")
    print(f"{'':18}{'wall s (median)':>16}{'CPU s (median)':>16}{'tok/s (wall)':>14}")
    total_tokens = statistics.median(tokens["completion"])
    for name, label in (("plain", "Engine.chat"), ("agent", "agent turn")):
        print(f"{label:18}{med(name, 0):16.3f}{med(name, 1):16.3f}{total_tokens / med(name, 0):14.1f}")
    ratios = [a[0] / p[0] for a, p in zip(rows["agent"], rows["plain"])]
    print(f"agent / plain: wall {med('agent', 0) / med('plain', 0):.3f}x (median of per-turn ratios "
          f"{statistics.median(ratios):.3f}x), CPU {med('agent', 1) / med('plain', 1):.3f}x; target <= 1.1x")
    print(f"agent's own Python work per turn (format + render + parse, no model): "
          f"{statistics.median(python_only) * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
