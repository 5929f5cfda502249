"""GGUF export and the llama.cpp engine, on the real embedded model and real llama.cpp.

The embedded model is exported once per quant type for the module (each export is verified
against the HF model as it is written); tiny random-weight models built from transformers' own
Llama / Qwen2 / Qwen3 configs prove each architecture's tensor layout at f32, where llama.cpp
must reproduce the HF logits almost exactly."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from unittest import mock

import pytest
from conftest import run_cli
from go_template import render as render_go

import sdk
from sdk.errors import TunechatError

pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (make install builds it)")

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
GREEDY = {"temperature": 0, "max_new_tokens": 40}
SYSTEM = "You are Alice's assistant. Answer briefly."


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict:
    """The embedded model exported to f16, q8_0 and q4_k_m: {quant: ExportResult}."""
    from sdk.export import export_gguf

    out = tmp_path_factory.mktemp("gguf")
    return {quant: export_gguf(None, out / f"smol.{quant}.gguf", quant=quant, progress=False)
            for quant in ("f16", "q8_0", "q4_k_m")}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, model_path) -> Path:
    """A model directory with serving settings of its own (system prompt, a named template, a
    stop word), exported to q8_0 with an Ollama Modelfile."""
    from sdk.export import export_gguf
    from sdk.metadata import write_metadata

    model = tmp_path_factory.mktemp("tuned") / "merged"
    shutil.copytree(model_path, model)
    write_metadata(model, {"name": "alice-bot", "template": "chatml", "system": SYSTEM, "stop_words": ["###"]})
    out = model.parent / "gguf" / "alice.q8_0.gguf"
    export_gguf(model, out, ollama=True, progress=False)
    return out


@pytest.fixture(scope="module")
def q8(exports):
    return sdk.load(exports["q8_0"].path)


def test_every_quant_keeps_the_hf_answers_or_parts_only_at_a_near_tie(exports):
    for quant, result in exports.items():
        recorded = json.loads(Path(str(result.path) + ".json").read_text())["verification"]
        assert recorded["passed"] and recorded == result.verification.to_json()
        answer = sdk.load(result.path).chat(FRANCE, **GREEDY)
        france = 1  # sdk.training.merge.PROBES[1]; its first token leads by only 0.08 logits in the HF model
        parted = result.verification.parting_margins[france]
        assert "Paris" in answer or (quant != "f16" and parted is not None and parted < 0.1), (quant, answer)
    f16 = exports["f16"].verification
    assert f16.greedy_agreement[:2] == [32, 32] and f16.max_logit_diff <= 0.5
    assert all(m is None or m < 0.1 for m in f16.parting_margins)
    assert exports["q8_0"].verification.max_logit_diff <= 3.0
    q4 = exports["q4_k_m"].verification
    assert q4.top1_agreement >= 0.75 and q4.perplexity_gguf <= 1.35 * q4.perplexity_hf
    assert exports["q4_k_m"].size_bytes < exports["q8_0"].size_bytes < exports["f16"].size_bytes


def test_the_file_carries_the_template_system_prompt_and_stop_words(tuned):
    engine = sdk.load(tuned)
    assert (engine.name, engine.system, engine.stop_words, engine.template.name) == ("alice-bot", SYSTEM, ["###"], "chatml")
    assert engine.render(FRANCE).startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n")
    card = (tuned.parent / "README.md").read_text()
    assert card.startswith("---\nbase_model: ") and 'library_name: "gguf"' in card and "verified against the HF model" in card
    assert f"tunechat chat {tuned.name}" in card


def test_prompts_are_rendered_by_tunechats_renderer_byte_for_byte(q8, engine):
    conversation = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "你好！2024 年"},
                    {"role": "assistant", "content": "Hi."}, {"role": "user", "content": "Why?"}]
    assert q8.render(conversation) == engine.render(conversation)  # the file's Jinja template, rendered as HF does
    text = engine.render(conversation)
    assert q8.encode(text) == engine.encode(text)


def test_streaming_equals_the_whole_answer_chinese_included(q8):
    for question in ["What is the capital of France?", "请用中文介绍一下北京。"]:
        messages = [{"role": "user", "content": question}]
        # Each from an empty cache: a prompt that is partly cached is evaluated in other batches,
        # and llama.cpp's quantized kernels then round differently (README: GGUF, llama.cpp).
        q8.llm.reset()
        pieces = list(q8.stream(messages, **GREEDY))
        q8.llm.reset()
        whole = q8.chat(messages, **GREEDY)
        assert "".join(pieces) == whole and len(pieces) > 1
    assert any("\u4e00" <= ch <= "\u9fff" for ch in whole)


def test_a_multi_token_stop_word_ends_the_answer_and_is_cut(q8):
    full = q8.stream(FRANCE, **GREEDY)
    full.result()
    stop = " ".join(full.text.split()[2:4])  # two words inside the greedy answer
    cut = q8.stream(FRANCE, stop_words=[stop], **GREEDY)
    cut.result()
    assert len(q8.encode(stop)) > 1 and cut.text == full.text[: full.text.index(stop)] and cut.finish_reason == "stop"
    capped = q8.stream(FRANCE, temperature=0, max_new_tokens=3)
    capped.result()
    assert (capped.finish_reason, capped.completion_tokens) == ("length", 3)


def test_chat_turns_reuse_the_cache_and_answer_as_a_fresh_engine(q8, exports):
    chat = sdk.Chat(q8, **GREEDY)
    first, second = chat.send("Hi, my name is Bob."), chat.send("What is my name?")
    assert first and second
    asked = chat.history[:-1]  # the conversation up to the second question
    fresh = sdk.load(exports["q8_0"].path)  # no cache: the same greedy answer
    assert fresh.chat(asked, **GREEDY) == second
    assert q8.llm.n_tokens > len(q8.encode(q8.render(asked)))  # the second turn extended the first's cache


def test_sampling_is_reproducible_with_a_seed(q8):
    sampled = [q8.chat(FRANCE, temperature=1.2, top_p=0.95, top_k=0, seed=7, max_new_tokens=24) for _ in range(2)]
    assert sampled[0] == sampled[1] != q8.chat(FRANCE, temperature=1.2, top_p=0.95, top_k=0, seed=8, max_new_tokens=24)


def test_chat_many_returns_finished_generations_in_order(q8):
    conversations = [FRANCE, [{"role": "user", "content": "Name a fruit."}]]
    answers = q8.chat_many(conversations, **GREEDY)
    assert [a.text for a in answers] == [q8.chat(c, **GREEDY) for c in conversations]
    assert all(a.finish_reason and a.prompt_tokens and a.completion_tokens for a in answers)


def test_a_lagent_agent_turn_runs_on_the_gguf_engine_with_byte_exact_prompts(q8):
    pytest.importorskip("lagent")
    from agent_scripts import ScriptedEngine, plugin_call

    from agents import build_agent

    recorder = ScriptedEngine([plugin_call("Calculator", expression="37 * 91")], q8)
    result = build_agent(recorder, tools=["calculator"], max_turn=3, temperature=0, max_new_tokens=48).chat("What is 37 * 91?")
    assert result.actions[0].format_result() == "3367" and result.response
    second = recorder.prompts[1]
    assert "<|im_start|>environment name=<|plugin|>\n3367<|im_end|>\n<|im_start|>assistant\n" in second
    assert q8.encode(second) == recorder.encode(second)


def test_serve_a_gguf_to_the_official_openai_client(exports, q8):
    openai = pytest.importorskip("openai")
    from sdk.server import ServerProcess

    want = q8.chat(FRANCE, temperature=0, max_new_tokens=24)
    with ServerProcess(str(exports["q8_0"].path)) as server:
        client = openai.OpenAI(base_url=server.url, api_key="none", max_retries=0, timeout=300)
        reply = client.chat.completions.create(model=q8.name, messages=FRANCE, temperature=0, max_tokens=24)
    assert reply.choices[0].message.content == want and reply.usage.completion_tokens > 0


def test_the_cli_chats_with_a_gguf_and_exports_with_figures(tmp_path, exports):
    result = run_cli("chat", str(exports["f16"].path), "--temperature", "0", "--max-new-tokens", "24",
                     stdin="What is the capital of France?\n")
    assert result.returncode == 0 and "Paris" in result.stdout, result.stderr[-2000:]
    out = tmp_path / "cli.gguf"
    result = run_cli("export", "gguf", "embedded", str(out), "--quant", "q4_k_m", "--ollama")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "verified against the HF model: greedy agreement" in result.stdout and "ollama create" in result.stdout
    assert (tmp_path / "Modelfile").is_file() and Path(str(out) + ".json").is_file()


def test_the_embedded_model_runs_on_llama_cpp_from_a_verified_export(monkeypatch, tmp_path, model_path):
    home = tmp_path / "home"
    shutil.copytree(model_path, home / "models" / model_path.name)  # the cached HF checkpoint, not its GGUF
    monkeypatch.setenv("TUNECHAT_HOME", str(home))
    engine = sdk.load(backend="llama.cpp")
    assert engine.path == home / "models" / f"{model_path.name}.bf16.gguf" and "Paris" in engine.chat(FRANCE, **GREEDY)


# ---- Ollama ---------------------------------------------------------------------------------

def test_the_modelfile_template_renders_what_the_renderer_renders(tuned, engine):
    """Ollama's TEMPLATE, run by a Go-template interpreter (tests/go_template.py), must give the
    renderer's text for every conversation shape: a drift in either fails here."""
    from sdk.export.modelfile import ollama_template
    from sdk.templates import render_prompt

    modelfile = (tuned.parent / "Modelfile").read_text()
    assert modelfile.startswith(f'FROM ./{tuned.name}\nTEMPLATE """')
    assert f'SYSTEM """{SYSTEM}"""' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and 'PARAMETER stop "###"' in modelfile
    chatml = modelfile.split('TEMPLATE """')[1].split('"""')[0]
    smol = ollama_template(None, engine.tokenizer)  # SmolLM2's own Jinja template, with its default system prompt
    conversations = [
        [{"role": "user", "content": "Hi"}],
        [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Who are you?"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
         {"role": "user", "content": "你好"}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
    ]
    tuned_engine = sdk.load(tuned)
    for messages in conversations:
        system = messages[0]["content"] if messages[0]["role"] == "system" else None
        for template, go in [(tuned_engine.template, chatml), (None, smol)]:
            assert render_go(go, system, messages) == render_prompt(messages, template, engine.tokenizer)


# ---- architectures --------------------------------------------------------------------------

def _tiny(model_type: str, tmp: Path, model_path: Path, **extra) -> Path:
    """A random-weight model of `model_type` with the embedded model's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, **extra)
    model = AutoModelForCausalLM.from_config(config)
    out = tmp / model_type
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(model_path).save_pretrained(out)
    return out


@pytest.mark.parametrize("model_type,extra", [
    ("llama", {}),
    ("llama", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 128}}),
    ("qwen2", {}),
    ("qwen3", {"head_dim": 32}),
], ids=["llama", "llama3-rope", "qwen2", "qwen3"])
def test_each_supported_architecture_exports_with_hf_logits(tmp_path, model_path, model_type, extra):
    from sdk.export import export_gguf

    tiny = _tiny(model_type, tmp_path, model_path, **extra)
    result = export_gguf(tiny, tmp_path / "tiny.gguf", quant="f32", progress=False)
    assert result.verification.passed and result.verification.max_logit_diff < 0.05
    assert result.verification.greedy_agreement == [32, 32, 32]


def test_a_base_model_and_adapter_are_merged_in_memory_before_export(tmp_path, model_path):
    """--adapter: the GGUF holds base + adapter (verified against the merged HF model), not the base."""
    import numpy as np
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sdk.engines.llamacpp import import_llama_cpp
    from sdk.export import export_gguf

    tiny = _tiny("llama", tmp_path, model_path)
    lora = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny),
                          LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    merged = export_gguf(tiny, tmp_path / "merged.gguf", quant="f32", adapter=tmp_path / "adapter", progress=False)
    plain = export_gguf(tiny, tmp_path / "plain.gguf", quant="f32", progress=False)
    assert merged.verification.passed and merged.verification.max_logit_diff < 0.05
    llama_cpp = import_llama_cpp()
    logits = []
    for path in (merged.path, plain.path):
        llm = llama_cpp.Llama(str(path), n_ctx=64, logits_all=True, verbose=False)
        llm.eval([1, 2, 3, 4])
        logits.append(np.array(llm.scores[:4]))
    assert np.abs(logits[0] - logits[1]).max() > 0.01  # the adapter changed the exported weights


# ---- bad input: one line, non-zero exit, nothing written --------------------------------------

def _fails(tmp_path, *args) -> str:
    before = set(tmp_path.rglob("*"))
    result = run_cli("export", "gguf", *args)
    assert result.returncode != 0 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert set(tmp_path.rglob("*")) == before  # no file left behind, not even a temporary one
    return result.stderr


def test_export_refuses_bad_input_with_one_line(tmp_path, model_path):
    out = str(tmp_path / "out.gguf")
    assert "not a model directory (no config.json)" in _fails(tmp_path, str(tmp_path), out)
    existing = tmp_path / "taken.gguf"
    existing.write_text("mine")
    assert "exists: choose another name or pass --force" in _fails(tmp_path, "embedded", str(existing))
    assert existing.read_text() == "mine"
    phi = _tiny("phi3", tmp_path / "m", model_path)
    err = _fails(tmp_path, str(phi), out)
    assert "architecture 'phi3' cannot be exported to GGUF yet; supported: llama, qwen2, qwen3" in err


def test_unknown_quant_is_a_usage_error(tmp_path):
    result = run_cli("export", "gguf", "embedded", str(tmp_path / "x.gguf"), "--quant", "q3_xl")
    assert result.returncode == 2 and "invalid choice: 'q3_xl'" in result.stderr and not list(tmp_path.iterdir())
    with pytest.raises(TunechatError, match="unknown quant type 'q3_xl'; choose one of: f32, f16, bf16, q8_0"):
        from sdk.export import export_gguf

        export_gguf(None, tmp_path / "x.gguf", quant="q3_xl")


def test_a_truncated_or_corrupt_gguf_is_a_one_line_error(tmp_path, exports):
    data = exports["q4_k_m"].path.read_bytes()
    truncated, corrupt = tmp_path / "truncated.gguf", tmp_path / "corrupt.gguf"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt.write_bytes(b"GGUF" + b"\xff" * 64)
    for path in (truncated, corrupt, tmp_path / "missing.gguf"):
        with pytest.raises(TunechatError) as caught:
            sdk.load(path)
        assert str(path) in str(caught.value) and "\n" not in str(caught.value)
        result = run_cli("chat", str(path), stdin="hi\n")
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_without_llama_cpp_a_gguf_says_how_to_install_it(exports):
    with mock.patch.dict(sys.modules, {"llama_cpp": None}):  # the fault: the package is missing
        with pytest.raises(TunechatError, match=r"llama.cpp is not installed: `pip install 'tunechat\[gguf\]'`"):
            sdk.load(exports["q8_0"].path)
