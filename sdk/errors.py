"""`sdk.errors.TunechatError`: the one user-facing exception, defined at the bottom layer
(`datasets_builders.errors`) so that every layer raises the same class."""
from datasets_builders.errors import TunechatError

__all__ = ["TunechatError"]
