"""`PythonSandbox`: hostile code ends with a clear error and leaves the host unharmed.

Isolation on the machines this suite runs on (Linux, root or not): a private network namespace,
rlimits, no capabilities (as root), Landlock (filesystem, TCP, signal scoping), seccomp (no
processes, sockets or io_uring). `test_isolation_layers_on_this_platform` pins that down; the
network test also proves that each network layer holds on its own."""
from __future__ import annotations

import ctypes
import os
import platform
import resource
import socket
import subprocess
import time
from pathlib import Path

import pytest
from lagent.schema import ActionStatusCode

from agents.tools import PythonSandbox, SandboxError

LINUX = platform.system() == "Linux"


@pytest.fixture(scope="module")
def sandbox() -> PythonSandbox:
    return PythonSandbox(wall_seconds=6, cpu_seconds=2, memory_mb=512)


def children_of_this_process() -> list[int]:
    me = str(os.getpid())
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me:
            found.append(int(pid))
    return found


def fails(sandbox: PythonSandbox, code: str, *reasons: str) -> str:
    with pytest.raises(SandboxError) as caught:
        sandbox.execute(code)
    message = str(caught.value)
    for reason in reasons:
        assert reason in message, message
    return message


def test_runs_code_like_a_notebook_cell(sandbox):
    assert sandbox.execute("x = 6\nprint('x is', x)\nx * 7") == "x is 6\n42\n"
    assert sandbox.execute("```python\nprint(sum(range(5)))\n```") == "10\n"  # a fenced reply runs too
    assert sandbox.execute("import math\nmath.factorial(20)") == "2432902008176640000\n"


def test_code_errors_come_back_as_the_traceback(sandbox):
    message = fails(sandbox, "def f():\n    return 1 / 0\nf()", "ZeroDivisionError: division by zero", 'File "<sandbox>", line 2')
    assert "sandbox_child" not in message  # only the user's frames
    fails(sandbox, "def f(:", "SyntaxError")


def test_as_an_action_errors_are_results(sandbox):
    assert sandbox({"command": "print(2 + 2)"}).format_result() == "4\n"
    result = sandbox({"command": "raise RuntimeError('boom')"})
    assert result.state == ActionStatusCode.API_ERROR and "RuntimeError: boom" in result.errmsg


@pytest.mark.skipif(not LINUX, reason="the isolation layers are Linux features")
def test_isolation_layers_on_this_platform(sandbox):
    isolation = PythonSandbox.isolation()
    assert set(isolation) == {"network", "limits", "capabilities", "filesystem", "syscalls"}
    assert isolation["network"].startswith("own ")  # netns as root, else user + net namespaces
    assert isolation["limits"] == "rlimits: cpu, as, fsize, nofile, core, nproc"
    if os.geteuid() == 0:
        assert isolation["capabilities"].startswith("root without any capability")
    if platform.machine() in ("x86_64", "aarch64"):
        assert isolation["syscalls"] == "seccomp: no new processes, no sockets, no io_uring"
    if ctypes.CDLL(None).syscall(444, None, 0, 1) >= 4:  # Landlock ABI: filesystem + TCP rules
        assert isolation["filesystem"].startswith("Landlock ABI") and "no TCP connect/bind" in isolation["filesystem"]


def test_infinite_loop_hits_the_cpu_limit(sandbox):
    start = time.monotonic()
    fails(sandbox, "while True:\n    pass", "CPU time limit", "2 s")
    assert time.monotonic() - start < 6


def test_idle_loop_hits_the_wall_clock_limit():
    before = set(children_of_this_process())  # e.g. the equation solver's worker
    start = time.monotonic()
    fails(PythonSandbox(wall_seconds=2), "import time\nwhile True:\n    time.sleep(1)", "time limit", "2 s")
    assert time.monotonic() - start < 4
    assert set(children_of_this_process()) <= before


def test_fork_bomb_cannot_start_a_process(sandbox):
    before = set(children_of_this_process())
    fails(sandbox, "import os\nwhile True:\n    os.fork()", "PermissionError", "no subprocesses")
    fails(sandbox, "import subprocess\nsubprocess.run(['true'])", "PermissionError")
    fails(sandbox, "import multiprocessing\nmultiprocessing.Process(target=print).start()", "Error")
    assert set(children_of_this_process()) <= before


def test_ten_gigabyte_allocation_hits_the_memory_limit(sandbox):
    fails(sandbox, "block = bytearray(10 * 1024 ** 3)", "memory limit", "512 MB", "MemoryError")


def test_hundred_megabyte_print_is_cut_off(sandbox):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    message = fails(sandbox, "print('x' * 100_000_000)", "output limit", f"{sandbox.max_output_bytes} bytes")
    assert time.monotonic() - start < 5 and len(message) < 1000
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB: the host never read it all


def test_big_files_hit_the_file_size_limit(sandbox):
    fails(sandbox, "open('big', 'wb').write(b'x' * (64 << 20))", "File too large")


@pytest.mark.skipif(not LINUX, reason="Landlock is Linux-only")
def test_writes_outside_the_working_directory_are_refused(sandbox, tmp_path):
    targets = [tmp_path / "escaped.txt", Path("/tmp") / f"escaped-{os.getpid()}.txt", "../escaped.txt"]
    for target in targets:
        fails(sandbox, f"open({str(target)!r}, 'w').write('x')", "Permission denied", "files only in the working directory")
    assert not any(Path(t).exists() for t in targets[:2])
    assert sandbox.execute("open('inside.txt', 'w').write('ok')\nprint(open('inside.txt').read())") == "ok\n"
    fails(sandbox, "print(open('/etc/shadow').read())", "Permission denied")  # reads are limited too


@pytest.mark.skipif(not LINUX, reason="namespaces, Landlock and seccomp are Linux features")
@pytest.mark.parametrize("disable", [(), ("syscalls",), ("syscalls", "filesystem"), ("syscalls", "network")])
def test_network_connections_fail_and_each_layer_holds_alone(disable):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        sandbox = PythonSandbox(wall_seconds=10, disable=disable)
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3)\nprint('connected')"
        message = fails(sandbox, code, "Error")
        assert any(reason in message for reason in ("not permitted", "Permission denied", "unreachable")), message
        fails(sandbox, "import urllib.request\nurllib.request.urlopen('http://1.1.1.1', timeout=3)", "Error")
        with pytest.raises(socket.timeout):
            server.accept()  # nothing ever reached the host's port
    finally:
        server.close()


def test_the_environment_is_scrubbed(sandbox, monkeypatch):
    monkeypatch.setenv("TUNECHAT_TEST_SECRET", "hunter2")
    env = sandbox.execute("import os\nsorted(os.environ)")
    assert "TUNECHAT_TEST_SECRET" not in env and "hunter2" not in env
    assert sandbox.execute("import os\nprint(os.getcwd() == os.environ['HOME'])") == "True\n"


@pytest.mark.skipif(not LINUX, reason="Landlock scoping and capabilities are Linux features")
def test_signals_cannot_reach_host_processes(sandbox):
    victim = subprocess.Popen(["sleep", "30"])  # a host process of the same user
    try:
        fails(sandbox, f"import os, signal\nos.kill({victim.pid}, signal.SIGKILL)", "Operation not permitted")
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
