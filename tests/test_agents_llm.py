"""`EngineLLM` (our model as a lagent BaseModel) on the real embedded model."""
from __future__ import annotations

import pytest
from lagent.llms import INTERNLM2_META
from lagent.schema import ModelStatusCode

from agents import EngineLLM
from sdk.errors import TunechatError

GREEDY = {"temperature": 0, "max_new_tokens": 24}
PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def llm(engine) -> EngineLLM:
    return EngineLLM(engine, **GREEDY)


def test_meta_template_is_always_set(engine, llm):
    assert llm.template_parser.meta_template is INTERNLM2_META
    assert EngineLLM(engine, meta_template=None).template_parser.meta_template is INTERNLM2_META
    assert llm.template_parser(MESSAGES) == PROMPT  # INTERNLM2_META renders the user turn + assistant header
    assert llm.end_words == ["<|im_end|>"]


def test_generate_continues_the_raw_prompt_like_the_engine(engine, llm):
    expected = engine.generate(PROMPT, **GREEDY).result()
    assert "Paris" in expected
    assert llm.generate(PROMPT) == expected
    assert llm.chat(MESSAGES) == expected  # lagent renders, the engine continues


def test_batched_generate_returns_one_answer_per_prompt(llm):
    other = "<|im_start|>user\nName a color.<|im_end|>\n<|im_start|>assistant\n"
    assert llm.generate([PROMPT, other]) == [llm.generate(PROMPT), llm.generate(other)]


def test_per_call_overrides_apply_to_that_call_only(llm):
    before = dict(llm.gen_params)
    short = llm.generate(PROMPT, max_new_tokens=2)
    assert llm.last_generation.completion_tokens == 2 and llm.last_generation.finish_reason == "length"
    assert len(short) < len(llm.generate(PROMPT))
    assert llm.gen_params == before
    assert llm.generate(PROMPT, do_sample=False, temperature=1.5) == llm.generate(PROMPT)  # do_sample=False: greedy


def test_multi_token_stop_word_is_matched_as_text_and_cut(engine, llm):
    full = llm.generate(PROMPT)
    stop = "of France"
    assert stop in full and len(engine.encode(" " + stop)) > 1  # several tokens: never collapsed to one
    assert llm.generate(PROMPT, stop_words=[stop]) == full[: full.index(stop)]


def test_stream_chat_yields_growing_text_then_end(llm):
    chunks = list(llm.stream_chat(MESSAGES))
    assert len(chunks) >= 3
    assert [status for status, _, _ in chunks[:-1]] == [ModelStatusCode.STREAM_ING] * (len(chunks) - 1)
    assert chunks[-1][0] == ModelStatusCode.END and all(extra is None for _, _, extra in chunks)
    texts = [text for _, text, _ in chunks]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:]))
    assert texts[-1] == llm.chat(MESSAGES)


def test_stream_has_a_chunk_before_the_end_even_when_nothing_is_generated(llm):
    first_word = llm.generate(PROMPT).split()[0]
    chunks = list(llm.stream_generate(PROMPT, stop_words=[first_word]))
    assert [status for status, _, _ in chunks] == [ModelStatusCode.STREAM_ING, ModelStatusCode.END]
    assert chunks[-1][1] == ""


def test_special_markers_are_kept_in_the_output(llm):
    # Without an assistant header the model writes one itself: <|im_start|> is a special token.
    text = llm.generate("<|im_start|>user\nhi<|im_end|>\n", max_new_tokens=6)
    assert text.startswith("<|im_start|>assistant")


def test_bad_settings_are_refused_with_the_field_named(engine, llm):
    with pytest.raises(TunechatError, match="unknown generation setting"):
        llm.generate(PROMPT, beam_width=4)
    with pytest.raises(TunechatError, match="temperature"):
        EngineLLM(engine, temperature=-1)
