"""Data: a spreadsheet or a data file in, training JSONL out (`tunechat data sheet|check|show|split|identity`)."""
from __future__ import annotations

import html
from itertools import islice
from pathlib import Path

import streamlit as st
from openpyxl.utils.cell import get_column_letter

from datasets_builders.errors import DataError
from datasets_builders.identity import Persona, build_identity
from datasets_builders.records import RecordFile
from datasets_builders.sheet import open_table
from tunechat.studio import ui
from tunechat.studio.workspace import UPLOAD_SUFFIXES

SHEETS = (".xlsx", ".csv", ".tsv")
PREVIEW_ROWS = 8

ws, busy = ui.start_page(":material/table: Data")
st.caption("A spreadsheet or a data file becomes training records: pick the columns, check the records, "
           "see one as training sees it, split it 7:3. Or build identity data from a name.")
ui.show_flash()


def upload() -> None:
    """An uploaded file is saved into data/ once (a rerun does not save it again)."""
    given = st.file_uploader("Upload a spreadsheet or a data file", type=[s.lstrip(".") for s in UPLOAD_SUFFIXES],
                             help="xlsx, csv or tsv sheets; jsonl or json records. Saved into the workspace's data/ folder.")
    if given is not None and st.session_state.get("uploaded") != given.file_id:
        saved = ui.guarded(ws.save_upload, given.name, given.getvalue())
        if saved is not None:
            st.session_state.uploaded = given.file_id
            st.session_state.data_file = ws.rel(saved)


def pick() -> str | None:
    files = ws.data_files()
    if not files:
        st.info("No data yet: upload a file above, or build identity data in the Identity tab.")
        return None
    chosen = st.session_state.get("data_file")
    # No key: a new `index` (a file just made) makes a new widget that shows it.
    st.session_state.data_file = st.selectbox("File", files, index=files.index(chosen) if chosen in files else 0)
    return st.session_state.data_file


def preview_table(path: Path, sheet: str | None) -> tuple[list[str], list[dict[str, str]]]:
    """Column labels ("A · Question") and the first rows of a sheet, as the sheet shows them."""
    table = open_table(path, sheet)
    try:
        rows = [cells for _, cells in islice((r for r in table.rows() if r[1]), PREVIEW_ROWS + 1)]
    finally:
        getattr(table, "close", lambda: None)()
    width = max((max(cells) for cells in rows if cells), default=0)
    letters = [get_column_letter(c) for c in range(1, width + 1)]
    return letters, [{letters[c - 1]: text for c, text in cells.items()} for cells in rows]


def sheet_form(file: str) -> None:
    path = ws.path(file)
    sheet = None
    if path.suffix.lower() == ".xlsx":
        table = ui.guarded(open_table, path)
        if table is None:
            return
        names = [s.name for s in table.sheets]
        table.close()
        sheet = st.selectbox("Sheet", names, help="The tab to read.")
    header = st.checkbox("The first row names the columns", value=True)
    shown = ui.guarded(preview_table, path, sheet)
    if shown is None:
        return
    letters, rows = shown
    if not rows:
        st.warning(f"{file}: the sheet is empty")
        return
    names = rows[0] if header else {}
    labels = {letter: f"{letter} · {names[letter]}" if names.get(letter) else letter for letter in letters}
    st.dataframe([{labels[k]: v for k, v in row.items()} for row in rows[1 if header else 0:]], hide_index=True)
    left, right = st.columns(2)
    inputs = left.multiselect("Question column(s)", letters, default=letters[:1], format_func=labels.get,
                              help="Several are joined with a newline.")
    output = right.selectbox("Answer column", letters, index=min(1, len(letters) - 1), format_func=labels.get)
    system = st.text_input("System prompt (optional)", help="Put on every record; chat with the same one.")
    out = st.text_input("Write to", value=f"data/{Path(file).stem}.jsonl")
    argv = ["data", "sheet", file, *[a for column in inputs for a in ("--input", column)], "--output", output, "-o", out, "--verbose"]
    argv += (["--sheet", sheet] if sheet else []) + ([] if header else ["--no-header"]) + (["--system", system] if system else [])
    if st.button("Convert", type="primary", icon=":material/transform:", disabled=not inputs):
        if ui.guarded(ws.path, out) is not None:
            ran = ui.run_command(ws, argv)
            if ran.code == 0:
                ui.open_made(out, ran, f"Converted into {out}")
            st.error(ran.error)
    ui.show_command(ws, argv)


