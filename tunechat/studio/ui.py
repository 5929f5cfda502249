"""What every studio page shares: the workspace, running a `tunechat` command the way a shell
would (and showing that command), and the background job's line in the sidebar.

Pages do no model work of their own: they run the CLI's commands in this process
(`tunechat.cli.run_captured`) or start them as the background job (`tunechat.studio.jobs`), so
what a page does is what the command shown beside it does."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import threading

import streamlit as st

from sdk.errors import TunechatError
from tunechat.cli import Captured, run_captured
from tunechat.studio import jobs
from tunechat.studio.workspace import MAX_UPLOAD_MB, Workspace

ENV_WORKSPACE = "TUNECHAT_STUDIO_WORKSPACE"
DEFAULT_WORKSPACE = "tunechat-studio"
_ONE_COMMAND = threading.Lock()  # stdout, stderr and the working directory are process-wide


def studio_args(argv: list[str]) -> argparse.Namespace:
    """The page flags after `streamlit run app.py --`: `tunechat studio` passes them."""
    parser = argparse.ArgumentParser(prog="tunechat studio", add_help=False)
    parser.add_argument("--workspace", default=os.environ.get(ENV_WORKSPACE, DEFAULT_WORKSPACE))
    parser.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_MB)
    return parser.parse_known_args(argv)[0]


def start_page(title: str, runs_models: str | None = None, job: bool = True) -> tuple[Workspace, str | None]:
    """A page's top: its workspace, the sidebar (with the running job unless `job` is False) and
    its title. Returns the workspace and why model work must wait now (`busy_reason`), shown as a
    warning for a page whose work `runs_models` (the page disables its buttons)."""
    ws = workspace()
    current = jobs.state(ws)
    job_sidebar(ws, current if job else None)
    st.title(title)
    busy = busy_reason(current)
    if busy and runs_models:
        st.warning(f"{runs_models}, and {busy}.")
    return ws, busy


def workspace() -> Workspace:
    """The workspace this studio was started on (`--workspace`, else $TUNECHAT_STUDIO_WORKSPACE)."""
    args = studio_args(sys.argv[1:])
    return Workspace(args.workspace, args.max_upload_mb)


def run_command(ws: Workspace, argv: list[str]) -> Captured:
    """`tunechat ARGV` run in the workspace folder, one command at a time in this server."""
    with _ONE_COMMAND:
        here = os.getcwd()
        os.chdir(ws.root)
        try:
            return run_captured(argv)
        finally:
            os.chdir(here)


def run_json(ws: Workspace, argv: list[str], doing: str) -> dict | None:
    """A `--json` command's report, with a spinner saying what it is `doing`; None after showing
    its error."""
    with st.spinner(doing):
        ran = run_command(ws, argv)
    if ran.code != 0:
        st.error(ran.error)
        return None
    return json.loads(ran.out)


def shell(ws: Workspace, argv: list[str]) -> str:
    """The shell lines that do what the page just did."""
    return f"cd {shlex.quote(str(ws.root))}\n{shlex.join(['tunechat', *argv])}"


def show_command(ws: Workspace, argv: list[str], label: str = "The same in a shell", where=st) -> None:
    """Every page teaches the CLI: the command for what it did, ready to copy."""
    with where.expander(label, icon=":material/terminal:"):
        st.code(shell(ws, argv), language="bash", wrap_lines=True)


def show_result(ran: Captured, success: str | None = None) -> bool:
    """A command's outcome in the page: its output, or its one-line error (never a traceback)."""
    if ran.code != 0:
        st.error(ran.error)
        return False
    if success:
        st.success(success)
    if ran.out.strip():
        st.code(ran.out.strip(), language=None, wrap_lines=True)
    return True


def open_made(relative: str, ran: Captured, success: str) -> None:
    """Rerun the page with the file a command just made chosen; its message and what the command
    printed stay on the page (`show_flash`)."""
    st.session_state.data_file = relative
    st.session_state.flash = (success, ran.out.strip())
    st.rerun()


def show_flash() -> None:
    if flash := st.session_state.pop("flash", None):
        st.success(flash[0])
        if flash[1]:
            st.code(flash[1], language=None, wrap_lines=True)


def job_sidebar(ws: Workspace, current: jobs.JobState | None) -> None:
    """The workspace and, while it runs, the `current` job, on every page."""
    side = st.sidebar
    side.caption(f"Workspace: `{ws.root}`")
    if current is not None and current.running:
        total = f" of {current.max_steps}" if current.max_steps else ""
        side.info(f"Training **{current.job.run}**: step {current.step}{total}", icon=":material/model_training:")


def busy_reason(current: jobs.JobState | None) -> str | None:
    """Why a page should not start model work now: the `current` job is training on the CPU (two
    busy torch processes slow each other down many times over)."""
    if current is not None and current.running and not _has_gpu():
        return f"training run {current.job.run!r} is using the CPU: wait for it to end, or stop it on the Train page"
    return None


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def guarded(action, *args):
    """`action(*args)`, with a TunechatError shown as its one line instead of a traceback."""
    try:
        return action(*args)
    except TunechatError as exc:
        st.error(str(exc))
        return None


def exists(ws: Workspace, relative: str) -> bool:
    """Whether a path the user typed names something in the workspace (False for paths outside it)."""
    try:
        return ws.path(relative).exists()
    except TunechatError:
        return False
