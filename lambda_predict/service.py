"""The domain: a whole Kinesis batch (or one direct ride) -> validated, predicted in ONE vectorised
call, delivered, captured; bad records stored with their reasons.

Every failure of one record becomes that record's outcome, never its batch's: a record that can never
succeed (undecodable, invalid, a ride the model has no finite answer for, a prediction the stream or the
capture cannot hold) is stored as rejected with the field and the reason, before anything is delivered;
one whose output or storage failed transiently is retried alone. The vectorised steps fall back to ride
by ride when they raise, so the ride they fail on is named. The batch result says which sequence numbers
must be retried; the handler turns that into Powertools' partial batch response.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import orjson

from lambda_predict.delivery import RetryPolicy, deliver, entry_problem
from lambda_predict.model_provider import LoadedModel, ModelProvider, Serving
from lambda_predict.ports import BlobStore, PredictionSink, PutEntry
from lambda_predict.prediction_ids import PredictionIds
from trip_core.capture import CaptureBatch, Rejection, encode_capture, encode_rejected
from trip_core.contracts import (
    DEFAULT_MAX_PICKUP_AGE,
    MAX_ARRIVAL_SKEW,
    capture_key,
    parse_utc,
    rejected_key,
    utc_iso,
)
from trip_core.observability import logger
from trip_core.rides import (
    FieldError,
    ValidRide,
    excerpt,
    new_york_to_utc,
    pickup_column,
    ride_features,
    to_new_york_naive,
    validate_record_data,
    validate_ride,
)
from trip_core.validity import answered_minutes, implausible_minutes_reason, plausible_minutes

CANARY_ARM = "canary"  # the suffix of the canary's capture objects (trip_core.contracts.capture_key)
DIRECT_SHARD_ID = "direct"  # capture key of a direct invoke: captures/.../direct_<request id>.json.gz
# What the model is asked when it answers none of a batch's rides: if it has no finite answer for this
# well-formed ride either, the model is at fault and the rides are retried, not rejected.
PROBE_RIDE = ValidRide("probe", 132, 236, 3.0, datetime(2023, 3, 6, 14, 30), True)


@dataclass
class BatchOutcome:
    model_version: str
    predicted: int = 0  # delivered and captured
    rejected: int = 0  # stored in the rejected-rides store, handled
    answered_by: dict[str, int] = field(default_factory=dict)  # model version -> rides it answered
    retry: dict[str, str] = field(default_factory=dict)  # sequence number -> why it must be retried


@dataclass(frozen=True)
class DirectOutcome:
    response: dict[str, Any]  # the prediction record, or {"error", "reasons"}
    model_version: str | None = None
    captured: bool = False


class ModelFailure(RuntimeError):
    """The model answers none of the rides, nor the probe ride: the model is at fault, not the rides."""


class _Record(NamedTuple):
    shard_id: str
    sequence_number: str
    arrival: datetime  # UTC
    data: str
    local_arrival: datetime  # the same moment, naive New York local (the pickup fallback)


Paired = tuple[str, float | None]  # another model's version and its answer to the same ride (None: none)


class _Answered(NamedTuple):
    """A valid ride with its answer, ready to deliver and capture."""

    record: _Record
    ride: ValidRide
    minutes: float
    hour: datetime  # the UTC pickup hour (aware): the capture partition, the prediction id's prefix
    prediction_id: str
    entry: PutEntry  # the encoded prediction record, within Kinesis' limits
    model: LoadedModel  # the model that answered: the live one, or the canary for its share
    paired: Paired | None = None


class _Capture(NamedTuple):
    """One capture object of a batch: its key, its rows (indices into the answered rides, one answering
    model and one paired version), its body."""

    key: str
    rows: list[int]
    body: bytes


def _arrival(arrival_ts: Any, now: datetime) -> tuple[datetime, datetime]:
    """(UTC, New York local) of a record's arrival timestamp; `now` when it is not a usable time, or one
    after now (contracts.MAX_ARRIVAL_SKEW): no stream delivered that record yet."""
    try:
        arrival = datetime.fromtimestamp(float(arrival_ts), UTC)
        if arrival > now + MAX_ARRIVAL_SKEW:
            arrival = now
        return arrival, to_new_york_naive(arrival)  # overflows at year 1
    except (TypeError, ValueError, OverflowError, OSError):
        return now, to_new_york_naive(now)


def _parse_record(
    record: dict[str, Any], now: datetime, arrivals: dict[float, tuple[datetime, datetime]] | None = None
) -> _Record:
    """`arrivals` caches timestamp -> (UTC, New York) datetimes within a batch, whose records share
    arrival timestamps (the time-zone conversion is most of a record's parsing)."""
    kinesis = record["kinesis"]
    arrival_ts = kinesis.get("approximateArrivalTimestamp")
    if arrivals is not None and type(arrival_ts) is float:
        times = arrivals.get(arrival_ts)
        if times is None:
            times = arrivals[arrival_ts] = _arrival(arrival_ts, now)
    else:
        times = _arrival(arrival_ts, now)
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


def _entry(model: LoadedModel, ride: ValidRide, minutes: float, pid: str) -> PutEntry | FieldError:
    """The ride's stream record, or why the stream cannot take it (whatever the retries)."""
    record = prediction_record(model, ride.ride_id, minutes, pid)
    try:
        entry = PutEntry(str(ride.ride_id), encode_prediction(record))
        problem = entry_problem(entry)
    except Exception as exc:  # e.g. a value neither orjson nor json encodes, a key that is not UTF-8
        return FieldError("prediction", f"cannot be encoded for the predictions stream: {excerpt(exc)}")
    if problem is not None:
        return FieldError("prediction", f"too large for the predictions stream: {problem}")
    return entry


def _pickup_hours(rides: Sequence[ValidRide]) -> list[datetime]:
    """The UTC hour of each ride's pickup (aware): the partition of its capture, its id's prefix."""
    hours = new_york_to_utc(pickup_column(rides)).astype("datetime64[h]").astype(datetime)
    return [hour.replace(tzinfo=UTC) for hour in hours.tolist()]


def _model_minutes(model: LoadedModel, features: np.ndarray) -> np.ndarray:
    return answered_minutes(model.predictor, features)


def _plausible(minutes: float) -> bool:
    return bool(plausible_minutes(minutes))  # False for NaN too


def _implausible(minutes: float) -> FieldError:
    return FieldError("prediction", implausible_minutes_reason(minutes))


def _answer_alone(model: LoadedModel, ride: ValidRide) -> tuple[float, datetime] | FieldError:
    """One ride's minutes and UTC pickup hour, or the step that fails on it and why."""
    try:
        [hour] = _pickup_hours([ride])
    except Exception as exc:  # a pickup at the edge of datetime's range has no hour in UTC
        return FieldError("pickup_datetime", f"has no UTC hour: {excerpt(exc)}")
    try:
        features = ride_features([ride])
    except Exception as exc:
        return FieldError("features", f"cannot be computed: {excerpt(exc)}")
    try:
        [minutes] = _model_minutes(model, features)
    except Exception as exc:
        return FieldError("prediction", f"the model failed on this ride: {excerpt(exc)}")
    return (float(minutes), hour) if _plausible(minutes) else _implausible(float(minutes))


Answer = tuple[float, datetime] | FieldError  # a ride's minutes and UTC pickup hour, or why it has none


def _answers(model: LoadedModel, rides: Sequence[ValidRide]) -> list[Answer]:
    """Every ride's answer in one vectorised pass, or ride by ride when that pass raises. Raises
    ModelFailure when the model answers none of them and not the probe ride either."""
    try:
        minutes, hours = _model_minutes(model, ride_features(rides)), _pickup_hours(rides)
    except Exception as exc:
        logger.warning("vectorised prediction failed; predicting ride by ride", extra={"error": repr(exc)})
        answers = [_answer_alone(model, ride) for ride in rides]
    else:
        answers = [
            (m, h) if _plausible(m) else _implausible(m) for m, h in zip(minutes.tolist(), hours, strict=True)
        ]
    failed = [a for a in answers if isinstance(a, FieldError)]
    if rides and len(failed) == len(rides) and all(a.field == "prediction" for a in failed):
        probe = _answer_alone(model, PROBE_RIDE)
        if isinstance(probe, FieldError):
            raise ModelFailure(f"model {model.name} version {model.version}: {probe.reason}")
    return answers


def _challenger_minutes(model: LoadedModel, rides: Sequence[ValidRide]) -> list[float | None]:
    """A challenger's answers to rides the live model answered; None where it has no finite one. Never
    raises: a failing challenger costs its comparison, never a ride."""
    if not rides:
        return []
    try:
        minutes = _model_minutes(model, ride_features(rides)).tolist()
    except Exception as exc:
        logger.warning(
            "challenger failed on the batch", extra={"model_version": model.version, "error": repr(exc)}
        )
        answers = [_answer_alone(model, ride) for ride in rides]
        minutes = [math.nan if isinstance(a, FieldError) else a[0] for a in answers]
    return [m if _plausible(m) else None for m in minutes]


Arm = tuple[LoadedModel, float, Paired | None]  # the model that answers a ride, its answer, the paired one


def plan_answers(
    serving: Serving, rides: Sequence[ValidRide], prediction_ids: Sequence[str], minutes: Sequence[float]
) -> list[Arm]:
    """The traffic plan applied to the live model's answers: the canary answers its share where it has an
    answer (the live one paired with it), the shadow scores the other rides beside the live model."""
    live = serving.live
    arms: list[Arm] = [(live, m, None) for m in minutes]
    if serving.canary is not None:
        rows = [i for i, pid in enumerate(prediction_ids) if serving.in_canary(pid)]
        for i, m in zip(rows, _challenger_minutes(serving.canary, [rides[i] for i in rows]), strict=True):
            if m is not None:
                arms[i] = (serving.canary, m, (live.version, minutes[i]))
    if serving.shadow is not None:
        rows = [i for i, arm in enumerate(arms) if arm[0] is live]
        shadow = serving.shadow.version
        for i, m in zip(rows, _challenger_minutes(serving.shadow, [rides[i] for i in rows]), strict=True):
            arms[i] = (live, minutes[i], (shadow, m))
    return arms


def _challenge(serving: Serving, answered: list[_Answered]) -> list[_Answered]:
    """plan_answers on a batch; a canary answer the stream cannot take leaves the live one standing."""
    if not answered or (serving.canary is None and serving.shadow is None):
        return answered
    arms = plan_answers(
        serving,
        [a.ride for a in answered],
        [a.prediction_id for a in answered],
        [a.minutes for a in answered],
    )
    out: list[_Answered] = []
    for row, (model, minutes, paired) in zip(answered, arms, strict=True):
        if model is not row.model:
            entry = _entry(model, row.ride, minutes, row.prediction_id)
            if not isinstance(entry, PutEntry):
                out.append(row)
                continue
            row = row._replace(minutes=minutes, entry=entry, model=model)
        out.append(row._replace(paired=paired))
    return out


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
        max_pickup_age: timedelta = DEFAULT_MAX_PICKUP_AGE,
    ) -> None:
        self.models = models
        self._sink = sink
        self._captures = captures
        self._rejected = rejected
        self._ids = ids
        self._policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._now = now or (lambda: datetime.now(UTC))
        self._max_pickup_age = max_pickup_age

    # ------------------------------------------------------------------------------ Kinesis batch

    def process_batch(self, raw_records: Sequence[dict[str, Any]]) -> BatchOutcome:
        serving = self.models.serving()  # one set of models for the whole batch
        model = serving.live
        outcome = BatchOutcome(model.version)
        if not raw_records:
            return outcome
        processed_at = self._now()
        arrivals: dict[float, tuple[datetime, datetime]] = {}
        records = [_parse_record(r, processed_at, arrivals) for r in raw_records]
        shard_id, first_seq = records[0].shard_id, records[0].sequence_number

        rejections: list[Rejection] = []
        valid = self._validate(records, rejections)
        answered = _challenge(serving, self._answer(model, valid, rejections, outcome))
        captures = self._encode_captures(model, answered, processed_at, shard_id, first_seq, rejections)
        if rejections:  # every rejection is known, and stored, before anything is delivered
            self._store_rejections(rejections, outcome)
        deliverable = sorted(i for capture in captures for i in capture.rows)
        delivered = self._deliver(answered, deliverable, outcome)
        for capture in captures:
            self._capture(answered, capture, delivered, processed_at, outcome)
        return outcome

    def _validate(
        self, records: Sequence[_Record], rejections: list[Rejection]
    ) -> list[tuple[_Record, ValidRide]]:
        valid: list[tuple[_Record, ValidRide]] = []
        append = valid.append
        max_age = self._max_pickup_age
        for rec in records:
            result = validate_record_data(rec.data, rec.local_arrival, max_age)
            if isinstance(result, ValidRide):
                append((rec, result))
            else:
                rejections.append(self._rejection(rec, result))
        return valid

    def _answer(
        self,
        model: LoadedModel,
        valid: list[tuple[_Record, ValidRide]],
        rejections: list[Rejection],
        outcome: BatchOutcome,
    ) -> list[_Answered]:
        """The valid rides with their answers, ids and stream records; a ride without one is rejected
        with the reason; when the model fails on all of them, they are retried."""
        if not valid:
            return []
        try:
            answers = _answers(model, [ride for _, ride in valid])
        except ModelFailure as exc:
            logger.error(
                "the model answers no ride; the batch's rides will be retried", extra={"error": str(exc)}
            )
            for rec, _ in valid:
                outcome.retry[rec.sequence_number] = f"model failed: {exc}"
            return []
        answered: list[_Answered] = []
        for (rec, ride), answer in zip(valid, answers, strict=True):
            if isinstance(answer, FieldError):
                rejections.append(self._rejection(rec, [answer]))
                continue
            minutes, hour = answer
            pid = self._ids.of_record(hour, rec.shard_id, rec.sequence_number)
            entry = _entry(model, ride, minutes, pid)
            if isinstance(entry, FieldError):
                rejections.append(self._rejection(rec, [entry]))
            else:
                answered.append(_Answered(rec, ride, minutes, hour, pid, entry, model))
        return answered

    def _encode_captures(
        self,
        live: LoadedModel,
        answered: list[_Answered],
        processed_at: datetime,
        shard_id: str,
        first_seq: str,
        rejections: list[Rejection],
    ) -> list[_Capture]:
        """One capture object per UTC pickup hour and arm, encoded before delivery: a ride the capture
        cannot hold is rejected, never delivered uncaptured."""
        groups: dict[tuple[datetime, str, str], list[int]] = {}
        for i, row in enumerate(answered):
            arm = "" if row.model is live else CANARY_ARM
            groups.setdefault((row.hour, arm, row.paired[0] if row.paired else ""), []).append(i)
        captures: list[_Capture] = []
        for hour, arm, paired in sorted(groups):
            rows = groups[(hour, arm, paired)]
            try:
                body = encode_capture(self._capture_batch(answered, rows, processed_at))
            except Exception:
                rows, body = self._encodable(answered, rows, processed_at, rejections)
            if rows:
                captures.append(_Capture(capture_key(hour, shard_id, first_seq, arm), rows, body))
        return captures

    def _encodable(
        self,
        answered: list[_Answered],
        rows: list[int],
        processed_at: datetime,
        rejections: list[Rejection],
    ) -> tuple[list[int], bytes]:
        """The hour's capture failed to encode: each ride alone tells which cannot be; the others' body."""
        kept: list[int] = []
        for i in rows:
            try:
                encode_capture(self._capture_batch(answered, [i], processed_at))
            except Exception as exc:
                reason = FieldError("capture", f"cannot be encoded in the capture: {excerpt(exc)}")
                rejections.append(self._rejection(answered[i].record, [reason]))
            else:
                kept.append(i)
        body = encode_capture(self._capture_batch(answered, kept, processed_at)) if kept else b""
        return kept, body

    def _capture(
        self,
        answered: list[_Answered],
        capture: _Capture,
        delivered: set[int],
        processed_at: datetime,
        outcome: BatchOutcome,
    ) -> None:
        """Write one capture object for its delivered rides; if it cannot be written they are retried."""
        rows = [i for i in capture.rows if i in delivered]
        if not rows:
            return
        try:
            body = (
                capture.body
                if len(rows) == len(capture.rows)
                else encode_capture(self._capture_batch(answered, rows, processed_at))
            )
            self._captures.put(capture.key, body)
        except Exception as exc:
            logger.error(
                "capture write failed; records will be retried",
                extra={"key": capture.key, "error": repr(exc)},
            )
            for i in rows:
                outcome.retry[answered[i].record.sequence_number] = f"capture write failed: {exc!r}"
        else:
            outcome.predicted += len(rows)
            version = answered[rows[0]].model.version
            outcome.answered_by[version] = outcome.answered_by.get(version, 0) + len(rows)

    @staticmethod
    def _rejection(rec: _Record, reasons: Sequence[FieldError]) -> Rejection:
        return Rejection(rec.shard_id, rec.sequence_number, utc_iso(rec.arrival), rec.data, tuple(reasons))

    def _store_rejections(self, rejections: list[Rejection], outcome: BatchOutcome) -> None:
        # Named by the first rejected record, which a retry or a replay of the same records rejects
        # again: its object is rewritten. A retry that resumes after it names another object, which may
        # hold a rejection stored before too; the monitor counts each (shard, sequence number) once
        first = min(rejections, key=lambda r: (len(r.sequence_number), r.sequence_number))
        key = rejected_key(parse_utc(first.arrival_time), first.shard_id, first.sequence_number)
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

    def _deliver(self, answered: list[_Answered], rows: list[int], outcome: BatchOutcome) -> set[int]:
        """PutRecords the rows' predictions, in batch order; -> the rows delivered."""
        if not rows:
            return set()
        kwargs = {"sleep": self._sleep} if self._sleep is not None else {}
        undelivered = deliver(self._sink, [answered[i].entry for i in rows], self._policy, **kwargs)
        for k, error in undelivered.items():
            outcome.retry[answered[rows[k]].record.sequence_number] = f"PutRecords failed: {error}"
        return {i for k, i in enumerate(rows) if k not in undelivered}

    @staticmethod
    def _capture_batch(
        answered: Sequence[_Answered], rows: Sequence[int], processed_at: datetime
    ) -> CaptureBatch:
        """The capture of `rows`: one answering model and one paired version (_encode_captures groups so)."""
        picked = [answered[i] for i in rows]
        paired = picked[0].paired if picked else None
        return _capture_batch(
            picked[0].model if picked else answered[0].model,
            [a.ride for a in picked],
            [a.minutes for a in picked],
            [a.prediction_id for a in picked],
            processed_at,
            None if paired is None else (paired[0], [a.paired[1] if a.paired else None for a in picked]),
        )

    # ------------------------------------------------------------------------------ direct invoke

    def predict_direct(self, payload: Any, request_id: str) -> DirectOutcome:
        """One ride -> the prediction record, or {"error", "reasons"}; never raises on bad input (a
        model that answers no ride raises ModelFailure: the caller gets a function error, retryable)."""
        invoked_at = self._now()
        result = validate_ride(payload, invoked_at, self._max_pickup_age)
        if not isinstance(result, ValidRide):
            return DirectOutcome(_error("invalid ride", result))
        logger.append_keys(ride_id=result.ride_id)
        serving = self.models.serving()
        [answer] = _answers(serving.live, [result])
        if isinstance(answer, FieldError):
            return DirectOutcome(_error("no prediction for this ride", [answer]), serving.live.version)
        pickup_hour = answer[1]
        pid = self._ids.of_direct(pickup_hour)
        # never the canary's: the id is random, so a client asking again could pick the arm it is judged in
        [(model, minutes, paired)] = plan_answers(replace(serving, canary=None), [result], [pid], [answer[0]])
        arm = "" if model is serving.live else CANARY_ARM
        key = capture_key(pickup_hour, DIRECT_SHARD_ID, request_id, arm)
        batch = _capture_batch(
            model,
            [result],
            [minutes],
            [pid],
            invoked_at,
            None if paired is None else (paired[0], [paired[1]]),
        )
        captured = True
        try:
            self._captures.put(key, encode_capture(batch))
        except Exception as exc:  # the caller still gets the answer; the gap is logged and counted
            logger.error("capture write failed for a direct invoke", extra={"key": key, "error": repr(exc)})
            captured = False
        return DirectOutcome(prediction_record(model, result.ride_id, minutes, pid), model.version, captured)


def _error(error: str, reasons: Sequence[FieldError]) -> dict[str, Any]:
    return {"error": error, "reasons": [{"field": e.field, "reason": e.reason} for e in reasons]}


def _capture_batch(
    model: LoadedModel,
    rides: Sequence[ValidRide],
    minutes: list[float],
    ids: list[str],
    processed_at: datetime,
    paired: tuple[str, list[float | None]] | None = None,
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
        prediction=minutes,
        paired_version=None if paired is None else paired[0],
        paired_prediction=None if paired is None else paired[1],
    )
