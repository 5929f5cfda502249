"""Train/test splitting: seeded, identical on every machine, and without train/test leakage.

Records are grouped by their first input (normalised: Unicode NFKC, case, whitespace), so a
question asked twice lands on one side only. Groups are ordered by a SHA-256 hash of the seed and
the group key (not Python's `hash()`, which is salted per process, nor `random`, whose algorithms
may change between versions), then the train side takes each group that still fits under
round(ratio x records): the ratio holds to within one record whenever the groups allow it. Each
side keeps the input's order.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence, TypeVar

from datasets_builders.errors import DataError

T = TypeVar("T")


def split(items: Sequence[T], key: Callable[[T], str], ratio: float = 0.7, seed: int = 0) -> tuple[list[T], list[T]]:
    """`items` cut into (train, test) with about `ratio` of them in train, equal keys on one side."""
    if not 0 < ratio < 1:
        raise DataError(f"--ratio must be between 0 and 1 (exclusive), got {ratio}")
    groups: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault(key(item), []).append(index)
    target = int(ratio * len(items) + 0.5)
    order = sorted(groups, key=lambda k: hashlib.sha256(f"{seed}\0{k}".encode()).digest())
    in_train: set[int] = set()
    for group in order:
        if len(in_train) + len(groups[group]) <= target:
            in_train.update(groups[group])
    train = [item for i, item in enumerate(items) if i in in_train]
    test = [item for i, item in enumerate(items) if i not in in_train]
    return train, test
