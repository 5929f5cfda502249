"""Named templates are XTuner 0.2.0's, field by field, checked against XTuner's own wheel; they render as
XTuner's template_map_fn + encode_fn do; the tokenizer template renders ChatML; a template with no system
role gets the system prompt folded into the first user message."""
from __future__ import annotations

import dataclasses
import os
import zipfile
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from sdk.templates import SYSTEM_TEMPLATES, TEMPLATES, get_template, render_prompt, render_segments, stop_words_for

# The Makefile downloads it (`pip download --no-deps xtuner==0.2.0`) and says where; never installed.
XTUNER_WHEEL = Path(os.environ.get("TUNECHAT_XTUNER_WHEEL",
                                   Path.home() / ".cache/tunechat/wheels/xtuner/xtuner-0.2.0-py3-none-any.whl"))

CONVERSATION = [
    {"role": "system", "content": "SYS"},
    {"role": "user", "content": "Q1"},
    {"role": "assistant", "content": "A1"},
    {"role": "user", "content": "Q2"},
    {"role": "assistant", "content": "A2"},
]

# What XTuner writes for this two-turn conversation (its template_map_fn + encode_fn, the
# trainable parts in brackets): turn 0 = SYSTEM + INSTRUCTION, [output + SUFFIX (+EOS)], SEP.
EXPECTED = {
    "default": [("<|System|>:SYS\n<|User|>:Q1\n<|Bot|>:", False), ("A1<|im_end|>", True), ("\n", False),
                ("<|User|>:Q2\n<|Bot|>:", False), ("A2<|im_end|>", True)],
    "internlm_chat": [("<|System|>:SYS\n<|User|>:Q1<eoh>\n<|Bot|>:", False), ("A1<eoa>", True), ("\n", False),
                      ("<|User|>:Q2<eoh>\n<|Bot|>:", False), ("A2<eoa>", True)],
    "internlm2_chat": [("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n", False),
                       ("A1<|im_end|>", True), ("\n", False),
                       ("<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n", False), ("A2<|im_end|>", True)],
    # 0.2.0: no newline before the system and user turns (0.1.x had one).
    "qwen_chat": [("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n", False),
                  ("A1<|im_end|>", True), ("\n", False),
                  ("<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n", False), ("A2<|im_end|>", True)],
    # SUFFIX_AS_EOS False: the suffix, then the tokenizer's EOS, both trained.
    "gemma": [("<start_of_turn>system\nSYS<end_of_turn>\n<start_of_turn>user\nQ1<end_of_turn>\n<start_of_turn>model\n", False),
              ("A1<end_of_turn><|im_end|>", True), ("\n", False),
              ("<start_of_turn>user\nQ2<end_of_turn>\n<start_of_turn>model\n", False), ("A2<end_of_turn><|im_end|>", True)],
    # No SYSTEM in XTuner's minicpm: the system prompt opens the first user message.
    "minicpm": [("<用户> SYS\n\nQ1 <AI>", False), ("A1<|im_end|>", True), ("\n", False),
                ("<用户> Q2 <AI>", False), ("A2<|im_end|>", True)],
    "chatglm2": [("SYS\n[Round 1]\n\n问：Q1\n\n答：", False), ("A1<|im_end|>", True), ("\n\n", False),
                 ("[Round 2]\n\n问：Q2\n\n答：", False), ("A2<|im_end|>", True)],
    "chatml": [("<|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\n", False),
               ("A1<|im_end|>", True), ("\n", False),
               ("<|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n", False), ("A2<|im_end|>", True)],
}


@pytest.fixture(scope="module")
def tokenizer(model_path):
    return AutoTokenizer.from_pretrained(model_path)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_template_renders_xtuner_strings(tokenizer, name):
    # SmolLM2's EOS is <|im_end|> and its encoding has no BOS, so `default` ends answers with it.
    assert render_segments(CONVERSATION, get_template(name), tokenizer) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_serving_prompt_is_the_training_text_up_to_the_answer(tokenizer, name):
    template = get_template(name)
    training = "".join(text for text, _ in render_segments(CONVERSATION, template, tokenizer))
    prompt = render_prompt(CONVERSATION[:4], template, tokenizer)
    assert training.startswith(prompt) and training[len(prompt):] == "A2" + EXPECTED[name][-1][0][2:]


def test_tokenizer_chat_template_trains_only_answers_and_end_of_turn(tokenizer):
    segments = render_segments(CONVERSATION, None, tokenizer)
    assert [t for t, trainable in segments if trainable] == ["A1<|im_end|>", "A2<|im_end|>"]
    assert "".join(t for t, _ in segments) == tokenizer.apply_chat_template(CONVERSATION, tokenize=False)


def test_unknown_template_lists_the_known_ones():
    from sdk.errors import TunechatError

    with pytest.raises(TunechatError, match="internlm2_chat"):
        get_template("nope")


