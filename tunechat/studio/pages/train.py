"""Train: `tunechat train` as the workspace's background job, with live progress, loss chart,
evaluation outputs, Stop (a checkpoint is kept) and Resume."""
from __future__ import annotations

import dataclasses

import streamlit as st

from sdk.errors import TunechatError
from sdk.templates import TEMPLATES
from sdk.training.config import METHODS, OVERLENGTH, TrainConfig
from tunechat.cli import last_line
from tunechat.studio import jobs, ui

# Shown first; every other TrainConfig field is folded under "Advanced".
MAIN = ("method", "epochs", "max_steps", "learning_rate", "batch_size", "bits", "lora_r", "max_length", "system",
        "evaluation_inputs")
# Set by the form's own widgets (data, model, where the run goes) or by the studio itself.
OWN = ("model", "data", "eval_data", "output", "progress", "resume")
CHOICES = {"method": METHODS, "overlength": OVERLENGTH, "dtype": ("auto", "fp32", "bf16"),
           "scheduler": ("cosine", "linear", "constant", "constant_with_warmup"), "bits": (4, 8, None),
           "template": (None, *sorted(TEMPLATES))}

ws, _ = ui.start_page(":material/model_training: Train", job=False)  # this page shows the job itself, live

# Every redraw takes CPU from the job when the browser runs on the same small machine
# (bench/bench_studio.py). So while a job runs, the progress line is redrawn every PROGRESS_SECONDS,
# and the loss chart, the log and the evaluation outputs, several times dearer for the browser to
# draw, every RECORD_SECONDS. Until the first step is logged only the progress line is redrawn,
# every FIRST_POINT_SECONDS, so the chart's first point shows soon after it.
FIRST_POINT_SECONDS = 2.0
PROGRESS_SECONDS = 10.0
RECORD_SECONDS = 30.0
# While a job runs, the page's fades and running indicator would be painted frame by frame by the
# browser at every redraw.
STILL = "<style>*, *::before, *::after { animation: none !important; transition: none !important; }</style>"


def default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def field_widget(f: dataclasses.Field, where):
    """One TrainConfig field as a widget showing its default; returns the value given."""
    label, value, help_text = f.name.replace("_", " ").capitalize(), default(f), f.metadata["help"]
    key = f"train_{f.name}"
    if f.name in CHOICES:
        options = list(CHOICES[f.name])
        return where.selectbox(label, options, index=options.index(value), key=key, help=help_text,
                               format_func=lambda v: "none" if v is None else str(v))
    kind = f.type.split(" | ")[0]
    if kind == "bool":
        return where.checkbox(label, value=value, key=key, help=help_text)
    if kind == "int":
        return int(where.number_input(label, value=value, step=1, key=key, help=help_text))
    if kind == "list[str]":
        text = where.text_area(label, value="\n".join(value), key=key, help=f"{help_text} (one per line)", height=80)
        return [line.strip() for line in text.splitlines() if line.strip()]
    text = where.text_input(label, value="" if value is None else str(value), key=key, help=help_text)
    if kind == "float" and (text or "None" not in f.type):
        try:
            return float(text)
        except ValueError:
            raise TunechatError(f"{label}: {text!r} is not a number") from None
    return text or None


def flags(values: dict) -> list[str]:
    """The `tunechat train` flags for the fields that differ from their defaults."""
    argv: list[str] = []
    for f in dataclasses.fields(TrainConfig):
        if f.name not in values or values[f.name] == default(f):
            continue
        flag, value = "--" + f.name.replace("_", "-"), values[f.name]
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, list):
            argv += [flag, *value] if value else []
        else:
            argv += [flag, "none" if value is None else str(value)]
    return argv


def form() -> None:
    data_files = [f for f in ws.data_files() if f.endswith((".jsonl", ".json"))]
    if not data_files:
        st.info("No training data yet: make some on the Data page.")
        return
    left, right = st.columns(2)
    data = left.selectbox("Training data", data_files, help="Records from the Data page.")
    eval_data = right.selectbox("Evaluation data (optional)", [None, *data_files],
                                format_func=lambda v: "none" if v is None else v, help="Held-out records for eval loss.")
    models = ws.merged_models()
    model = left.selectbox("Base model", [None, *models], format_func=lambda v: "embedded SmolLM2-135M-Instruct" if v is None else v)
    run = right.text_input("Run name", value=f"run-{len(ws.runs()) + 1}", help="Trains into runs/NAME.")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    try:
        main_cols = st.columns(3)
        values = {name: field_widget(fields[name], main_cols[i % 3]) for i, name in enumerate(MAIN)}
        with st.expander("Advanced", icon=":material/tune:"):
            advanced = st.columns(2)
            rest = [f for f in fields.values() if f.name not in MAIN and f.name not in OWN]
            values |= {f.name: field_widget(f, advanced[i % 2]) for i, f in enumerate(rest)}
        run_path = ws.path(f"runs/{run}") if run else None
        TrainConfig(**values)  # a value training would refuse is refused here, before a job starts
    except TunechatError as exc:
        st.error(str(exc))
        return
    if run_path is not None and (run_path / "checkpoints").is_dir():
        st.caption(f"runs/{run} has checkpoints: Start continues it from its last one (another name starts afresh).")
    argv = ["train", "--data", data, "--output", f"runs/{run}", "--no-progress"]
    argv += (["--eval-data", eval_data] if eval_data else []) + (["--model", model] if model else []) + flags(values)
    if st.button("Start", type="primary", icon=":material/play_arrow:", disabled=not run_path):
        try:
            jobs.start(ws, run, argv)
        except TunechatError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    ui.show_command(ws, argv)


