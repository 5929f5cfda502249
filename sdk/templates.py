"""The one renderer: conversation messages → text, for serving prompts and for training samples.

Two kinds of template:
- the tokenizer's own chat template (the default), rendered with `apply_chat_template`;
- a named XTuner template (`default`, `internlm_chat`, `internlm2_chat`, ...) with XTuner 0.1.23's
  exact SYSTEM / INSTRUCTION / SUFFIX / SEP / STOP_WORDS strings.

`render_segments` returns the text as (text, trainable) pieces: training tokenizes the pieces and
puts loss on the trainable ones (assistant text plus its end-of-turn marker); serving joins them
and appends the generation prompt. Both go through the same function, so the text a model is
trained on is byte-for-byte the text it is prompted with."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sdk.errors import TunechatError

Message = dict[str, Any]  # {"role": "system"|"user"|"assistant", "content": str}


@dataclass(frozen=True)
class Template:
    """An XTuner prompt template. With `suffix_as_eos` False, the tokenizer's EOS ends each answer."""

    name: str
    system: str
    instruction: str
    suffix: str = ""
    suffix_as_eos: bool = False
    sep: str = ""
    stop_words: tuple[str, ...] = field(default_factory=tuple)


# XTuner 0.1.23, xtuner/utils/templates.py (PROMPT_TEMPLATE), strings copied exactly.
TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in [
        Template("default", "<|System|>:{system}\n", "<|User|>:{input}\n<|Bot|>:", sep="\n"),
        Template("zephyr", "<|system|>\n{system}\n", "<|user|>\n{input}\n<|assistant|>\n", sep="\n"),
        Template(
            "internlm_chat",
            "<|System|>:{system}\n",
            "<|User|>:{input}<eoh>\n<|Bot|>:",
            suffix="<eoa>",
            suffix_as_eos=True,
            sep="\n",
            stop_words=("<eoa>",),
        ),
        Template(
            "internlm2_chat",
            "<|im_start|>system\n{system}<|im_end|>\n",
            "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
            suffix="<|im_end|>",
            suffix_as_eos=True,
            sep="\n",
            stop_words=("<|im_end|>",),
        ),
        Template(
            "qwen_chat",
            "\n<|im_start|>system\n{system}<|im_end|>",
            "\n<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
            suffix="<|im_end|>",
            suffix_as_eos=True,
            sep="\n",
            stop_words=("<|im_end|>", "<|endoftext|>"),
        ),
        Template(
            "llama3_chat",
            "<|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|>",
            "<|start_header_id|>user<|end_header_id|>\n\n{input}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
            suffix="<|eot_id|>",
            suffix_as_eos=True,
            stop_words=("<|eot_id|>",),
        ),
    ]
}
# Plain ChatML. XTuner has no template of this name; its strings are internlm2_chat's, which is
# ChatML, so models with ChatML tokens (SmolLM2, Qwen) can use either name.
TEMPLATES["chatml"] = dataclasses.replace(TEMPLATES["internlm2_chat"], name="chatml")


# XTuner 0.1.23 SYSTEM_TEMPLATE: ready-made system prompts for `--system-template`.
SYSTEM_TEMPLATES: dict[str, str] = {
    "moss_sft": (
        "You are an AI assistant whose name is {bot_name}.\n"
        "Capabilities and tools that {bot_name} can possess.\n"
        "- Inner thoughts: enabled.\n"
        "- Web search: enabled. API: Search(query)\n"
        "- Calculator: enabled. API: Calculate(expression)\n"
        "- Equation solver: enabled. API: Solve(equation)\n"
        "- Text-to-image: disabled.\n"
        "- Image edition: disabled.\n"
        "- Text-to-speech: disabled.\n"
    ),
    "alpaca": "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n",
    "arxiv_gentile": (
        "If you are an expert in writing papers, please generate a good paper title for this paper "
        "based on other authors' descriptions of their abstracts.\n"
    ),
    "colorist": "You are a professional color designer. Please provide the corresponding colors based on the description of Human.\n",
    "coder": "You are a professional programer. Please provide the corresponding code based on the description of Human.\n",
    "lawyer": "你现在是一名专业的中国律师，请根据用户的问题给出准确、有理有据的回复。\n",
    "medical": "如果你是一名医生，请根据患者的描述回答医学问题。\n",
    "sql": "If you are an expert in SQL, please generate a good SQL Query for Question based on the CREATE TABLE statement.\n",
}


def get_template(name: str | None) -> Template | None:
    """A named template, or None for the tokenizer's own chat template."""
    if name in (None, "", "auto", "tokenizer"):
        return None
    try:
        return TEMPLATES[name]
    except KeyError:
        raise TunechatError(f"unknown prompt template {name!r}; choose one of: {', '.join(TEMPLATES)}") from None


def validate_messages(messages: list[Message]) -> None:
    """An optional system message, then user/assistant turns alternating, starting with user."""
    if not messages:
        raise TunechatError("messages is empty: give at least one user message")
    start = 1 if messages[0].get("role") == "system" else 0
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if not isinstance(content, str):
            raise TunechatError(f"messages[{i}]: content must be a string, got {type(content).__name__}")
        if i < start:
            continue
        expected = "user" if (i - start) % 2 == 0 else "assistant"
        if role != expected:
            raise TunechatError(f"messages[{i}]: expected role {expected!r}, got {role!r}")


