"""The replay of a failures queue: each on-failure record -> its range read back from the stream -> the
function invoked with exactly those records -> the message deleted, or kept and reported.

Per message the report gives the records read, rejected (found in the function's rejected-records
objects of this batch: stored with a reason), still failing (the function's `batchItemFailures`) and
predicted (the rest: handled and not rejected). A range the stream no longer holds whole is LOST: it is
not re-driven in part (a part would start at another sequence number and name its capture objects
differently from the original batch's) and its message is kept, never deleted.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from infra.replay_failures.failure import FailedRange, MalformedFailure, failed_range
from infra.replay_failures.ports import (
    FailureQueue,
    RangeUnreadable,
    RecordsPage,
    RejectedStore,
    ShardStream,
    StreamFunction,
    StreamRecord,
)
from trip_core.contracts import REJECTED_ACTUALS_PREFIX, REJECTED_PREFIX, batch_name, floor_hour, hour_prefix

# GetRecords calls to read one range: a batch of up to 10,000 records is a few pages; empty pages come
# while the iterator is behind the tip
MAX_PAGES = 200


@dataclass(frozen=True)
class Target:
    """A stream function with an on-failure queue, and the stack outputs that name its parts."""

    name: str
    queue_output: str
    function_output: str
    stream_arn_output: str
    handled: str  # what a record that was handled and not rejected is called in the report
    rejected_root: str  # where the function stores what it rejects, in hourly partitions
    # the release alias the stream invokes, where there is one (AWS; docs/architecture.md "Code releases")
    alias_output: str | None = None

    def function(self, outputs: dict[str, str]) -> str:
        """What the stream invokes: the release alias, else the function (the LocalStack stack)."""
        return outputs.get(self.alias_output or "") or outputs[self.function_output]


TARGETS = {
    "predict": Target(
        "predict",
        "PredictFailuresQueueUrl",
        "PredictFunctionName",
        "RidesStreamArn",
        "predicted",
        REJECTED_PREFIX,
        alias_output="PredictFunctionAliasArn",
    ),
    "actuals": Target(
        "actuals",
        "ActualsFailuresQueueUrl",
        "ActualsFunctionName",
        "ActualsStreamArn",
        "accepted",
        REJECTED_ACTUALS_PREFIX,
    ),
}


@dataclass(frozen=True)
class Ports:
    queue: FailureQueue
    stream: ShardStream
    function: StreamFunction
    rejected: RejectedStore
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


class Outcome(StrEnum):
    REPLAYED = "re-driven, message deleted"
    STILL_FAILING = "still failing, message kept"
    LOST = "lost, message kept"
    FAILED = "re-drive failed, message kept"
    UNREADABLE = "not a failed range of this stream, message kept"


@dataclass(frozen=True)
class MessageReport:
    outcome: Outcome
    failed: FailedRange | None = None
    read: int = 0
    rejected: int = 0
    still_failing: tuple[str, ...] = ()
    detail: str = ""

    @property
    def predicted(self) -> int:
        return self.read - self.rejected - len(self.still_failing) if self.read else 0

    def line(self, handled: str = "predicted") -> str:
        where = self.failed.describe() if self.failed else "message"
        counts = (
            f"read {self.read}, {handled} {self.predicted}, rejected {self.rejected}, "
            f"still failing {len(self.still_failing)}"
        )
        failing = f" (e.g. {', '.join(self.still_failing[:3])})" if self.still_failing else ""
        detail = f": {self.detail}" if self.detail else ""
        text = f"{where}: {counts}{failing} -> {self.outcome.value}{detail}"
        return f"LOST: {text}" if self.outcome is Outcome.LOST else text


def replay_queue(ports: Ports, target: Target, stream_arn: str) -> list[MessageReport]:
    """Every message of the queue once; kept ones are made visible again at the end."""
    reports: list[MessageReport] = []
    kept: list[str] = []
    seen: set[str] = set()
    while messages := ports.queue.receive():
        fresh = [m for m in messages if m.message_id not in seen]
        kept.extend(m.receipt for m in messages if m.message_id in seen)  # back after its visibility timeout
        if not fresh:
            break
        for message in fresh:
            seen.add(message.message_id)
            report = replay_message(message.body, ports, target, stream_arn)
            if report.outcome is Outcome.REPLAYED:
                ports.queue.delete(message.receipt)
            else:
                kept.append(message.receipt)
            reports.append(report)
    for receipt in kept:
        ports.queue.release(receipt)
    return reports


def replay_message(body: str, ports: Ports, target: Target, stream_arn: str) -> MessageReport:
    try:
        failed = failed_range(body)
    except MalformedFailure as exc:
        return MessageReport(Outcome.UNREADABLE, detail=str(exc))
    if failed.stream_arn != stream_arn:
        return MessageReport(
            Outcome.UNREADABLE, failed, detail=f"names {failed.stream_arn}, not {stream_arn}"
        )
    try:
        records = read_range(ports.stream, failed)
    except RangeUnreadable as exc:
        return MessageReport(Outcome.LOST, failed, detail=f"the stream no longer holds it ({exc})")
    except Exception as exc:  # throttled for good, no permission, ...: reported, the message stays
        return MessageReport(Outcome.FAILED, failed, detail=f"reading the range: {exc!r}")
    gap = missing(failed, records)
    if gap:
        return MessageReport(Outcome.LOST, failed, len(records), detail=gap)
    return _redrive(failed, records, ports, target)


def _redrive(
    failed: FailedRange, records: Sequence[StreamRecord], ports: Ports, target: Target
) -> MessageReport:
    started = ports.clock()
    try:
        still_failing = failing_sequence_numbers(ports.function.invoke(lambda_event(failed, records)))
    except Exception as exc:
        return MessageReport(Outcome.FAILED, failed, len(records), detail=f"invoking the function: {exc!r}")
    # the function names a rejected-records object by the processing hour or by a record's arrival hour
    hours = {floor_hour(started), floor_hour(ports.clock())} | {floor_hour(_utc(r.arrival)) for r in records}
    rejected = {
        sequence
        for hour in hours
        for shard, sequence in ports.rejected.rejected(
            hour_prefix(target.rejected_root, hour) + batch_name(failed.shard_id, "")
        )
        if shard == failed.shard_id and failed.contains(sequence) and sequence not in still_failing
    }
    outcome = Outcome.STILL_FAILING if still_failing else Outcome.REPLAYED
    return MessageReport(outcome, failed, len(records), len(rejected), tuple(still_failing))


def read_range(stream: ShardStream, failed: FailedRange) -> list[StreamRecord]:
    """The records of the range, from GetShardIterator AT_SEQUENCE_NUMBER start until a record past end
    (or the tip of the shard, or its end when closed)."""
    iterator: str | None = stream.iterator_at(failed.stream_arn, failed.shard_id, failed.start)
    records: list[StreamRecord] = []
    for _ in range(MAX_PAGES):
        if iterator is None:
            return records
        page: RecordsPage = stream.page(failed.stream_arn, iterator)
        for record in page.records:
            if int(record.sequence_number) > int(failed.end):
                return records
            if failed.contains(record.sequence_number):
                records.append(record)
        if not page.records and page.millis_behind_latest == 0:
            return records
        iterator = page.next_iterator
    raise RangeUnreadable(f"not read to its end in {MAX_PAGES} GetRecords calls")


def missing(failed: FailedRange, records: Sequence[StreamRecord]) -> str:
    """Why `records` are not the whole range ("" when they are). Kinesis trims a shard from its oldest
    record, so a range past the retention period reads from a later record, or not at all."""
    if not records:
        return "none of its records is in the stream any more (trimmed: past the stream's retention?)"
    first, last = records[0].sequence_number, records[-1].sequence_number
    if int(first) != int(failed.start):
        return (
            f"its first records are gone: the shard now begins at {first} "
            f"({len(records)} of {failed.batch_size} readable; trimmed: past the stream's retention?)"
        )
    if len(records) != failed.batch_size or int(last) != int(failed.end):
        return (
            f"read {len(records)} records up to {last}; the range has {failed.batch_size} up to {failed.end}"
        )
    return ""


def lambda_event(failed: FailedRange, records: Sequence[StreamRecord]) -> dict[str, Any]:
    """The event the event source mapping gave the function for this batch (AWS Lambda developer guide,
    "Using Lambda with Kinesis", example event); no invokeIdentityArn, which no function reads."""
    region = failed.stream_arn.split(":")[3]
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": record.partition_key,
                    "sequenceNumber": record.sequence_number,
                    "data": base64.b64encode(record.data).decode(),
                    "approximateArrivalTimestamp": record.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{failed.shard_id}:{record.sequence_number}",
                "eventName": "aws:kinesis:record",
                "awsRegion": region,
                "eventSourceARN": failed.stream_arn,
            }
            for record in records
        ]
    }


def failing_sequence_numbers(answer: Any) -> list[str]:
    """The partial batch response's `batchItemFailures` (empty, absent or a null answer: every record was
    handled, as Lambda reads it)."""
    if answer is None:
        return []
    items = answer.get("batchItemFailures") if isinstance(answer, dict) else "not an object"
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("itemIdentifier") for i in items):
        raise ValueError(f"not a partial batch response: {str(answer)[:200]}")
    return [str(item["itemIdentifier"]) for item in items]


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
