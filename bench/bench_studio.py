"""The studio's cost: training started from the studio against the same `tunechat train` from a
shell, and how soon the pages answer.

    python bench/bench_studio.py [--steps 20] [--repeats 2]

In one invocation, alternating (never at the same time): the CLI run is `tunechat train` as a
subprocess; the studio run is the same command started as the studio's job (`jobs.start`, what
the Train page's Start calls) while `tunechat studio` serves and headless Chromium has the Train
page open, redrawing its progress as it does for a user (`REDRAW_SECONDS`). Printed: each run's training-loop seconds
and wall seconds, the studio/CLI ratios of the medians, the time from opening the page to an
interactive page, and from Start to the first loss row the chart draws. The ratio that counts is
the median of the per-pair ratios: a pair shares the moment, so the box's drift cancels."""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_train import write_data  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from tests.browser import serve, wait, windows  # noqa: E402
from tunechat.studio import jobs  # noqa: E402
from tunechat.studio.workspace import Workspace  # noqa: E402


def argv(data: str, output: str, steps: int) -> list[str]:
    return ["train", "--data", data, "--output", output, "--max-steps", str(steps), "--bits", "none", "--no-progress"]


def metrics(output: Path) -> dict:
    return json.loads((output / "logs" / "metrics.json").read_text())


def cli_run(ws: Workspace, run: str, steps: int) -> tuple[float, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tunechat.cli", *argv("data/identity.jsonl", f"runs/{run}", steps)],
                   cwd=ws.root, check=True, capture_output=True)
    return metrics(ws.root / "runs" / run)["train_seconds"], time.perf_counter() - started


def studio_run(ws: Workspace, run: str, steps: int, page) -> tuple[float, float, float]:
    page.get(page.current_url.rsplit("/", 1)[0] + "/train")
    started = time.perf_counter()
    jobs.start(ws, run, argv("data/identity.jsonl", f"runs/{run}", steps))
    first = None
    while (state := jobs.state(ws)).running:
        if first is None and state.rows:
            first = time.perf_counter() - started
        time.sleep(0.5)  # the bench's own polling is not the page's: kept light
    assert state.state == "finished", f"the job {state.state} (exit code {state.returncode}):\n{state.log_tail}"
    wait(page, lambda d: f"Run {run}" in d.find_element(By.TAG_NAME, "body").text)
    return metrics(ws.root / "runs" / run)["train_seconds"], time.perf_counter() - started, first or 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "workspace")
        write_data(ws.root / "data")
        rows: dict[str, list[tuple[float, ...]]] = {"cli": [], "studio": []}
        with serve(["studio", "--workspace", str(ws.root)], Path(tmp) / "studio.log") as url, windows(Path(tmp)) as open_window:
            page = open_window(1280, 900)
            opened = time.perf_counter()
            page.get(url)
            wait(page, lambda d: d.find_element(By.CSS_SELECTOR, "input[type=file]"))
            interactive = time.perf_counter() - opened
            for repeat in range(args.repeats):
                rows["cli"].append(cli_run(ws, f"cli-{repeat}", args.steps))
                rows["studio"].append(studio_run(ws, f"studio-{repeat}", args.steps, page))
    print(f"{args.steps} LoRA steps of the embedded model, batch 8; {args.repeats} runs each, alternating")
    for name, runs in rows.items():
        for row in runs:
            extra = f"  first loss row {row[2]:5.1f} s after Start" if len(row) > 2 else ""
            print(f"  {name:6}  training loop {row[0]:6.1f} s  wall {row[1]:6.1f} s{extra}")
    for label, i in (("training loop", 0), ("wall", 1)):
        medians = statistics.median(r[i] for r in rows["studio"]) / statistics.median(r[i] for r in rows["cli"])
        pairs = statistics.median(s[i] / c[i] for s, c in zip(rows["studio"], rows["cli"]))
        print(f"studio / CLI, {label}: {pairs:.3f}x median of the alternating pairs, {medians:.3f}x of the medians "
              f"(target <= 1.05x)")
    print(f"opening the page to an interactive page: {interactive:.1f} s")


if __name__ == "__main__":
    main()
