"""Capture objects as the predict function writes them, for tests that fill a bucket by hand."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np

from trip_core.capture import CaptureBatch, encode_capture, pickup_hour_groups
from trip_core.contracts import PREDICTION_ID_TOKEN_HEX, capture_key, prediction_id
from trip_core.rides import to_new_york_naive

TEST_ID_HOUR = datetime(2023, 3, 6, 14, tzinfo=UTC)


def capture_objects(batch: CaptureBatch, shard_id: str, first_seq: str) -> dict[str, bytes]:
    """key -> body: one object per UTC pickup hour of the batch, named by its shard and first sequence."""
    return {
        capture_key(hour, shard_id, first_seq): encode_capture(
            batch.subset(np.isin(np.arange(len(batch)), rows))
        )
        for hour, rows in pickup_hour_groups(batch.pickup_datetime64())
    }


def live_pickups(count: int, before: datetime, span_seconds: int = 240) -> np.ndarray:
    """`count` New York local pickup times (datetime64[s], in order) spread over the `span_seconds` up to
    `before`: rides of live traffic, inside a lookback or window that ends at `before`."""
    last = np.datetime64(to_new_york_naive(before).replace(microsecond=0), "s")
    offsets = np.linspace(span_seconds, 1, count).astype(np.int64).astype("timedelta64[s]")
    return last - offsets


def rides_of_day(columns: dict[str, np.ndarray], local_day: str) -> dict[str, np.ndarray]:
    """The rows (columns as in tests.monitor_months) picked up on that New York day."""
    first = np.datetime64(local_day, "s")
    pickup = columns["pickup_datetime"]
    inside = np.flatnonzero((pickup >= first) & (pickup < first + np.timedelta64(1, "D")))
    return {name: values[inside] for name, values in columns.items()}


def pid(ride_id: object) -> str:
    """A well-formed prediction id standing for the one the service gave `ride_id`'s prediction (the
    readers match ids, only the actuals function reads the hour in them)."""
    return prediction_id(
        TEST_ID_HOUR, hashlib.sha256(str(ride_id).encode()).hexdigest()[:PREDICTION_ID_TOKEN_HEX]
    )


def pids(ride_ids: Iterable[object]) -> list[str]:
    return [pid(ride) for ride in ride_ids]
