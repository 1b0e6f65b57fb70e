"""Recent labelled rides: captured predictions (with the raw inputs) joined with actuals by ride_id.

Captures are listed under the lookback's `captures/dt=/hour=` prefixes (processing time) and kept when
`captured_at` is inside the lookback; actuals under `actuals/dt=` of the lookback's days plus one
(rides ending after midnight), as the monitor reads them. Features are recomputed with
trip_core.features.compute_features from the captured raw columns (the serving definition).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from lambda_retrain.ports import Store
from trip_core.capture import CaptureBatch, RecordFormatError, decode_actuals, decode_capture
from trip_core.contracts import (
    ACTUALS_PREFIX,
    CAPTURE_PREFIX,
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    day_prefix,
    hour_prefix,
    parse_utc,
    utc_iso,
)
from trip_core.features import FEATURE_NAMES, compute_features


@dataclass
class LabelledRides:
    """Rows ordered by pickup time (then ride id): features, actual minutes, served prediction."""

    features: np.ndarray
    target: np.ndarray
    served: np.ndarray  # the prediction the live model made (minutes)
    versions: np.ndarray  # model version of each served prediction (object array of str)
    pickup: np.ndarray  # datetime64[s], New York local
    summary: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.target)

    def rows(self, mask: np.ndarray) -> LabelledRides:
        return LabelledRides(
            self.features[mask], self.target[mask], self.served[mask], self.versions[mask], self.pickup[mask]
        )


@dataclass(frozen=True)
class Actuals:
    durations: dict[str, float]  # by ride id
    objects: int
    skipped: int  # lines that are not an actual


def _hours(start: datetime, end: datetime) -> list[datetime]:
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(hour)
        hour += timedelta(hours=1)
    return out


def _fetch(store: Store, keys: list[str]) -> list[tuple[str, bytes]]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        bodies = list(pool.map(store.get, keys))
    return [(k, b) for k, b in zip(keys, bodies, strict=True) if b is not None]


def load_labelled(
    capture: Store,
    start: datetime,
    end: datetime,
    keep_batch: Callable[[CaptureBatch], bool] | None = None,
) -> LabelledRides:
    """Labelled rides captured in [start, end); `keep_batch` narrows further (e.g. one model version)."""
    batches, malformed = _capture_batches(capture, start, end, keep_batch)
    actuals = _actual_durations(capture, start, end)
    ordered = _join(batches, actuals.durations)
    result = _rides(ordered)
    result.summary = {
        "window": {"start": utc_iso(start), "end": utc_iso(end)},
        "capture_objects": len(batches),
        "capture_objects_malformed": malformed,
        "actuals_objects": actuals.objects,
        "actuals_lines_skipped": actuals.skipped,
        "captured_predictions": sum(len(batch) for batch in batches),
        "actuals": len(actuals.durations),
        "labelled_rows": len(ordered),
        "served_versions": sorted({str(r[7]) for r in ordered}),
        "pickup_range": [str(result.pickup.min()), str(result.pickup.max())] if ordered else None,
    }
    return result


def _capture_batches(
    capture: Store, start: datetime, end: datetime, keep_batch: Callable[[CaptureBatch], bool] | None
) -> tuple[list[CaptureBatch], int]:
    """The capture batches of [start, end) in capture order, and how many objects were malformed."""
    keys = [
        key for hour in _hours(start, end) for key in capture.list_keys(hour_prefix(CAPTURE_PREFIX, hour))
    ]
    batches: list[CaptureBatch] = []
    malformed = 0
    for _key, body in _fetch(capture, keys):
        try:
            batch = decode_capture(body)
        except RecordFormatError:
            malformed += 1
            continue
        if start <= parse_utc(batch.captured_at) < end and (keep_batch is None or keep_batch(batch)):
            batches.append(batch)
    batches.sort(key=lambda b: b.captured_at)
    return batches, malformed


def _actual_durations(capture: Store, start: datetime, end: datetime) -> Actuals:
    day = start.astimezone(UTC).date() - timedelta(days=1)
    last_day = end.astimezone(UTC).date() + timedelta(days=1)
    keys: list[str] = []
    while day <= last_day:
        keys.extend(capture.list_keys(day_prefix(ACTUALS_PREFIX, day)))
        day += timedelta(days=1)
    durations: dict[str, float] = {}
    skipped = 0
    for _key, body in _fetch(capture, keys):
        actuals, bad = decode_actuals(body)
        skipped += bad
        durations.update((str(a.ride_id), a.duration_minutes) for a in actuals)
    return Actuals(durations, len(keys), skipped)


def _join(batches: list[CaptureBatch], durations: dict[str, float]) -> list[tuple[Any, ...]]:
    """Captured rides with an actual duration in the training bounds, ordered by pickup time."""
    rows: dict[str, tuple[Any, ...]] = {}  # by ride id: the latest capture wins (a ride sent twice)
    for batch in batches:
        for i, ride_id in enumerate(batch.ride_id):
            duration = durations.get(str(ride_id))
            if duration is None or not MIN_DURATION_MINUTES <= duration <= MAX_DURATION_MINUTES:
                continue
            rows[str(ride_id)] = (
                batch.pickup_datetime[i],
                str(ride_id),
                batch.pu_location_id[i],
                batch.do_location_id[i],
                batch.trip_distance[i],
                duration,
                batch.prediction[i],
                batch.model_version,
            )
    return sorted(rows.values(), key=lambda r: (r[0], r[1]))


def _rides(ordered: list[tuple[Any, ...]]) -> LabelledRides:
    pickup = np.array([r[0] for r in ordered], dtype="datetime64[s]")
    features = (
        compute_features(
            np.array([r[2] for r in ordered]),
            np.array([r[3] for r in ordered]),
            np.array([r[4] for r in ordered]),
            pickup,
        )
        if ordered
        else np.zeros((0, len(FEATURE_NAMES)))
    )
    return LabelledRides(
        features=features,
        target=np.array([r[5] for r in ordered], dtype=np.float64),
        served=np.array([r[6] for r in ordered], dtype=np.float64),
        versions=np.array([r[7] for r in ordered], dtype=object),
        pickup=pickup,
    )
