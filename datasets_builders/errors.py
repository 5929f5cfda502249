"""The errors every layer raises: a one-line reason that says what went wrong and what to do.

They live at the bottom layer so that data, engine room, agents and application all share them
without importing upwards; `sdk.TunechatError` is the same class."""
from __future__ import annotations


class TunechatError(Exception):
    """A user-facing error. The CLI prints it as one line and exits non-zero (no traceback)."""


class DataError(TunechatError):
    """Bad input data, naming the file and the line, row or field. The CLI prints the message as
    one line and exits 1; nothing is written."""
