"""An Ollama `Modelfile` for an exported GGUF: FROM, a TEMPLATE in Ollama's Go-template syntax that
renders what tunechat's renderer renders (system prompt included), SYSTEM and one PARAMETER stop
per stop word and end-of-turn marker.

The TEMPLATE is not translated from Jinja: it is read off the renderer itself. Conversations with
marker strings in place of the system prompt, the user and the assistant texts are rendered, and
the text around the markers becomes the template's literal pieces. A renderer whose output cannot
be cut that way (a turn rendered differently by position) is refused rather than approximated."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets_builders.atomic import write_text_atomic
from sdk.errors import TunechatError
from sdk.templates import Template, render_prompt, stop_words_for

_S, _U1, _A1, _U2, _A2, _U3 = (f"\x01{marker}\x01" for marker in ("SYSTEM", "USER1", "ASSISTANT1", "USER2", "ASSISTANT2", "USER3"))


def ollama_template(template: Template | None, tokenizer: Any) -> str:
    """The Go template that renders like `render_prompt(messages, template, tokenizer)`."""
    def render(*roles_and_texts: tuple[str, str]) -> str:
        return render_prompt([{"role": r, "content": t} for r, t in roles_and_texts], template, tokenizer)

    refused = TunechatError("this chat template renders turns differently by position: it has no Ollama TEMPLATE equivalent")
    with_system = render(("system", _S), ("user", _U1))
    two_turns = render(("system", _S), ("user", _U1), ("assistant", _A1), ("user", _U2))
    three_turns = render(("system", _S), ("user", _U1), ("assistant", _A1), ("user", _U2), ("assistant", _A2), ("user", _U3))
    no_system = render(("user", _U1))
    try:  # each marker must appear exactly once where it was put
        system_prefix, rest = with_system.split(_S)
        between_system_user, after_user = rest.split(_U1)
        user_to_answer, rest = two_turns.split(_U1)[1].split(_A1)
        answer_to_user, after_user2 = rest.split(_U2)
        plain_prefix, _ = no_system.split(_U1)
        second_answer_to_user = three_turns.split(_A2)[1].split(_U3)[0]
    except (ValueError, IndexError):
        raise refused from None
    user_prefix = _common_suffix(_common_suffix(between_system_user, answer_to_user), plain_prefix)
    if (user_to_answer != after_user or after_user2 != after_user or not two_turns.startswith(system_prefix)
            or second_answer_to_user != answer_to_user):  # a turn numbered by its round (chatglm2)
        raise refused
    # Where every turn ends with the end-of-turn marker, keep it with the turn it ends (as a person
    # would write the template); the rendered text is the same either way.
    for word in stop_words_for(template, tokenizer):
        if user_prefix.startswith(word):
            user_prefix = user_prefix[len(word):].lstrip("\n")
            break
    system_suffix = between_system_user[: len(between_system_user) - len(user_prefix)]
    answer_suffix = answer_to_user[: len(answer_to_user) - len(user_prefix)]
    default_system = plain_prefix[: len(plain_prefix) - len(user_prefix)]
    return ("{{ if .System }}" + system_prefix + "{{ .System }}" + system_suffix + "{{ else }}" + default_system
            + "{{ end }}{{ range .Messages }}{{ if eq .Role \"user\" }}" + user_prefix + "{{ .Content }}" + after_user
            + "{{ else if eq .Role \"assistant\" }}{{ .Content }}" + answer_suffix + "{{ end }}{{ end }}")


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    return a[len(a) - n:]


def write_modelfile(gguf: Path, template: Template | None, tokenizer: Any, meta: dict[str, Any]) -> Path:
    """Write `Modelfile` beside `gguf` (atomically) and return its path."""
    body = ollama_template(template, tokenizer)
    stops = list(dict.fromkeys([*stop_words_for(template, tokenizer), *(meta.get("stop_words") or [])]))
    for text in [body, meta.get("system") or "", *stops]:
        if '"""' in text:
            raise TunechatError('the template, system prompt or a stop word contains """: Ollama cannot quote it')
    lines = [f"FROM ./{gguf.name}", f'TEMPLATE """{body}"""']
    if meta.get("system"):
        lines.append(f'SYSTEM """{meta["system"]}"""')
    lines += [f"PARAMETER stop {json.dumps(stop, ensure_ascii=False)}" for stop in stops]
    path = gguf.parent / "Modelfile"
    write_text_atomic(path, "\n".join(lines) + "\n")
    return path
