"""The Engine and Chat on the real embedded model (SmolLM2-135M-Instruct)."""
from __future__ import annotations

import pytest

import sdk
from sdk.errors import TunechatError

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


def test_greedy_chat_knows_paris(engine):
    assert "Paris" in engine.chat(FRANCE, max_new_tokens=32, temperature=0)


@pytest.mark.slow
def test_four_bit_chat_knows_paris(model_path):
    engine4 = sdk.load(model_path, bits=4)
    assert "Linear4bit" in {type(m).__name__ for m in engine4.model.modules()}
    assert "Paris" in engine4.chat(FRANCE, max_new_tokens=32, temperature=0)


def test_stop_word_cuts_the_answer_and_is_absent(engine):
    full = engine.chat(FRANCE, max_new_tokens=32, temperature=0)
    assert "Paris" in full
    cut = engine.chat(FRANCE, max_new_tokens=32, temperature=0, stop_words=["Paris"])
    assert "Paris" not in cut
    assert full.startswith(cut) and len(cut) < len(full)


def test_multi_token_stop_word_is_never_streamed(engine):
    full = engine.chat(FRANCE, max_new_tokens=32, temperature=0)
    stop = "of France"  # several tokens
    assert len(engine.encode(" " + stop)) > 1 and stop in full
    pieces = list(engine.stream(FRANCE, max_new_tokens=32, temperature=0, stop_words=[stop]))
    assert "".join(pieces) == full[: full.index(stop)]
    assert not any("of" in p and "France" in p for p in pieces)


@pytest.mark.parametrize(
    "question",
    ["Write two sentences about the sea.", "用中文介绍一下北京。", "Écris une phrase en français sur Paris."],
)
def test_streaming_equals_non_streaming_under_greedy(engine, question):
    messages = [{"role": "user", "content": question}]
    whole = engine.chat(messages, max_new_tokens=48, temperature=0)
    generation = engine.stream(messages, max_new_tokens=48, temperature=0)
    pieces = list(generation)
    assert len(pieces) > 5
    assert "".join(pieces) == whole == generation.text
    assert generation.prompt_tokens == len(engine.fit_prompt(messages, 48))
    # "length" exactly when the budget ran out; "stop" when the model ended its turn first.
    assert generation.finish_reason == ("length" if generation.completion_tokens == 48 else "stop")


def test_finish_reason_and_token_counts_say_why_an_answer_ended(engine):
    question = [{"role": "user", "content": "What is the capital of France?"}]
    cut = engine.stream(question, max_new_tokens=3, temperature=0)
    assert len(cut.result()) > 0 and (cut.finish_reason, cut.completion_tokens) == ("length", 3)
    whole = engine.stream(question, max_new_tokens=64, temperature=0)
    assert "Paris" in whole.result() and whole.finish_reason == "stop" and 3 < whole.completion_tokens < 64
    assert whole.text.startswith(cut.text)


def test_chinese_streaming_never_yields_broken_characters(engine):
    generation = engine.stream([{"role": "user", "content": "请用中文写一首关于月亮的短诗。"}], max_new_tokens=40, temperature=0)
    for piece in generation:
        assert "\ufffd" not in piece


def test_seed_makes_sampling_reproducible(engine):
    question = [{"role": "user", "content": "Tell me a short story about a cat."}]
    a = engine.chat(question, max_new_tokens=24, temperature=1.0, top_p=1.0, top_k=0, seed=7)
    b = engine.chat(question, max_new_tokens=24, temperature=1.0, top_p=1.0, top_k=0, seed=7)
    c = engine.chat(question, max_new_tokens=24, temperature=1.0, top_p=1.0, top_k=0, seed=8)
    assert a == b
    assert a != c


def test_eos_ends_the_answer_before_the_limit(engine):
    generation = engine.stream(FRANCE, max_new_tokens=200, temperature=0)
    text = generation.result()
    assert generation.finish_reason == "stop" and generation.completion_tokens < 200
    assert "<|im_end|>" not in text


def test_length_limit_reports_length(engine):
    generation = engine.stream([{"role": "user", "content": "Count from 1 to 100."}], max_new_tokens=5, temperature=0)
    generation.result()
    assert generation.finish_reason == "length" and generation.completion_tokens == 5


def test_kv_cache_reuse_gives_the_same_answer(engine):
    chat = sdk.Chat(engine, temperature=0, max_new_tokens=24)
    chat.send("My name is Ada.")
    second = chat.send("What is my name?")
    engine._cache, engine._cached_ids = None, []  # force a cold prefill of the same conversation
    cold = engine.chat(chat.messages()[:-1], temperature=0, max_new_tokens=24)
    assert second == cold


