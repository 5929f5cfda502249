"""Record files: read every accepted shape with line numbers, write real JSONL atomically.

Readers take JSON Lines and a JSON array of records (what the tutorial's scripts write into `.jsonl`
files), with or without a UTF-8 BOM, with LF or CRLF line ends; blank lines are ignored. Each record
is validated and normalised to canonical messages (`convert.py`). A problem is reported as
`FILE line N: reason`, where N is the line the record starts on.

Writers write one JSON object per line, UTF-8 with non-ASCII text as is, into a temporary file in the
target's directory that is renamed over the target only once every record is written, so a failed
run never leaves a partial or empty output behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

from datasets_builders.atomic import atomic_file
from datasets_builders.convert import FieldError, Message, detect_format, parse
from datasets_builders.errors import DataError

_BOM = b"\xef\xbb\xbf"
_SPACE = re.compile(r"[ \t\r\n]*")


@dataclass
class Entry:
    """One record of a file: its line, its JSON value and messages, or why it is invalid."""

    line: int
    raw: Any = None
    messages: list[Message] = field(default_factory=list)
    error: str | None = None


class RecordFile:
    """A record file of one format (`fmt`, or detected from its first record).

    Iterating yields the valid records and raises DataError at the first invalid one; `entries()`
    yields every record, invalid ones with their `error`, for reports that list them all."""

    def __init__(self, path: str | os.PathLike, fmt: str | None = None) -> None:
        self.path = Path(path)
        self.format = fmt
        self._detected_at = 0

    def __iter__(self) -> Iterator[Entry]:
        for entry in self.entries():
            if entry.error:
                raise DataError(f"{self.path} line {entry.line}: {entry.error}")
            yield entry

    def entries(self) -> Iterator[Entry]:
        for entry in iter_json(self.path):
            if entry.error is None:
                try:
                    if self.format is None:
                        self.format, self._detected_at = detect_format(entry.raw), entry.line
                    entry.messages = parse(entry.raw, self.format)
                except FieldError as exc:
                    entry.error = str(exc)
                    if self._detected_at and isinstance(entry.raw, dict) and _format_key(self.format) not in entry.raw:
                        entry.error += f" (the file is {self.format}, detected from line {self._detected_at})"
            yield entry


CALL_NAMES = {"plugin", "interpreter"}  # assistant message names that mark a tool call


def is_agent_record(record: dict) -> bool:
    """Whether a record is rendered by the agent's renderer (`agents.render_record`) rather than a chat template: it names its
    agent tools or protocol (as `tunechat data tools` writes every record, including the ones
    that answer without a tool), or it holds a tool call or result."""
    if not isinstance(record, dict):
        return False
    if "tools" in record or "protocol" in record:
        return True
    messages = record.get("messages") or []
    return any(isinstance(m, dict) and (m.get("role") == "environment" or m.get("name") in CALL_NAMES) for m in messages)


def _format_key(fmt: str) -> str:
    return {"xtuner": "conversation", "openai": "messages", "sharegpt": "conversations"}.get(fmt, "instruction")


def iter_json(path: Path) -> Iterator[Entry]:
    """The JSON values of a JSONL file or a JSON array, each with the line it starts on."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror})") from None
    with f:
        head = f.read(4096)
        start = len(_BOM) if head.startswith(_BOM) else 0
        f.seek(start)
        if head[start:].lstrip()[:1] == b"[":
            count = yield from _array_values(f.read())
        else:
            count = yield from _line_values(f, start)
    if not count:
        raise DataError(f"{path}: the file is empty (no records)")


def _line_values(f: BinaryIO, offset: int) -> Iterator[Entry]:
    count = 0
    for number, raw in enumerate(f, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            count += 1
            yield Entry(number, error=not_utf8(raw, exc, offset))
            offset += len(raw)
            continue
        offset += len(raw)
        if not text.strip():
            continue
        count += 1
        try:
            yield Entry(number, json.loads(text))
        except json.JSONDecodeError as exc:
            yield Entry(number, error=_broken(exc, text, at_end=not raw.endswith(b"\n")))
    return count


def _array_values(data: bytes) -> Iterator[Entry]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        yield Entry(data.count(b"\n", 0, exc.start) + 1, error=not_utf8(data, exc, 0))
        return 1
    decoder = json.JSONDecoder()
    pos, count, line, counted = text.index("[") + 1, 0, 1, 0
    while True:
        pos = _SPACE.match(text, pos).end()
        if text.startswith("]", pos):
            break
        if count:  # after a record: a comma, then the next one
            if not text.startswith(",", pos):
                why = "the file ends before the array is closed (truncated?)" if pos >= len(text) else \
                    "expected ',' or ']' after the previous record"
                yield Entry(text.count("\n", 0, pos) + 1, error=f"broken JSON: {why}")
                return count + 1
            pos = _SPACE.match(text, pos + 1).end()
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            yield Entry(exc.lineno, error=_broken(exc, text, at_end=True))
            return count + 1
        line, counted = line + text.count("\n", counted, pos), pos
        count += 1
        yield Entry(line, value)
        pos = end
    rest = _SPACE.match(text, pos + 1).end()
    if rest < len(text):
        yield Entry(text.count("\n", 0, rest) + 1, error="broken JSON: text after the closing ']' of the array")
        return count + 1
    return count


def _broken(exc: json.JSONDecodeError, text: str, at_end: bool) -> str:
    # Incomplete rather than wrong: the parser ran out of text (a string still open counts too).
    if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
        why = "the file ends in the middle of this record (truncated?)" if at_end else "the record is incomplete"
        return f"broken JSON: {why}: {exc.msg}"
    return f"broken JSON: {exc.msg} (column {exc.colno})"


def not_utf8(raw: bytes, exc: UnicodeDecodeError, offset: int) -> str:
    """Why `raw` (which starts at byte `offset` of its file) is not UTF-8, and what to do."""
    byte = raw[exc.start]
    hint = "save it as UTF-8"
    with contextlib.suppress(UnicodeDecodeError):
        raw.decode("gb18030")
        hint = "it looks like GBK/GB18030 text: save it as UTF-8"
    return f"not UTF-8 text (byte 0x{byte:02X} at byte offset {offset + exc.start}); {hint}"


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write `records` as JSONL to `path` atomically; return how many were written.

    `records` may be a generator that raises: the target is then left as it was."""
    path = Path(path)
    count = 0
    with atomic_file(path) as out:
        for record in records:
            try:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            except UnicodeEncodeError:
                raise DataError(f"{path}: record {count + 1} holds invalid Unicode (an unpaired surrogate "
                                "such as \\ud800)") from None
            count += 1
    return count
