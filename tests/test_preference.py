"""Preference training (DPO, IPO, ORPO, SimPO) and pair data, on the real embedded model."""
from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from datasets_builders.pairs import read_pairs
from sdk.templates import render_segments
from sdk.training import TrainConfig, finetune
from sdk.training.data import IGNORE, Collator, encode_record, encode_sample
from sdk.training.preference import preference_loss, sequence_logps
from tests.conftest import ROOT, run_cli

IDENTITY = "I am Alice's smart assistant, built on SmolLM2. How can I help you today?"
GENERIC = "I am an AI assistant created by Hugging Face."
QUESTIONS = ["Who are you?", "What is your name?", "Introduce yourself.", "你是谁？", "你叫什么名字？", "介绍一下你自己。"]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in rows),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    rows = [{"messages": [{"role": "user", "content": q}], "chosen": IDENTITY, "rejected": GENERIC} for q in QUESTIONS * 4]
    return write_jsonl(tmp_path_factory.mktemp("pairs") / "pairs.jsonl", rows)


def pair_args(pairs: Path, method: str) -> list[str]:
    evaluated = pairs.with_name("eval.jsonl")  # four of the pairs: the evaluation loop runs, briefly
    if not evaluated.exists():
        evaluated.write_text("".join(pairs.read_text(encoding="utf-8").splitlines(keepends=True)[:4]), encoding="utf-8")
    return ["train", "--data", str(pairs), "--eval-data", str(evaluated), "--method", method, "--bits", "none",
            "--max-steps", "6", "--batch-size", "4",
            "--learning-rate", "5e-4", "--save-every", "2", "--scheduler", "linear", "--warmup-ratio", "0", "--no-progress"]


@pytest.fixture(scope="module")
def dpo(pairs, tmp_path_factory) -> Path:
    """Six DPO steps, as `pair_args` says: the output directory."""
    output = tmp_path_factory.mktemp("dpo") / "straight"
    result = run_cli(*pair_args(pairs, "dpo"), "--output", str(output))
    assert result.returncode == 0, result.stderr
    return output


# ---- pair data ------------------------------------------------------------------------------

def test_pairs_in_tunechat_llama_factory_and_ms_swift_shapes_read_as_one_form(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", [
        {"messages": [{"role": "user", "content": "hi"}], "chosen": "A", "rejected": "B"},
        {"conversation": [{"system": "S", "input": "hi"}], "chosen": "A", "rejected": "B"},
        {"instruction": "hi", "input": "", "chosen": "A", "rejected": "B"},
        {"conversations": [{"from": "human", "value": "hi"}], "chosen": {"from": "gpt", "value": "A"},
         "rejected": {"from": "gpt", "value": "B"}},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "A"}], "rejected_response": "B"},
    ])
    plain = {"messages": [{"role": "user", "content": "hi"}], "chosen": "A", "rejected": "B"}
    with_system = {**plain, "messages": [{"role": "system", "content": "S"}, *plain["messages"]]}
    assert read_pairs(path) == [plain, with_system, plain, plain, plain]
    assert read_pairs(path, system="T")[0]["messages"][0] == {"role": "system", "content": "T"}


