"""Small text helpers shared by the builders."""
from __future__ import annotations


def tidy(text: str) -> str:
    """Cell text with line breaks as `\\n` and surrounding whitespace removed."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def plural(count: int, noun: str) -> str:
    """`1 record`, `2 records`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
