"""`tunechat data` as a whole: help for every action, and `check`, which reports on a whole file."""
from __future__ import annotations

import json

import pytest
from data_helpers import assert_fails, data_cli

ACTIONS = ["sheet", "convert", "split", "identity", "pairs", "check"]


def qa(question: str, answer: str, *more: tuple[str, str]) -> dict:
    return {"conversation": [{"input": q, "output": a} for q, a in [(question, answer), *more]]}


@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_explains_itself(action):
    result = data_cli(action, "--help")
    assert result.returncode == 0 and f"usage: tunechat data {action}" in result.stdout


def test_data_help_lists_the_actions_and_an_unknown_one_is_a_one_line_usage_error():
    result = data_cli("--help")
    assert result.returncode == 0 and all(action in result.stdout for action in ACTIONS)
    result = data_cli("sheets")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_check_summarises_a_valid_file(tmp_path):
    source = tmp_path / "train.jsonl"
    records = [qa("Hi", "Hello"), qa("2+2?", "4", ("and 3+3?", "6")), qa("Hi", "Hello"), qa(" hi ", "Hey")]
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = data_cli("check", source)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("train.jsonl: 4 valid records (xtuner), 5 turns")
    assert lines[1] == "length in characters: min 7, mean 8.8, max 14"
    assert lines[2] == "duplicates: 1 record repeating an earlier record, 2 records repeating an earlier record's first input"


def test_check_lists_every_invalid_record_and_fails(tmp_path):
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b"\n".join([
        json.dumps(qa("ok", "fine")).encode(),
        b'{"conversation": [{"input": "no answer"}]}',
        b'{"conversation": [',
        json.dumps(qa("ok too", "fine")).encode(),
        '{"conversation": [{"input": "你好", "output": 1}]}'.encode(),
        "{\"conversation\": [{\"input\": \"\u4f60\"}]}".encode("gbk"),
    ]) + b"\n")
    result = data_cli("check", source)
    assert_fails(result, "mixed.jsonl: 4 invalid records")
    assert "2 valid records (xtuner)" in result.stdout
    listed = [line.strip() for line in result.stdout.splitlines() if line.startswith("  line ")]
    assert [line.split(":")[0] for line in listed] == ["line 2", "line 3", "line 5", "line 6"]
    assert 'field "conversation[0].output" is missing' in listed[0]
    assert "broken JSON" in listed[1]
    assert "must be a string, got number" in listed[2]
    assert "not UTF-8" in listed[3]


def test_check_counts_tokens_with_a_model(tmp_path, model_path):
    source = tmp_path / "train.jsonl"
    source.write_text(json.dumps(qa("Who are you?", "I am Alice's assistant.")) + "\n")
    characters = data_cli("check", source)
    tokens = data_cli("check", source, "--model", model_path)
    assert tokens.returncode == 0, tokens.stderr
    assert "length in tokens:" in tokens.stdout
    count = int(tokens.stdout.split("length in tokens: min ")[1].split(",")[0])
    assert "length in characters: min 35," in characters.stdout
    assert 10 < count < 100 and count != 35  # the rendered chat: template markers (and any default system prompt)
