"""What the replay needs from AWS (adapters: aws.py; in tests: moto, and the function in process)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


class RangeUnreadable(RuntimeError):
    """The stream cannot give the range back (its shard or records are gone); the message says why."""


@dataclass(frozen=True)
class StreamRecord:
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # ApproximateArrivalTimestamp, seconds since the epoch (ms precision, as Lambda gives it)


@dataclass(frozen=True)
class RecordsPage:
    records: Sequence[StreamRecord]
    next_iterator: str | None  # None: the shard is closed and read to its end
    millis_behind_latest: int


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt: str
    body: str


class FailureQueue(Protocol):
    def receive(self) -> Sequence[QueueMessage]:
        """Some visible messages, hidden from other readers while this run works on them; none: empty."""

    def delete(self, receipt: str) -> None: ...

    def release(self, receipt: str) -> None:
        """Visible again now (a kept message keeps the queue's depth alarm in ALARM)."""


class ShardStream(Protocol):
    def iterator_at(self, stream_arn: str, shard_id: str, sequence_number: str) -> str:
        """A shard iterator AT_SEQUENCE_NUMBER; RangeUnreadable if the stream or shard is gone."""

    def page(self, stream_arn: str, iterator: str) -> RecordsPage:
        """One GetRecords; RangeUnreadable if the records are no longer there."""


class StreamFunction(Protocol):
    def invoke(self, event: dict[str, Any]) -> Any:
        """The function's answer to a Kinesis-shaped event (raises if the invocation failed)."""


class RejectedStore(Protocol):
    def rejected(self, prefix: str) -> Sequence[tuple[str, str]]:
        """(shard id, sequence number) of each record the rejected-records objects under `prefix` hold."""