def xtuner_tables() -> dict:
    """PROMPT_TEMPLATE and SYSTEM_TEMPLATE as XTuner 0.2.0's wheel has them (plain data once
    mmengine's ConfigDict is read as dict)."""
    if not XTUNER_WHEEL.is_file():
        pytest.fail(f"{XTUNER_WHEEL} is missing: `make test` downloads it (pip download --no-deps xtuner==0.2.0)")
    with zipfile.ZipFile(XTUNER_WHEEL) as wheel:
        source = wheel.read("xtuner/utils/templates.py").decode()
    namespace: dict = {}
    exec(source.replace("from mmengine.config import ConfigDict", "ConfigDict = dict"), namespace)
    return namespace


def test_every_xtuner_template_is_here_with_its_exact_strings():
    xtuner = xtuner_tables()["PROMPT_TEMPLATE"]
    assert len(xtuner) == 27 and set(TEMPLATES) == set(xtuner) | {"chatml"}
    for name, fields in xtuner.items():
        ours = TEMPLATES[name]
        assert (ours.system, ours.instruction, ours.suffix, ours.suffix_as_eos, ours.sep, list(ours.stop_words)) == (
            fields.get("SYSTEM"), fields["INSTRUCTION"], fields.get("SUFFIX", ""), fields.get("SUFFIX_AS_EOS", False),
            fields.get("SEP", ""), fields.get("STOP_WORDS", [])), name
    assert TEMPLATES["chatml"] == dataclasses.replace(TEMPLATES["internlm2_chat"], name="chatml")


def test_every_xtuner_system_template_is_here_with_its_exact_text():
    assert SYSTEM_TEMPLATES == xtuner_tables()["SYSTEM_TEMPLATE"]


def test_a_tokenizer_template_that_refuses_a_system_role_gets_it_folded_into_the_first_user_message(tokenizer):
    import copy

    gemma_like = copy.copy(tokenizer)  # Gemma's own template: raise_exception('System role not supported')
    gemma_like.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' + m['content'] + '<end_of_turn>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}")
    prompt = render_prompt([{"role": "system", "content": "SYS"}, {"role": "user", "content": "Q1"}], None, gemma_like)
    assert prompt == "<start_of_turn>user\nSYS\n\nQ1<end_of_turn>\n<start_of_turn>model\n"


def test_every_named_template_serves_a_greedy_chat_with_a_system_prompt(engine):
    # The engine `tunechat chat --prompt-template NAME` builds, sharing the loaded weights: it renders,
    # generates, and never shows an end-of-turn marker.
    from sdk.engines.pytorch import Engine

    for name, template in TEMPLATES.items():
        chat = Engine(engine.model, engine.tokenizer, template=template)
        answer = chat.chat([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}],
                           temperature=0, max_new_tokens=3)
        assert isinstance(answer, str) and not any(word in answer for word in stop_words_for(template, engine.tokenizer)), name


def test_chat_cli_accepts_every_template_name():
    from tests.conftest import run_cli

    result = run_cli("chat", "--prompt-template", "minicpm", "--system", "Be brief.", "--temperature", "0",
                     "--max-new-tokens", "4", stdin="Hi!\n")
    assert result.returncode == 0 and result.stdout.strip(), result.stderr
    help_text = run_cli("chat", "--help").stdout
    assert all(name in help_text for name in TEMPLATES)


def test_every_named_template_has_an_ollama_template_that_renders_like_the_renderer(tokenizer):
    """Export writes a Modelfile for any template: its Go TEMPLATE, run by an interpreter of Ollama's
    subset (tests/go_template.py), must give the renderer's text, system prompt or none, one turn or two."""
    from sdk.errors import TunechatError
    from sdk.export.modelfile import ollama_template
    from tests.go_template import render as render_go

    conversations = [
        [{"role": "user", "content": "Hi"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
         {"role": "user", "content": "c"}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
         {"role": "assistant", "content": "d"}, {"role": "user", "content": "e"}],
    ]
    refused = []
    for name, template in TEMPLATES.items():
        try:
            go = ollama_template(template, tokenizer)
        except TunechatError:
            refused.append(name)
            continue
        for messages in conversations:
            system = messages[0]["content"] if messages[0]["role"] == "system" else None
            assert render_go(go, system, messages) == render_prompt(messages, template, tokenizer), (name, messages)
    assert refused == ["chatglm2"]  # "[Round {round}]": Go templates cannot count rounds


def test_a_tokenizer_without_a_chat_template_says_to_name_one(tokenizer):
    import copy

    from sdk.errors import TunechatError

    bare = copy.copy(tokenizer)
    bare.chat_template = None
    with pytest.raises(TunechatError, match="this tokenizer has no chat template: pass a named template"):
        render_prompt([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}], None, bare)
