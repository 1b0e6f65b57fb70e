"""Recent labelled rides: captured predictions (with the raw inputs) joined with actuals by the
prediction id the service issued (a ride id captured with different inputs is labelled by none).

The loop's training data is the most recent `target` labelled rides (gather_recent): pickup-time ranges
read from now backwards, each sized from the rate of labelled rides seen so far, until the target or the
lookback cap; the oldest beyond the target are dropped.

Captures and actuals are read by trip_core.event_window, the monitor's reader: rides picked up in the
range (its pickup-hour partitions), actuals from the hours they were reported in, each accepted or
rejected with its reason; only actuals in the training target's domain label a ride. Features are
recomputed with trip_core.features.compute_features from the captured raw columns (the serving
definition).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from lambda_retrain.ports import Store
from trip_core.capture import CaptureBatch
from trip_core.contracts import RETRAIN_FIRST_RANGE, floor_hour, utc_iso
from trip_core.event_window import (
    in_target_domain,
    join_actuals,
    latest_captures,
    read_actuals,
    read_captures,
)
from trip_core.features import FEATURE_NAMES, compute_features

MAX_LISTED_PROBLEMS = 20  # unreadable objects listed in the summary (the audit record)


@dataclass
class LabelledRides:
    """Rows ordered by pickup time (then ride id): features, actual minutes, served prediction, and the
    prediction another model of the traffic plan made of the same ride (a shadow's, or the live model's
    beside a canary's answer), NaN where none."""

    features: np.ndarray
    target: np.ndarray
    served: np.ndarray  # the prediction the ride was answered with (minutes)
    versions: np.ndarray  # model version of each served prediction (object array of str)
    pickup: np.ndarray  # datetime64[s], New York local
    paired: np.ndarray  # the paired prediction (minutes), NaN where the ride has none
    paired_versions: np.ndarray  # its model version (object array of str, "" where none)
    summary: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.target)

    def rows(self, mask: np.ndarray) -> LabelledRides:
        return LabelledRides(*(getattr(self, name)[mask] for name in _COLUMNS))

    def latest(self, count: int) -> LabelledRides:
        """The `count` rows picked up last (all when there are fewer)."""
        return self.rows(np.arange(len(self)) >= len(self) - count)


_COLUMNS = ("features", "target", "served", "versions", "pickup", "paired", "paired_versions")


def concat_rides(parts: list[LabelledRides]) -> LabelledRides:
    """Rides of disjoint pickup ranges, given oldest first: still in pickup order."""
    return LabelledRides(
        np.vstack([p.features for p in parts]),
        *(np.concatenate([getattr(p, name) for p in parts]) for name in _COLUMNS[1:]),
    )


def gather_recent(capture: Store, end: datetime, target: int, max_lookback: timedelta) -> LabelledRides:
    """The `target` most recent labelled rides picked up in [end - max_lookback, end). The first range
    read is RETRAIN_FIRST_RANGE; each next one is sized by the labelled rides per hour seen so far to
    reach the target (at least the first range's length), whole hours, never past the cap."""
    earliest, start = end - max_lookback, end
    parts: list[LabelledRides] = []
    while start > earliest and sum(len(p) for p in parts) < target:
        span = _next_span(end - start, sum(len(p) for p in parts), target)
        older = max(earliest, floor_hour(start - span))
        parts.insert(0, load_labelled(capture, older, start, reported_until=end))
        start = older
    gathered = concat_rides(parts) if parts else load_labelled(capture, end, end)
    result = gathered.latest(target)
    result.summary = {
        **(merged := _merged([p.summary for p in parts])),
        "problems": merged.get("problems", [])[:MAX_LISTED_PROBLEMS],
        "window": {"start": utc_iso(start), "end": utc_iso(end)},
        "ranges_read": len(parts),
        "target_rows": target,
        "max_lookback_days": max_lookback / timedelta(days=1),
        "labelled_rows_read": len(gathered),
        "labelled_rows": len(result),
        "pickup_range": [str(result.pickup.min()), str(result.pickup.max())] if len(result) else None,
    }
    return result


def _next_span(read: timedelta, rows: int, target: int) -> timedelta:
    if rows == 0:
        return max(RETRAIN_FIRST_RANGE, read)  # nothing labelled yet: double what was read
    return max(RETRAIN_FIRST_RANGE, read * (target - rows) / rows)


def _merged(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The ranges' summaries as one: counts summed, lists joined (each item once), per-key dicts merged."""
    merged: dict[str, Any] = {}
    for summary in summaries:
        for key, value in summary.items():
            merged[key] = _merge(merged[key], value) if key in merged else value
    return merged


def _merge(a: Any, b: Any) -> Any:
    if isinstance(a, dict) and isinstance(b, dict):
        return _merged([a, b])
    if isinstance(a, list) and isinstance(b, list):
        return a + [item for item in b if item not in a]
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return a + b
    return b


def load_labelled(
    capture: Store,
    start: datetime,
    end: datetime,
    keep_batch: Callable[[CaptureBatch], bool] | None = None,
    reported_until: datetime | None = None,
) -> LabelledRides:
    """Labelled rides picked up in [start, end); `keep_batch` narrows further (e.g. one model version);
    `reported_until`: actuals reported until then label them too (event_window.read_actuals)."""
    problems: list[str] = []
    captured = read_captures(capture, start, end, problems)
    actuals = read_actuals(capture, start, end, captured, problems, reported_until)
    # narrowed first: a ride sent again and answered by another model keeps this one's answer to it
    batches = latest_captures([b for b in captured if keep_batch is None or keep_batch(b)])
    ordered = _join(batches, actuals.durations)
    result = _rides(ordered)
    result.summary = {
        "window": {"start": utc_iso(start), "end": utc_iso(end)},
        "capture_objects": len(batches),
        "problems": problems[:MAX_LISTED_PROBLEMS],
        "actuals_objects": actuals.objects,
        "actuals_rejected": actuals.rejected,
        "conflicting_rides": actuals.conflicting_rides,
        "captured_predictions": sum(len(batch) for batch in batches),
        "actuals": len(actuals.durations),
        "labelled_rows": len(ordered),
        "served_versions": sorted({str(r[7]) for r in ordered}),
        "pickup_range": [str(result.pickup.min()), str(result.pickup.max())] if ordered else None,
    }
    return result


def _join(batches: list[CaptureBatch], durations: dict[str, float]) -> list[tuple[Any, ...]]:
    """Captured rides (each once) with an actual duration in the training target's domain, ordered by
    pickup time."""
    rows: list[tuple[Any, ...]] = []
    for batch in batches:
        truth = join_actuals(batch.ride_id, durations)
        paired = batch.paired_prediction or [None] * len(batch)
        paired_version = batch.paired_version or ""
        for i in np.flatnonzero(in_target_domain(truth)).tolist():
            rows.append(
                (
                    batch.pickup_datetime[i],
                    str(batch.ride_id[i]),
                    batch.pu_location_id[i],
                    batch.do_location_id[i],
                    batch.trip_distance[i],
                    float(truth[i]),
                    batch.prediction[i],
                    batch.model_version,
                    math.nan if paired[i] is None else paired[i],
                    paired_version if paired[i] is not None else "",
                )
            )
    return sorted(rows, key=lambda r: (r[0], r[1]))


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
        paired=np.array([r[8] for r in ordered], dtype=np.float64),
        paired_versions=np.array([r[9] for r in ordered], dtype=object),
    )
