"""The domain: a whole Kinesis batch (or one direct ride) -> validated, predicted in ONE vectorised
call, delivered, captured; bad records stored with their reasons.

The batch result says which sequence numbers must be retried (transient failures); the handler
turns that into Powertools' partial batch response.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np
import orjson

from lambda_predict.delivery import RetryPolicy, deliver
from lambda_predict.model_provider import LoadedModel, ModelProvider
from lambda_predict.ports import BlobStore, PredictionSink, PutEntry
from lambda_predict.prediction_ids import PredictionIds
from trip_core.capture import CaptureBatch, Rejection, encode_capture, encode_rejected, pickup_hour_groups
from trip_core.contracts import capture_key, rejected_key, utc_iso
from trip_core.features import compute_features
from trip_core.observability import logger
from trip_core.rides import (
    FieldError,
    ValidRide,
    new_york_to_utc,
    to_new_york_naive,
    validate_record_data,
    validate_ride,
)

DIRECT_SHARD_ID = "direct"  # capture key of a direct invoke: captures/.../direct_<request id>.json.gz
PREDICTION_DECIMALS = 2


@dataclass
class BatchOutcome:
    model_version: str
    predicted: int = 0  # delivered and captured
    rejected: int = 0  # stored in the rejected-rides store, handled
    retry: dict[str, str] = field(default_factory=dict)  # sequence number -> why it must be retried


@dataclass(frozen=True)
class DirectOutcome:
    response: dict[str, Any]  # the prediction record, or {"error", "reasons"}
    model_version: str | None = None
    captured: bool = False


class _Record(NamedTuple):
    shard_id: str
    sequence_number: str
    arrival: datetime  # UTC
    data: str
    local_arrival: datetime  # the same moment, naive New York local (the pickup fallback)


def _arrival(arrival_ts: Any) -> tuple[datetime, datetime]:
    try:
        arrival = datetime.fromtimestamp(float(arrival_ts), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        arrival = datetime.now(UTC)
    return arrival, to_new_york_naive(arrival)


def _parse_record(
    record: dict[str, Any], arrivals: dict[float, tuple[datetime, datetime]] | None = None
) -> _Record:
    """`arrivals` caches timestamp -> (UTC, New York) datetimes within a batch, whose records share
    arrival timestamps (the time-zone conversion is most of a record's parsing)."""
    kinesis = record["kinesis"]
    arrival_ts = kinesis.get("approximateArrivalTimestamp")
    if arrivals is not None and type(arrival_ts) is float:
        times = arrivals.get(arrival_ts)
        if times is None:
            times = arrivals[arrival_ts] = _arrival(arrival_ts)
    else:
        times = _arrival(arrival_ts)
    event_id = str(record.get("eventID", ""))
    shard_id = event_id.split(":", 1)[0] if ":" in event_id else "unknown-shard"
    return _Record(shard_id, str(kinesis["sequenceNumber"]), times[0], kinesis.get("data") or "", times[1])


def prediction_record(
    model: LoadedModel, ride_id: int | str, minutes: float, prediction_id: str
) -> dict[str, Any]:
    """The answer to one ride: returned by a direct invoke, put (encoded) on the predictions stream."""
    return {
        "model": model.name,
        "version": model.version,
        "prediction": {"ride_duration": minutes, "ride_id": ride_id, "prediction_id": prediction_id},
    }


def encode_prediction(record: dict[str, Any]) -> bytes:
    """The stream's JSON of a prediction record. orjson keeps a batch within its 1 ms budget; an integer
    ride id beyond 64 bits (valid up to MAX_RIDE_ID_LENGTH digits) is beyond orjson, so json encodes it."""
    try:
        return orjson.dumps(record)
    except orjson.JSONEncodeError:
        return json.dumps(record).encode()


_UNIX_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


def _epoch_seconds(moment: datetime) -> int:
    """Naive datetime -> seconds since 1970-01-01 of the same wall clock, microseconds dropped
    (what numpy's datetime64[s] conversion gives, without its slow object path)."""
    days = moment.toordinal() - _UNIX_EPOCH_ORDINAL
    return days * 86_400 + moment.hour * 3_600 + moment.minute * 60 + moment.second


def _pickups(rides: Sequence[ValidRide]) -> np.ndarray:
    """The rides' pickup times, New York local, as datetime64[s]."""
    seconds = np.fromiter(
        (_epoch_seconds(r.pickup_datetime) for r in rides), dtype=np.int64, count=len(rides)
    )
    return seconds.astype("datetime64[s]")


def _pickup_hours(rides: Sequence[ValidRide]) -> list[datetime]:
    """The UTC hour of each ride's pickup (aware): the partition of its capture, its id's prefix."""
    hours = new_york_to_utc(_pickups(rides)).astype("datetime64[h]").astype(datetime)
    return [hour.replace(tzinfo=UTC) for hour in hours.tolist()]


def _features(rides: Sequence[ValidRide]) -> np.ndarray:
    n = len(rides)
    return compute_features(
        np.fromiter((r.pu_location_id for r in rides), dtype=np.int64, count=n),
        np.fromiter((r.do_location_id for r in rides), dtype=np.int64, count=n),
        np.fromiter((r.trip_distance for r in rides), dtype=np.float64, count=n),
        _pickups(rides),
    )


def _predict(model: LoadedModel, rides: Sequence[ValidRide]) -> np.ndarray:
    minutes = np.asarray(model.predictor.predict(_features(rides)), dtype=np.float64)
    if minutes.shape != (len(rides),):
        raise RuntimeError(f"model returned shape {minutes.shape} for {len(rides)} rides")
    return np.round(minutes, PREDICTION_DECIMALS)


class PredictService:
    def __init__(
        self,
        models: ModelProvider,
        sink: PredictionSink,
        captures: BlobStore,
        rejected: BlobStore,
        ids: PredictionIds,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        now: Callable[[], datetime] | None = None,  # the clock of captures; None: the wall clock
    ) -> None:
        self.models = models
        self._sink = sink
        self._captures = captures
        self._rejected = rejected
        self._ids = ids
        self._policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------------------ Kinesis batch

    def process_batch(self, raw_records: Sequence[dict[str, Any]]) -> BatchOutcome:
        model = self.models.current()  # one version for the whole batch
        outcome = BatchOutcome(model.version)
        if not raw_records:
            return outcome
        processed_at = self._now()
        arrivals: dict[float, tuple[datetime, datetime]] = {}
        records = [_parse_record(r, arrivals) for r in raw_records]
        shard_id, first_seq = records[0].shard_id, records[0].sequence_number

        valid, rejections = self._validate(records)
        minutes = _predict(model, [ride for _, ride in valid]) if valid else np.empty(0)
        valid, minutes = self._drop_non_finite(valid, minutes, rejections)
        ids = self._record_ids(valid)

        if rejections:
            self._store_rejections(rejections, processed_at, shard_id, first_seq, outcome)

        delivered = self._deliver(model, valid, minutes, ids, outcome)
        if delivered:
            delivered_rides, delivered_minutes = [valid[i] for i in delivered], minutes[delivered]
            delivered_ids = [ids[i] for i in delivered]
            for hour, rows in pickup_hour_groups(_pickups([ride for _, ride in delivered_rides])):
                key = capture_key(hour, shard_id, first_seq)
                picked = [delivered_rides[i] for i in rows]
                picked_ids = [delivered_ids[i] for i in rows]
                self._capture(model, picked, delivered_minutes[rows], picked_ids, processed_at, key, outcome)
        return outcome

    def _record_ids(self, valid: list[tuple[_Record, ValidRide]]) -> list[str]:
        if not valid:
            return []
        hours = _pickup_hours([ride for _, ride in valid])
        return [
            self._ids.of_record(hour, rec.shard_id, rec.sequence_number)
            for (rec, _), hour in zip(valid, hours, strict=True)
        ]

    def _validate(
        self, records: Sequence[_Record]
    ) -> tuple[list[tuple[_Record, ValidRide]], list[Rejection]]:
        valid: list[tuple[_Record, ValidRide]] = []
        rejections: list[Rejection] = []
        append = valid.append
        for rec in records:
            result = validate_record_data(rec.data, rec.local_arrival)
            if isinstance(result, ValidRide):
                append((rec, result))
            else:
                rejections.append(self._rejection(rec, result))
        return valid, rejections

    def _drop_non_finite(
        self, valid: list[tuple[_Record, ValidRide]], minutes: np.ndarray, rejections: list[Rejection]
    ) -> tuple[list[tuple[_Record, ValidRide]], np.ndarray]:
        """Rides the model answered NaN or infinity for become rejections with that reason."""
        finite = np.isfinite(minutes)
        if finite.all():
            return valid, minutes
        reason = [FieldError("prediction", "model returned a non-finite value")]
        rejections.extend(
            self._rejection(rec, reason) for (rec, _), ok in zip(valid, finite, strict=True) if not ok
        )
        return [item for item, ok in zip(valid, finite, strict=True) if ok], minutes[finite]

    def _capture(
        self,
        model: LoadedModel,
        delivered: list[tuple[_Record, ValidRide]],
        minutes: np.ndarray,
        ids: list[str],
        processed_at: datetime,
        key: str,
        outcome: BatchOutcome,
    ) -> None:
        """One capture object for these delivered rides; if it cannot be written they are all retried."""
        batch = self._capture_batch(model, [ride for _, ride in delivered], minutes, ids, processed_at)
        try:
            self._captures.put(key, encode_capture(batch))
        except Exception as exc:
            logger.error(
                "capture write failed; records will be retried", extra={"key": key, "error": repr(exc)}
            )
            for rec, _ in delivered:
                outcome.retry[rec.sequence_number] = f"capture write failed: {exc!r}"
        else:
            outcome.predicted += len(delivered)

    @staticmethod
    def _rejection(rec: _Record, reasons: Sequence[FieldError]) -> Rejection:
        return Rejection(rec.shard_id, rec.sequence_number, utc_iso(rec.arrival), rec.data, tuple(reasons))

    def _store_rejections(
        self,
        rejections: list[Rejection],
        processed_at: datetime,
        shard_id: str,
        first_seq: str,
        outcome: BatchOutcome,
    ) -> None:
        key = rejected_key(processed_at, shard_id, first_seq)
        try:
            self._rejected.put(key, encode_rejected(rejections))
        except Exception as exc:
            logger.error(
                "rejected-rides write failed; records will be retried", extra={"key": key, "error": repr(exc)}
            )
            for r in rejections:
                outcome.retry[r.sequence_number] = f"rejected-rides write failed: {exc!r}"
            return
        outcome.rejected = len(rejections)
        for r in rejections:
            logger.warning(
                "ride rejected",
                extra={
                    "sequence_number": r.sequence_number,
                    "reasons": [{"field": e.field, "reason": e.reason} for e in r.reasons],
                },
            )

    def _deliver(
        self,
        model: LoadedModel,
        valid: list[tuple[_Record, ValidRide]],
        minutes: np.ndarray,
        ids: list[str],
        outcome: BatchOutcome,
    ) -> list[int]:
        """PutRecords every prediction; -> indices into `valid` that were delivered."""
        if not valid:
            return []
        entries = [
            PutEntry(str(ride.ride_id), encode_prediction(prediction_record(model, ride.ride_id, value, pid)))
            for (_, ride), value, pid in zip(valid, minutes.tolist(), ids, strict=True)
        ]
        kwargs = {"sleep": self._sleep} if self._sleep is not None else {}
        undelivered = deliver(self._sink, entries, self._policy, **kwargs)
        for i, error in undelivered.items():
            outcome.retry[valid[i][0].sequence_number] = f"PutRecords failed: {error}"
        return [i for i in range(len(valid)) if i not in undelivered]

    @staticmethod
    def _capture_batch(
        model: LoadedModel,
        rides: Sequence[ValidRide],
        minutes: np.ndarray,
        ids: list[str],
        processed_at: datetime,
    ) -> CaptureBatch:
        return CaptureBatch(
            model_name=model.name,
            model_version=model.version,
            captured_at=utc_iso(processed_at.replace(microsecond=0)),
            prediction_id=ids,
            ride_id=[r.ride_id for r in rides],
            pickup_datetime=[r.pickup_datetime.isoformat(timespec="seconds") for r in rides],
            pu_location_id=[r.pu_location_id for r in rides],
            do_location_id=[r.do_location_id for r in rides],
            trip_distance=[r.trip_distance for r in rides],
            prediction=minutes.tolist(),
        )

    # ------------------------------------------------------------------------------ direct invoke

    def predict_direct(self, payload: Any, request_id: str) -> DirectOutcome:
        """One ride -> the prediction record, or {"error", "reasons"}; never raises on bad input."""
        invoked_at = self._now()
        result = validate_ride(payload, invoked_at)
        if not isinstance(result, ValidRide):
            reasons = [{"field": e.field, "reason": e.reason} for e in result]
            return DirectOutcome({"error": "invalid ride", "reasons": reasons})
        logger.append_keys(ride_id=result.ride_id)
        model = self.models.current()
        minutes = _predict(model, [result])
        if not np.isfinite(minutes[0]):
            return DirectOutcome(
                {"error": "model returned a non-finite prediction", "reasons": []}, model.version
            )
        [pickup_hour] = _pickup_hours([result])
        pid = self._ids.of_direct(pickup_hour)
        batch = self._capture_batch(model, [result], minutes, [pid], invoked_at)
        key = capture_key(pickup_hour, DIRECT_SHARD_ID, request_id)
        captured = True
        try:
            self._captures.put(key, encode_capture(batch))
        except Exception as exc:  # the caller still gets the answer; the gap is logged and counted
            logger.error("capture write failed for a direct invoke", extra={"key": key, "error": repr(exc)})
            captured = False
        return DirectOutcome(
            prediction_record(model, result.ride_id, float(minutes[0]), pid), model.version, captured
        )
