"""`tunechat.json`: the serving settings a trained adapter or merged model carries with it
(template, system prompt, stop words, base model, plus training facts), so that `load` applies
them and a user never repeats the training system prompt."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from datasets_builders.atomic import write_text_atomic
from datasets_builders.errors import TunechatError

FILENAME = "tunechat.json"


def read_metadata(directory: str | os.PathLike) -> dict[str, Any]:
    """The metadata in `directory`, or {} when it has none."""
    path = Path(directory) / FILENAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TunechatError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise TunechatError(f"{path}: expected a JSON object")
    return data


def write_metadata(directory: str | os.PathLike, data: dict[str, Any]) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a file."""
    path = Path(directory) / FILENAME
    write_text_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    return path
