"""The rules of a valid ride input, defined once: serving (one ride, trip_core.rides), training
(whole months, training.data), batch scoring (training.score) and the monitor (captured columns,
lambda_monitor.window) apply them; and the rule of an answer that may be given.

Each rule takes a scalar or a numpy array, so a single ride and a column are judged the same way.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Protocol

import numpy as np

from trip_core.contracts import (
    MAX_RIDE_MINUTES,
    MAX_TRIP_DISTANCE_MILES,
    MIN_TRIP_DISTANCE_MILES,
    PREDICTION_DECIMALS,
)
from trip_core.zones import zone_table


def distance_in_bounds(miles: Any) -> Any:
    """True where the distance lies in the app's range (NaN is not)."""
    return (miles >= MIN_TRIP_DISTANCE_MILES) & (miles <= MAX_TRIP_DISTANCE_MILES)


def is_known_zone(location_id: int) -> bool:
    """One integer LocationID: is it in the taxi-zone table?"""
    return location_id in zone_table().location_ids


@cache
def _known_by_id() -> np.ndarray:
    table = zone_table()
    known = np.zeros(table.max_location_id + 1, dtype=bool)
    known[sorted(table.location_ids)] = True
    return known


def known_zones(ids: np.ndarray) -> np.ndarray:
    """A column of LocationIDs (ints or floats): True where the value is an id in the zone table."""
    ids = np.asarray(ids, dtype=np.float64)
    in_range = np.isfinite(ids) & (ids >= 0) & (ids <= len(_known_by_id()) - 1) & (ids == np.floor(ids))
    ok = in_range.copy()
    ok[in_range] = _known_by_id()[ids[in_range].astype(np.int64)]
    return ok


def pickup_known(pickups: np.ndarray) -> np.ndarray:
    """A datetime64 column: True where the pickup time was parsed (not NaT)."""
    return ~np.isnat(pickups)


def plausible_minutes(minutes: Any) -> Any:
    """True where a model's answer (minutes, scalar or column) may be given for its ride: within
    [0, MAX_RIDE_MINUTES] (NaN is not). Outside, the model is broken for that ride, which is rejected."""
    return (minutes >= 0.0) & (minutes <= MAX_RIDE_MINUTES)


def implausible_minutes_reason(minutes: float) -> str:
    """The reason a ride whose answer is not `plausible_minutes` is rejected (field "prediction")."""
    return f"model answered {minutes:g} minutes, outside [0, {MAX_RIDE_MINUTES:g}]"


class Predicts(Protocol):
    def predict(self, features: np.ndarray) -> np.ndarray: ...


def answered_minutes(model: Predicts, features: np.ndarray) -> np.ndarray:
    """The answer to each feature row as it is given (the service's and batch scoring's): the model's
    minutes rounded to PREDICTION_DECIMALS, one per row, else RuntimeError; plausible_minutes decides which
    may be given."""
    if len(features) == 0:
        return np.empty(0)
    minutes = np.asarray(model.predict(features), dtype=np.float64)
    if minutes.shape != (len(features),):
        raise RuntimeError(f"model returned shape {minutes.shape} for {len(features)} rides")
    return np.round(minutes, PREDICTION_DECIMALS)
