"""Splitting a sequence into API calls that respect a per-call item count and byte budget (PutRecords,
PutMetricData), in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable


def limited_batches[T](
    items: Iterable[T], size_of: Callable[[T], int], max_items: int, max_bytes: int
) -> list[list[T]]:
    """Consecutive batches of at most `max_items` items and `max_bytes` in all (an item larger than the
    budget goes alone)."""
    batches: list[list[T]] = []
    current: list[T] = []
    size = 0
    for item in items:
        item_size = size_of(item)
        if current and (len(current) >= max_items or size + item_size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        batches.append(current)
    return batches
