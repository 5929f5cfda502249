"""The sandbox's child process: lock this process down, then run the code read from stdin.

Run as `python -I -B sandbox_child.py CONFIG_JSON` by `agents.tools.sandbox` (never imported by
it: this file uses the standard library only, so it needs nothing from the project once locked).
Every layer is applied to this very process before the first line of user code runs, so the
code cannot undo any of them. Each layer is tried and reported (what it gave, or why not), on
the report pipe, as one JSON line; then a second line with the code's outcome.

Layers, in order (each where the platform allows):
1. network: a new network namespace (no interfaces; root, or an unprivileged user namespace);
2. resource limits: CPU seconds, address space, file size, open files, processes, no core dumps;
3. capabilities: all dropped (bounding set too) when running as root, and root's privileges on
   `execve` disabled (securebits), so root in the sandbox is an ordinary user;
4. Landlock (Linux >= 5.13): writes only inside the working directory; reads only in the
   Python installation and system library directories; no TCP connect/bind (ABI >= 4); no
   signals to, or abstract sockets of, processes outside the sandbox (ABI >= 6);
5. seccomp (x86-64, aarch64): no new processes (fork/vfork/clone without CLONE_THREAD; clone3
   answers ENOSYS so libc falls back to clone, which is checked), no sockets, no io_uring."""
from __future__ import annotations

import ast
import ctypes
import json
import os
import platform
import resource
import struct
import sys
import traceback

FILENAME = "<sandbox>"
libc = ctypes.CDLL(None, use_errno=True)


def _errno() -> str:
    return os.strerror(ctypes.get_errno())


# ---- 1. network ------------------------------------------------------------------------------

CLONE_NEWNET, CLONE_NEWUSER = 0x40000000, 0x10000000


def isolate_network() -> str:
    if platform.system() != "Linux":
        return f"none: network namespaces are Linux-only ({platform.system()})"
    if libc.unshare(CLONE_NEWNET) == 0:
        return "own network namespace (no interfaces)"
    first = _errno()
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            try:
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
            except OSError:
                pass
        return "own user and network namespace (no interfaces)"
    return f"none: unshare failed ({first}; user namespace: {_errno()})"


# ---- 2. resource limits ----------------------------------------------------------------------

def _tasks_of_this_user() -> int:
    """How many tasks (threads count) this real uid runs now: RLIMIT_NPROC counts them all."""
    uid, total = str(os.getuid()), 0
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if fields["Uid"].split()[0] == uid:
                total += int(fields["Threads"])
        except (OSError, KeyError, ValueError):
            continue
    return total


def set_limits(config: dict) -> str:
    limits = {
        "RLIMIT_CPU": (config["cpu_seconds"], config["cpu_seconds"] + 1),
        "RLIMIT_AS": (config["memory_bytes"],) * 2,
        "RLIMIT_FSIZE": (config["file_size_bytes"],) * 2,
        "RLIMIT_NOFILE": (256, 256),
        "RLIMIT_CORE": (0, 0),
        "RLIMIT_NPROC": ((_tasks_of_this_user() + 32),) * 2,
    }
    done = []
    for name, value in limits.items():
        if hasattr(resource, name):
            try:
                resource.setrlimit(getattr(resource, name), value)
                done.append(name[7:].lower())
            except (ValueError, OSError):
                pass
    return "rlimits: " + ", ".join(done)


# ---- 3. capabilities -------------------------------------------------------------------------

PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 28, 47, 4
SECUREBITS_LOCKED_NOROOT = 0x2F  # NOROOT, NO_SETUID_FIXUP and KEEP_CAPS, each locked
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def drop_capabilities() -> str:
    if platform.system() != "Linux":
        return f"none: capabilities are Linux-only ({platform.system()})"
    if os.geteuid() != 0:
        return "not root: no capabilities to drop"
    if libc.prctl(PR_SET_SECUREBITS, SECUREBITS_LOCKED_NOROOT, 0, 0, 0) != 0:
        return f"none: securebits ({_errno()})"
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for capability in range(last + 1):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all empty
    if libc.capset(header, data) != 0:
        return f"none: capset ({_errno()})"
    return "root without any capability (bounding set emptied, no privileges on execve)"


# ---- 4. Landlock -----------------------------------------------------------------------------

SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_TRUNCATE = 1 << 14
FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | (1 << 15)
READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
SYSTEM_DIRS = ["/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/sys/devices/system/cpu"]
SYSTEM_FILES = ["/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
                "/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/proc/self/"]
PR_SET_NO_NEW_PRIVS = 38


def _landlock(number: int, *args: object) -> int:
    return libc.syscall(ctypes.c_long(number), *args)