def test_oldest_turns_are_dropped_never_the_system_prompt(engine):
    long_turn = "word " * 300
    history = [{"role": "system", "content": "You are terse."}]
    for _ in range(8):
        history += [{"role": "user", "content": long_turn}, {"role": "assistant", "content": long_turn}]
    history.append({"role": "user", "content": "Say hi."})
    small = sdk.Engine(engine.model, engine.tokenizer)
    small.context_length = 1024
    ids = small.fit_prompt(history, max_new_tokens=64)
    assert len(ids) + 64 <= 1024
    text = engine.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nYou are terse.<|im_end|>") and "Say hi." in text


def test_chat_keeps_structured_history_and_resets(engine):
    chat = sdk.Chat(engine, system="You are a helpful assistant.", temperature=0, max_new_tokens=16)
    answer = chat.send("Hello!")
    assert chat.history == [{"role": "user", "content": "Hello!"}, {"role": "assistant", "content": answer}]
    streamed = "".join(chat.stream("And again?"))
    assert chat.history[-1] == {"role": "assistant", "content": streamed} and len(chat.history) == 4
    assert chat.messages()[0] == {"role": "system", "content": "You are a helpful assistant."}
    chat.reset()
    assert chat.history == []


def test_stopping_a_stream_early_frees_the_engine(engine):
    generation = engine.stream(FRANCE, max_new_tokens=32, temperature=0)
    next(generation)
    generation.close()
    assert "Paris" in engine.chat(FRANCE, max_new_tokens=32, temperature=0)


@pytest.mark.parametrize(
    "settings, field",
    [({"temperature": -1}, "temperature"), ({"top_p": 2}, "top_p"), ({"top_k": -3}, "top_k"),
     ({"max_new_tokens": 0}, "max_new_tokens"), ({"repetition_penalty": 0}, "repetition_penalty")],
)
def test_bad_generation_settings_name_the_field(settings, field):
    with pytest.raises(TunechatError, match=field):
        sdk.GenerationConfig(**settings)


def test_bad_model_paths_are_clear_errors(tmp_path):
    with pytest.raises(TunechatError, match="no such directory"):
        sdk.load(tmp_path / "missing")
    with pytest.raises(TunechatError, match="not a model directory"):
        sdk.load(tmp_path)
    with pytest.raises(TunechatError, match="bits must be 4, 8"):
        sdk.load(bits=3)


def test_chat_many_gives_what_chat_gives_with_finish_reasons_and_counts(engine):
    questions = ["What is the capital of France?", "Write a long story about a dragon and a knight."]
    many = engine.chat_many([[{"role": "user", "content": q}] for q in questions], temperature=0, max_new_tokens=24)
    for question, batched in zip(questions, many):
        single = engine.stream([{"role": "user", "content": question}], temperature=0, max_new_tokens=24)
        single.result()
        assert (batched.text, batched.finish_reason, batched.completion_tokens) == (
            single.text, single.finish_reason, single.completion_tokens)
    assert [g.finish_reason for g in many] == ["stop", "length"]


def test_auto_dtype_is_bf16_on_a_cpu_only_where_bf16_decodes_faster(model_path, tmp_path, monkeypatch):
    """dtype="auto" measures this CPU once (cached in $TUNECHAT_HOME/hardware.json) and loads bf16
    only where a decode-shaped product runs faster in it; the cache is what later loads read."""
    import json

    import torch

    import sdk
    from sdk.hardware import bf16_decodes_fast, bf16_is_fast

    monkeypatch.setenv("TUNECHAT_HOME", str(tmp_path))
    monkeypatch.setenv("TUNECHAT_CPU_BF16", "0")  # the suite's setting (conftest): fp32, nothing measured
    assert not bf16_decodes_fast(576, 1536) and not (tmp_path / "hardware.json").exists()
    monkeypatch.delenv("TUNECHAT_CPU_BF16")  # this machine as a user has it
    measured = bf16_decodes_fast(576, 1536)  # the embedded model's hidden and MLP widths
    cache = tmp_path / "hardware.json"
    if not bf16_is_fast(cuda=False):  # emulated bf16: never chosen, nothing to measure
        assert not measured and not cache.exists()
        assert sdk.load(model_path).model.dtype == torch.float32
        return
    (key, times), = json.loads(cache.read_text()).items()
    assert key.endswith("|576x1536") and times["fp32_us"] > 0 and times["bf16_us"] > 0
    assert measured == (times["bf16_us"] <= 0.9 * times["fp32_us"])
    for bf16_us, dtype in ((times["fp32_us"] / 2, torch.bfloat16), (times["fp32_us"] * 2, torch.float32)):
        cache.write_text(json.dumps({key: {**times, "bf16_us": bf16_us}}))
        assert sdk.load(model_path).model.dtype == dtype
