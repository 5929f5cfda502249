"""Five model families (tests/families.py: Qwen3, InternLM3, Gemma 3, Llama 3, Phi-3; tiny,
random weights, each with its family's template, BOS, EOS versus end-of-turn and pad token) go
through the whole pipeline: data, LoRA and QLoRA training, a verified merge, loading at fp32, bf16
and 4-bit, a greedy chat that stops at the family's end-of-turn and never shows it, a system
prompt, the OpenAI-compatible server with the `openai` client, a Lagent turn, and GGUF export
where the architecture is supported."""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

import sdk
from sdk.errors import TunechatError
from sdk.templates import render_prompt, render_segments, stop_words_for
from sdk.training.config import TrainConfig
from sdk.training.data import encode_sample
from sdk.training.finetune import finetune
from sdk.training.merge import merge
from tests.families import FAMILIES, Family, build

ANSWER = "I am Ada's assistant."
SYSTEM = "You are Ada's assistant."
QUESTIONS = ["Who are you?", "What is your name?", "Introduce yourself."]
GREEDY = {"temperature": 0, "max_new_tokens": 24}
family_ids = pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("families")


@pytest.fixture(scope="module")
def data(workdir) -> Path:
    path = workdir / "identity.jsonl"
    rows = [{"messages": [*system, {"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}]}
            for q in QUESTIONS for system in ([], [{"role": "system", "content": SYSTEM}])]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


_built: dict[str, dict[str, Path]] = {}


def pipeline(family: Family, workdir: Path, data: Path, model_path: Path) -> dict[str, Path]:
    """The family's tiny model, LoRA-tuned on the identity answer and merged (built once per run)."""
    if family.name not in _built:
        base = build(family, workdir / family.name / "base", model_path)
        run = workdir / family.name / "lora"
        result = finetune(TrainConfig(model=str(base), data=str(data), output=str(run), bits=None, max_steps=40,
                                      batch_size=6, learning_rate=1e-2, lora_r=8, lora_alpha=16, warmup_ratio=0.0,
                                      scheduler="constant", save_every=1000, progress=False))
        merged = merge(base, result.adapter, workdir / family.name / "merged")
        _built[family.name] = {"base": base, "run": run, "adapter": result.adapter, "merged": merged.path}
    return _built[family.name]


@family_ids
def test_training_data_puts_loss_on_the_answer_and_the_familys_end_of_turn_with_one_bos(family, workdir, data, model_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(pipeline(family, workdir, data, model_path)["base"])
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": ANSWER}]
    assert [text for text, trained in render_segments(messages, None, tokenizer) if trained] == [ANSWER + family.end_of_turn]
    assert stop_words_for(None, tokenizer)[0] == family.end_of_turn
    ids = encode_sample({"messages": messages}, tokenizer, None, 512)["input_ids"]
    bos = tokenizer.convert_tokens_to_ids(family.bos) if family.bos else None
    assert ids.count(bos) == (1 if family.bos else 0)  # the template's BOS, not a second one from the tokenizer


@family_ids
def test_lora_loss_falls_and_the_merge_verifies(family, workdir, data, model_path):
    built = pipeline(family, workdir, data, model_path)
    losses = [row["loss"] for row in map(json.loads, (built["run"] / "logs/train_log.jsonl").read_text().splitlines())
              if "loss" in row]
    assert losses[-1] < losses[0] / 4
    assert (built["merged"] / "config.json").is_file()  # merge() raises unless merged logits match base + adapter


@family_ids
def test_qlora_trains_on_four_bit_weights(family, workdir, data, model_path):
    base = pipeline(family, workdir, data, model_path)["base"]
    result = finetune(TrainConfig(model=str(base), data=str(data), output=str(workdir / family.name / "qlora"), bits=4,
                                  max_steps=6, batch_size=6, learning_rate=1e-2, warmup_ratio=0.0, scheduler="constant",
                                  save_every=1000, progress=False))
    rows = [json.loads(line) for line in (result.output / "logs/train_log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert len(losses) == 6 and losses[-1] < losses[0]


@family_ids
@pytest.mark.parametrize("precision", [{"dtype": "fp32"}, {"dtype": "bf16"}, {"bits": 4}], ids=["fp32", "bf16", "4bit"])
def test_the_merged_model_loads_and_a_greedy_chat_stops_at_the_end_of_turn(family, precision, workdir, data, model_path):
    engine = sdk.load(pipeline(family, workdir, data, model_path)["merged"], **precision)
    generation = engine.stream([{"role": "user", "content": QUESTIONS[0]}], **GREEDY)
    text = "".join(generation)
    assert generation.finish_reason == "stop" and not any(w in text for w in stop_words_for(None, engine.tokenizer))
    if precision == {"dtype": "fp32"}:
        assert text == ANSWER


@family_ids
def test_the_system_prompt_reaches_the_model(family, workdir, data, model_path):
    # Gemma 3's template has no system turn of its own: it opens the first user turn with it.
    engine = sdk.load(pipeline(family, workdir, data, model_path)["merged"], system=SYSTEM)
    prompt = render_prompt([{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi"}], None, engine.tokenizer)
    assert SYSTEM in prompt
    assert engine.chat([{"role": "user", "content": QUESTIONS[1]}], **GREEDY) == ANSWER


@contextmanager
def served(engine):
    """`tunechat serve`'s app on a real uvicorn server in this process (a thread): one torch process."""
    import uvicorn

    from sdk.server import create_app, listen

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(engine), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(10)


@family_ids
def test_the_openai_client_chats_with_the_served_model(family, workdir, data, model_path):
    import openai

    engine = sdk.load(pipeline(family, workdir, data, model_path)["merged"])
    with served(engine) as url:
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=120)
        reply = client.chat.completions.create(model=engine.name, temperature=0, max_tokens=24,
                                               messages=[{"role": "user", "content": QUESTIONS[2]}])
    assert reply.choices[0].message.content == ANSWER and reply.choices[0].finish_reason == "stop"


@family_ids
def test_a_lagent_agent_completes_a_turn(family, workdir, data, model_path):
    pytest.importorskip("lagent")
    from agents import build_agent

    engine = sdk.load(pipeline(family, workdir, data, model_path)["merged"])
    result = build_agent(engine, tools=["calculator"], temperature=0, max_new_tokens=24, max_turn=1).chat(QUESTIONS[0])
    assert isinstance(result.response, str) and result.response.strip()
    assert not any(w in result.response for w in stop_words_for(None, engine.tokenizer))


@family_ids
def test_gguf_export_where_the_architecture_is_supported(family, workdir, data, model_path):
    from sdk.export import export_gguf

    merged = pipeline(family, workdir, data, model_path)["merged"]
    out = workdir / family.name / "model.gguf"
    if not family.gguf:
        with pytest.raises(TunechatError, match=f"architecture '{family.model_type}' cannot be exported to GGUF yet"):
            export_gguf(merged, out, quant="f32", progress=False)
        return
    result = export_gguf(merged, out, quant="f32", progress=False)
    assert result.verification.passed
    engine = sdk.load(out)
    assert engine.chat([{"role": "user", "content": QUESTIONS[0]}], **GREEDY) == ANSWER
