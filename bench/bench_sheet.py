"""Benchmark: `tunechat data sheet` against `pandas.read_excel` on the same 100,000-row workbook.

The workbook is written the way Excel writes one (shared strings, a used-range dimension), with
the tutorial's MedQA columns. Each reader runs in a fresh process, so its peak RSS is its own;
wall and CPU times cover the work only (imports excluded), best of --repeat rounds that interleave
the readers so that a busy machine slows them alike (CPU time is the steadier figure there). Ours converts all the way to JSONL; pandas only reads. Peak memory is the process's VmHWM (see tests/data_helpers.peak_rss_mb). Exits 1 if ours is
not faster than pandas.

    python bench/bench_sheet.py [--rows 100000] [--repeat 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from data_helpers import write_excel_xlsx  # noqa: E402

RUNNERS = {
    "tunechat data sheet (xlsx -> JSONL)": """
from tunechat.cli import main
start()
assert main(["data", "sheet", SOURCE, "--sheet", "DrugQA", "--input", "A", "--output", "D", "-o", OUT]) == 0
""",
    "pandas.read_excel (whole sheet)": """
import pandas
start()
frame = pandas.read_excel(SOURCE, sheet_name="DrugQA")
""",
    "pandas.read_excel (usecols A,D)": """
import pandas
start()
frame = pandas.read_excel(SOURCE, sheet_name="DrugQA", usecols="A,D")
""",
    "openpyxl read-only iter_rows (values)": """
import openpyxl
start()
sheet = openpyxl.load_workbook(SOURCE, read_only=True, data_only=True)["DrugQA"]
rows = sum(1 for _ in sheet.iter_rows(values_only=True))
""",
}

HARNESS = """
import contextlib, io, json, resource, sys, time
sys.path.insert(0, "tests")
from data_helpers import peak_rss_mb
SOURCE, OUT = sys.argv[1], sys.argv[2]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
began = []
def start():
    began.extend([time.perf_counter(), cpu()])
with contextlib.redirect_stdout(io.StringIO()):
    exec(compile(sys.argv[3], "runner", "exec"))
seconds, cpu_seconds = time.perf_counter() - began[0], cpu() - began[1]
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "peak_mb": peak_rss_mb()}))
"""


def make_workbook(path: Path, rows: int) -> None:
    header = ["Question", "Focus (Drug)", "Question Type", "Answer", "Section Title", "URL"]
    body = [[f"How should I take medicine number {i}? 第{i}个问题怎么服用？", f"Drug {i % 997}", "usage",
             f"Take medicine {i} twice a day with water, after meals. 每天两次，饭后用温水服用。", "How to use",
             f"https://medlineplus.gov/druginfo/meds/a{i:06d}.html"] for i in range(rows)]
    write_excel_xlsx(path, {"DrugQA": [header, *body]})


def measure(code: str, source: Path, out: Path) -> dict:
    result = subprocess.run([sys.executable, "-c", HARNESS, str(source), str(out), code],
                            capture_output=True, text=True, cwd=ROOT)
    if result.returncode:
        sys.exit(f"benchmark runner failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; each reader's best time counts")
    parser.add_argument("--keep", type=Path, default=None, help="write the workbook and JSONL here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        source, out = folder / "MedQA-bench.xlsx", folder / "MedQA-bench.jsonl"
        make_workbook(source, args.rows)
        print(f"sheet conversion: {args.rows:,} rows x 6 columns, Excel-style .xlsx "
              f"({source.stat().st_size / 1e6:.1f} MB); each reader in a fresh process, best of {args.repeat}")
        rounds = [{name: measure(code, source, out) for name, code in RUNNERS.items()} for _ in range(args.repeat)]
        figures = {name: {"seconds": min(r[name]["seconds"] for r in rounds), "cpu": min(r[name]["cpu"] for r in rounds),
                          "peak_mb": max(r[name]["peak_mb"] for r in rounds)} for name in RUNNERS}
        for name, figure in figures.items():
            print(f"  {name:<40} {figure['seconds']:7.2f} s wall {figure['cpu']:7.2f} s CPU   "
                  f"peak RSS {figure['peak_mb']:4.0f} MB")
        with open(out, encoding="utf-8") as f:
            assert sum(1 for _ in f) == args.rows, "the conversion lost rows"
    ours = figures["tunechat data sheet (xlsx -> JSONL)"]
    ratios = {kind: min(figures[name][kind] for name in figures if name.startswith("pandas")) / ours[kind]
              for kind in ("seconds", "cpu")}
    print(f"ratio: fastest pandas.read_excel / tunechat = {ratios['seconds']:.1f}x wall, {ratios['cpu']:.1f}x CPU "
          f"({'tunechat is faster' if min(ratios.values()) > 1 else 'tunechat is SLOWER'}); "
          f"tunechat peak RSS {ours['peak_mb']:.0f} MB")
    return 0 if min(ratios.values()) > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
