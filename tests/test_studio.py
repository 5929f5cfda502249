"""The studio (`tunechat studio`): every page through Streamlit's AppTest on the real embedded
model, the workspace's path rules, and the background training job (two tabs at once, a kill,
a graceful stop, resume) with real training steps."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from datasets_builders.errors import DataError
from tests.conftest import ROOT, run_cli
from tests.data_helpers import read_jsonl, write_excel_xlsx

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tunechat.studio import jobs  # noqa: E402
from tunechat.studio.workspace import Workspace, safe_name  # noqa: E402

APP = ROOT / "tunechat" / "studio" / "app.py"
ROWS = [["Question", "Note", "Answer"]] + [[f"What is {i} plus {i}?", "ignored", f"{i} plus {i} is {2 * i}."] for i in range(10)]
# A tiny LoRA run: a few real steps, a checkpoint every two.
TINY = {"Max steps": 8, "Batch size": 2, "Save every": 2}


def studio(ws: Workspace, monkeypatch: pytest.MonkeyPatch, page: str | None = None) -> AppTest:
    """A browser tab on the studio of `ws` (`streamlit run app.py -- --workspace WS`), on `page`."""
    monkeypatch.setattr(sys, "argv", ["app.py", "--workspace", str(ws.root)])
    app = AppTest.from_file(str(APP), default_timeout=300)
    app.run()
    if page:
        app.switch_page(f"pages/{page}.py").run()
    assert not app.exception, app.exception
    return app


def widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def click(app: AppTest, label: str) -> AppTest:
    widget(app.button, label).click().run()
    assert not app.exception, app.exception
    return app


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def wait_for(ws: Workspace, condition, timeout: float = 240) -> jobs.JobState:
    deadline = time.monotonic() + timeout
    while True:
        current = jobs.state(ws)
        if condition(current):
            return current
        assert time.monotonic() < deadline, f"timed out; the job's log ends:\n{current.log_tail if current else ''}"
        time.sleep(0.3)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "workspace")


@pytest.fixture
def qa(ws: Workspace) -> str:
    """Ten converted records in the workspace, as the Data page would write them."""
    write_excel_xlsx(ws.root / "data" / "qa.xlsx", {"QA": ROWS})
    assert run_cli("data", "sheet", str(ws.root / "data" / "qa.xlsx"), "--output", "C",
                   "-o", str(ws.root / "data" / "qa.jsonl")).returncode == 0
    return "data/qa.jsonl"


# -- the workspace -------------------------------------------------------------------------------

def test_paths_outside_the_workspace_are_refused_and_uploaded_names_are_made_safe(ws: Workspace, tmp_path: Path) -> None:
    for bad in ("../outside.jsonl", "data/../../outside.jsonl", str(tmp_path / "outside.jsonl")):
        with pytest.raises(DataError, match="only paths inside the workspace"):
            ws.path(bad)
    (ws.root / "data" / "link").symlink_to(tmp_path)
    with pytest.raises(DataError, match="leads out of the workspace"):
        ws.path("data/link/x.jsonl")
    assert ws.path("data/qa.jsonl") == ws.root / "data" / "qa.jsonl"

    assert safe_name("../../my sheet (1).xlsx") == "my_sheet_1_.xlsx"
    assert safe_name("C:\\Users\\me\\问答.csv") == "问答.csv"
    assert safe_name(".hidden.jsonl") == "hidden.jsonl"
    with pytest.raises(DataError, match="not a data file"):
        safe_name("run.sh")

    small = Workspace(ws.root, max_upload_mb=0.001)
    with pytest.raises(DataError, match="over the 0.001 MB upload limit"):
        small.save_upload("big.csv", b"x" * 2000)
    assert not (ws.root / "data" / "big.csv").exists()


# -- Data ----------------------------------------------------------------------------------------

def test_the_data_page_converts_an_uploaded_sheet_as_its_shell_command_does(ws: Workspace, monkeypatch, tmp_path: Path) -> None:
    sheet = tmp_path / "upload.xlsx"
    write_excel_xlsx(sheet, {"Notes": [["nothing"]], "QA": ROWS})
    app = studio(ws, monkeypatch)
    app.file_uploader[0].upload("../My QA.xlsx", sheet.read_bytes(), "application/octet-stream").run()
    assert (ws.root / "data" / "My_QA.xlsx").is_file()  # saved inside the workspace, under a safe name
    assert widget(app.selectbox, "File").value == "data/My_QA.xlsx"
    widget(app.selectbox, "Sheet").set_value("QA").run()
    preview = app.dataframe[0].value
    assert list(preview.columns) == ["A · Question", "B · Note", "C · Answer"] and len(preview) == 8  # the first rows
    widget(app.selectbox, "Answer column").set_value("C").run()
    command = next(c.value for c in app.code if "tunechat data sheet" in c.value)
    click(app, "Convert")
    assert texts(app.success)[0] == "Converted into data/My_QA.jsonl"
    assert widget(app.selectbox, "File").value == "data/My_QA.jsonl"  # the page moves on to the records

    # The command the page showed makes the same file.
    argv = command.splitlines()[1].split()[1:]
    argv[argv.index("-o") + 1] = str(tmp_path / "cli.jsonl")
    argv[2] = str(ws.root / argv[2])
    assert run_cli(*argv).returncode == 0
    assert read_jsonl(ws.root / "data" / "My_QA.jsonl") == read_jsonl(tmp_path / "cli.jsonl")
    assert read_jsonl(tmp_path / "cli.jsonl")[3] == {"conversation": [{"input": "What is 3 plus 3?", "output": "3 plus 3 is 6."}]}

    # The records: checked, one shown as trained (the answer highlighted), split 7:3.
    assert texts(app.success)[1] == "data/My_QA.jsonl: every record is valid"
    shown = next(m.value for m in app.markdown if "<mark>" in m.value)
    assert "<mark>0 plus 0 is 0." in shown and "What is 0 plus 0?" in shown.split("<mark>")[0]
    click(app, "Split")
    assert len(read_jsonl(ws.root / "data" / "My_QA-train.jsonl")) == 7
    assert len(read_jsonl(ws.root / "data" / "My_QA-test.jsonl")) == 3


def test_the_data_page_names_the_line_of_a_broken_record_without_a_traceback(ws: Workspace, monkeypatch) -> None:
    good = json.dumps({"conversation": [{"input": "Hi", "output": "Hello!"}]})
    (ws.root / "data" / "broken.jsonl").write_text(f"{good}\n{{not json\n{good}\n", encoding="utf-8")
    app = studio(ws, monkeypatch)
    assert not app.exception
    assert "line 2" in app.error[0].value and "broken.jsonl" in app.error[0].value
    assert not app.get("dataframe") and not any("<mark>" in m.value for m in app.markdown)


def test_the_identity_builder_previews_records_that_name_the_person(ws: Workspace, monkeypatch) -> None:
    app = studio(ws, monkeypatch)
    widget(app.text_input, "Name").set_value("Alice")
    widget(app.number_input, "Identity records").set_value(20)
    widget(app.checkbox, "Regularize with the base model's own answers").uncheck().run()
    preview = app.dataframe[-1].value  # live, before anything is written
    assert len(preview) == 8 and all("Alice" in answer for answer in preview["answer"])
    assert not (ws.root / "data" / "identity.jsonl").exists()
    click(app, "Build")
    assert "Built data/identity.jsonl" in texts(app.success)
    records = read_jsonl(ws.root / "data" / "identity.jsonl")
    assert len(records) == 20 and (ws.root / "data" / "identity-eval.jsonl").is_file()
    assert all("Alice" in record["conversation"][-1]["output"] for record in records)
    assert any("tunechat data identity --name Alice --size 20" in c.value and "--no-regularize" in c.value for c in app.code)


# -- Train ---------------------------------------------------------------------------------------

def set_tiny(app: AppTest) -> None:
    for label, value in TINY.items():
        widget(app.number_input, label).set_value(value)
    widget(app.selectbox, "Bits").select_index(2)  # none: LoRA, the CPU's fast path
    app.run()


def test_a_training_job_survives_a_kill_two_tabs_a_graceful_stop_and_resumes_to_the_end(ws: Workspace, qa: str, monkeypatch) -> None:
    tab = studio(ws, monkeypatch, "train")
    set_tiny(tab)
    command = next(c.value for c in tab.code if "tunechat train" in c.value)
    assert command.splitlines()[1] == (f"tunechat train --data {qa} --output runs/run-1 --no-progress --bits none "
                                       "--max-steps 8 --batch-size 2 --save-every 2")  # what differs from the defaults
    click(tab, "Start")
    job = jobs.state(ws).job
    assert job.argv == command.splitlines()[1].split()[1:]

    # A second tab pressing Start (here: two at once) gets the clear error, not a second job.
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def press() -> None:
        barrier.wait()
        try:
            jobs.start(ws, "run-2", job.argv)
        except jobs.JobRunning as exc:
            errors.append(str(exc))
    presses = [threading.Thread(target=press) for _ in range(2)]
    for thread in presses:
        thread.start()
    for thread in presses:
        thread.join()
    assert len(errors) == 2 and "a job is already running in this workspace: run 'run-1'" in errors[0]
    assert not (ws.root / "runs" / "run-2").exists()

    # Killed (as the OOM killer would, here while it loads): the page says so and shows the log, never a spinner.
    os.kill(job.pid, signal.SIGKILL)
    wait_for(ws, lambda s: not s.running)
    other = studio(ws, monkeypatch, "train")  # a reload, or a second tab
    assert "ended without saying why" in other.error[0].value and jobs.state(ws).state == "died"

    # Resume, then Stop: the step finishes, its checkpoint is saved.
    click(other, "Resume")
    wait_for(ws, lambda s: s.running and s.step >= 5)
    tab.run()
    assert tab.get("vega_lite_chart") and "Run run-1" in texts(tab.subheader)
    click(tab, "Stop")
    stopped = wait_for(ws, lambda s: not s.running)
    assert stopped.state == "stopped" and stopped.step < 8
    assert (ws.root / "runs" / "run-1" / "checkpoints" / f"checkpoint-{stopped.step}").is_dir()
    tab.run()
    assert texts(tab.warning) == [f"Stopped at step {stopped.step} of 8: the checkpoint is kept; Resume continues from it."]

    click(tab, "Resume")
    done = wait_for(ws, lambda s: not s.running)
    assert done.state == "finished", done.log_tail
    metrics = json.loads((ws.root / "runs" / "run-1" / "logs" / "metrics.json").read_text())
    assert metrics["steps"] == 8 and metrics["resumed_from"] == f"checkpoint-{stopped.step}" and not metrics["stopped"]
    assert [r["step"] for r in done.rows if "loss" in r] == list(range(1, 9))  # every step once, across two processes
    tab.run()
    assert texts(tab.success) == ["Finished: 8 steps."] and widget(tab.button, "Start")  # the form is back


def test_a_job_counts_as_running_from_the_moment_its_process_starts() -> None:
    # Right after Popen returns, /proc/PID/cmdline usually still reads empty: a page (or the bench)
    # that looked then used to report the job as died while it was starting.
    for _ in range(20):
        process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "tunechat.studio.runner"],
                                   start_new_session=True)
        try:
            assert jobs._alive(process.pid)
        finally:
            process.kill()
            process.wait()


def test_a_setting_training_would_refuse_is_refused_before_a_job_starts(ws: Workspace, qa: str, monkeypatch) -> None:
    tab = studio(ws, monkeypatch, "train")
    widget(tab.text_input, "Learning rate").set_value("-1").run()
    assert texts(tab.error) == ["train config: learning_rate must be > 0, got -1.0"]
    assert not [b for b in tab.button if b.label == "Start"] and jobs.state(ws) is None


# -- Evaluate, Chat, Export ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace with one finished run (a tiny LoRA identity fine-tune) and small evaluation sets."""
    ws = Workspace(tmp_path_factory.mktemp("trained") / "workspace")
    data = ws.root / "data"
    assert run_cli("data", "identity", "--name", "Alice", "--size", "40", "--no-regularize", "-o", str(data / "identity.jsonl"),
                   "--eval-out", str(data / "identity-eval.jsonl")).returncode == 0
    questions = [{"conversation": [{"input": q, "output": "-"}]} for q in ("Who are you?", "你是谁？")]
    (data / "questions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in questions), encoding="utf-8")
    (data / "unrelated.jsonl").write_text(json.dumps({"conversation": [{"input": "What is 2 + 2?", "output": "-"}]}) + "\n")
    (data / "control.jsonl").write_text(json.dumps({"question": "What is the capital of France?", "keywords": ["Paris"]}) + "\n")
    result = run_cli("train", "--data", str(data / "identity.jsonl"), "--output", str(ws.root / "runs" / "alice"),
                     "--max-steps", "6", "--batch-size", "8", "--bits", "none", "--learning-rate", "1e-3", "--no-progress")
    assert result.returncode == 0, result.stderr[-2000:]
    return ws


def test_the_evaluate_page_shows_before_and_after_and_both_answers(trained: Workspace, monkeypatch, engine) -> None:
    app = studio(trained, monkeypatch, "evaluate")
    assert widget(app.selectbox, "Tuned model").value == "runs/alice/adapter (adapter)"
    widget(app.text_input, "Name the answers should contain").set_value("Alice")
    widget(app.selectbox, "Held-out identity questions").set_value("data/questions.jsonl")
    widget(app.selectbox, "Unrelated questions (false triggers)").set_value("data/unrelated.jsonl")
    widget(app.selectbox, "Control set (retention)").set_value("data/control.jsonl").run()
    command = next(c.value for c in app.code if "tunechat eval identity" in c.value).splitlines()[1]
    assert command == ("tunechat eval identity embedded --adapter runs/alice/adapter --name Alice --json "
                       "--questions data/questions.jsonl --unrelated data/unrelated.jsonl --control data/control.jsonl")
    click(app, "Evaluate identity")
    table, answers = app.dataframe[0].value, app.dataframe[1].value
    assert list(table[""]) == ["identity hit rate", "false-trigger rate", "control retention", "answers in the question's language"]
    assert list(answers["question"]) == ["Who are you?", "你是谁？"]
    assert list(answers["names it"]) == ["Alice" in a for a in answers["answer"]]
    assert table["after (tuned)"][0] == f"{sum(answers['names it']) / 2:.1%}" and table["before (base)"][2] == "—"

    click(app, "Ask both")
    tuned = sdk_adapter(trained).chat([{"role": "user", "content": "Who are you?"}], temperature=0, max_new_tokens=96)
    base = engine.chat([{"role": "user", "content": "Who are you?"}], temperature=0, max_new_tokens=96)
    shown = texts(app.markdown)
    assert shown[shown.index("**Base**") + 1] == base and shown[shown.index("**Tuned**") + 1] == tuned

    widget(app.number_input, "Word problems").set_value(1).run()
    click(app, "Evaluate tool use")
    rates, groups = app.dataframe[-2].value, app.dataframe[-1].value
    assert list(rates[""]) == ["solved", "called the calculator", "correct call", "correct answer",
                               "answered in the question's language"]
    assert list(groups[""]) == ["English questions", "addition"]  # the fresh set's first problem
    assert any("--set fresh --count 1" in c.value for c in app.code)


def sdk_adapter(ws: Workspace):
    import sdk

    return sdk.load(None, adapter=str(ws.root / "runs" / "alice" / "adapter"))


def test_the_chat_page_chats_with_a_workspace_adapter(trained: Workspace, monkeypatch) -> None:
    app = studio(trained, monkeypatch, "chat")
    models = widget(app.sidebar.selectbox, "Model")
    assert models.options == ["embedded SmolLM2-135M-Instruct", "runs/alice/adapter (adapter)"]
    models.set_value("runs/alice/adapter (adapter)").run()
    widget(app.sidebar.slider, "Temperature").set_value(0.0)
    widget(app.sidebar.number_input, "Max new tokens").set_value(32).run()
    app.chat_input[0].set_value("Who are you?").run()
    assert not app.exception
    expected = sdk_adapter(trained).chat([{"role": "user", "content": "Who are you?"}], temperature=0, max_new_tokens=32)
    assert [m.name for m in app.chat_message] == ["user", "assistant"]
    assert app.chat_message[1].markdown[0].value == expected


def test_the_export_page_merges_with_its_verification_and_exports_a_gguf(trained: Workspace, monkeypatch) -> None:
    app = studio(trained, monkeypatch, "export")
    click(app, "Merge")
    assert texts(app.success) == ["Merged into models/alice"]
    check = json.loads((trained.root / "models" / "alice" / "tunechat.json").read_text())["merge"]
    assert app.metric[0].value == f"{check['max_logit_diff']:.2e}" and check["max_logit_diff"] <= check["tolerance"]
    click(app, "Export")
    assert texts(app.success)[-1] == "Exported exports/alice.q8_0.gguf"
    assert (trained.root / "exports" / "alice.q8_0.gguf").is_file() and (trained.root / "exports" / "Modelfile").is_file()
    widget(app.selectbox, "File").set_value("exports/alice.q8_0.gguf").run()
    assert app.get("download_button")


def test_the_studio_command_refuses_a_workspace_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = run_cli("studio", "--workspace", str(tmp_path / "notes.txt"))
    assert result.returncode == 1 and result.stderr.strip() == f"tunechat studio: error: --workspace {tmp_path / 'notes.txt'}: not a folder"
