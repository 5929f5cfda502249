"""Evaluate: `tunechat eval identity|tools` as before/after tables, and one prompt answered by the
base model and the tuned one side by side."""
from __future__ import annotations

import argparse

import streamlit as st

from agents.evaluate import GROUP_LABELS
from tunechat.options import parse_page_args
from tunechat.studio import ui
from tunechat.webchat import shared_engine

ws, busy = ui.start_page(":material/fact_check: Evaluate", runs_models="Evaluation runs models")

tuned = {label: choice for label, choice in ws.chat_models().items() if not label.endswith("(GGUF)")}
if len(tuned) < 2:
    st.info("Nothing to evaluate yet: train a run on the Train page (or merge one on the Export page).")
    st.stop()
label = st.selectbox("Tuned model", list(tuned)[1:], help="A run's adapter (on its base) or a merged model.")
model, adapter = tuned[label]
target = ([ws.rel(model)] if model else ["embedded"]) + (["--adapter", ws.rel(adapter)] if adapter else [])
jsonl = [f for f in ws.data_files() if f.endswith(".jsonl")]


def before_after(rows: dict[str, tuple[float | None, float | None]]) -> None:
    st.dataframe([{"": name, "before (base)": "—" if b is None else f"{b:.1%}", "after (tuned)": "—" if a is None else f"{a:.1%}"}
                  for name, (b, a) in rows.items()], hide_index=True)


def identity() -> None:
    left, right = st.columns(2)
    name = left.text_input("Name the answers should contain", placeholder="Alice")
    questions = right.selectbox("Held-out identity questions", [None, *jsonl],
                                format_func=lambda v: "built-in" if v is None else v,
                                help="Records whose questions were never trained on, e.g. data/identity-eval.jsonl.")
    unrelated = left.selectbox("Unrelated questions (false triggers)", [None, *jsonl],
                               format_func=lambda v: "built-in (20 questions)" if v is None else v,
                               help="Records of questions that should not be answered with the identity.")
    control = right.selectbox("Control set (retention)", [None, *jsonl], format_func=lambda v: "built-in (74 questions)" if v is None else v,
                              help='JSONL of {"question": ..., "keywords": [...]}.')
    argv = ["eval", "identity", *target, "--name", name or "NAME", "--json"]
    for flag, value in (("--questions", questions), ("--unrelated", unrelated), ("--control", control)):
        argv += [flag, value] if value else []
    if st.button("Evaluate identity", type="primary", disabled=not name or bool(busy)):
        report = ui.run_json(ws, argv, "Asking the base and the tuned model…")
        if report is not None:
            base, after = report["base"], report["model"]
            before_after({"identity hit rate": (base["hit_rate"], after["hit_rate"]),
                          "false-trigger rate": (base["false_trigger_rate"], after["false_trigger_rate"]),
                          "control retention": (None, after["retention"]),
                          "answers in the question's language": (base["language_match"], after["language_match"])})
            st.dataframe([{"question": r["question"], "answer": r["answer"], "names it": r["ok"]} for r in after["identity"]],
                         hide_index=True)
    ui.show_command(ws, argv)


def tools() -> None:
    task_set = st.radio("Problems", ["fresh", "heldout"], horizontal=True,
                        help="The frozen evaluation sets (English and Chinese): fresh was never used to choose a recipe, "
                             "heldout is the set the demo's recipe was tuned against.")
    count = int(st.number_input("Word problems", 1, 48, 16, help="The first N problems of the set: every prefix mixes "
                                "both languages and all four operations."))
    argv = ["eval", "tools", *target, "--set", task_set, "--count", str(count), "--json"]
    if st.button("Evaluate tool use", type="primary", disabled=bool(busy)):
        report = ui.run_json(ws, argv, "The agents solve the problems…")
        if report is not None:
            before_after({name: (report["base"][f"{key}_rate"], report["model"][f"{key}_rate"])
                          for key, name in (("solved", "solved"), ("called", "called the calculator"),
                                            ("correct_call", "correct call"), ("correct_answer", "correct answer"),
                                            ("in_language", "answered in the question's language"))})
            groups = report["model"]["by_group"]
            st.dataframe([{"": GROUP_LABELS[name], "solved (base)": report["base"]["by_group"].get(name, {}).get("solved_rate"),
                           "solved (tuned)": groups[name]["solved_rate"], "problems": groups[name]["tasks"]}
                          for name in GROUP_LABELS if name in groups], hide_index=True)
    ui.show_command(ws, argv)


def side_by_side() -> None:
    prompt = st.text_input("Prompt", value="Who are you?")
    if st.button("Ask both", disabled=not prompt or bool(busy)):
        settings = {"temperature": 0, "max_new_tokens": 96}
        columns = st.columns(2)
        for column, (title, (path, lora)) in zip(columns, (("Base", (None, None)), ("Tuned", (model, adapter)))):
            engine = shared_engine(argparse.Namespace(**{**vars(parse_page_args([])), "model": path, "adapter": lora}))
            column.markdown(f"**{title}**")
            column.markdown(engine.chat([{"role": "user", "content": prompt}], **settings))
    ui.show_command(ws, ["chat", *target, "--temperature", "0"], "Chat with it in a shell")


identity_tab, tools_tab, compare_tab = st.tabs(["Identity", "Tool use", "Side by side"])
with identity_tab:
    identity()
with tools_tab:
    tools()
with compare_tab:
    side_by_side()
