"""Generation settings and the text side of decoding: incremental detokenization and stop words.

`GenerationConfig` is the one place generation settings live; the CLI flags, the web sidebar, the
server's request fields and the agent LLM all map onto it."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sdk.errors import TunechatError


@dataclass
class GenerationConfig:
    """How to sample. temperature 0 is greedy; top_k 0 and top_p 1 switch those filters off."""

    max_new_tokens: int = 512
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.8
    repetition_penalty: float = 1.0
    seed: int | None = None
    # Strings that end the generation and are cut from the result (may span several tokens).
    # The template's end-of-turn markers and EOS are always added to these.
    stop_words: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        checks = [
            ("max_new_tokens", isinstance(self.max_new_tokens, int) and self.max_new_tokens >= 1, "an integer >= 1"),
            ("temperature", _number(self.temperature) and self.temperature >= 0, "a number >= 0 (0 = greedy)"),
            ("top_k", isinstance(self.top_k, int) and self.top_k >= 0, "an integer >= 0 (0 = off)"),
            ("top_p", _number(self.top_p) and 0 < self.top_p <= 1, "a number in (0, 1]"),
            ("repetition_penalty", _number(self.repetition_penalty) and self.repetition_penalty > 0, "a number > 0 (1 = off)"),
            ("seed", self.seed is None or isinstance(self.seed, int), "an integer"),
        ]
        for name, ok, what in checks:
            if not ok:
                raise TunechatError(f"{name} must be {what}, got {getattr(self, name)!r}")
        if isinstance(self.stop_words, str):
            self.stop_words = [self.stop_words]
        if not all(isinstance(w, str) and w for w in self.stop_words):
            raise TunechatError(f"stop_words must be non-empty strings, got {self.stop_words!r}")
        self.stop_words = list(self.stop_words)

    def replace(self, **overrides: Any) -> "GenerationConfig":
        """A validated copy with the given fields changed; None values are ignored."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TunechatError(f"unknown generation setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TextStream:
    """Turns generated token ids into text pieces, one `push` at a time, in O(1) decode work per
    token (only a short window is decoded, never the whole sequence), holding back incomplete
    UTF-8 characters and anything that could be the start of a stop word.

    The concatenation of the pieces is the final `text`: stop words never appear in it."""

    def __init__(self, tokenizer: Any, stop_words: list[str], context_ids: list[int] | None = None):
        self._tokenizer = tokenizer
        self._stop_words = [w for w in stop_words if w]
        self._longest = max((len(w) for w in self._stop_words), default=0)
        # A few prompt tokens seed the window so the first token decodes with its leading space.
        self._ids: list[int] = list(context_ids or [])[-4:]
        self._prefix = 0
        self._read = len(self._ids)
        self._text = ""  # decoded generated text so far
        self._emitted = 0  # how much of _text has been handed out
        self.stopped = False  # a stop word was found

    def push(self, token_id: int) -> str:
        """Add a token; return the text that is now certain (may be empty)."""
        self._ids.append(token_id)
        before = self._decode(self._prefix, self._read)
        after = self._decode(self._prefix, len(self._ids))
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return ""  # an incomplete multi-byte character: wait for the next token
        start = max(0, len(self._text) - self._longest)
        self._text += after[len(before):]
        self._prefix, self._read = self._read, len(self._ids)
        cut = self._find_stop(start)
        if cut is not None:
            self._text = self._text[:cut]
            self.stopped = True
            return self._flush(len(self._text))
        return self._flush(len(self._text) - self._pending_stop_prefix())

    def finish(self) -> str:
        """The held-back rest, once generation ended for another reason (EOS, length)."""
        return self._flush(len(self._text))

    @property
    def text(self) -> str:
        return self._text

    def _decode(self, start: int, end: int) -> str:
        return self._tokenizer.decode(self._ids[start:end], skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _find_stop(self, start: int) -> int | None:
        hits = [i for i in (self._text.find(w, start) for w in self._stop_words) if i >= 0]
        return min(hits) if hits else None

    def _pending_stop_prefix(self) -> int:
        """Length of the longest tail of the text that is a proper prefix of a stop word."""
        for n in range(min(self._longest - 1, len(self._text)), 0, -1):
            tail = self._text[-n:]
            if any(w.startswith(tail) for w in self._stop_words):
                return n
        return 0

    def _flush(self, upto: int) -> str:
        piece = self._text[self._emitted:upto]
        self._emitted = max(self._emitted, upto)
        return piece
