"""The studio's background job: one `tunechat train` per workspace, in its own process.

The job is a process of its own session (`tunechat.studio.runner`), so it outlives the browser
tab and the studio server; its record (.studio/job.json) lets any tab, after a reload or from a
second window, show the same job. Starting takes a file lock, so two tabs pressing Start at once
get one job and a clear error. Stop sends SIGTERM: training finishes its step, saves a
checkpoint and ends (`sdk.training.callbacks.GracefulStop`); Start with the same run resumes
from that checkpoint. A job that dies (killed, out of memory) is reported as such, with the end
of its log, never as still running."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasets_builders.atomic import write_text_atomic
from sdk.errors import TunechatError
from tunechat.studio.workspace import Workspace

JOB_FILE = ".studio/job.json"
LOCK_FILE = ".studio/job.lock"
LOG_NAME, STATUS_NAME = "job.log", "job-status.json"


class JobRunning(TunechatError):
    """A job is already running in this workspace."""


@dataclass
class Job:
    """The workspace's latest job, as recorded when it started."""

    run: str
    argv: list[str]
    pid: int
    started: float
    stop_requested: bool = False


@dataclass
class JobState:
    """What a page shows of a job: `state` is running, finished, stopped, failed or died."""

    job: Job
    state: str
    returncode: int | None = None
    log_tail: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def step(self) -> int:
        return max((r["step"] for r in self.rows), default=0)

    @property
    def max_steps(self) -> int | None:
        return next((r["max_steps"] for r in reversed(self.rows) if r.get("max_steps")), None)

    def eta_seconds(self) -> float | None:
        """Seconds left at the pace of the logged steps of this attempt (None before two steps)."""
        timed = [r for r in self.rows if "loss" in r and r.get("time", 0) >= self.job.started]
        if len(timed) < 2 or not self.max_steps:
            return None
        pace = (timed[-1]["time"] - timed[0]["time"]) / max(timed[-1]["step"] - timed[0]["step"], 1)
        return pace * (self.max_steps - self.step)


def run_dir(ws: Workspace, run: str) -> Path:
    return ws.path(Path("runs") / run)


def start(ws: Workspace, run: str, argv: list[str]) -> Job:
    """Start `tunechat ARGV` (training into runs/RUN) in the background, or raise JobRunning."""
    with open(ws.path(LOCK_FILE), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held until the job is recorded: a second Start waits, then sees it
        current = state(ws)
        if current is not None and current.running:
            raise JobRunning(f"a job is already running in this workspace: run {current.job.run!r} "
                             f"(pid {current.job.pid}); stop it first or wait for it to end")
        folder = run_dir(ws, run)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / STATUS_NAME).unlink(missing_ok=True)
        with open(folder / LOG_NAME, "ab") as log:
            log.write(f"\n$ tunechat {' '.join(argv)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                [sys.executable, "-m", "tunechat.studio.runner", str(folder / STATUS_NAME), *argv],
                cwd=ws.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session: closing the studio does not end it
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        job = Job(run=run, argv=list(argv), pid=process.pid, started=time.time())
        _record(ws, job)
        return job


def stop(ws: Workspace) -> None:
    """Ask the running job to stop after its current step (a checkpoint is saved first)."""
    current = state(ws)
    if current is None or not current.running:
        raise TunechatError("no job is running")
    current.job.stop_requested = True
    _record(ws, current.job)
    os.kill(current.job.pid, signal.SIGTERM)


def state(ws: Workspace) -> JobState | None:
    """The latest job and how it stands, read from its record, its status file and its log."""
    path = ws.path(JOB_FILE)
    if not path.is_file():
        return None
    job = Job(**json.loads(path.read_text(encoding="utf-8")))
    folder = run_dir(ws, job.run)
    rows = read_log(folder / "logs" / "train_log.jsonl")
    tail = _tail(folder / LOG_NAME)
    status_file = folder / STATUS_NAME
    if _alive(job.pid) and not status_file.is_file():
        return JobState(job, "running", log_tail=tail, rows=rows)
    if not status_file.is_file():
        return JobState(job, "died", log_tail=tail, rows=rows)
    code = json.loads(status_file.read_text(encoding="utf-8"))["returncode"]
    if job.stop_requested and code in (0, 130):
        return JobState(job, "stopped", code, tail, rows)
    return JobState(job, "finished" if code == 0 else "failed", code, tail, rows)


def read_log(path: Path) -> list[dict[str, Any]]:
    """The rows of a run's logs/train_log.jsonl (a line being written is skipped)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _record(ws: Workspace, job: Job) -> None:
    write_text_atomic(ws.path(JOB_FILE), json.dumps(asdict(job)) + "\n")


def _alive(pid: int) -> bool:
    """Whether `pid` is a live studio runner (a finished child of this process is reaped here;
    a pid reused by another program does not count)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:  # not our child: started by another studio server
        pass
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if not cmdline:  # just started (Popen returns before exec sets up its arguments), or a zombie
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False
    return b"tunechat.studio.runner" in cmdline


def _tail(path: Path, lines: int = 12) -> str:
    """The end of a job's log, without the progress bar's carriage-return redraws."""
    if not path.is_file():
        return ""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 16384))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.splitlines()[-lines:])
