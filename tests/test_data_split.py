"""`tunechat data split`: the tutorial's 7:3 split, reproducible everywhere and without leakage."""
from __future__ import annotations

import json

import pytest
from data_helpers import assert_fails, data_cli, read_jsonl


def qa(question: str, answer: str = "answer") -> dict:
    return {"conversation": [{"input": question, "output": answer}]}


def write(path, records) -> str:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")
    return path


def split(tmp_path, source, *options, tag="a"):
    train, test = tmp_path / f"train-{tag}.jsonl", tmp_path / f"test-{tag}.jsonl"
    result = data_cli("split", source, "--train-out", train, "--test-out", test, *options)
    assert result.returncode == 0, result.stderr
    return train, test, result


def inputs(path) -> list[str]:
    return [r["conversation"][0]["input"] for r in read_jsonl(path)]


def test_the_same_seed_gives_byte_identical_files_and_another_seed_another_split(tmp_path):
    source = write(tmp_path / "all.jsonl", [qa(f"question {i}") for i in range(200)])
    train_a, test_a, _ = split(tmp_path, source, "--seed", "7", tag="a")
    train_b, test_b, _ = split(tmp_path, source, "--seed", "7", tag="b")
    assert train_a.read_bytes() == train_b.read_bytes() and test_a.read_bytes() == test_b.read_bytes()
    train_c, _, _ = split(tmp_path, source, "--seed", "8", tag="c")
    assert train_c.read_bytes() != train_a.read_bytes()


def test_the_split_is_the_same_on_every_machine(tmp_path):
    """Group order comes from SHA-256 of seed and question, not from Python's salted hash() or
    its random module: this exact assignment must never change."""
    source = write(tmp_path / "all.jsonl", [qa(f"q{i}") for i in range(10)])
    train, test, result = split(tmp_path, source)
    assert inputs(test) == ["q0", "q1", "q3"]
    assert inputs(train) == ["q2", "q4", "q5", "q6", "q7", "q8", "q9"]  # each side keeps the input order
    assert "train: 7 records" in result.stdout and "test:  3 records" in result.stdout


def test_records_with_the_same_question_land_on_one_side_only(tmp_path):
    records = [qa(f"question {i}") for i in range(60)]
    records += [qa("What is aspirin?", f"answer {k}") for k in range(4)]
    records += [qa("  what is ASPIRIN? ", "same question, other spacing and case"), qa("Dose?", "1"), qa("dose?", "2")]
    source = write(tmp_path / "all.jsonl", records)
    for seed in range(5):
        train, test, _ = split(tmp_path, source, "--seed", str(seed), tag=str(seed))
        train_keys = {" ".join(q.casefold().split()) for q in inputs(train)}
        test_keys = {" ".join(q.casefold().split()) for q in inputs(test)}
        assert not train_keys & test_keys
        assert len(inputs(train)) + len(inputs(test)) == len(records)


@pytest.mark.parametrize("count,ratio", [(10, 0.7), (37, 0.7), (101, 0.8), (250, 0.5), (3, 0.7)])
def test_the_ratio_holds_to_within_one_record(tmp_path, count, ratio):
    records = [qa(f"q{i}") for i in range(count)] + [qa("q0", "duplicate"), qa("q1", "duplicate")]
    source = write(tmp_path / "all.jsonl", records)
    train, test, _ = split(tmp_path, source, "--ratio", str(ratio))
    assert abs(len(inputs(train)) - ratio * len(records)) <= 1


def test_records_are_copied_as_they_are_from_a_json_array(tmp_path):
    records = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}], "id": i}
               for i in range(10)]
    source = tmp_path / "all.json"
    source.write_text(json.dumps(records, indent=4))
    train, test, _ = split(tmp_path, source)
    assert sorted(read_jsonl(train) + read_jsonl(test), key=lambda r: r["id"]) == records


def test_a_bad_ratio_or_bad_input_writes_nothing(tmp_path):
    source = write(tmp_path / "all.jsonl", [qa("q")])
    result = data_cli("split", source, "--train-out", tmp_path / "tr.jsonl", "--test-out", tmp_path / "te.jsonl",
                      "--ratio", "1.5")
    assert_fails(result, "--ratio must be between 0 and 1")
    (tmp_path / "bad.jsonl").write_text(json.dumps(qa("q")) + "\n{oops\n")
    result = data_cli("split", tmp_path / "bad.jsonl", "--train-out", tmp_path / "tr.jsonl",
                      "--test-out", tmp_path / "te.jsonl")
    assert_fails(result, "bad.jsonl line 2", "broken JSON")
    assert not (tmp_path / "tr.jsonl").exists() and not (tmp_path / "te.jsonl").exists()
