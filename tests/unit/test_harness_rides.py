"""The scenarios' rides are live-shaped traffic: consecutive real rides moved by whole weeks to end now."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from infra.harness.rides import Ride, pickup_window, real_rides
from trip_core.features import compute_features, feature_column

MONTH = Path(__file__).resolve().parents[2] / "data" / "green_tripdata_2023-03.parquet"
END = datetime(2026, 12, 1, 19, 30, tzinfo=UTC)  # 14:30 in New York (EST), a Tuesday


def _pickups(rides: list[Ride]) -> np.ndarray:
    return np.array([r.fields()["pickup_datetime"] for r in rides], dtype="datetime64[s]")


def test_rides_are_consecutive_in_pickup_order_and_end_just_before_the_end() -> None:
    rides = real_rides(MONTH, 500, seed=0, id_base=10, end=END)
    pickups = _pickups(rides)
    assert len(rides) == 500 and [r.ride_id for r in rides] == list(range(10, 510))
    assert np.all(np.diff(pickups) >= np.timedelta64(0, "s"))
    assert np.datetime64("2026-12-01T14:30:00") - pickups[-1] < np.timedelta64(1, "h")
    assert pickups[-1] < np.datetime64("2026-12-01T14:30:00")


def test_whole_weeks_keep_the_time_of_week_and_seeds_pick_other_weeks() -> None:
    a = real_rides(MONTH, 300, seed=0, id_base=0, end=END)
    b = real_rides(MONTH, 300, seed=1, id_base=0, end=END)
    assert [r.fields() for r in a] != [r.fields() for r in b]
    for rides in (a, b):
        pickups = _pickups(rides)
        weekday = feature_column(
            compute_features(np.full(300, 1), np.full(300, 1), np.ones(300), pickups), "pickup_weekday"
        )
        assert set(weekday) <= {0.0, 1.0}  # Monday/Tuesday, as the end (a Tuesday afternoon)


def test_pickup_window_holds_exactly_the_rides_in_utc() -> None:
    rides = real_rides(MONTH, 200, seed=0, id_base=0, end=END)
    start, end = pickup_window(r.fields() for r in rides)
    first = datetime.fromisoformat(rides[0].fields()["pickup_datetime"]) + timedelta(hours=5)  # EST
    last = datetime.fromisoformat(rides[-1].fields()["pickup_datetime"]) + timedelta(hours=5)
    assert start == first.replace(tzinfo=UTC) and end == last.replace(tzinfo=UTC) + timedelta(seconds=1)
    assert json.loads(rides[0].payload)["ride_id"] == 0
