"""Recent labelled rides: captured predictions (with the raw inputs) joined with actuals by the
prediction id the service issued (a ride id captured with different inputs is labelled by none).

Captures and actuals are read by trip_core.event_window, the monitor's reader: rides picked up in the
range (its pickup-hour partitions), actuals from the hours they were reported in, each accepted or
rejected with its reason; only actuals in the training target's domain label a ride. Features are
recomputed with trip_core.features.compute_features from the captured raw columns (the serving
definition).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from lambda_retrain.ports import Store
from trip_core.capture import CaptureBatch
from trip_core.contracts import utc_iso
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


def load_labelled(
    capture: Store,
    start: datetime,
    end: datetime,
    keep_batch: Callable[[CaptureBatch], bool] | None = None,
) -> LabelledRides:
    """Labelled rides picked up in [start, end); `keep_batch` narrows further (e.g. one model version)."""
    problems: list[str] = []
    captured = read_captures(capture, start, end, problems)
    window = latest_captures(captured)
    actuals = read_actuals(capture, start, end, captured, problems)
    batches = [b for b in window if keep_batch is None or keep_batch(b)]
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
    )
