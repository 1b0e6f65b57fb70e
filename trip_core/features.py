"""The one definition of the model's features, used by training (on whole months) and serving (per batch).

Only what is known at pickup goes in: zones, the app's distance estimate and the pickup time.
Fare, tip, total and dropoff time leak the answer and are never read.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from trip_core.zones import zone_table

FEATURE_NAMES: tuple[str, ...] = (
    "PULocationID",
    "DOLocationID",
    "pu_do_pair",
    "trip_distance",
    "pickup_hour",
    "pickup_weekday",
    "pu_borough",
    "do_borough",
    "pu_service_zone",
    "do_service_zone",
    "same_zone",
    "same_borough",
)

ColumnKind = Literal["numeric", "categorical"]

# What the monitor tests for input drift: the inputs a client sends. Not the calendar features (a
# window's time-of-week mix is set by the clock; the reference is sliced by TIME_OF_WEEK_FEATURES
# instead) nor the derived columns (boroughs, pairs: they move exactly when their inputs move).
MONITORED_FEATURES: dict[str, ColumnKind] = {
    "PULocationID": "categorical",
    "DOLocationID": "categorical",
    "trip_distance": "numeric",
}

# The features that place a ride in a time-of-week slice of the reference profile.
TIME_OF_WEEK_FEATURES: tuple[str, ...] = ("pickup_weekday", "pickup_hour")

PAIR_BASE = 1000  # pu_do_pair = PULocationID * PAIR_BASE + DOLocationID


def compute_features(
    pu_location_id: np.ndarray,
    do_location_id: np.ndarray,
    trip_distance: np.ndarray,
    pickup_datetime: np.ndarray,
) -> np.ndarray:
    """Feature matrix (rows x FEATURE_NAMES, float64) from four equal-length columns.

    `pickup_datetime` is datetime64 in New York local time (as the TLC files record it).
    Location IDs must be in the zone table; callers validate before calling.
    """
    zones = zone_table()
    pu = np.asarray(pu_location_id, dtype=np.int64)
    do = np.asarray(do_location_id, dtype=np.int64)
    pickup = np.asarray(pickup_datetime).astype("datetime64[s]")
    days = pickup.astype("datetime64[D]")
    hour = (pickup - days).astype(np.int64) // 3600
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    pu_borough = zones.borough_code[pu]
    do_borough = zones.borough_code[do]
    columns = (
        pu,
        do,
        pu * PAIR_BASE + do,
        np.asarray(trip_distance, dtype=np.float64),
        hour,
        weekday,
        pu_borough,
        do_borough,
        zones.service_zone_code[pu],
        zones.service_zone_code[do],
        pu == do,
        pu_borough == do_borough,
    )
    return np.column_stack(columns).astype(np.float64)


def feature_column(matrix: np.ndarray, name: str) -> np.ndarray:
    return matrix[:, FEATURE_NAMES.index(name)]
