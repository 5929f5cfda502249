"""`tunechat data check`: validate every record of a file and summarise it before training on it."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from datasets_builders.convert import FieldError, Message, first_input
from datasets_builders.pairs import is_pair_record, pair_conversations, parse_pair
from datasets_builders.records import Entry, RecordFile, iter_json
from datasets_builders.text import plural

# Length of one record: characters by default; the CLI passes a token counter when given a model.
Length = Callable[[list[Message]], int]


@dataclass
class CheckReport:
    path: str
    format: str | None = None
    records: int = 0
    turns: int = 0
    lengths: list[int] = field(default_factory=list)
    unit: str = "characters"
    repeated_records: int = 0
    repeated_inputs: int = 0
    invalid: list[tuple[int, str]] = field(default_factory=list)

    def text(self) -> str:
        """The summary as the CLI prints it: counts, lengths, duplicates, then each invalid record."""
        lines = [f"{self.path}: {plural(self.records, 'valid record')} ({self.format or 'unknown format'}), "
                 f"{plural(self.turns, 'turn')}"]
        if self.lengths:
            mean = sum(self.lengths) / len(self.lengths)
            lines.append(f"length in {self.unit}: min {min(self.lengths)}, mean {mean:.1f}, max {max(self.lengths)}")
        lines.append(f"duplicates: {plural(self.repeated_records, 'record')} repeating an earlier record, "
                     f"{plural(self.repeated_inputs, 'record')} repeating an earlier record's first input")
        if self.invalid:
            lines.append(f"invalid: {plural(len(self.invalid), 'record')}")
            lines += [f"  line {line}: {reason}" for line, reason in self.invalid]
        return "\n".join(lines)


def check_file(path: str | os.PathLike, fmt: str | None = None, length: Length | None = None,
               unit: str = "tokens") -> CheckReport:
    """Validate every record of `path` (never stopping at the first bad one) and measure the rest.

    `length` counts a record's size (e.g. tokens of its rendered chat); by default its characters."""
    report = CheckReport(str(path), unit=unit if length else "characters")
    measure = length or (lambda messages: sum(len(m["content"]) for m in messages))
    file = RecordFile(path, fmt)
    first = next(iter_json(Path(path)), None)
    pairs = fmt is None and first is not None and is_pair_record(first.raw)
    seen_records: set[bytes] = set()
    seen_inputs: set[str] = set()
    for entry in _pair_entries(path) if pairs else file.entries():
        if entry.error:
            report.invalid.append((entry.line, entry.error))
            continue
        messages = entry.messages
        report.records += 1
        report.turns += sum(m["role"] == "assistant" for m in messages)
        report.lengths.append(measure(messages))
        digest = hashlib.sha256(json.dumps(messages, ensure_ascii=False, sort_keys=True).encode()).digest()
        report.repeated_records += digest in seen_records
        seen_records.add(digest)
        question = first_input(messages)
        report.repeated_inputs += question in seen_inputs
        seen_inputs.add(question)
    report.format = "preference pairs" if pairs else file.format
    return report


def _pair_entries(path: str | os.PathLike) -> Iterator[Entry]:
    """A pair file's records as entries whose messages are the prompt and the chosen answer."""
    for entry in iter_json(Path(path)):
        if entry.error is None:
            try:
                entry.messages = pair_conversations(parse_pair(entry.raw))[0]
            except FieldError as exc:
                entry.error = str(exc)
        yield entry
