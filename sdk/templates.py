"""The one renderer: conversation messages → text, for serving prompts and for training samples.

Two kinds of template:
- the tokenizer's own chat template (the default), rendered with `apply_chat_template`;
- a named XTuner template (`sdk.xtuner_templates`: all 27 of XTuner 0.2.0's, plus `chatml`) with
  XTuner's exact SYSTEM / INSTRUCTION / SUFFIX / SEP / STOP_WORDS strings.

A template with no system role (XTuner's `minicpm`; a tokenizer template that refuses one, like
Gemma's) gets the system prompt folded into the first user message, "{system}\n\n{user}", as
Gemma 3's own template does, rather than an error or a prompt silently dropped.

`render_segments` returns the text as (text, trainable) pieces: training tokenizes the pieces and
puts loss on the trainable ones (assistant text plus its end-of-turn marker); serving joins them
and appends the generation prompt. Both go through the same function, so the text a model is
trained on is byte-for-byte the text it is prompted with."""
from __future__ import annotations

from typing import Any

from jinja2 import TemplateError

from sdk.errors import TunechatError
from sdk.xtuner_templates import SYSTEM_TEMPLATES, TEMPLATES, Template

__all__ = ["SYSTEM_TEMPLATES", "TEMPLATES", "Message", "Template", "get_template", "render_prompt", "render_segments",
           "stop_words_for", "validate_messages"]

Message = dict[str, Any]  # {"role": "system"|"user"|"assistant", "content": str}


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
    if messages[0]["role"] == "system" and not _has_system_role(template, tokenizer):
        messages = _fold_system(messages)
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
    return list(dict.fromkeys(w for w in (_end_of_turn(tokenizer), tokenizer.eos_token) if w))


def _end_of_turn(tokenizer: Any) -> str:
    """The tokenizer template's end-of-turn marker: the special tokens it writes right after an
    answer (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`, `<|end|>`), EOS or not."""
    chat_template = str(getattr(tokenizer, "chat_template", None))
    if chat_template not in _END_OF_TURN:
        marker = "\x02"
        try:
            text = tokenizer.apply_chat_template([{"role": "user", "content": "u"}, {"role": "assistant", "content": marker}],
                                                 tokenize=False)
        except (TemplateError, ValueError):  # no template, or one that cannot render this
            text = ""
        _END_OF_TURN[chat_template] = _special_prefix(text.partition(marker)[2], tokenizer)
    return _END_OF_TURN[chat_template]


_END_OF_TURN: dict[str, str] = {}  # tokenizer chat template → its end-of-turn marker


def _special_prefix(text: str, tokenizer: Any) -> str:
    """The run of special tokens `text` starts with: tokens that decode to nothing once special
    tokens are skipped (asked of the tokenizer itself, so a GGUF file's vocabulary answers too)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    count = 0
    while count < len(ids) and not tokenizer.decode([ids[count]], skip_special_tokens=True):
        count += 1
    prefix = tokenizer.decode(ids[:count])
    return prefix if text.startswith(prefix) else ""


def _has_system_role(template: Template | None, tokenizer: Any) -> bool:
    if template is not None:
        return template.system is not None
    if not getattr(tokenizer, "chat_template", None):
        return True  # no template at all: _render_with_tokenizer says so
    chat_template = str(tokenizer.chat_template)
    if chat_template not in _SYSTEM_ROLE:
        probe = [{"role": "system", "content": "\x01"}, {"role": "user", "content": "u"}]
        try:  # a template may refuse the role (raise_exception) or drop its text
            _SYSTEM_ROLE[chat_template] = "\x01" in tokenizer.apply_chat_template(probe, tokenize=False)
        except TemplateError:
            _SYSTEM_ROLE[chat_template] = False
    return _SYSTEM_ROLE[chat_template]


_SYSTEM_ROLE: dict[str, bool] = {}  # tokenizer chat template → whether it renders a system message


def _fold_system(messages: list[Message]) -> list[Message]:
    system, first, *rest = messages
    return [{**first, "content": f"{system['content']}\n\n{first['content']}"}, *rest]


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
    # marker right after it (the special tokens there, EOS or not) are trainable; whatever follows
    # (a newline) is not.
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
        end += len(_special_prefix(answer[end:], tokenizer))
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
