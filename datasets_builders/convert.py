"""The record formats and the conversions between them.

Every record is normalised to one canonical form, a list of chat messages
`{"role": "system"|"user"|"assistant"|"environment", "content": str[, "name": str]}`: the OpenAI
`messages` form plus the `environment` role that tool-call data needs (docs/architecture.md). It is a superset
of XTuner's `conversation` form, into which plain chats convert losslessly, and it is what chat
templates take. Readers: `xtuner`, `openai`, `sharegpt`, `alpaca` (also COIG-CQIA). Writers:
`xtuner`, `openai`.

Validation errors are `FieldError`s carrying the field path and the reason; `records.py` adds the
file name and line number.
"""
from __future__ import annotations

import unicodedata
from typing import Any, Iterator

Message = dict[str, str]

READ_FORMATS = ("xtuner", "openai", "sharegpt", "alpaca")
WRITE_FORMATS = ("xtuner", "openai")
ROLES = ("system", "user", "assistant", "environment")
# Which role may follow which: user and assistant alternate; an assistant action may be answered
# by an environment (tool) result, which the assistant then reads.
_NEXT = {None: ("user",), "user": ("assistant",), "assistant": ("user", "environment"), "environment": ("assistant",)}
_SHAREGPT_ROLES = {
    "human": "user", "user": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bard": "assistant",
    "model": "assistant", "function_call": "assistant",
    "system": "system",
    "observation": "environment", "tool": "environment", "function": "environment",
    "environment": "environment",
}  # fmt: skip
# The key that identifies each format when it is not given (alpaca: "instruction" + "output").
_FORMAT_KEYS = {"xtuner": ("conversation",), "openai": ("messages",), "sharegpt": ("conversations",),
                "alpaca": ("instruction", "output")}


class FieldError(ValueError):
    """One invalid field of one record: `str()` is the reason, e.g. `field "output" is missing`."""


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as a user reads it in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _field(obj: dict, key: str, where: str, *, required: bool = True, empty_ok: bool = False) -> str | None:
    """`obj[key]` as a string, or a FieldError naming `where + key`."""
    name = f"{where}{key}"
    if key not in obj or (obj[key] is None and not required):
        if required:
            raise FieldError(f'field "{name}" is missing')
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise FieldError(f'field "{name}" must be a string, got {json_type(value)}')
    if not empty_ok and not value.strip():
        raise FieldError(f'field "{name}" is empty')
    return value


def _list(obj: dict, key: str) -> list:
    if key not in obj:
        raise FieldError(f'field "{key}" is missing')
    value = obj[key]
    if not isinstance(value, list):
        raise FieldError(f'field "{key}" must be an array, got {json_type(value)}')
    if not value:
        raise FieldError(f'field "{key}" is empty')
    return value


def _object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise FieldError(f'field "{name}" must be an object, got {json_type(value)}')
    return value


def _record(obj: Any) -> dict:
    if not isinstance(obj, dict):
        raise FieldError(f"a record must be a JSON object, got {json_type(obj)}")
    return obj


def detect_format(obj: Any) -> str:
    """The format of a record, from its keys; a FieldError when none or several match."""
    obj = _record(obj)
    found = [fmt for fmt, keys in _FORMAT_KEYS.items() if all(k in obj for k in keys)]
    if len(found) == 1:
        return found[0]
    if found:
        which = ", ".join(f"{f} ({'+'.join(_FORMAT_KEYS[f])})" for f in found)
        raise FieldError(f"the record matches several formats: {which}; pass --from")
    keys = ", ".join(f'"{k}"' for k in list(obj)[:8]) or "none"
    raise FieldError(
        f"unknown record format (its keys: {keys}); expected \"conversation\" (xtuner), \"messages\" "
        "(openai), \"conversations\" (sharegpt) or \"instruction\"+\"output\" (alpaca); pass --from"
    )


def parse(obj: Any, fmt: str) -> list[Message]:
    """One record of format `fmt` as validated canonical messages (FieldError if invalid)."""
    obj = _record(obj)
    messages = _PARSERS[fmt](obj)
    check_order(messages, "messages" if fmt == "openai" else "conversations")
    return messages


def _items(obj: dict, key: str) -> Iterator[tuple[str, dict]]:
    """(`key[i].`, item) for each object of the list `obj[key]`: the field prefix names it in errors."""
    for i, item in enumerate(_list(obj, key)):
        yield f"{key}[{i}].", _object(item, f"{key}[{i}]")


def _system(obj: dict, where: str = "") -> list[Message]:
    """The record's (or turn's) system prompt as a message list: empty when absent or blank."""
    system = _field(obj, "system", where, required=False, empty_ok=True)
    return [{"role": "system", "content": system}] if system and system.strip() else []