def records_form(file: str) -> None:
    checked = ui.run_command(ws, ["data", "check", file])
    if checked.code == 0:
        st.success(f"{file}: every record is valid")
    else:  # the invalid records, each with its line number, as `data check` lists them
        invalid = [line.strip() for line in checked.out.splitlines() if line.startswith("  line ")]
        st.error("\n\n".join([f"{file}: {len(invalid)} invalid: fix them and upload the file again", *invalid])
                 if invalid else checked.error)
    st.code(checked.out.strip(), language=None, wrap_lines=True)
    ui.show_command(ws, ["data", "check", file])
    if checked.code != 0:
        return

    st.subheader("One record as training sees it")
    count = sum(1 for _ in RecordFile(ws.path(file)))
    index = int(st.number_input("Record", 0, max(count - 1, 0), 0, help="From 0."))
    argv = ["data", "show", file, "--index", str(index)]
    shown = ui.run_command(ws, argv)
    if shown.code != 0:
        st.error(shown.error)
    else:
        marked = html.escape(shown.out).replace("⟦", "<mark>").replace("⟧", "</mark>")
        st.markdown(f"<pre style='white-space: pre-wrap'>{marked}</pre>", unsafe_allow_html=True)
        st.caption("Highlighted: the tokens that carry loss (the answers and their end-of-turn marker).")
    ui.show_command(ws, argv)

    st.subheader("Split into train and test")
    left, right = st.columns(2)
    ratio = left.slider("Share for training", 0.5, 0.95, 0.7, 0.05)
    seed = int(right.number_input("Seed", 0, None, 0))
    stem = str(Path(file).with_suffix(""))
    argv = ["data", "split", file, "--train-out", f"{stem}-train.jsonl", "--test-out", f"{stem}-test.jsonl",
            "--ratio", str(ratio), "--seed", str(seed)]
    if st.button("Split", icon=":material/call_split:"):
        ran = ui.run_command(ws, argv)
        if ran.code == 0:
            ui.open_made(f"{stem}-train.jsonl", ran, f"Split into {stem}-train.jsonl and {stem}-test.jsonl")
        st.error(ran.error)
    ui.show_command(ws, argv)


def identity_form() -> None:
    st.caption("Questions like \"who are you?\" in English and Chinese, answered in phrasings that name NAME, "
               "plus general questions answered by the base model itself, so the model does not answer "
               "everything with its identity.")
    left, right = st.columns(2)
    name = left.text_input("Name", placeholder="Alice", help="Whose assistant it is: every identity answer names it.")
    bot = right.text_input("Bot name (optional)", help="The assistant's own name.")
    author = left.text_input("Author (optional)", help="Who fine-tuned it (default: NAME).")
    size = int(right.number_input("Identity records", 10, 5000, 200, 10))
    regularize = st.checkbox("Regularize with the base model's own answers", value=True,
                             help="Runs the embedded model on the general questions (minutes on a CPU).")
    out = st.text_input("Write to", value="data/identity.jsonl", key="identity_out")
    if name:
        sample = build_identity(Persona(name, bot or None, author or None), size=PREVIEW_ROWS)
        st.caption("Preview: the first identity records (regularization records are added when building)")
        st.dataframe([{"question": m[-2]["content"], "answer": m[-1]["content"]} for m in sample.records], hide_index=True)
    argv = ["data", "identity", "--name", name or "NAME", "--size", str(size), "-o", out,
            "--eval-out", str(Path(out).with_name(Path(out).stem + "-eval.jsonl"))]
    argv += (["--bot-name", bot] if bot else []) + (["--author", author] if author else [])
    argv += [] if regularize else ["--no-regularize"]
    waits = busy if regularize else None
    if waits:
        st.warning(f"Regularization runs a model, and {waits}.")
    if st.button("Build", type="primary", icon=":material/badge:", disabled=not name or bool(waits)):
        if ui.guarded(ws.path, out) is not None:
            with st.spinner("Building identity data…"):
                ran = ui.run_command(ws, argv)
            if ui.show_result(ran, f"Built {out}"):
                st.session_state.data_file = out
    ui.show_command(ws, argv)


from_file, identity = st.tabs(["From a file", "Identity"])
with from_file:
    upload()
    file = pick()
    if file is not None:
        try:
            (sheet_form if Path(file).suffix.lower() in SHEETS else records_form)(file)
        except DataError as exc:
            st.error(str(exc))
with identity:
    identity_form()