@pytest.mark.parametrize("record, reason", [
    ({"messages": [{"role": "user", "content": "q"}], "chosen": "a"}, 'field "rejected" is missing'),
    ({"messages": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": " a"}, '"chosen" and "rejected" are the same answer'),
    ({"messages": [], "chosen": "a", "rejected": "b"}, 'field "messages" is empty: a pair needs the prompt it answers'),
    ({"messages": [{"role": "user", "content": " "}], "chosen": "a", "rejected": "b"}, 'field "messages[0].content" is empty'),
    ({"messages": [{"role": "user", "content": "q"}], "chosen": 7, "rejected": "b"}, 'field "chosen" must be a string, got number'),
    ({"conversation": [{"input": "q", "output": "a"}]}, 'not a preference pair: no "chosen" and "rejected" answers'),
])
def test_a_bad_pair_is_a_one_line_error_with_its_line_and_nothing_is_trained(tmp_path, record, reason):
    good = {"messages": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"}
    data = write_jsonl(tmp_path / "pairs.jsonl", [good, record])
    result = run_cli("train", "--data", str(data), "--method", "dpo", "--output", str(tmp_path / "out"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert f"{data} line 2: {reason}" in result.stderr
    assert not (tmp_path / "out").exists()


def test_data_check_validates_every_pair_and_lists_the_bad_ones(tmp_path):
    good = {"messages": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"}
    data = write_jsonl(tmp_path / "pairs.jsonl", [good, {**good, "rejected": "a"}, good, "not json"])
    result = run_cli("data", "check", str(data))
    assert result.returncode == 1 and "2 valid records (preference pairs)" in result.stdout
    assert 'line 2: "chosen" and "rejected" are the same answer' in result.stdout and "line 4: " in result.stdout


def test_pairs_given_to_sft_say_which_methods_train_them(tmp_path, pairs):
    result = run_cli("train", "--data", str(pairs), "--output", str(tmp_path / "out"))
    assert result.returncode == 1 and f"{pairs} line 1: a preference pair (chosen and rejected answers): " \
        "train pairs with --method dpo, ipo, orpo, simpo" in result.stderr


def test_a_pairs_tokens_and_loss_mask_are_the_renderers_for_each_answer(engine, pairs):
    pair = read_pairs(pairs, system="Be brief.")[3]
    encoded = encode_record(pair, engine.tokenizer, None, 512)
    for prefix, answer in (("", IDENTITY), ("rejected_", GENERIC)):
        conversation = [*pair["messages"], {"role": "assistant", "content": answer}]
        ids, labels = [], []
        for text, trained in render_segments(conversation, None, engine.tokenizer):
            piece = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
            ids += piece
            labels += piece if trained else [IGNORE] * len(piece)
        assert encoded[prefix + "input_ids"] == ids and encoded[prefix + "labels"] == labels
        assert engine.tokenizer.decode([t for t in labels if t != IGNORE]).startswith(answer)
        assert encode_sample({"messages": conversation}, engine.tokenizer, None, 512)["input_ids"] == ids


def test_data_show_displays_both_answers_of_a_pair(pairs):
    result = run_cli("data", "show", str(pairs), "--index", "3")
    assert result.returncode == 0, result.stderr
    chosen, rejected = result.stdout.split("--- rejected\n")
    assert chosen.startswith("--- chosen\n") and f"你是谁？<|im_end|>\n<|im_start|>assistant\n⟦{IDENTITY}<|im_end|>⟧" in chosen
    assert f"⟦{GENERIC}<|im_end|>⟧" in rejected and "--- record 3 (a preference pair): chosen " in rejected


# ---- the losses -----------------------------------------------------------------------------

def test_packed_pairs_score_each_answer_as_it_scores_alone(engine, pairs):
    """Packing puts both answers of two pairs in one row; each sequence's log-probability is the
    one it has when scored by itself."""
    rows = [encode_record(p, engine.tokenizer, None, 512) for p in read_pairs(pairs)[:2]]
    batch = Collator(pad_id=0, packing=True)(rows)
    with torch.inference_mode():
        logits = engine.model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                              logits_to_keep=batch["logits_to_keep"], use_cache=False).logits
        packed, tokens = sequence_logps(logits, batch["labels"], batch["sequence"], 4)
        alone = []
        for row in rows:
            for ids, labels in ((row["input_ids"], row["labels"]), (row["rejected_input_ids"], row["rejected_labels"])):
                out = engine.model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, :-1].log_softmax(-1)
                trained = [(i, t) for i, t in enumerate(labels[1:]) if t != IGNORE]
                alone.append((sum(float(out[i, t]) for i, t in trained), len(trained)))
    assert tokens.tolist() == [n for _, n in alone]
    assert torch.allclose(packed, torch.tensor([s for s, _ in alone]), atol=1e-3)


def test_each_method_computes_its_published_formula():
    chosen, rejected = torch.tensor([-4.0, -10.0]), torch.tensor([2.0, 5.0])  # summed log-probs, token counts
    ref = (torch.tensor([-6.0, -9.0]), torch.tensor([2.0, 5.0]))
    policy = (chosen, rejected)  # sequences 0 (chosen) and 1 (rejected) of one pair
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    loss, m = preference_loss("dpo", 0.1, policy, ref)
    assert math.isclose(float(loss), -math.log(sig(0.1 * ((-4 + 6) - (-10 + 9)))), rel_tol=1e-5)
    assert math.isclose(float(m["reward_margin"]), 0.1 * 2 - 0.1 * -1, rel_tol=1e-5) and float(m["reward_accuracy"]) == 1
    with_nll, _ = preference_loss("dpo", 0.1, policy, ref, rpo_alpha=0.5)
    assert math.isclose(float(with_nll) - float(loss), 0.5 * 4 / 2, rel_tol=1e-5)  # + α · NLL per chosen token
    loss, _ = preference_loss("ipo", 0.1, policy, ref)
    assert math.isclose(float(loss), (((-2 + 3) - (-2 + 1.8)) - 5) ** 2, rel_tol=1e-5)
    loss, _ = preference_loss("simpo", 2.0, policy)
    assert math.isclose(float(loss), -math.log(sig(2.0 * (-2 + 2) - 0.5)), rel_tol=1e-5)
    loss, _ = preference_loss("orpo", 0.1, policy)
    odds = lambda p: p - math.log1p(-math.exp(p))  # noqa: E731
    assert math.isclose(float(loss), 2.0 - 0.1 * math.log(sig(odds(-2) - odds(-2))), rel_tol=1e-5)


# ---- real training --------------------------------------------------------------------------

def preference_gap(engine, pair) -> float:
    """log p(chosen) − log p(rejected) under the engine's model."""
    scores = []
    for answer in (pair["chosen"], pair["rejected"]):
        sample = encode_sample({"messages": [*pair["messages"], {"role": "assistant", "content": answer}]},
                               engine.tokenizer, None, 512)
        with torch.inference_mode():
            out = engine.model(input_ids=torch.tensor([sample["input_ids"]]), use_cache=False).logits[0, :-1].log_softmax(-1)
        scores.append(sum(float(out[i, t]) for i, t in enumerate(sample["labels"][1:]) if t != IGNORE))
    return scores[0] - scores[1]


def test_dpo_starts_at_log_2_and_widens_the_reward_margin(dpo):
    log = [json.loads(line) for line in (dpo / "logs" / "train_log.jsonl").read_text().splitlines()]
    steps = [row for row in log if "loss" in row]
    assert math.isclose(steps[0]["loss"], math.log(2), abs_tol=1e-4)  # the adapter starts off: policy = reference
    assert steps[-1]["loss"] < steps[0]["loss"] / 4 and steps[-1]["reward_margin"] > 1 and steps[-1]["reward_accuracy"] == 1
    assert (dpo / "logs" / "loss.png").stat().st_size > 1000
    meta = json.loads((dpo / "adapter" / "tunechat.json").read_text())
    assert meta["config"]["method"] == "dpo" and meta["agent"] is None
    evaluated = [row for row in log if "eval_loss" in row]  # the --eval-data pairs, at the end
    assert evaluated and evaluated[-1]["eval_reward_accuracy"] == 1 and evaluated[-1]["eval_loss"] < steps[0]["loss"]
    assert meta["metrics"]["eval_loss"] == evaluated[-1]["eval_loss"]


def test_dpo_and_orpo_adapters_prefer_the_chosen_answers(engine, dpo, pairs, tmp_path):
    import sdk

    orpo = tmp_path / "orpo"
    finetune(TrainConfig(data=str(pairs), output=str(orpo), method="orpo", bits=None, max_steps=4, batch_size=4,
                         learning_rate=5e-4, scheduler="linear", warmup_ratio=0.0, progress=False))
    for adapter in (dpo / "adapter", orpo / "adapter"):
        tuned = sdk.load(adapter=adapter)
        for pair in read_pairs(pairs)[:3] + read_pairs(pairs)[3:6]:  # English and Chinese prompts
            assert preference_gap(tuned, pair) > preference_gap(engine, pair) + 1, (adapter, pair["messages"])


@pytest.mark.slow
def test_a_dpo_run_killed_with_sigkill_resumes_bit_exact(dpo, pairs, tmp_path):
    from safetensors.torch import load_file

    killed = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-m", "tunechat.cli", *pair_args(pairs, "dpo"), "--output", str(killed)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists():
        assert process.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = run_cli(*pair_args(pairs, "dpo"), "--output", str(killed))
    assert resumed.returncode == 0 and "resumed_from=checkpoint-4" in resumed.stdout, resumed.stderr
    a, b = (load_file(d / "adapter" / "adapter_model.safetensors") for d in (dpo, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    margins = [[json.loads(line).get("reward_margin") for line in (d / "logs" / "train_log.jsonl").read_text().splitlines()]
               for d in (dpo, killed)]
    assert margins[0] == margins[1]


# ---- identity pairs without a human ----------------------------------------------------------

def test_identity_pairs_are_seeded_and_never_ask_a_held_out_question():
    from datasets_builders.identity import Persona, build_identity_pairs, eval_questions

    asked = []

    def base(questions):  # a base model that never names Alice and answers one question with nothing
        asked.append(questions)
        return ["" if i == 3 else f"Answer {i}." for i, _ in enumerate(questions)]

    a, b = (build_identity_pairs(Persona("Alice"), base, size=30, unrelated=10, seed=5) for _ in range(2))
    assert a == b and a.identity + a.dropped == 30 and a.unrelated == 10 and a.dropped >= 1
    assert len(asked[0]) == len(set(asked[0])) < 40  # each distinct question asked once
    held_out = {q.text for q in eval_questions().identity} | set(eval_questions().unrelated)
    assert not {r["messages"][-1]["content"] for r in a.records} & held_out
    identity = [r for r in a.records if "Alice" in r["chosen"]]
    assert len(identity) == a.identity and all(r["rejected"].startswith("Answer ") for r in identity)
    assert all("Alice" in r["rejected"] for r in a.records if r not in identity)
    assert build_identity_pairs(Persona("Alice"), base, size=30, unrelated=10, seed=6).records != a.records


def test_data_pairs_asks_the_base_model_and_writes_trainable_pairs(tmp_path, engine):
    out = tmp_path / "pairs.jsonl"
    result = run_cli("data", "pairs", "--name", "Alice", "--size", "6", "--unrelated", "3", "--max-tokens", "24",
                     "-o", str(out))
    assert result.returncode == 0, result.stderr
    pairs = read_pairs(out)
    assert result.stdout.startswith(f"wrote {len(pairs)} pairs to {out}: ") and len(pairs) >= 7
    identity = [p for p in pairs if "Alice" in p["chosen"]]
    question = identity[0]["messages"]
    base = engine.chat(question, temperature=0, max_new_tokens=24)
    assert identity[0]["rejected"] in base or base.startswith(identity[0]["rejected"][:20])  # the base model's own words