def render_segments(
    messages: list[Message],
    template: Template | None,
    tokenizer: Any,
    add_generation_prompt: bool = False,
) -> list[tuple[str, bool]]:
    """Render messages into (text, trainable) segments; their concatenation is the full text.

    With `add_generation_prompt`, messages must end with a user turn and the last segment is the
    prompt the model continues from."""
    validate_messages(messages)
    if template is None:
        return _render_with_tokenizer(messages, tokenizer, add_generation_prompt)
    return _render_with_template(messages, template, tokenizer, add_generation_prompt)


def render_prompt(messages: list[Message], template: Template | None, tokenizer: Any) -> str:
    """The serving prompt: the conversation so far plus the assistant's generation prompt."""
    return "".join(text for text, _ in render_segments(messages, template, tokenizer, add_generation_prompt=True))


def stop_words_for(template: Template | None, tokenizer: Any) -> list[str]:
    """The end-of-turn strings that end a generation under this template."""
    if template is not None:
        words = list(template.stop_words)
        if not template.suffix_as_eos and tokenizer.eos_token:
            words.append(tokenizer.eos_token)
        return words
    return [tokenizer.eos_token] if tokenizer.eos_token else []


def _render_with_template(
    messages: list[Message], template: Template, tokenizer: Any, add_generation_prompt: bool
) -> list[tuple[str, bool]]:
    # XTuner's template_map_fn + encode_fn: turn i is [SYSTEM] + INSTRUCTION (no loss),
    # output + SUFFIX (+ EOS when the suffix is not the EOS) with loss, then SEP (no loss)
    # between turns. A BOS starts the text and follows every EOS.
    bos = _bos_text(tokenizer)
    eos = "" if template.suffix_as_eos else (tokenizer.eos_token or "")
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    turns = [m for m in messages if m["role"] != "system"]
    segments: list[tuple[str, bool]] = []
    needs_bos = True
    for index in range(0, len(turns), 2):
        user = turns[index]["content"]
        prompt = bos if needs_bos else ""
        if index == 0 and system:
            prompt += template.system.format(system=system)
        prompt += template.instruction.format(input=user, round=index // 2 + 1)
        segments.append((prompt, False))
        if index + 1 < len(turns):
            segments.append((turns[index + 1]["content"] + template.suffix + eos, True))
            needs_bos = bool(eos)
            if index + 2 < len(turns) and template.sep:
                segments.append((template.sep, False))
    if add_generation_prompt and len(turns) % 2 == 0:
        raise TunechatError("the last message must be a user message to generate an answer")
    if not add_generation_prompt and len(turns) % 2 == 1:
        segments.pop()  # a trailing user message with no answer trains nothing
    return segments


def _bos_text(tokenizer: Any) -> str:
    """The BOS string, when this tokenizer's own encoding starts with it (Llama, InternLM);
    empty for tokenizers that use none (SmolLM2, Qwen), instead of XTuner's unconditional BOS."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is None:
        return ""
    ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    return tokenizer.bos_token if ids and ids[0] == bos_id else ""


def _render_with_tokenizer(
    messages: list[Message], tokenizer: Any, add_generation_prompt: bool
) -> list[tuple[str, bool]]:
    if not getattr(tokenizer, "chat_template", None):
        raise TunechatError(
            "this tokenizer has no chat template: pass a named template (--prompt-template), "
            f"one of: {', '.join(TEMPLATES)}"
        )

    def text(upto: int, generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            messages[:upto], tokenize=False, add_generation_prompt=generation_prompt
        )

    # Render growing prefixes and take differences: each assistant message contributes the text
    # between "…<generation prompt>" and "…<answer><end of turn>". The answer and the end-of-turn
    # marker right after it are trainable; whatever follows (a newline) is not.
    eos = tokenizer.eos_token or ""
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = text(i, True)
        after = text(i + 1, False)
        if not before.startswith(done) or not after.startswith(before):
            raise TunechatError("the tokenizer's chat template does not render conversations prefix by prefix; use --prompt-template")
        answer = after[len(before):]
        start = answer.find(message["content"])
        if start < 0:
            raise TunechatError("the tokenizer's chat template alters assistant text; use --prompt-template")
        end = start + len(message["content"])
        if eos and answer.startswith(eos, end):
            end += len(eos)
        segments += [(before[len(done):] + answer[:start], False), (answer[start:end], True)]
        done = before + answer[:end]
    if add_generation_prompt:
        if messages[-1]["role"] != "user":
            raise TunechatError("the last message must be a user message to generate an answer")
        full = text(len(messages), True)
    else:
        full = text(len(messages), False) if messages[-1]["role"] == "assistant" else done
    if not full.startswith(done):
        raise TunechatError("the tokenizer's chat template does not render conversations prefix by prefix; use --prompt-template")
    if full[len(done):]:
        segments.append((full[len(done):], False))
    return [(t, trainable) for t, trainable in segments if t]