def _parse_xtuner(obj: dict) -> list[Message]:
    messages: list[Message] = []
    for where, turn in _items(obj, "conversation"):
        system = _system(turn, where)
        if system and messages:
            raise FieldError(f'field "{where}system": a system prompt is allowed on the first turn only')
        messages += system
        messages.append({"role": "user", "content": _field(turn, "input", where)})
        messages.append({"role": "assistant", "content": _field(turn, "output", where)})
    return messages


def _parse_openai(obj: dict) -> list[Message]:
    messages: list[Message] = []
    for where, msg in _items(obj, "messages"):
        role = _field(msg, "role", where)
        if role not in ROLES:
            raise FieldError(f'field "{where}role" must be one of {", ".join(ROLES)}; got "{role}"')
        content = _field(msg, "content", where, empty_ok=role == "system")
        if role == "system" and not content.strip():
            continue  # an empty system prompt is no system prompt
        out = {"role": role, "content": content}
        name = _field(msg, "name", where, required=False)
        if name is not None:
            out["name"] = name
        messages.append(out)
    return messages


def _parse_sharegpt(obj: dict) -> list[Message]:
    messages = _system(obj)
    for where, msg in _items(obj, "conversations"):
        speaker = _field(msg, "from", where)
        role = _SHAREGPT_ROLES.get(speaker.lower())
        if role is None:
            raise FieldError(
                f'field "{where}from" must be one of {", ".join(_SHAREGPT_ROLES)}; got "{speaker}"'
            )
        messages.append({"role": role, "content": _field(msg, "value", where, empty_ok=role == "system")})
    return messages


def _parse_alpaca(obj: dict) -> list[Message]:
    """alpaca / COIG-CQIA: instruction + input -> user, output -> assistant. Optional `system` and
    `history` ([[question, answer], ...], as LLaMA-Factory writes it); every other field is dropped."""
    messages = _system(obj)
    history = obj.get("history") or []
    if not isinstance(history, list):
        raise FieldError(f'field "history" must be an array, got {json_type(history)}')
    for i, pair in enumerate(history):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise FieldError(f'field "history[{i}]" must be a [question, answer] pair')
        for j, (role, text) in enumerate(zip(("user", "assistant"), pair)):
            if not isinstance(text, str) or not text.strip():
                raise FieldError(f'field "history[{i}][{j}]" must be a non-empty string, got {json_type(text)}')
            messages.append({"role": role, "content": text})
    instruction = _field(obj, "instruction", "")
    extra = _field(obj, "input", "", required=False, empty_ok=True)
    user = f"{instruction}\n{extra}" if extra and extra.strip() else instruction
    messages.append({"role": "user", "content": user})
    messages.append({"role": "assistant", "content": _field(obj, "output", "")})
    return messages


_PARSERS = {"xtuner": _parse_xtuner, "openai": _parse_openai, "sharegpt": _parse_sharegpt, "alpaca": _parse_alpaca}


def check_order(messages: list[Message], key: str = "messages") -> None:
    """Roles in order: an optional system message first, then user and assistant alternating (an
    assistant action may be followed by an environment result), ending with the assistant."""
    prev = None
    for i, msg in enumerate(messages):
        role = msg["role"]
        if role == "system":
            if i:
                raise FieldError(f'field "{key}[{i}].role": a system message is allowed first only')
            continue
        if role not in _NEXT[prev]:
            after = f'after "{prev}"' if prev else "first"
            allowed = " or ".join(f'"{r}"' for r in _NEXT[prev])
            raise FieldError(f'field "{key}[{i}].role": "{role}" cannot come {after} (expected {allowed})')
        prev = role
    if prev is None:
        raise FieldError(f'field "{key}" has no user message')
    if prev != "assistant":
        raise FieldError(f'field "{key}" must end with an assistant message, not "{prev}"')


def with_system(messages: list[Message], system: str | None) -> list[Message]:
    """The messages with their system prompt replaced by `system` (unchanged when None)."""
    if system is None:
        return messages
    rest = [m for m in messages if m["role"] != "system"]
    return [{"role": "system", "content": system}, *rest] if system.strip() else rest


def render(messages: list[Message], fmt: str) -> dict:
    """Canonical messages as one record of `fmt` ("xtuner" or "openai")."""
    if fmt == "openai":
        return {"messages": [dict(m) for m in messages]}
    if any(m["role"] == "environment" for m in messages):
        raise FieldError("a tool-call record (with an environment message) has no XTuner conversation form; "
                         "write it with --to openai")
    turns: list[dict] = []
    system = None
    for msg in messages:
        if msg["role"] == "system":
            system = msg["content"]
        elif msg["role"] == "user":
            turns.append({"system": system, "input": msg["content"]} if system is not None else {"input": msg["content"]})
            system = None
        else:
            turns[-1]["output"] = msg["content"]
    return {"conversation": turns}


def first_input(messages: list[Message]) -> str:
    """The first user message, normalised (Unicode NFKC, case, whitespace): the key under which two
    records count as the same question."""
    text = next((m["content"] for m in messages if m["role"] == "user"), "")
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
