"""The invocation record Lambda writes to a Kinesis event source mapping's OnFailure destination (the
SQS message body), as the Lambda developer guide documents it ("Retain discarded batch records for a
Kinesis Data Streams event source") and LocalStack writes it:

    {"requestContext": {"requestId", "functionArn", "condition": "RetryAttemptsExhausted",
                        "approximateInvokeCount"},
     "responseContext": {"statusCode", "executedVersion", "functionError"},
     "version": "1.0", "timestamp": "2019-11-14T00:38:06.021Z",
     "KinesisBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber",
                          "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
                          "batchSize", "streamArn"}}

Only KinesisBatchInfo is needed; its arrival times are kept as written, for the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from trip_core import jsontext

# Kinesis' pattern of a sequence number (API reference, Record.SequenceNumber)
_SEQUENCE_NUMBER = re.compile(r"0|[1-9][0-9]{0,128}")


class MalformedFailure(ValueError):
    """The message is not a Kinesis on-failure record this tool can act on; names the field and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


@dataclass(frozen=True)
class FailedRange:
    stream_arn: str
    shard_id: str
    start: str  # first sequence number of the failed batch
    end: str  # its last
    batch_size: int  # records from start to end
    first_arrival: str = ""
    last_arrival: str = ""
    condition: str = ""  # why Lambda gave up: RetryAttemptsExhausted, RecordAgeExceeded, ...

    def contains(self, sequence_number: str) -> bool:
        return int(self.start) <= int(sequence_number) <= int(self.end)

    def describe(self) -> str:
        arrived = f", arrived {self.first_arrival} .. {self.last_arrival}" if self.first_arrival else ""
        why = f", {self.condition}" if self.condition else ""
        return (
            f"{self.shard_id} sequence {self.start} .. {self.end} ({self.batch_size} records{arrived}{why})"
        )


def failed_range(body: str) -> FailedRange:
    try:
        record = jsontext.loads(body)
    except ValueError:
        raise MalformedFailure("body", "is not JSON") from None
    info = record.get("KinesisBatchInfo") if isinstance(record, dict) else None
    if not isinstance(info, dict):
        raise MalformedFailure("KinesisBatchInfo", "missing: not the on-failure record of a Kinesis source")
    failed = FailedRange(
        stream_arn=_text(info, "streamArn"),
        shard_id=_text(info, "shardId"),
        start=_sequence_number(info, "startSequenceNumber"),
        end=_sequence_number(info, "endSequenceNumber"),
        batch_size=_batch_size(info),
        first_arrival=str(info.get("approximateArrivalOfFirstRecord") or ""),
        last_arrival=str(info.get("approximateArrivalOfLastRecord") or ""),
        condition=_condition(record.get("requestContext")),
    )
    if int(failed.start) > int(failed.end):
        raise MalformedFailure("KinesisBatchInfo.endSequenceNumber", "is before startSequenceNumber")
    return failed


def _condition(context: Any) -> str:
    return str(context.get("condition") or "") if isinstance(context, dict) else ""


def _text(info: dict[str, Any], name: str) -> str:
    value = info.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedFailure(f"KinesisBatchInfo.{name}", "must be a non-empty string")
    return value


def _sequence_number(info: dict[str, Any], name: str) -> str:
    value = _text(info, name)
    if not _SEQUENCE_NUMBER.fullmatch(value):
        raise MalformedFailure(f"KinesisBatchInfo.{name}", f"is not a sequence number: {value[:40]!r}")
    return value


def _batch_size(info: dict[str, Any]) -> int:
    value = info.get("batchSize")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise MalformedFailure("KinesisBatchInfo.batchSize", f"must be a positive integer, got {value!r}")
    return value
