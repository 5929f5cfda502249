"""The error every builder raises: a one-line reason naming the file and the line, row or field."""
from __future__ import annotations

from sdk.errors import TunechatError


class DataError(TunechatError):
    """Bad input data. The CLI prints the message as one line and exits 1; nothing is written."""
