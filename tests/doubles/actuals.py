"""The actuals stream as Lambda delivers it, and a bucket that can fail, for the actuals function's tests."""

from __future__ import annotations

from typing import Any

from tests.doubles.kinesis import lambda_record
from tests.doubles.predict import Unavailable
from tests.doubles.retrain import MemoryStore

SHARD = "shardId-000000000001"
ARRIVAL = 1678131602.0  # 2023-03-06T19:40:02Z


def actual_record(seq: int, line: Any, raw: bytes | None = None, arrival: float = ARRIVAL) -> dict[str, Any]:
    """One actuals-stream record: `line` as JSON (or `raw` bytes as they are)."""
    return lambda_record(SHARD, seq, line, raw, arrival)


class FlakyStore(MemoryStore):
    """A bucket whose listings under `unreadable` prefixes and whose writes (`down`) fail."""

    def __init__(self) -> None:
        super().__init__()
        self.unreadable: tuple[str, ...] = ()
        self.down = False

    def list_keys(self, prefix: str) -> list[str]:
        if self.unreadable and prefix.startswith(self.unreadable):
            raise Unavailable("bucket unavailable")
        return super().list_keys(prefix)

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        if self.down:
            raise Unavailable("bucket unavailable")
        super().put(key, body, content_type)
