"""`tunechat data identity`: the tutorial's self-identity homework, done so that it generalises."""
from __future__ import annotations

import re
from collections import Counter

import pytest
from data_helpers import assert_fails, data_cli, read_jsonl

from datasets_builders.errors import DataError
from datasets_builders.identity import (
    LANGS,
    Persona,
    build_identity,
    eval_questions,
    general_questions,
    identity_questions,
    trim_to_sentence,
)

PLACEHOLDER = re.compile(r"\{\w*\}")


def normal(text: str) -> str:
    return re.sub(r"[\s?？。.!！]+", " ", text.casefold()).strip()


def turns(path) -> list[dict]:
    return [r["conversation"][0] for r in read_jsonl(path)]


def test_every_answer_names_name_and_no_placeholder_survives(tmp_path):
    for extra in ([], ["--bot-name", "Robo"], ["--author", "Bob", "--bot-name", "小智"]):
        out = tmp_path / "identity.jsonl"
        result = data_cli("identity", "--name", "不要葱姜蒜大佬", "--no-regularize", "--size", "300", "-o", out, *extra)
        assert result.returncode == 0, result.stderr
        records = turns(out)
        assert len(records) == 300
        for turn in records:
            assert "不要葱姜蒜大佬" in turn["output"]
            assert not PLACEHOLDER.search(turn["input"] + turn["output"])
        if "Bob" in extra:
            assert any("Bob" in t["output"] for t in records) and any("小智" in t["output"] for t in records)


def test_many_paraphrases_in_both_languages_and_training_never_sees_a_held_out_one(tmp_path):
    train, held_out = identity_questions("train"), identity_questions("heldout")
    for lang in LANGS:
        assert len({q.text for q in train + held_out if q.lang == lang}) >= 30
        assert len({q.category for q in train if q.lang == lang}) >= 6
    assert not {normal(q.text) for q in train} & {normal(q.text) for q in held_out}
    general_train, general_eval = general_questions("train"), general_questions("eval")
    assert len(general_train) >= 40 and len(general_eval) >= 10
    assert not {normal(q) for q in general_train} & {normal(q) for q in general_eval}
    assert not {normal(q.text) for q in train + held_out} & {normal(q) for q in general_train + general_eval}

    out, eval_out = tmp_path / "identity.jsonl", tmp_path / "eval.jsonl"
    result = data_cli("identity", "--name", "Alice", "--no-regularize", "-o", out, "--eval-out", eval_out)
    assert result.returncode == 0, result.stderr
    asked = {t["input"] for t in turns(out)}
    assert asked == {q.text for q in train}  # the default size covers every training question
    assert not asked & {q.text for q in held_out}


def test_every_answer_names_the_assistant_in_its_first_words_and_abilities_are_asked_twice_as_often():
    # A small model echoes an unseen "what can you do" question ("I can handle…", "你可以…") unless the
    # trained answers put the name first; "You can call me…" openers would teach the echo.
    data = build_identity(Persona("Alice"), size=len(identity_questions("train", weighted=True)))
    for turn in data.records:
        assert 0 <= turn[-1]["content"].find("Alice") <= len("I am "), turn
    asked = Counter(turn[-2]["content"] for turn in data.records)
    for question in identity_questions("train"):
        assert asked[question.text] == (2 if question.category == "abilities" else 1), question


def test_eval_out_writes_the_held_out_questions_with_the_expected_name(tmp_path):
    eval_out = tmp_path / "eval.jsonl"
    result = data_cli("identity", "--name", "Alice", "--no-regularize", "--system", "Be helpful.",
                      "-o", tmp_path / "identity.jsonl", "--eval-out", eval_out)
    assert result.returncode == 0, result.stderr
    records = read_jsonl(eval_out)
    assert [r["conversation"][0]["input"] for r in records] == [q.text for q in identity_questions("heldout")]
    for record in records:
        assert record["expected"] == "Alice" and "Alice" in record["conversation"][0]["output"]
        assert record["conversation"][0]["system"] == "Be helpful."
    assert data_cli("check", eval_out).returncode == 0
    questions = eval_questions()
    assert questions.identity == identity_questions("heldout") and questions.unrelated == general_questions("eval")


def test_size_seed_language_and_system_are_honoured(tmp_path):
    def build(name, *options):
        out = tmp_path / name
        result = data_cli("identity", "--name", "Alice", "--no-regularize", "-o", out, *options)
        assert result.returncode == 0, result.stderr
        return out

    a, b, c = build("a.jsonl", "--seed", "1"), build("b.jsonl", "--seed", "1"), build("c.jsonl", "--seed", "2")
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    chinese = turns(build("zh.jsonl", "--lang", "zh", "--size", "25", "--system", "你是小助手。"))
    assert len(chinese) == 25
    assert all(re.search(r"[\u4e00-\u9fff]", t["input"]) and t["system"] == "你是小助手。" for t in chinese)


