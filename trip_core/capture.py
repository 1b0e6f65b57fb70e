"""Record formats written by the prediction Lambda and read by the monitor (docs/architecture.md).

- capture object: one gzip JSON per batch, columnar, one model version per batch;
- rejected-rides object: one JSON per batch, every rejected record with its raw payload and reasons;
- actuals: JSON lines `{"prediction_id": ..., "duration_minutes": ...}`, written by the actuals function
  from what clients send on the actuals stream; every line is accepted or rejected with one of
  ACTUAL_REJECTION_REASONS (the actuals function on arrival, the readers again).

Keys are derived from the shard id and the batch's first sequence number, so a retried batch
overwrites its own objects; `dt`/`hour` are the UTC pickup hour of captures (one object per batch and
pickup hour), the UTC processing hour of rejected rides, the UTC hour actuals were reported in.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson

from trip_core import jsontext
from trip_core.contracts import MAX_RIDE_MINUTES, prediction_id_hour
from trip_core.rides import FieldError, new_york_to_utc

SCHEMA_VERSION = 1  # rejected-rides objects
# Schema 2 added `prediction_id`. A schema-1 capture is refused, not read: its rows carry no id, so no
# actual can label them under the prediction-id join, and one decoder keeps one meaning per column.
CAPTURE_SCHEMA_VERSION = 2
CAPTURE_COLUMNS: tuple[str, ...] = (
    "prediction_id",
    "ride_id",
    "pickup_datetime",
    "PULocationID",
    "DOLocationID",
    "trip_distance",
    "prediction",
)


class RecordFormatError(ValueError):
    """A stored object does not follow its documented format."""


# --------------------------------------------------------------------------------------- capture


@dataclass(frozen=True)
class CaptureBatch:
    """The predictions of one batch, with the inputs they were made from (one model version)."""

    model_name: str
    model_version: str
    captured_at: str  # ISO 8601 UTC, "Z"
    prediction_id: list[str]  # issued by the service (trip_core.contracts.prediction_id)
    ride_id: list[int | str]
    pickup_datetime: list[str]  # ISO 8601, New York local, naive
    pu_location_id: list[int]
    do_location_id: list[int]
    trip_distance: list[float]
    prediction: list[float]  # minutes
    # Another model's answer to the same rides (the shadow beside the live model, the live model beside
    # the canary): its version, and its minutes or None where it had no finite answer.
    paired_version: str | None = None
    paired_prediction: list[float | None] | None = None

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, name)) for name in self._column_attrs().values()}
        if self.paired_prediction is not None:
            lengths.add(len(self.paired_prediction))
        if len(lengths) > 1:
            raise RecordFormatError(f"capture columns differ in length: {sorted(lengths)}")
        if (self.paired_version is None) != (self.paired_prediction is None):
            raise RecordFormatError("a paired prediction needs its version, and a paired version its column")

    @staticmethod
    def _column_attrs() -> dict[str, str]:
        return {
            "prediction_id": "prediction_id",
            "ride_id": "ride_id",
            "pickup_datetime": "pickup_datetime",
            "PULocationID": "pu_location_id",
            "DOLocationID": "do_location_id",
            "trip_distance": "trip_distance",
            "prediction": "prediction",
        }

    def __len__(self) -> int:
        return len(self.ride_id)

    def columns(self) -> dict[str, list[Any]]:
        return {name: getattr(self, attr) for name, attr in self._column_attrs().items()}

    def pickup_datetime64(self) -> np.ndarray:
        """pickup_datetime as datetime64[s] (New York local), the input `compute_features` takes."""
        return np.array(self.pickup_datetime, dtype="datetime64[s]")

    def pickup_utc64(self) -> np.ndarray:
        """pickup_datetime as naive UTC datetime64[s]: the event time windows and partitions use."""
        return new_york_to_utc(self.pickup_datetime64())

    def subset(self, mask: np.ndarray) -> CaptureBatch:
        """The rows where `mask` is True, same model version and capture time."""
        keep = np.flatnonzero(mask).tolist()
        picked = {attr: [getattr(self, attr)[i] for i in keep] for attr in self._column_attrs().values()}
        paired = None if self.paired_prediction is None else [self.paired_prediction[i] for i in keep]
        return CaptureBatch(
            self.model_name,
            self.model_version,
            self.captured_at,
            **picked,
            paired_version=self.paired_version,
            paired_prediction=paired,
        )


def pickup_hour_groups(pickup_local: np.ndarray) -> list[tuple[datetime, np.ndarray]]:
    """(UTC pickup hour, indices of its rows), oldest hour first, for New York local pickup times: a
    batch is captured as one object per pickup hour, so a window lists only its own hours."""
    hours = new_york_to_utc(pickup_local).astype("datetime64[h]")
    distinct, inverse = np.unique(hours, return_inverse=True)
    return [
        (distinct[k].astype(datetime).replace(tzinfo=UTC), np.flatnonzero(inverse == k))
        for k in range(distinct.size)
    ]


CAPTURE_GZIP_LEVEL = 1  # 2.3x faster than level 5 for a 100-ride batch, objects ~3% larger


def encode_capture(batch: CaptureBatch) -> bytes:
    """gzip of the compact JSON document; raises ValueError on a NaN or infinite value."""
    document = {
        "schema": CAPTURE_SCHEMA_VERSION,
        "model_name": batch.model_name,
        "model_version": batch.model_version,
        "captured_at": batch.captured_at,
        "columns": batch.columns(),
    }
    if batch.paired_version is not None:
        document["paired"] = {"model_version": batch.paired_version, "prediction": batch.paired_prediction}
    try:
        text = orjson.dumps(document)  # 10x json.dumps; the same document (UTF-8, shortest floats)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        text = b"null"
    if b"null" in text:  # orjson writes NaN/Infinity as null: json.dumps refuses them (None is null in both)
        text = json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return gzip.compress(text, compresslevel=CAPTURE_GZIP_LEVEL, mtime=0)


def decode_capture(data: bytes) -> CaptureBatch:
    """A capture object's bytes (gzip JSON; plain JSON accepted too) -> CaptureBatch."""
    try:
        raw = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
        document = jsontext.loads(raw)
    except (OSError, EOFError, ValueError, zlib.error) as exc:  # zlib.error: a corrupt deflate stream
        raise RecordFormatError(f"capture object is not gzip JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("schema") != CAPTURE_SCHEMA_VERSION:
        raise RecordFormatError(f"capture object schema must be {CAPTURE_SCHEMA_VERSION}")
    columns = document.get("columns")
    if not isinstance(columns, dict):
        raise RecordFormatError("capture object lacks 'columns'")
    missing = [name for name in CAPTURE_COLUMNS if not isinstance(columns.get(name), list)]
    if missing:
        raise RecordFormatError(f"capture object lacks column(s) {', '.join(missing)}")
    try:
        return CaptureBatch(
            model_name=str(document["model_name"]),
            model_version=str(document["model_version"]),
            captured_at=str(document["captured_at"]),
            prediction_id=[str(v) for v in columns["prediction_id"]],
            ride_id=list(columns["ride_id"]),
            pickup_datetime=[str(v) for v in columns["pickup_datetime"]],
            pu_location_id=[int(v) for v in columns["PULocationID"]],
            do_location_id=[int(v) for v in columns["DOLocationID"]],
            trip_distance=[float(v) for v in columns["trip_distance"]],
            prediction=[float(v) for v in columns["prediction"]],
            **_paired(document.get("paired")),
        )
    except RecordFormatError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordFormatError(f"capture object is malformed: {exc!r}") from exc


def _paired(paired: Any) -> dict[str, Any]:
    """The optional `paired` object of a capture document, as CaptureBatch's keyword arguments."""
    if paired is None:
        return {}
    if not isinstance(paired, dict) or not isinstance(paired.get("prediction"), list):
        raise RecordFormatError("capture object's 'paired' must be {model_version, prediction: [...]}")
    values = [None if v is None else float(v) for v in paired["prediction"]]
    return {"paired_version": str(paired["model_version"]), "paired_prediction": values}


# -------------------------------------------------------------------------------------- rejected


@dataclass(frozen=True)
class Rejection:
    """One record that can never succeed, kept with its raw payload and why."""

    shard_id: str
    sequence_number: str
    arrival_time: str  # ISO 8601 UTC
    raw_base64: str
    reasons: tuple[FieldError, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "shard_id": self.shard_id,
            "sequence_number": self.sequence_number,
            "arrival_time": self.arrival_time,
            "raw_base64": self.raw_base64,
            "reasons": [{"field": r.field, "reason": r.reason} for r in self.reasons],
        }


def encode_rejected(rejections: Sequence[Rejection]) -> bytes:
    document = {"schema": SCHEMA_VERSION, "rejections": [r.to_json() for r in rejections]}
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


def decode_rejected(data: bytes) -> list[Rejection]:
    try:
        document = jsontext.loads(data)
    except ValueError as exc:
        raise RecordFormatError(f"rejected object is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("schema") != SCHEMA_VERSION:
        raise RecordFormatError(f"rejected object schema must be {SCHEMA_VERSION}")
    items = document.get("rejections")
    if not isinstance(items, list):
        raise RecordFormatError("rejected object lacks 'rejections'")
    try:
        return [
            Rejection(
                shard_id=str(item["shard_id"]),
                sequence_number=str(item["sequence_number"]),
                arrival_time=str(item["arrival_time"]),
                raw_base64=str(item["raw_base64"]),
                reasons=tuple(FieldError(str(r["field"]), str(r["reason"])) for r in item["reasons"]),
            )
            for item in items
        ]
    except (KeyError, TypeError) as exc:
        raise RecordFormatError(f"rejected object is malformed: {exc!r}") from exc


# --------------------------------------------------------------------------------------- actuals


@dataclass(frozen=True)
class Actual:
    prediction_id: str
    duration_minutes: float


# Why an actual line is not used: counted per reason (the actuals function's rejected objects, the
# monitor's report and metrics), never averaged in.
ACTUAL_MALFORMED = "malformed"  # not a JSON object with a prediction id and a numeric duration
ACTUAL_NON_FINITE = "non_finite"
ACTUAL_NOT_POSITIVE = "not_positive"  # zero or less
ACTUAL_OVER_MAX = "over_max"  # longer than MAX_RIDE_MINUTES
ACTUAL_UNKNOWN_PREDICTION = "unknown_prediction"  # no captured prediction has that id
ACTUAL_DUPLICATE = "duplicate"  # a resend: the last valid line of a ride wins, the earlier ones count here
ACTUAL_REJECTION_REASONS: tuple[str, ...] = (
    ACTUAL_MALFORMED,
    ACTUAL_NON_FINITE,
    ACTUAL_NOT_POSITIVE,
    ACTUAL_OVER_MAX,
    ACTUAL_UNKNOWN_PREDICTION,
    ACTUAL_DUPLICATE,
)


def encode_actuals(actuals: Iterable[Actual]) -> bytes:
    lines = (
        json.dumps(
            {"prediction_id": a.prediction_id, "duration_minutes": a.duration_minutes}, allow_nan=False
        )
        for a in actuals
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def decode_actuals(data: bytes) -> list[Actual | str]:
    """JSON lines -> for every non-blank line, its Actual or the reason it is rejected on its own
    (malformed, non-finite, not positive, over MAX_RIDE_MINUTES)."""
    return [
        judge_actual_line(line)
        for line in data.decode("utf-8", errors="replace").splitlines()
        if line.strip()
    ]


def judge_actual_line(line: str | bytes) -> Actual | str:
    try:
        item = jsontext.loads(line)
        return judge_actual(item["prediction_id"], item["duration_minutes"])
    except (ValueError, KeyError, TypeError):
        return ACTUAL_MALFORMED


def judge_actual(prediction: object, duration: object) -> Actual | str:
    """An actual on its own: a well-formed prediction id (trip_core.contracts.prediction_id) and a
    finite duration in (0, MAX_RIDE_MINUTES], or the reason it is not."""
    if (
        prediction_id_hour(prediction) is None
        or isinstance(duration, bool)
        or not isinstance(duration, int | float)
    ):
        return ACTUAL_MALFORMED
    if isinstance(duration, float) and not math.isfinite(duration):
        return ACTUAL_NON_FINITE
    if duration <= 0:
        return ACTUAL_NOT_POSITIVE
    if duration > MAX_RIDE_MINUTES:  # before float(): an integer too large for a float
        return ACTUAL_OVER_MAX
    return Actual(str(prediction), float(duration))
