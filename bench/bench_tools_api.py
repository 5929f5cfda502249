"""Benchmark OpenAI function calling on `tunechat serve`, against the Lagent agent, in one run:

1. overhead: one tools request through the server (`tools=[calculator]`, non-streamed) against
   the in-process agent's model call for the same question (the same prompt, byte for byte, and
   the same greedy tokens); target <= 1.1x;
2. solve rate on held-out word problems through the OpenAI tools API (the client runs the
   calculator and sends `role: "tool"` results back) against the Lagent agent over the same
   served model (`sdk.load(url)`); target: equal within 2 points.

    python bench/bench_tools_api.py [MODEL] [--tasks 50] [--repeats 3]

MODEL should be a tool fine-tune (`tunechat demo --tools` writes one to demo-tools-out/merged);
the base model solves none either way. In-process and server requests alternate one at a time,
so the two never compete for the cores."""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402

import sdk  # noqa: E402
from agents import render_prompt  # noqa: E402
from agents.evaluate import evaluate_tool_use, same_number  # noqa: E402
from agents.openai_tools import openai_function  # noqa: E402
from agents.tool_eval_sets import eval_tasks  # noqa: E402
from agents.tools import resolve_tools  # noqa: E402
from agents.tools.calculator import calculate  # noqa: E402
from sdk.errors import TunechatError  # noqa: E402
from sdk.server import ServerProcess  # noqa: E402

CALCULATOR = openai_function(resolve_tools(["calculator"])[0])
MAX_TOKENS = 96
STOPS = ["<|action_end|>", "<|im_end|>"]  # what the agent stops its model at


def api_solves(client: openai.OpenAI, model: str, task: dict, max_rounds: int = 4) -> bool:
    """The task through the tools API as the agent runs it: up to 4 model turns; solved when the
    last successful calculator result and the final answer both state the expected number."""
    messages = [{"role": "user", "content": task["question"]}]
    last_result = None
    for _ in range(max_rounds):
        choice = client.chat.completions.create(model=model, messages=messages, tools=[CALCULATOR], temperature=0,
                                                max_tokens=MAX_TOKENS).choices[0]
        if not choice.message.tool_calls:
            answer = choice.message.content or ""
            return last_result is not None and same_number(last_result, task["answer"]) and same_number(answer, task["answer"])
        messages.append(choice.message.model_dump(exclude_none=True))
        for call in choice.message.tool_calls:
            try:
                result = calculate(**json.loads(call.function.arguments)) if call.function.name == "Calculator" else None
            except (TunechatError, TypeError, ValueError) as exc:
                result = f"error: {exc}"
            if result is not None and not str(result).startswith("error"):
                last_result = str(result)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": str(result)})
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=None)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    tasks = eval_tasks("heldout", args.tasks)  # the tool demo's tuning set

    engine = sdk.load(args.model)
    with ServerProcess(*([args.model] if args.model else [])) as server:
        client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=600)
        name = client.models.list().data[0].id
        question = tasks[0]["question"]
        prompt = render_prompt([{"role": "user", "content": question}], "internlm2", ["calculator"])  # the agent's
        inproc, served = [], []
        for _ in range(args.repeats + 1):  # the first round warms both up
            start = time.perf_counter()
            engine.generate(prompt, temperature=0, max_new_tokens=MAX_TOKENS, stop_words=STOPS).result()
            inproc.append(time.perf_counter() - start)
            start = time.perf_counter()
            client.chat.completions.create(model=name, messages=[{"role": "user", "content": question}],
                                           tools=[CALCULATOR], temperature=0, max_tokens=MAX_TOKENS)
            served.append(time.perf_counter() - start)
        a, b = statistics.median(inproc[1:]), statistics.median(served[1:])
        print(f"one model turn, in-process agent   {a * 1000:7.0f} ms")
        print(f"one tools request through serve    {b * 1000:7.0f} ms")
        print(f"ratio served/in-process = {b / a:.2f}x  (target <= 1.1x)")

        agent_report = evaluate_tool_use(sdk.load(server.url), tasks, max_new_tokens=MAX_TOKENS)
        api = sum(api_solves(client, name, task) for task in tasks) / len(tasks)
        print(f"solved through the Lagent agent (served model)  {agent_report.solved_rate:6.1%}  ({len(tasks)} tasks)")
        print(f"solved through the OpenAI tools API             {api:6.1%}")
        print(f"difference = {abs(api - agent_report.solved_rate) * 100:.1f} points  (target <= 2)")


if __name__ == "__main__":
    main()