def test_bad_settings_are_refused(tmp_path):
    out = tmp_path / "identity.jsonl"
    assert_fails(data_cli("identity", "--name", " ", "--no-regularize", "-o", out), "--name must not be empty")
    assert_fails(data_cli("identity", "--name", "A", "--no-regularize", "--size", "0", "-o", out), "--size")
    assert not out.exists()
    with pytest.raises(DataError, match="unknown placeholder"):
        Persona("Alice").answer("I am {owner}'s assistant.", "en")
    with pytest.raises(DataError, match="does not name"):
        Persona("Alice").answer("I am an assistant.", "en")


def test_regularization_adds_general_questions_answered_by_the_given_function():
    asked: list[str] = []

    def answer(questions: list[str]) -> list[str]:
        asked.extend(questions)
        return [f"base answer to: {q}" if i else "  " for i, q in enumerate(questions)]

    data = build_identity(Persona("Alice"), size=50, seed=3, answer=answer, regularize_count=10)
    assert len(asked) == 10 and set(asked) <= set(general_questions("train"))
    assert (data.identity, data.regularization, data.dropped) == (50, 9, 1)
    regular = [m for m in data.records if m[0]["content"] in asked]
    assert len(regular) == 9 and all(m[1]["content"] == f"base answer to: {m[0]['content']}" for m in regular)
    assert data.records[:9] != regular  # mixed in, not appended


def test_a_cut_off_answer_is_trimmed_to_its_last_sentence():
    assert trim_to_sentence("Paris is the capital. It has about two mil") == "Paris is the capital."
    assert trim_to_sentence("光合作用是植物的过程。它需要阳") == "光合作用是植物的过程。"
    assert trim_to_sentence("no sentence end at all") == ""
    assert trim_to_sentence("Three tips:\n1. Keep a schedule.\n2. Avoid scr") == "Three tips:\n1. Keep a schedule."
    assert trim_to_sentence("1. Keep") == ""


def test_regularization_runs_the_base_model_with_progress(tmp_path, model_path):
    out = tmp_path / "identity.jsonl"
    result = data_cli("identity", "--name", "Alice", "--size", "10", "--regularize-with", model_path,
                      "--regularize-count", "2", "--regularize-max-tokens", "32", "--lang", "en", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "base model answering" in result.stderr
    records = turns(out)
    general = [t for t in records if t["input"] in general_questions("train")]
    assert len(general) >= 1 and len(records) == 10 + len(general)  # an answer with no full sentence is dropped
    assert all(t["output"].strip() and "Alice" not in t["output"] for t in general)
    assert f"10 identity, {len(general)} regularization" in result.stdout


def test_identity_report_gives_intervals_language_match_and_repeated_clauses():
    from sdk.evaluation import IdentityReport, Row, repeats_a_clause, same_language, wilson

    assert wilson(25, 26) == (0.8111, 0.9932) and wilson(0, 20) == (0.0, 0.1611) and wilson(0, 0) == (0.0, 1.0)
    assert same_language("你是谁？", "我是Alice的小助手。") and not same_language("你是谁？", "I am Alice's assistant.")
    assert same_language("Who are you?", "I am Alice's assistant.") and not same_language("Who are you?", "我是小助手。")
    assert repeats_a_clause("I am Alice's assistant, and I'm Alice's assistant.")
    assert not repeats_a_clause("I am Alice's assistant. I can help with many things.")
    report = IdentityReport(name="Alice", hit_rate=1.0, false_trigger_rate=0.0, retention=None, identity=[
        Row("你是谁？", "我是Alice的小助手。", True), Row("你叫什么？", "I am Alice's assistant.", True),
        Row("Who are you?", "I am Alice's assistant, and I'm Alice's assistant.", True)])
    assert report.language_match == 2 / 3 and report.repeated_clauses == 1 / 3
    table = report.table()
    assert "identity hit rate      100.0% [44%–100%]" in table and "language match          66.7%" in table
    assert report.to_dict()["intervals"]["hit_rate"] == wilson(3, 3)


def test_a_control_file_reads_as_questions_and_keywords_with_line_numbered_errors(tmp_path):
    import pytest

    from datasets_builders.errors import DataError
    from datasets_builders.identity import read_control

    path = tmp_path / "control.jsonl"
    path.write_text('{"question": "Capital of France?", "keywords": ["Paris", "巴黎"]}\n{"question": "2+2?", "keywords": []}\n',
                    encoding="utf-8")
    with pytest.raises(DataError, match=f'{path} line 2: field "keywords" must be a non-empty array'):
        read_control(str(path))
    path.write_text('{"question": "Capital of France?", "keywords": ["Paris", "巴黎"]}\n', encoding="utf-8")
    assert read_control(str(path)) == [("Capital of France?", "Paris|巴黎")]