def restrict_filesystem(workdir: str) -> str:
    if platform.system() != "Linux":
        return "none: Landlock is Linux-only"
    abi = _landlock(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return f"none: Landlock unavailable ({_errno()})"
    handled_fs = (1 << 13) - 1 | (1 << 13 if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0) | (1 << 15 if abi >= 5 else 0)
    handled_net = 0b11 if abi >= 4 else 0  # bind, connect (TCP)
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets, signals
    attr = struct.pack("QQQ", handled_fs, handled_net, scoped)[: 8 if abi < 4 else 16 if abi < 6 else 24]
    ruleset = _landlock(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"none: landlock_create_ruleset ({_errno()})"
    # The Python installation (a venv and the interpreter it points to); not the rest of sys.path,
    # which may name a project checkout (an editable install).
    readable = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    rules = [(p, READ_RIGHTS) for p in sorted(readable) + SYSTEM_DIRS] + [(workdir, handled_fs)]
    rules += [(p, (FS_READ_FILE | FS_WRITE_FILE if p.startswith("/dev/") else READ_RIGHTS)) for p in SYSTEM_FILES]
    for path, rights in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        rule = struct.pack("=Qi", rights & handled_fs, fd)
        _landlock(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1), rule, ctypes.c_uint32(0))
        os.close(fd)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or _landlock(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
        return f"none: landlock_restrict_self ({_errno()})"
    os.close(ruleset)
    parts = [f"Landlock ABI {abi}: writes only in the working directory, reads only in Python and system libraries"]
    if handled_net:
        parts.append("no TCP connect/bind")
    if scoped:
        parts.append("no signals or abstract sockets outside the sandbox")
    return "; ".join(parts)


# ---- 5. seccomp ------------------------------------------------------------------------------

AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SYSCALLS = {  # socket, clone, clone3, io_uring_setup, and the fork family where it exists
    "x86_64": {"socket": 41, "clone": 56, "clone3": 435, "io_uring_setup": 425, "fork": 57, "vfork": 58},
    "aarch64": {"socket": 198, "clone": 220, "clone3": 435, "io_uring_setup": 425},
}
CLONE_THREAD = 0x00010000
EPERM, ENOSYS = 1, 38
RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
LD_W_ABS, JEQ_K, JGE_K, JSET_K, RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def _bpf_program(machine: str) -> list[tuple[int, object, object, int]]:
    """A classic-BPF seccomp filter; jump targets are labels resolved by `install_seccomp`."""
    calls = SYSCALLS[machine]
    program = [(LD_W_ABS, 0, 0, 4), (JEQ_K, "next", "kill", AUDIT_ARCH[machine]), (LD_W_ABS, 0, 0, 0)]
    if machine == "x86_64":
        program.append((JGE_K, "eperm", "next", 0x40000000))  # the x32 ABI: another way in
    for name in ("socket", "io_uring_setup", "fork", "vfork"):
        if name in calls:
            program.append((JEQ_K, "eperm", "next", calls[name]))
    program += [(JEQ_K, "enosys", "next", calls["clone3"]), (JEQ_K, "next", "allow", calls["clone"]),
                (LD_W_ABS, 0, 0, 16), (JSET_K, "allow", "eperm", CLONE_THREAD)]  # args[0]: clone flags
    return program


def install_seccomp() -> str:
    machine = platform.machine()
    if platform.system() != "Linux" or machine not in SYSCALLS:
        return f"none: no seccomp filter for {platform.system()} {machine}"
    body = _bpf_program(machine)
    returns = {"allow": RET_ALLOW, "eperm": RET_ERRNO | EPERM, "enosys": RET_ERRNO | ENOSYS, "kill": RET_KILL_PROCESS}
    where = {label: len(body) + i for i, label in enumerate(returns)}
    instructions = []
    for index, (code, jt, jf, k) in enumerate(body):
        jump = [0 if t in (0, "next") else where[t] - index - 1 for t in (jt, jf)]
        instructions.append(_SockFilter(code, jump[0], jump[1], k))
    instructions += [_SockFilter(RET_K, 0, 0, value) for value in returns.values()]
    array = (_SockFilter * len(instructions))(*instructions)
    program = _SockFprog(len(instructions), array)
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program), 0, 0) != 0:
        return f"none: seccomp ({_errno()})"
    return "seccomp: no new processes, no sockets, no io_uring"


# ---- running the code ------------------------------------------------------------------------

def run(code: str) -> dict:
    """Run `code` like a notebook cell: what it prints, then the value of a final expression."""
    try:
        tree = ast.parse(code, FILENAME, "exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
        exec(compile(tree, FILENAME, "exec"), namespace)
        if last is not None:
            value = eval(compile(ast.Expression(last.value), FILENAME, "eval"), namespace)
            if value is not None:
                print(repr(value))
        return {"ok": True}
    except SystemExit as exc:
        return {"ok": exc.code in (None, 0), "error": "SystemExit", "message": f"exit code {exc.code}"}
    except BaseException as exc:  # the code's own failure: report it, as Python would print it
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != FILENAME:
            tb = tb.tb_next
        sys.stdout.flush()
        print("".join(traceback.format_exception(type(exc), exc, tb)).rstrip(), file=sys.stdout)
        forbidden = isinstance(exc, OSError) and exc.errno in (1, 13)  # EPERM, EACCES
        return {"ok": False, "error": type(exc).__name__, "message": str(exc), "forbidden": forbidden}


def main() -> None:
    config = json.loads(sys.argv[1])
    code = sys.stdin.buffer.read().decode("utf-8", "replace")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    report = os.fdopen(config["report_fd"], "w")
    workdir = os.getcwd()
    layers = {
        "network": isolate_network,
        "limits": lambda: set_limits(config),
        "capabilities": drop_capabilities,
        "filesystem": lambda: restrict_filesystem(workdir),
        "syscalls": install_seccomp,
    }
    disabled = set(config.get("disable", ()))  # tests switch layers off to prove the others hold
    isolation = {name: "disabled" if name in disabled else apply() for name, apply in layers.items()}
    report.write(json.dumps(isolation) + "\n")
    report.flush()
    outcome = run(code)
    sys.stdout.flush()
    report.write(json.dumps(outcome) + "\n")
    report.close()
    os._exit(0 if outcome["ok"] else 1)


if __name__ == "__main__":
    main()
