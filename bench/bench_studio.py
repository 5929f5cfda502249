"""The studio's cost: training started from the studio against the same `tunechat train` from a
shell, and how soon the pages answer.

    python bench/bench_studio.py [--steps 12] [--repeats 20]

In one invocation, in pairs (never at the same time; which goes first alternates): the CLI run is
`tunechat train` as a subprocess; the studio run is the same command started as the studio's job
(`jobs.start`, what the Train page's Start calls) while `tunechat studio` serves and headless
Chromium has the Train page open, redrawing its progress as it does for a user (`PROGRESS_SECONDS`, `RECORD_SECONDS`).

The figure is the steady step time: the seconds between the log rows of steps 2..N (one row per
step), so the first step's warm-up and the process start are not in it. Both runs of a pair train
the very same batches and share the moment, so the box's drift cancels in the pair's ratio;
printed are each pair's ratio, their geometric mean with a 95% bootstrap interval, and the
median. Also printed: wall seconds, the time from opening the page to an interactive page, and
from Start to the first loss row the chart draws."""
from __future__ import annotations

import argparse
import math
import random
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


def steady_seconds(output: Path) -> float:
    """Seconds from step 1's log row to step N's: every step but the first."""
    times = {row["step"]: row["time"] for row in jobs.read_log(output / "logs" / "train_log.jsonl") if "loss" in row}
    return times[max(times)] - times[1]


def cli_run(ws: Workspace, run: str, steps: int) -> tuple[float, float]:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tunechat.cli", *argv("data/identity.jsonl", f"runs/{run}", steps)],
                   cwd=ws.root, check=True, capture_output=True)
    return steady_seconds(ws.root / "runs" / run), time.perf_counter() - started


def studio_run(ws: Workspace, run: str, steps: int, page) -> tuple[float, float, float]:
    """The job as the Train page's Start makes it: the page is open and idle, the job starts, and
    the page reruns (Start's `st.rerun`; here Streamlit's R key) into its live panel."""
    page.get(page.current_url.rsplit("/", 1)[0] + "/train")
    wait(page, lambda d: "Start" in d.find_element(By.TAG_NAME, "body").text)
    started = time.perf_counter()
    jobs.start(ws, run, argv("data/identity.jsonl", f"runs/{run}", steps))
    page.find_element(By.TAG_NAME, "body").send_keys("r")
    wait(page, lambda d: f"Run {run}" in d.find_element(By.TAG_NAME, "body").text)
    first = None
    while (state := jobs.state(ws)).running:
        if first is None and state.rows:
            first = time.perf_counter() - started
        time.sleep(0.5)  # the bench's own polling is not the page's: kept light
    wall = time.perf_counter() - started
    assert state.state == "finished", f"the job {state.state} (exit code {state.returncode}):\n{state.log_tail}"
    wait(page, lambda d: f"Finished: {steps} steps" in d.find_element(By.TAG_NAME, "body").text)
    return steady_seconds(ws.root / "runs" / run), wall, first or 0.0


def geometric_mean_interval(ratios: list[float], draws: int = 10_000) -> tuple[float, float, float]:
    """The ratios' geometric mean and a 95% percentile-bootstrap interval of it (seeded)."""
    logs = [math.log(r) for r in ratios]
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(logs, k=len(logs))) for _ in range(draws))
    return (math.exp(statistics.fmean(logs)), math.exp(means[int(0.025 * draws)]), math.exp(means[int(0.975 * draws)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="training steps per run (at least 2)")
    parser.add_argument("--repeats", type=int, default=20, help="pairs of runs")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: the figure is the steps after the first")
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
                for name in ("studio", "cli") if repeat % 2 else ("cli", "studio"):
                    run = f"{name}-{repeat}"
                    rows[name].append(cli_run(ws, run, args.steps) if name == "cli" else
                                      studio_run(ws, run, args.steps, page))
                cli, studio = rows["cli"][-1], rows["studio"][-1]
                print(f"pair {repeat + 1:2}: steady steps CLI {cli[0]:6.2f} s, studio {studio[0]:6.2f} s, "
                      f"ratio {studio[0] / cli[0]:.3f}; wall {cli[1]:5.1f} / {studio[1]:5.1f} s; "
                      f"first loss row {studio[2]:4.1f} s after Start", flush=True)
    print(f"{args.steps} LoRA steps of the embedded model per run, batch 8; {args.repeats} pairs")
    for label, i in (("steady step time", 0), ("wall", 1)):
        ratios = [s[i] / c[i] for s, c in zip(rows["studio"], rows["cli"])]
        mean, low, high = geometric_mean_interval(ratios)
        print(f"studio / CLI, {label}: {mean:.3f}x geometric mean of the pairs (95% interval {low:.3f}-{high:.3f}), "
              f"median {statistics.median(ratios):.3f}x, pairs {min(ratios):.3f}-{max(ratios):.3f} (target <= 1.05x)")
    print(f"opening the page to an interactive page: {interactive:.1f} s; Start to the first loss row: median "
          f"{statistics.median(r[2] for r in rows['studio']):.1f} s")


if __name__ == "__main__":
    main()
