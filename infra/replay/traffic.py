"""The replayed traffic: every row of the TLC files as a client sends it, in pickup-time order, on the
simulated clock; the actual durations exactly as the files have them, reported at each ride's dropoff.

Clock. TLC times are New York local; the simulated clock is UTC (ambiguous local times of the autumn
change are read as daylight time, the spring gap's are shifted forward). day1 is the first calendar day
(New York) of the first replay file's month (from its name, else of its median pickup); dayN starts at
00:00 New York of day1 + N - 1 days. A ride is sent at its pickup, or at day1 00:00 if its meter clock says
earlier; its actual is reported at its dropoff, or when it was sent if the dropoff is earlier (a client
cannot report a ride it has not sent); rides are replayed up to the end of the last file, or of --days.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from training.data import DROPOFF, PICKUP, month_from_name, read_bytes
from trip_core.capture import Actual
from trip_core.contracts import MONITOR_STEP, RideRequest

NEW_YORK = "America/New_York"
INPUT_COLUMNS = [PICKUP, DROPOFF, "PULocationID", "DOLocationID", "trip_distance"]
INJECTION = re.compile(r"^(distance|duration)\*(\d+(?:\.\d*)?)@day(\d+)$")


@dataclass(frozen=True)
class Injection:
    """`distance*1.2@day10`: trip_distance of the rides picked up from day 10 on multiplied (their actual
    durations unchanged); `duration*1.25@day10`: their actual durations multiplied (inputs unchanged)."""

    target: str
    factor: float
    day: int

    @classmethod
    def parse(cls, spec: str) -> Injection:
        match = INJECTION.match(spec.strip())
        if not match or int(match.group(3)) < 1:
            raise ValueError(f"--inject {spec!r}: expected distance*FACTOR@dayN or duration*FACTOR@dayN")
        return cls(match.group(1), float(match.group(2)), int(match.group(3)))

    def starts(self, day1: datetime) -> datetime:
        """New York local (naive) start of the injection."""
        return day1 + timedelta(days=self.day - 1)


@dataclass(frozen=True)
class Traffic:
    """One entry per ride sent, in sending order; times are UTC epoch seconds."""

    day1: datetime  # New York local, naive
    first_ride: float
    end: float  # the replay stops after the monitor run at or after this moment
    ride_id: np.ndarray
    payload: list[bytes]
    sent_at: np.ndarray
    reported_at: np.ndarray
    duration_minutes: np.ndarray
    injected_at: float | None = None

    def __len__(self) -> int:
        return len(self.payload)


def reported_in(traffic: Traffic, hour: datetime) -> np.ndarray:
    """The rides (indices, sending order) whose actual the client reports in [hour, hour + MONITOR_STEP)."""
    start = hour.timestamp()
    mask = (traffic.reported_at >= start) & (traffic.reported_at < start + MONITOR_STEP.total_seconds())
    return np.flatnonzero(mask)


def actuals_reported(
    traffic: Traffic, hour: datetime, given: Mapping[int, str]
) -> list[tuple[Actual, float]]:
    """The actuals the client reports in the hour, each named by the prediction id its ride was given
    (`given`: ride id -> id, read from the predictions stream; a rejected ride has none, so no actual),
    with the moment it is reported (UTC epoch seconds)."""
    return [
        (
            Actual(given[int(traffic.ride_id[i])], float(traffic.duration_minutes[i])),
            float(traffic.reported_at[i]),
        )
        for i in reported_in(traffic, hour)
        if int(traffic.ride_id[i]) in given
    ]


def monitor_hours(traffic: Traffic) -> list[datetime]:
    """The scheduled runs: every hour after the first ride's, up to the first at or after the end + a step."""
    step = MONITOR_STEP.total_seconds()
    first = traffic.first_ride // step * step
    count = int(np.ceil((traffic.end - first) / step)) + 1
    return [datetime.fromtimestamp(first + step * (k + 1), UTC) for k in range(count)]


def utc_seconds(local: pd.Series) -> np.ndarray:
    """New York naive datetimes -> UTC epoch seconds (float)."""
    aware = local.dt.tz_localize(NEW_YORK, ambiguous=np.ones(len(local), bool), nonexistent="shift_forward")
    return aware.dt.tz_convert("UTC").astype("int64").to_numpy() / 1e6 if len(local) else np.empty(0)


def read_rows(files: Sequence[str]) -> pd.DataFrame:
    """Every row of the files (no filtering: what the clients of those months sent), pickup-time order."""
    frames = [pq.read_table(io.BytesIO(read_bytes(f)), columns=INPUT_COLUMNS).to_pandas() for f in files]
    frame = pd.concat(frames, ignore_index=True)
    for column in (PICKUP, DROPOFF):
        frame[column] = frame[column].astype("datetime64[us]")
    return frame.sort_values(PICKUP, kind="stable").reset_index(drop=True)


def first_day(files: Sequence[str], frame: pd.DataFrame) -> datetime:
    month = month_from_name(files[0]) or f"{frame[PICKUP].median():%Y-%m}"
    return datetime.strptime(f"{month}-01", "%Y-%m-%d")


def build_traffic(
    files: Sequence[str], injections: Sequence[Injection] = (), days: int | None = None, first_id: int = 1
) -> Traffic:
    """`first_id`: the first ride id (ids count up in sending order)."""
    frame = read_rows(files)
    day1 = first_day(files, frame)
    if days is not None:
        frame = frame[frame[PICKUP] < day1 + timedelta(days=days)].reset_index(drop=True)
    duration = (frame[DROPOFF] - frame[PICKUP]).dt.total_seconds().to_numpy() / 60.0
    for injection in injections:
        picked_after = (frame[PICKUP] >= injection.starts(day1)).to_numpy()
        if injection.target == "distance":
            frame["trip_distance"] = np.where(
                picked_after, frame["trip_distance"] * injection.factor, frame["trip_distance"]
            )
        else:
            duration = np.where(picked_after, duration * injection.factor, duration)
    sent_at = utc_seconds(frame[PICKUP].clip(lower=pd.Timestamp(day1)))
    ride_ids = np.arange(first_id, first_id + len(frame), dtype=np.int64)
    starts = [utc_seconds(pd.Series([pd.Timestamp(i.starts(day1))]))[0] for i in injections]
    end = utc_seconds(pd.Series([pd.Timestamp(day1 + timedelta(days=days))]))[0] if days else sent_at.max()
    return Traffic(
        day1=day1,
        first_ride=float(sent_at.min()),
        end=float(end),
        ride_id=ride_ids,
        payload=[
            json.dumps(RideRequest.from_row(int(rid), row).to_payload()).encode()
            for rid, row in zip(ride_ids, frame.itertuples(index=False), strict=True)
        ],
        sent_at=sent_at,
        reported_at=np.maximum(utc_seconds(frame[DROPOFF]), sent_at),
        duration_minutes=duration,
        injected_at=min(starts) if starts else None,
    )
