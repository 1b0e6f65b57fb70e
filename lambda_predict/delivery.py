"""PutRecords delivery: chunks of ≤ 500 entries (≤ 5 MB), failed entries retried with exponential
backoff for a bounded number of attempts; returns what could not be delivered."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lambda_predict.ports import PredictionSink, PutEntry
from trip_core.batching import limited_batches
from trip_core.observability import logger

MAX_RECORDS_PER_CALL = 500
MAX_BYTES_PER_CALL = 5 * 1024 * 1024
MAX_BYTES_PER_RECORD = 1024 * 1024  # data + partition key: a larger record fails its whole call, every time


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4  # per entry, the first try included
    base_delay_seconds: float = 0.05
    max_delay_seconds: float = 1.0


def entry_size(entry: PutEntry) -> int:
    """Bytes of an entry as Kinesis counts them (raises UnicodeEncodeError for a key that is not UTF-8)."""
    return len(entry.data) + len(entry.partition_key.encode())


def entry_problem(entry: PutEntry) -> str | None:
    """Why Kinesis refuses this entry whatever the retries, or None."""
    size = entry_size(entry)
    if size > MAX_BYTES_PER_RECORD:
        return f"{size} bytes, over the {MAX_BYTES_PER_RECORD} of a Kinesis record"
    return None


def _chunks(entries: Sequence[PutEntry], indices: Sequence[int]) -> list[list[int]]:
    return limited_batches(
        indices, lambda i: entry_size(entries[i]), MAX_RECORDS_PER_CALL, MAX_BYTES_PER_CALL
    )


def deliver(
    sink: PredictionSink,
    entries: Sequence[PutEntry],
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[int, str]:
    """Put every entry; -> {index: last error} of the entries still undelivered after all attempts."""
    policy = policy or RetryPolicy()
    pending = list(range(len(entries)))
    errors: dict[int, str] = {}
    for attempt in range(policy.max_attempts):
        if attempt:
            delay = min(policy.max_delay_seconds, policy.base_delay_seconds * 2 ** (attempt - 1))
            sleep(delay * random.uniform(0.5, 1.0))
        failed: list[int] = []
        for chunk in _chunks(entries, pending):
            try:
                results = list(sink.put_records([entries[i] for i in chunk]))
            except Exception as exc:
                logger.warning("PutRecords call failed", extra={"attempt": attempt + 1, "error": repr(exc)})
                results = [type(exc).__name__] * len(chunk)
            if len(results) != len(chunk):
                results = ["MalformedResponse"] * len(chunk)
            for i, error in zip(chunk, results, strict=True):
                if error is not None:
                    failed.append(i)
                    errors[i] = error
                else:
                    errors.pop(i, None)
        if not failed:
            return {}
        pending = failed
    logger.warning(
        "entries undelivered after retries",
        extra={"undelivered": len(pending), "attempts": policy.max_attempts},
    )
    return {i: errors[i] for i in pending}