def chart(current: jobs.JobState) -> None:
    """Train and eval loss by step, each point marked (the first step is a point, not a line)."""
    import altair as alt

    points = [{"step": r["step"], "loss": r[key], "curve": name} for r in current.rows
              for key, name in (("loss", "train"), ("eval_loss", "eval")) if key in r]
    if not points:
        st.caption("The loss chart appears with the first step.")
        return
    st.altair_chart(alt.Chart(alt.Data(values=points)).mark_line(point=True).encode(
        x=alt.X("step:Q", axis=alt.Axis(format="d", tickMinStep=1), title="step"),
        y=alt.Y("loss:Q", title="loss"), color=alt.Color("curve:N", title=None)), use_container_width=True)


def phase(current: jobs.JobState | None) -> tuple[bool, bool]:
    """What the whole page is drawn for: whether the job runs, and whether it has logged a step."""
    return current is not None and current.running, bool(current and current.rows)


def job_panel() -> None:
    """The workspace's job: its progress and Stop, or how it ended and Resume (a fragment)."""
    current = jobs.state(ws)
    if current is None:
        return
    if st.session_state.get("job_phase") != phase(current):
        st.session_state.job_phase = phase(current)
        st.rerun()  # the whole page: the form comes back, or the chart's first point
    job = current.job
    st.subheader(f"Run {job.run}")
    total = current.max_steps
    if current.running:
        eta = current.eta_seconds()
        left = f", about {eta:.0f} s left" if eta is not None else ""
        text = f"step {current.step} of {total}{left}" if total else "loading the model and the data…"
        st.progress(current.step / total if total else 0.0, text=text)
        if st.button("Stop", icon=":material/stop_circle:", help="Finishes the current step, saves a checkpoint, ends."):
            ui.guarded(jobs.stop, ws)
    else:
        ended = {"finished": st.success, "stopped": st.warning, "failed": st.error, "died": st.error}[current.state]
        message = {"finished": f"Finished: {current.step} steps.",
                   "stopped": f"Stopped at step {current.step} of {total}: the checkpoint is kept; Resume continues from it.",
                   "failed": f"Failed (exit code {current.returncode}): {last_line(current.log_tail)}",
                   "died": "The training process ended without saying why (killed, or out of memory?). The end of its log "
                           "is below; Resume continues from the last checkpoint."}[current.state]
        ended(message)
        if current.state != "finished" and st.button("Resume", type="primary", icon=":material/resume:"):
            try:
                jobs.start(ws, job.run, job.argv)
            except TunechatError as exc:
                st.error(str(exc))
            else:
                st.rerun()  # the whole page: the panel redraws while the job runs


def job_record() -> None:
    """The workspace's job's loss chart, evaluation outputs, log and command (a fragment)."""
    current = jobs.state(ws)
    if current is None:
        return
    job = current.job
    chart(current)
    outputs = jobs.read_log(jobs.run_dir(ws, job.run) / "logs" / "eval_outputs.jsonl")
    if outputs:
        st.caption("Evaluation outputs (the evaluation inputs answered during training)")
        st.dataframe(outputs, hide_index=True)
    with st.expander("Log", icon=":material/article:", expanded=current.state in ("failed", "died")):
        st.code(current.log_tail or "(nothing yet)", language=None, wrap_lines=True)
    ui.show_command(ws, job.argv, "This run in a shell")


current = jobs.state(ws)
st.session_state.job_phase = running, logged = phase(current)
first_point = running and not logged  # the job has not logged a step yet
if running:
    st.html(STILL)
# An ended job is not redrawn.
st.fragment(job_panel, run_every=(FIRST_POINT_SECONDS if first_point else PROGRESS_SECONDS) if running else None)()
st.fragment(job_record, run_every=RECORD_SECONDS if running and not first_point else None)()
if not running:
    st.subheader("New run")
    form()
