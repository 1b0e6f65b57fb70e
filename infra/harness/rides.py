"""Rides for the scenarios: real rides of a month, deliberately bad records, and the model's own answer.

`ride_payload` is the one place a ride payload (docs/architecture.md, "Input ride") is built.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from trip_core.bundle import ServingBundle
from trip_core.contracts import RideRequest
from trip_core.features import compute_features
from trip_core.rides import new_york_to_utc, to_new_york_naive

ROOT = Path(__file__).resolve().parents[2]

# a valid ride the bad records are mutations of
OK_RIDE: dict[str, Any] = {
    "PULocationID": 130,
    "DOLocationID": 205,
    "trip_distance": 3.66,
    "pickup_datetime": "2023-03-06T14:30:00",
}


def ride_payload(
    ride_id: int | str, pu: int, do: int, distance: float, pickup: datetime | None = None
) -> dict[str, Any]:
    """The input-ride payload; without `pickup` the service uses the record's arrival time."""
    return RideRequest(ride_id, pu, do, distance, pickup).to_payload()


def pickup_window(rides: Iterable[dict[str, Any]]) -> tuple[datetime, datetime]:
    """[first pickup, last pickup + 1 s) in UTC of ride objects (a payload's `ride`): the monitor backfill
    that holds exactly these rides' pickup times."""
    local = np.array([r["pickup_datetime"] for r in rides], dtype="datetime64[s]")
    utc = new_york_to_utc(np.array([local.min(), local.max()]))
    first, last = (moment.astype(datetime).replace(tzinfo=UTC) for moment in utc)
    return first, last + timedelta(seconds=1)


@dataclass
class Ride:
    ride_id: Any
    payload: bytes
    good: bool
    duration: float | None = None  # actual minutes (good rides)

    def fields(self) -> dict[str, Any]:
        """The payload's ride object (good rides)."""
        ride: dict[str, Any] = json.loads(self.payload)["ride"]
        return ride

    def dropoff_utc(self) -> datetime:
        """When the client reports the actual duration: pickup + duration (good rides with a pickup)."""
        local = np.datetime64(self.fields()["pickup_datetime"], "s")
        pickup = new_york_to_utc(np.array([local]))[0].astype(datetime).replace(tzinfo=UTC)
        return pickup + timedelta(minutes=self.duration or 0.0)


def real_rides(
    month: str | Path, count: int, seed: int, id_base: int, end: datetime | None = None
) -> list[Ride]:
    """`count` consecutive real rides of `month` (cleaned like training) in pickup order, moved by whole
    weeks so that the last is picked up just before `end` (default now): traffic as live clients send it.

    Consecutive, not sampled: the monitor's windows are pickup-time windows compared with a seasonal
    reference, and the loop retrains on the rides picked up in its lookback. Whole weeks keep every ride's
    New York time of week. `seed` picks which of the month's weeks the rides come from.
    """
    from training.data import PICKUP, load_month

    frame = load_month(str(ROOT / month)).frame.sort_values(PICKUP, kind="stable")
    pickups = frame[PICKUP].to_numpy()
    end_local = to_new_york_naive(end or datetime.now(UTC)).replace(microsecond=0)
    shifts = _week_shifts(pickups, np.datetime64(end_local), count)
    if not shifts:
        raise ValueError(f"{month} has fewer than {count} rides before any week-aligned end")
    weeks = shifts[seed % len(shifts)]
    stop = int(np.searchsorted(pickups, np.datetime64(end_local) - weeks))
    chunk = frame.iloc[stop - count : stop]
    return [
        Ride(
            ride_id=id_base + i,
            payload=json.dumps(
                ride_payload(
                    id_base + i,
                    int(row.PULocationID),
                    int(row.DOLocationID),
                    float(row.trip_distance),
                    (getattr(row, PICKUP) + weeks).to_pydatetime(),
                )
            ).encode(),
            good=True,
            duration=round(float(row.duration), 3),
        )
        for i, row in enumerate(chunk.itertuples(index=False))
    ]


def _week_shifts(pickups: np.ndarray, end: np.datetime64, count: int) -> list[np.timedelta64]:
    """Every whole-week shift that puts `count` consecutive rides of `pickups` right before `end`."""
    week = np.timedelta64(7, "D")
    first = (end - pickups[-1]) // week + 1  # the first shift whose end falls inside the month
    shifts: list[np.timedelta64] = []
    for weeks in range(int(first), int((end - pickups[0]) // week) + 1):
        if np.searchsorted(pickups, end - weeks * week) >= count:
            shifts.append(weeks * week)
    return shifts


def bad_record(ride_id: int, payload: Any) -> Ride:
    """A record the service must reject: bytes as they are, a dict payload with its ride_id added."""
    if isinstance(payload, dict):
        payload = {**payload, "ride_id": ride_id}
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Ride(ride_id, data, good=False)


def mixed_in(rides: list[Ride], bad: list[Ride], seed: int) -> list[Ride]:
    """`rides` with the `bad` records inserted at random places (the good ones keep their order)."""
    out = list(rides)
    rng = random.Random(seed)
    for record in bad:
        out.insert(rng.randrange(len(out) + 1), record)
    return out


def predict_in_process(bundle: ServingBundle, rides: list[dict[str, Any]]) -> np.ndarray:
    """What `bundle` predicts for these ride objects (the `ride` of a payload), in minutes."""
    features = compute_features(
        np.array([r["PULocationID"] for r in rides]),
        np.array([r["DOLocationID"] for r in rides]),
        np.array([r["trip_distance"] for r in rides], dtype=np.float64),
        np.array([r["pickup_datetime"] for r in rides], dtype="datetime64[s]"),
    )
    predicted: np.ndarray = bundle.predict(features)
    return predicted
