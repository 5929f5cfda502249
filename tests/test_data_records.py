"""Record files: what `tunechat data convert` accepts, what it writes, and how it refuses bad input.

Every refusal is one line naming the file and the line (and the field), exit 1, and no output file."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from data_helpers import assert_fails, data_cli, read_jsonl

XTUNER = {"conversation": [{"system": "Be brief.", "input": "你好", "output": "Hello!"}]}
ALPACA = {"instruction": "Translate to English.", "input": "你好", "output": "Hello", "task_type": "x", "domain": ["y"]}


def jsonl(*records) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def convert(tmp_path, content: str | bytes, *options: str):
    source = tmp_path / "in.jsonl"
    source.write_bytes(content.encode() if isinstance(content, str) else content)
    return data_cli("convert", source, "-o", tmp_path / "out.jsonl", *options), tmp_path / "out.jsonl"


# -- accepted shapes ---------------------------------------------------------------------------

def test_the_package_never_imports_torch():
    code = "import sys, datasets_builders, datasets_builders.sheet, datasets_builders.check, datasets_builders.split;" \
           "print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_alpaca_instruction_and_input_become_the_input_and_other_fields_are_dropped(tmp_path):
    no_input = {"instruction": "Say hi.", "input": "", "output": "Hi!"}
    result, out = convert(tmp_path, jsonl(ALPACA, no_input))
    assert result.returncode == 0, result.stderr
    assert read_jsonl(out) == [
        {"conversation": [{"input": "Translate to English.\n你好", "output": "Hello"}]},
        {"conversation": [{"input": "Say hi.", "output": "Hi!"}]},
    ]
    assert "alpaca -> xtuner" in result.stdout


def test_output_is_real_utf8_jsonl_with_chinese_unescaped(tmp_path):
    result, out = convert(tmp_path, jsonl(XTUNER))
    assert result.returncode == 0, result.stderr
    raw = out.read_bytes()
    assert "你好".encode() in raw and b"\\u" not in raw
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1


def test_a_json_array_like_the_tutorial_writes_is_read(tmp_path):
    """The tutorial's scripts json.dump a list with indent=4 into a .jsonl file."""
    records = [XTUNER, {"conversation": [{"input": "2+2?", "output": "4"}, {"input": "and 3+3?", "output": "6"}]}]
    result, out = convert(tmp_path, json.dumps(records, indent=4, ensure_ascii=False))
    assert result.returncode == 0, result.stderr
    assert read_jsonl(out) == records


def test_a_utf8_bom_and_crlf_line_ends_are_accepted(tmp_path):
    content = b"\xef\xbb\xbf" + jsonl(XTUNER, XTUNER).replace("\n", "\r\n").encode()
    result, out = convert(tmp_path, content)
    assert result.returncode == 0, result.stderr
    assert read_jsonl(out) == [XTUNER, XTUNER]


def test_blank_lines_are_ignored(tmp_path):
    result, out = convert(tmp_path, "\n" + jsonl(XTUNER) + "\n  \n" + jsonl(XTUNER))
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out)) == 2


def test_sharegpt_converts_with_its_system_prompt(tmp_path):
    record = {"system": "Be kind.", "conversations": [
        {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
        {"from": "human", "value": "Bye"}, {"from": "gpt", "value": "Goodbye"}]}
    result, out = convert(tmp_path, jsonl(record))
    assert result.returncode == 0, result.stderr
    assert read_jsonl(out) == [{"conversation": [{"system": "Be kind.", "input": "Hi", "output": "Hello"},
                                                 {"input": "Bye", "output": "Goodbye"}]}]


def test_xtuner_and_openai_convert_both_ways(tmp_path):
    result, out = convert(tmp_path, jsonl(XTUNER), "--to", "openai")
    assert result.returncode == 0, result.stderr
    messages = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好"},
                             {"role": "assistant", "content": "Hello!"}]}
    assert read_jsonl(out) == [messages]
    result, back = convert(tmp_path, jsonl(messages))
    assert result.returncode == 0, result.stderr
    assert read_jsonl(back) == [XTUNER]


def test_system_replaces_every_records_system_prompt(tmp_path):
    result, out = convert(tmp_path, jsonl(XTUNER, ALPACA), "--system", "You are a doctor.")
    assert result.returncode == 1  # two formats in one file
    result, out = convert(tmp_path, jsonl(ALPACA, ALPACA), "--system", "You are a doctor.")
    assert result.returncode == 0, result.stderr
    assert {r["conversation"][0]["system"] for r in read_jsonl(out)} == {"You are a doctor."}


