"""The loop's training data: the most recent labelled rides, gathered backwards from now in pickup-time
ranges until the target or the lookback cap (lambda_retrain.labelled.gather_recent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from lambda_retrain.labelled import gather_recent
from tests.doubles.captures import capture_objects, pid, pids
from tests.doubles.retrain import MemoryStore
from trip_core.capture import Actual, CaptureBatch, encode_actuals
from trip_core.contracts import actuals_key, floor_hour, utc_iso
from trip_core.rides import to_new_york_naive

NOW = datetime(2024, 5, 20, 12, 30, tzinfo=UTC)
PER_HOUR = 10


def serve_days(store: MemoryStore, days: int) -> list[int]:
    """PER_HOUR labelled rides in every hour of the `days` before NOW (ride id = its hour's index back
    from NOW, times PER_HOUR, + its rank), captured and reported in their pickup hour."""
    ids: list[int] = []
    for back in range(1, days * 24 + 1):
        hour = floor_hour(NOW) - timedelta(hours=back)
        pickup = [to_new_york_naive(hour + timedelta(minutes=5 * k)) for k in range(PER_HOUR)]
        rides: list[int | str] = [back * PER_HOUR + k for k in range(PER_HOUR)]
        batch = CaptureBatch(
            "m",
            "1",
            utc_iso(hour),
            pids(rides),
            rides,
            [t.isoformat() for t in pickup],
            [74] * PER_HOUR,
            [75] * PER_HOUR,
            [1.5] * PER_HOUR,
            [9.0] * PER_HOUR,
        )
        for key, body in capture_objects(batch, "shard-0", str(back)).items():
            store.put(key, body)
        store.put(actuals_key(hour, f"c{back}"), encode_actuals([Actual(pid(r), 10.0) for r in rides]))
        ids.extend(int(r) for r in rides)
    return ids


def test_the_most_recent_rides_up_to_the_target_in_a_few_ranges() -> None:
    store = MemoryStore()
    serve_days(store, 10)
    rides = gather_recent(store, NOW, 1000, timedelta(days=14))
    assert len(rides) == 1000
    newest = np.datetime64(to_new_york_naive(floor_hour(NOW) - timedelta(hours=1)), "s")
    assert rides.pickup.max() >= newest and np.all(np.diff(rides.pickup.astype(np.int64)) >= 0)
    hours_back = (newest - rides.pickup.min()) / np.timedelta64(1, "h")
    assert hours_back < 1000 / PER_HOUR  # only the latest hours, none older than needed
    summary = rides.summary
    assert summary["labelled_rows"] == 1000 and summary["labelled_rows_read"] >= 1000
    assert summary["ranges_read"] <= 3  # sized by the rate seen in the first day, not day by day
    assert summary["captured_predictions"] >= summary["labelled_rows_read"]


def test_the_cap_stops_the_gathering_short_of_the_target() -> None:
    store = MemoryStore()
    serve_days(store, 10)
    end = floor_hour(NOW)  # the cap's start on an hour: every ride of the 72 hours before it
    rides = gather_recent(store, end, 10_000, timedelta(days=3))
    assert len(rides) == 3 * 24 * PER_HOUR
    assert rides.summary["window"]["start"] == utc_iso(end - timedelta(days=3))


def test_nothing_labelled_reads_to_the_cap_and_returns_no_rows() -> None:
    rides = gather_recent(MemoryStore(), NOW, 500, timedelta(days=5))
    assert len(rides) == 0 and rides.summary["labelled_rows"] == 0
    assert rides.summary["ranges_read"] >= 1
