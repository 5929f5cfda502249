"""Preference pairs: a prompt and two answers to it, the chosen and the rejected one.

One canonical form, `{"messages": prompt turns ending with the user's, "chosen": str, "rejected": str}`,
read from any of these shapes (the prompt in any record format `convert.py` reads):

    tunechat        {"messages" | "conversation" | "conversations": prompt, "chosen": A, "rejected": B}
    LLaMA-Factory   {"instruction", "input", "chosen": A, "rejected": B}  (alpaca ranking data)
                    {"conversations": prompt, "chosen": {"from": "gpt", "value": A}, "rejected": {...}}
    ms-swift        {"messages": prompt + [{"role": "assistant", "content": A}], "rejected_response": B}

An answer is a string or an assistant message object (`content` or `value`). Errors name the file,
the line and the field, as for chat records."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from datasets_builders.convert import FieldError, Message, json_type, parse
from datasets_builders.errors import DataError
from datasets_builders.records import iter_json

PAIR_KEYS = ("chosen", "rejected", "rejected_response")
_PROMPT_FORMATS = (("messages", "openai"), ("conversation", "xtuner"), ("conversations", "sharegpt"), ("instruction", "alpaca"))


def is_pair_record(record: Any) -> bool:
    """Whether a record is a preference pair (it has a chosen or rejected answer)."""
    return isinstance(record, dict) and any(key in record for key in PAIR_KEYS)


def read_pairs(path: str | os.PathLike, system: str | None = None) -> list[dict[str, Any]]:
    """Every pair of a file in canonical form, `system` added to prompts that have none; the first
    invalid record is a DataError `FILE line N: reason`."""
    pairs = []
    for entry in iter_json(Path(path)):
        try:
            if entry.error:
                raise FieldError(entry.error)
            pair = parse_pair(entry.raw)
        except FieldError as exc:
            raise DataError(f"{path} line {entry.line}: {exc}") from None
        if system and pair["messages"][0]["role"] != "system":
            pair["messages"].insert(0, {"role": "system", "content": system})
        pairs.append(pair)
    return pairs


def parse_pair(record: Any) -> dict[str, Any]:
    """One record as {"messages", "chosen", "rejected"}, or a FieldError naming the field."""
    if not isinstance(record, dict):
        raise FieldError(f"a record must be a JSON object, got {json_type(record)}")
    if not is_pair_record(record):
        raise FieldError('not a preference pair: no "chosen" and "rejected" answers (conversations train with '
                         "--method sft; `tunechat data pairs` builds identity pairs)")
    found = [(key, fmt) for key, fmt in _PROMPT_FORMATS if key in record]
    if len(found) != 1:
        keys = ", ".join(f'"{k}"' for k in list(record)[:8]) or "none"
        raise FieldError(f"a preference pair needs one prompt field, \"messages\", \"conversation\", \"conversations\" "
                         f"or \"instruction\" (its keys: {keys})")
    key, fmt = found[0]
    if "rejected_response" in record:  # ms-swift: the chosen answer ends the conversation
        messages = parse(record, fmt)
        chosen, rejected = messages.pop()["content"], _answer(record, "rejected_response")
        if "chosen" in record:
            raise FieldError('give the chosen answer once: as "chosen" or as the last message, not both')
    else:
        chosen, rejected = _answer(record, "chosen"), _answer(record, "rejected")
        messages = parse(_with_answer(record, key, fmt, chosen), fmt)[:-1]
    if chosen.strip() == rejected.strip():
        raise FieldError('"chosen" and "rejected" are the same answer: a pair must prefer one answer over another')
    return {"messages": messages, "chosen": chosen, "rejected": rejected}


def pair_conversations(pair: dict[str, Any]) -> tuple[list[Message], list[Message]]:
    """The chosen and the rejected conversation: the prompt followed by each answer."""
    return ([*pair["messages"], {"role": "assistant", "content": pair["chosen"]}],
            [*pair["messages"], {"role": "assistant", "content": pair["rejected"]}])


def _answer(record: dict, key: str) -> str:
    if key not in record:
        raise FieldError(f'field "{key}" is missing')
    value = record[key]
    if isinstance(value, dict):  # an assistant message: {"role", "content"} or {"from", "value"}
        field = "content" if "content" in value else "value"
        key, value = f"{key}.{field}", value.get(field)
    if not isinstance(value, str):
        raise FieldError(f'field "{key}" must be a string, got {json_type(value)}')
    if not value.strip():
        raise FieldError(f'field "{key}" is empty')
    return value


def _with_answer(record: dict, key: str, fmt: str, answer: str) -> dict:
    """The record with `answer` as its final assistant turn, for the chat-record parser (whose
    checks then cover the prompt: roles in order, no empty turn, a user turn last)."""
    if fmt == "alpaca":
        return {**record, "output": answer}
    turns = record[key]
    if not isinstance(turns, list) or (turns and not isinstance(turns[-1], dict)):
        return record  # the parser reports the wrong type
    if not turns:
        raise FieldError(f'field "{key}" is empty: a pair needs the prompt it answers')
    if fmt == "xtuner":
        if "output" in turns[-1]:
            raise FieldError(f'field "{key}[{len(turns) - 1}].output": the last turn is the prompt and takes no "output" '
                             '(its answers are "chosen" and "rejected")')
        return {**record, key: [*turns[:-1], {**turns[-1], "output": answer}]}
    turn = {"role": "assistant", "content": answer} if fmt == "openai" else {"from": "gpt", "value": answer}
    return {**record, key: [*turns, turn]}
