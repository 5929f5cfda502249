"""Named templates render XTuner 0.1.23's exact strings; the tokenizer template renders ChatML."""
from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from sdk.templates import get_template, render_prompt, render_segments

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
