"""The domain: a Kinesis batch of the actuals stream -> every actual checked, the accepted ones written to
the capture bucket's actuals/ (the format trip_core.event_window reads), the others stored with their
reason in the rejected bucket (docs/architecture.md, "Actuals").

An actual is accepted when it is well formed (`{"prediction_id": ..., "duration_minutes": ...}`), its
duration is finite and plausible (0 < d <= MAX_RIDE_MINUTES: trip_core.capture.judge_actual, the
readers' rule too) and its prediction id is known: found in the capture of the pickup hour the id names.
Ids are issued by the service, so a client can label only the predictions it was given.

Objects are named by the batch's shard and first sequence number and put in the hour of its first
record's arrival, so a retried batch overwrites its own objects. A capture hour that cannot be read
leaves its record and every later one to be retried; a write that fails retries the whole batch.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from lambda_actuals.ports import BlobStore, CaptureBucket
from trip_core.capture import (
    ACTUAL_MALFORMED,
    ACTUAL_UNKNOWN_PREDICTION,
    Actual,
    Rejection,
    encode_actuals,
    encode_rejected,
    judge_actual_line,
)
from trip_core.contracts import (
    actuals_key,
    batch_name,
    floor_hour,
    prediction_id_hour,
    rejected_actuals_key,
    utc_iso,
)
from trip_core.event_window import read_captures
from trip_core.observability import logger
from trip_core.rides import FieldError

# The field a rejection names: the line as a whole, or the prediction id it names.
_REASON_FIELDS = {ACTUAL_MALFORMED: "record", ACTUAL_UNKNOWN_PREDICTION: "prediction_id"}


@dataclass
class IngestOutcome:
    accepted: int = 0
    rejected: int = 0
    retry: list[str] = field(default_factory=list)  # sequence numbers Lambda must deliver again


class _Record(NamedTuple):
    shard_id: str
    sequence_number: str
    arrival: datetime  # UTC
    data: str  # base64, as Kinesis delivers it


def _parse_record(record: dict[str, Any], now: datetime) -> _Record:
    kinesis = record["kinesis"]
    try:
        arrival = datetime.fromtimestamp(float(kinesis["approximateArrivalTimestamp"]), UTC)
    except (KeyError, TypeError, ValueError, OverflowError, OSError):
        arrival = now
    event_id = str(record.get("eventID", ""))
    shard_id = event_id.split(":", 1)[0] if ":" in event_id else "unknown-shard"
    return _Record(shard_id, str(kinesis["sequenceNumber"]), arrival, kinesis.get("data") or "")


def _judged(record: _Record) -> Actual | str:
    try:
        line = base64.b64decode(record.data, validate=True)
    except (binascii.Error, ValueError):
        return ACTUAL_MALFORMED
    return judge_actual_line(line)


class KnownPredictions:
    """The prediction ids captured in each pickup hour, each hour read once per batch."""

    def __init__(self, captures: CaptureBucket) -> None:
        self._captures = captures
        self._hours: dict[datetime, set[str]] = {}

    def known(self, prediction_id: str) -> bool:
        """Raises when the capture hour cannot be read (the record is retried)."""
        hour = prediction_id_hour(prediction_id)
        if hour is None:
            return False
        if hour not in self._hours:
            problems: list[str] = []  # an unreadable capture object: its ids are unknown, logged
            batches = read_captures(self._captures, hour, hour + timedelta(hours=1), problems)
            for problem in problems:
                logger.warning("capture object skipped", extra={"problem": problem})
            self._hours[hour] = {pid for batch in batches for pid in batch.prediction_id}
        return prediction_id in self._hours[hour]


class ActualsService:
    def __init__(
        self,
        capture: CaptureBucket,
        rejected: BlobStore,
        now: Callable[[], datetime] | None = None,  # the clock of a record without arrival time
    ) -> None:
        self._capture = capture
        self._rejected = rejected
        self._now = now or (lambda: datetime.now(UTC))

    def process_batch(self, raw_records: Sequence[dict[str, Any]]) -> IngestOutcome:
        outcome = IngestOutcome()
        if not raw_records:
            return outcome
        now = self._now()
        records = [_parse_record(r, now) for r in raw_records]
        accepted, rejections, unchecked = self._check(records)
        outcome.retry = [r.sequence_number for r in unchecked]
        first = records[0]
        try:
            self._write(first, accepted, rejections)
        except Exception as exc:
            logger.error("actuals write failed; the batch will be retried", extra={"error": repr(exc)})
            outcome.retry = [r.sequence_number for r in records]
            return outcome
        outcome.accepted, outcome.rejected = len(accepted), len(rejections)
        return outcome

    def _check(self, records: list[_Record]) -> tuple[list[Actual], list[Rejection], list[_Record]]:
        """-> (accepted actuals, rejections, the records left unchecked: the first whose capture hour
        could not be read and every one after it)."""
        known = KnownPredictions(self._capture)
        accepted: list[Actual] = []
        rejections: list[Rejection] = []
        for index, record in enumerate(records):
            judged = _judged(record)
            if isinstance(judged, Actual):
                try:
                    judged = judged if known.known(judged.prediction_id) else ACTUAL_UNKNOWN_PREDICTION
                except Exception as exc:
                    logger.error(
                        "capture hour unreadable; actuals will be retried", extra={"error": repr(exc)}
                    )
                    return accepted, rejections, records[index:]
            if isinstance(judged, Actual):
                accepted.append(judged)
            else:
                rejections.append(_rejection(record, judged))
        return accepted, rejections, []

    def _write(self, first: _Record, accepted: list[Actual], rejections: list[Rejection]) -> None:
        reported = floor_hour(first.arrival)
        if accepted:
            key = actuals_key(reported, batch_name(first.shard_id, first.sequence_number))
            self._capture.put(key, encode_actuals(accepted))
        if rejections:
            key = rejected_actuals_key(reported, first.shard_id, first.sequence_number)
            self._rejected.put(key, encode_rejected(rejections))


def _rejection(record: _Record, reason: str) -> Rejection:
    problem = FieldError(_REASON_FIELDS.get(reason, "duration_minutes"), reason)
    return Rejection(
        record.shard_id, record.sequence_number, utc_iso(record.arrival), record.data, (problem,)
    )