def test_tool_call_messages_with_environment_role_and_name_are_valid(tmp_path):
    record = {"messages": [
        {"role": "system", "content": "You can use tools."}, {"role": "user", "content": "2**10?"},
        {"role": "assistant", "content": "call calculator(2**10)", "name": "plugin"},
        {"role": "environment", "content": "1024", "name": "plugin"},
        {"role": "assistant", "content": "It is 1024."}]}
    result, out = convert(tmp_path, jsonl(record), "--to", "openai")
    assert result.returncode == 0, result.stderr
    assert read_jsonl(out) == [record]
    out.unlink()
    result, out = convert(tmp_path, jsonl(record), "--to", "xtuner")
    assert_fails(result, "in.jsonl line 1", "environment", "--to openai")
    assert not out.exists()


def test_the_format_is_detected_from_the_first_record_unless_given(tmp_path):
    result, _ = convert(tmp_path, jsonl({"question": "q", "answer": "a"}))
    assert_fails(result, "in.jsonl line 1", "unknown record format", '"question"', "--from")
    result, _ = convert(tmp_path, jsonl({"messages": [], "conversation": []}))
    assert_fails(result, "in.jsonl line 1", "several formats", "--from")
    result, out = convert(tmp_path, jsonl(ALPACA), "--from", "sharegpt")
    assert_fails(result, "line 1", 'field "conversations" is missing')


# -- refusals ----------------------------------------------------------------------------------

BAD_INPUTS = {
    "broken JSON line": (jsonl(XTUNER) + '{"conversation": [}\n' + jsonl(XTUNER), ["line 2", "broken JSON"]),
    "truncated file": (jsonl(XTUNER) + '{"conversation": [{"input": "hi", "outp', ["line 2", "truncated"]),
    "truncated JSON array": ('[\n' + json.dumps(XTUNER) + ',\n{"conversation": [', ["line 3", "truncated"]),
    "empty file": ("", ["empty"]),
    "whitespace only": ("\n \r\n", ["empty"]),
    "empty JSON array": ("[]", ["empty"]),
    "missing output": (jsonl({"conversation": [{"input": "hi"}]}), ["line 1", 'field "conversation[0].output" is missing']),
    "number where text belongs": (jsonl(XTUNER, {"instruction": "x", "output": 3}),
                                  ["line 2", 'field "conversation" is missing']),
    "number as output": (jsonl({"conversation": [{"input": "hi", "output": 42}]}),
                         ["line 1", 'field "conversation[0].output" must be a string, got number']),
    "empty string": (jsonl({"conversation": [{"input": " ", "output": "x"}]}), ["line 1", '"conversation[0].input" is empty']),
    "not an object": (jsonl(XTUNER) + "[1, 2]\n", ["line 2", "must be a JSON object, got array"]),
    "user twice": (jsonl({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}),
                   ["line 1", 'field "messages[1].role"', '"user" cannot come after "user"']),
    "assistant first": (jsonl({"messages": [{"role": "assistant", "content": "a"}]}), ['"messages[0].role"', "first"]),
    "late system": (jsonl({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                                        {"role": "system", "content": "c"}]}), ['"messages[2].role"', "system"]),
    "ends with user": (jsonl({"messages": [{"role": "user", "content": "a"}]}), ["must end with an assistant message"]),
    "unknown role": (jsonl({"messages": [{"role": "bot", "content": "a"}]}), ['"messages[0].role" must be one of']),
    "system on a later turn": (jsonl({"conversation": [{"input": "a", "output": "b"}, {"system": "s", "input": "c", "output": "d"}]}),
                               ['"conversation[1].system"', "first turn"]),
}


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_is_refused_in_one_line_naming_file_and_line(tmp_path, kind):
    content, fragments = BAD_INPUTS[kind]
    result, out = convert(tmp_path, content)
    assert_fails(result, "in.jsonl", *fragments)
    assert not out.exists()


def test_a_non_utf8_file_names_the_line_and_byte(tmp_path):
    content = jsonl(XTUNER).encode() + '{"instruction": "你好", "output": "x"}\n'.encode("gbk")
    result, out = convert(tmp_path, content)
    assert_fails(result, "in.jsonl line 2", "not UTF-8", "byte offset", "GBK")
    assert not out.exists()


def test_a_failed_conversion_leaves_an_existing_output_untouched_and_no_temporary_files(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    result, _ = convert(tmp_path, jsonl(XTUNER, XTUNER) + '{"broken\n')
    assert result.returncode == 1
    assert out.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_a_missing_input_file_is_one_line(tmp_path):
    result = data_cli("convert", tmp_path / "nope.jsonl", "-o", tmp_path / "out.jsonl")
    assert_fails(result, "nope.jsonl: no such file")
