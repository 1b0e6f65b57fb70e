"""TLC months as the monitor sees them (shared by the monitor/profile tests and the monitor benchmark).

`month_columns` gives the raw capture-like columns of a committed month; `monitored_columns` the
MONITORED_FEATURES and TIME_OF_WEEK_FEATURES of those rows (as training computes them for the
reference profile). The
stand-in "prediction" is the actual trip duration in minutes clipped to 1..60, so prediction drift
follows what really moved between months.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lambda_monitor.window import VersionRows
from tests.doubles.captures import pids
from trip_core.calibration import add_day_excesses
from trip_core.capture import CaptureBatch
from trip_core.contracts import MAX_TRIP_DISTANCE_MILES
from trip_core.features import MONITORED_FEATURES, TIME_OF_WEEK_FEATURES, compute_features, feature_column
from trip_core.profile import DEFAULT_SLICING, build_reference_profile
from trip_core.zones import zone_table

DATA = Path(__file__).resolve().parents[1] / "data"


@cache
def month_columns(month: str) -> dict[str, np.ndarray]:
    """Raw columns of `data/green_tripdata_<month>.parquet` (rows with unknown zones dropped)."""
    frame = pd.read_parquet(
        DATA / f"green_tripdata_{month}.parquet",
        columns=[
            "lpep_pickup_datetime",
            "lpep_dropoff_datetime",
            "PULocationID",
            "DOLocationID",
            "trip_distance",
        ],
    )
    known = np.array(sorted(zone_table().location_ids))
    frame = frame[frame.PULocationID.isin(known) & frame.DOLocationID.isin(known)]
    pickup = frame.lpep_pickup_datetime.to_numpy().astype("datetime64[s]")
    dropoff = frame.lpep_dropoff_datetime.to_numpy().astype("datetime64[s]")
    minutes = (dropoff - pickup).astype(np.int64) / 60.0
    return {
        "ride_id": np.arange(len(frame), dtype=np.int64),
        "pickup_datetime": pickup,
        "PULocationID": frame.PULocationID.to_numpy(dtype=np.int64),
        "DOLocationID": frame.DOLocationID.to_numpy(dtype=np.int64),
        "trip_distance": frame.trip_distance.to_numpy(dtype=np.float64),
        "prediction": np.clip(minutes, 1.0, 60.0),
        "duration_minutes": minutes,
    }


def take(columns: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[index] for name, values in columns.items()}


def monitored_columns(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    matrix = compute_features(
        columns["PULocationID"], columns["DOLocationID"], columns["trip_distance"], columns["pickup_datetime"]
    )
    return {name: feature_column(matrix, name) for name in (*MONITORED_FEATURES, *TIME_OF_WEEK_FEATURES)}


def capture_batches(
    columns: dict[str, np.ndarray],
    version: str,
    captured_at: str,
    batch_size: int = 500,
    model_name: str = "trip-duration",
) -> list[CaptureBatch]:
    """The rows as capture batches (the predict Lambda's format) of one model version."""
    pickup = np.datetime_as_string(columns["pickup_datetime"].astype("datetime64[s]"), unit="s")
    n = len(columns["prediction"])
    return [
        CaptureBatch(
            model_name=model_name,
            model_version=version,
            captured_at=captured_at,
            prediction_id=pids(columns["ride_id"][i : i + batch_size].tolist()),
            ride_id=columns["ride_id"][i : i + batch_size].tolist(),
            pickup_datetime=pickup[i : i + batch_size].tolist(),
            pu_location_id=columns["PULocationID"][i : i + batch_size].tolist(),
            do_location_id=columns["DOLocationID"][i : i + batch_size].tolist(),
            trip_distance=columns["trip_distance"][i : i + batch_size].tolist(),
            prediction=columns["prediction"][i : i + batch_size].tolist(),
        )
        for i in range(0, n, batch_size)
    ]


def valid_rows(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What passes the ride validator: distance within 0..MAX_TRIP_DISTANCE_MILES."""
    distance = columns["trip_distance"]
    return take(columns, np.flatnonzero((distance >= 0) & (distance <= MAX_TRIP_DISTANCE_MILES)))


def reference_profile_dict(
    columns: dict[str, np.ndarray], slicing: str = DEFAULT_SLICING, day_excess: bool = False
) -> dict[str, Any]:
    """The rows' profile; with `day_excess`, as training builds it from dated rows."""
    features = monitored_columns(columns)
    profile = build_reference_profile(features, columns["prediction"], slicing)
    if not day_excess:
        return profile
    days = columns["pickup_datetime"].astype("datetime64[D]")
    return add_day_excesses(profile, features, columns["prediction"], days)


def version_rows(columns: dict[str, np.ndarray], version: str = "1") -> VersionRows:
    """The rows as the monitor holds a window of one model version."""
    return VersionRows(
        model_version=version,
        ride_id=columns["ride_id"],
        pu_location_id=columns["PULocationID"].astype(np.float64),
        do_location_id=columns["DOLocationID"].astype(np.float64),
        trip_distance=columns["trip_distance"],
        pickup_datetime=columns["pickup_datetime"],
        prediction=columns["prediction"],
    )
