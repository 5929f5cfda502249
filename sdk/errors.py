"""The one exception type users see: a message that says what went wrong and what to do."""


class TunechatError(Exception):
    """A user-facing error. The CLI prints it as one line and exits non-zero (no traceback)."""
