"""One monitoring window: its event-time bounds (pickup time, UTC), the captured rows of one model
version, their features."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from trip_core.capture import CaptureBatch
from trip_core.contracts import FEATURE_INPUTS
from trip_core.features import TIME_OF_WEEK_FEATURES, compute_features, feature_column
from trip_core.profile import PREDICTION_COLUMN, column_kinds, valid_mask
from trip_core.validity import known_zones, pickup_known


@dataclass(frozen=True)
class Window:
    start: datetime  # inclusive, UTC pickup time
    end: datetime  # exclusive

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} is not after its start {self.start}")

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class VersionRows:
    """The captured rows of one model version in a window, as arrays."""

    model_version: str
    ride_id: np.ndarray  # object or int64
    pu_location_id: np.ndarray  # float64 (NaN = missing)
    do_location_id: np.ndarray
    trip_distance: np.ndarray
    pickup_datetime: np.ndarray  # datetime64[s], NaT = missing
    prediction: np.ndarray

    def __len__(self) -> int:
        return int(self.prediction.size)


def _floats(values: Sequence[object]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([_float_or_nan(v) for v in values], dtype=np.float64)


def _float_or_nan(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _datetimes(values: Sequence[str]) -> np.ndarray:
    try:
        return np.array(values, dtype="datetime64[s]")
    except (TypeError, ValueError):
        out = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[s]")
        for i, value in enumerate(values):
            with contextlib.suppress(TypeError, ValueError):
                out[i] = np.datetime64(value, "s")
        return out


def rows_by_version(batches: Iterable[CaptureBatch]) -> dict[str, VersionRows]:
    """Concatenate decoded capture batches, split by model version."""
    grouped: dict[str, list[CaptureBatch]] = {}
    for batch in batches:
        grouped.setdefault(batch.model_version, []).append(batch)
    result = {}
    for version, group in grouped.items():
        ride_ids = [rid for b in group for rid in b.ride_id]
        ride_array = np.array(ride_ids, dtype=object if any(isinstance(r, str) for r in ride_ids) else None)
        result[version] = VersionRows(
            model_version=version,
            ride_id=ride_array,
            pu_location_id=_floats([v for b in group for v in b.pu_location_id]),
            do_location_id=_floats([v for b in group for v in b.do_location_id]),
            trip_distance=_floats([v for b in group for v in b.trip_distance]),
            pickup_datetime=_datetimes([v for b in group for v in b.pickup_datetime]),
            prediction=_floats([v for b in group for v in b.prediction]),
        )
    return result


@dataclass(frozen=True)
class CurrentColumns:
    """Valid values per profiled column, the time of week of their rides, and the rows with a problem.

    A value counts only when its own input is valid and the ride's pickup time is known (the
    time of week picks the reference slice it is compared with).
    """

    valid: dict[str, np.ndarray]
    row: dict[str, np.ndarray]  # per column, the window row of each valid value
    weekday: np.ndarray  # per window row, as the features compute it (Monday = 0)
    hour: np.ndarray
    missing: dict[str, int]  # per column, missing + invalid
    rows_with_problem: int
    rows: int

    @property
    def missing_share(self) -> float:
        return self.rows_with_problem / self.rows if self.rows else 0.0


def current_columns(rows: VersionRows) -> CurrentColumns:
    """MONITORED_FEATURES + prediction of the rows, through the same feature code as training."""
    pu_ok = known_zones(rows.pu_location_id)
    do_ok = known_zones(rows.do_location_id)
    time_ok = pickup_known(rows.pickup_datetime)
    matrix = compute_features(
        np.where(pu_ok, rows.pu_location_id, 0).astype(np.int64),
        np.where(do_ok, rows.do_location_id, 0).astype(np.int64),
        rows.trip_distance,
        np.where(time_ok, rows.pickup_datetime, np.datetime64(0, "s")),
    )
    # The distance's range is judged by valid_mask with the other columns' ranges.
    input_ok = {"PULocationID": pu_ok, "DOLocationID": do_ok}
    valid: dict[str, np.ndarray] = {}
    row: dict[str, np.ndarray] = {}
    missing: dict[str, int] = {}
    problem = ~time_ok
    for name, kind in column_kinds().items():
        values = rows.prediction if name == PREDICTION_COLUMN else feature_column(matrix, name)
        source_ok = input_ok.get(FEATURE_INPUTS.get(name, ""), time_ok) & time_ok
        mask = valid_mask(name, kind, values) & source_ok
        row[name] = np.flatnonzero(mask)
        valid[name] = values[row[name]]
        missing[name] = int(mask.size - row[name].size)
        problem |= ~mask
    weekday, hour = (feature_column(matrix, name) for name in TIME_OF_WEEK_FEATURES)
    return CurrentColumns(valid, row, weekday, hour, missing, int(problem.sum()), len(rows))
