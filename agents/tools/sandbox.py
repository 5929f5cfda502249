"""`PythonSandbox`: run model-written Python in a separate, locked-down process.

The host side is here: it starts `sandbox_child.py` in a fresh temporary working directory
with a scrubbed environment, feeds it the code, enforces the wall-clock and output limits
itself (the child enforces the rest on itself before the code runs: see that file), and turns
whatever happened into a result or one clear error for the model. The host process is never
at risk: it only reads a bounded amount from two pipes and kills the child's process group."""
from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from lagent.actions import BaseAction, tool_api

CHILD = Path(__file__).with_name("sandbox_child.py")
MAX_CODE_BYTES = 100_000
FORBIDDEN = "(the sandbox forbids this: no subprocesses, no network, and files only in the working directory)"


class SandboxError(RuntimeError):
    """The code failed or hit a limit; the message is what the model reads."""


class PythonSandbox(BaseAction):
    """Runs Python code in an isolated process."""

    def __init__(self, wall_seconds: float = 15, cpu_seconds: int = 10, memory_mb: int = 1024,
                 max_output_bytes: int = 64_000, file_size_mb: int = 16, result_chars: int = 4000,
                 python: str | None = None, disable: tuple[str, ...] = (), **action_kwargs: Any):
        """Limits per run. `disable` names isolation layers to switch off (network, limits,
        capabilities, filesystem, syscalls): only for tests that prove each layer alone holds."""
        super().__init__(**action_kwargs)
        self.disable = tuple(disable)
        self.wall_seconds = wall_seconds
        self.cpu_seconds = int(cpu_seconds)
        self.memory_mb = memory_mb
        self.max_output_bytes = max_output_bytes
        self.file_size_mb = file_size_mb
        self.result_chars = result_chars
        self.python = python or sys.executable
        self.last_isolation: dict[str, str] = {}

    @tool_api
    def run(self, command: str) -> str:
        """Run Python code and return what it prints, plus the value of its last line if that is an expression.

        Args:
            command (str): the Python code
        """
        return self.execute(command)

    def execute(self, code: str) -> str:
        """Run `code`; returns its output, or raises SandboxError saying what went wrong."""
        if not isinstance(code, str):
            raise SandboxError(f"expected Python code as text, got {type(code).__name__}")
        code = _strip_fences(code)
        if len(code.encode()) > MAX_CODE_BYTES:
            raise SandboxError(f"the code is too long (at most {MAX_CODE_BYTES} bytes)")
        workdir = tempfile.mkdtemp(prefix="tunechat-sandbox-")
        try:
            return self._run_in(workdir, code)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run_in(self, workdir: str, code: str) -> str:
        report_read, report_write = os.pipe()
        config = {"cpu_seconds": self.cpu_seconds, "memory_bytes": self.memory_mb << 20,
                  "file_size_bytes": self.file_size_mb << 20, "report_fd": report_write, "disable": self.disable}
        try:
            process = subprocess.Popen(
                [self.python, "-I", "-B", "-u", str(CHILD), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=workdir, env=_scrubbed_env(workdir), pass_fds=(report_write,),
                start_new_session=True,  # its own process group: one killpg ends everything it started
            )
        except OSError as exc:
            os.close(report_read)
            raise SandboxError(f"cannot start the sandbox: {exc}") from None
        finally:
            os.close(report_write)
        try:
            process.stdin.write(code.encode())
            process.stdin.close()
        except BrokenPipeError:
            pass
        output, report, stopped = self._collect(process, report_read)
        isolation, outcome = _read_report(report)
        self.last_isolation = isolation
        return self._outcome(output, stopped, process.returncode, outcome)

    def _collect(self, process: subprocess.Popen, report_fd: int) -> tuple[bytes, bytes, str | None]:
        """Read output until the child exits; stop it at the wall-clock or output limit."""
        stdout = process.stdout.fileno()
        streams = {stdout: bytearray(), report_fd: bytearray()}
        selector = selectors.DefaultSelector()
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + self.wall_seconds
        stopped = None
        try:
            while selector.get_map() and stopped is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    stopped = "time"
                    break
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fd)
                        continue
                    streams[key.fd] += chunk
                    if len(streams[stdout]) > self.max_output_bytes:
                        stopped = "output"
        finally:
            selector.close()
            _kill_group(process)
            process.wait()
            process.stdout.close()
            os.close(report_fd)
        return bytes(streams[stdout]), bytes(streams[report_fd]), stopped

    def _outcome(self, output: bytes, stopped: str | None, returncode: int, outcome: dict | None) -> str:
        text = output[: self.max_output_bytes].decode("utf-8", "replace")
        if stopped == "time":
            raise SandboxError(f"time limit: the code ran longer than {self.wall_seconds:g} s and was stopped"
                               + _tail(text, "output so far"))
        if stopped == "output":
            raise SandboxError(f"output limit: the code printed more than {self.max_output_bytes} bytes and was stopped"
                               + _tail(text[:500], "first output"))
        if outcome is None:
            if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
                raise SandboxError(f"CPU time limit: the code used more than {self.cpu_seconds} s of CPU and was stopped")
            if returncode < 0:
                raise SandboxError(f"the code was killed by {signal.Signals(-returncode).name}" + _tail(text, "output"))
            raise SandboxError(f"the sandbox failed (exit status {returncode})" + _tail(text, "output"))
        if not outcome.get("ok"):
            lines = [_clip(text.strip(), 3000) or f"{outcome.get('error')}: {outcome.get('message')}"]
            if outcome.get("error") == "MemoryError":
                lines.insert(0, f"memory limit: the code needed more than {self.memory_mb} MB")
            if outcome.get("forbidden"):
                lines.append(FORBIDDEN)
            raise SandboxError("\n".join(lines))
        return _clip(text, self.result_chars)

    @classmethod
    def isolation(cls) -> dict[str, str]:
        """What isolation this platform gives the sandbox, layer by layer (runs an empty program)."""
        sandbox = cls()
        sandbox.execute("pass")
        return sandbox.last_isolation


def _scrubbed_env(workdir: str) -> dict[str, str]:
    """Nothing from the host's environment (tokens, keys, proxies): a fixed minimal one."""
    return {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
            "PYTHONIOENCODING": "utf-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read_report(report: bytes) -> tuple[dict[str, str], dict | None]:
    lines = [line for line in report.decode("utf-8", "replace").splitlines() if line.strip()]
    try:
        isolation = json.loads(lines[0]) if lines else {}
        outcome = json.loads(lines[1]) if len(lines) > 1 else None
    except json.JSONDecodeError:
        return {}, None
    return isolation, outcome


def _strip_fences(code: str) -> str:
    """Models often wrap code in a ```python fence: run what is inside."""
    match = re.search(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", code, re.S)
    return match.group(1) if match else code


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n... ({len(text) - limit} more characters)"


def _tail(text: str, label: str) -> str:
    text = text.strip()
    return f"\n{label}:\n{_clip(text, 1500)}" if text else ""
