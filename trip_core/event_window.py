"""The one reader of an event-time range [start, end) of the capture bucket, for the monitor and the
retrain loop (docs/architecture.md, "Event time"):

- captures: only the range's pickup-hour partitions are listed, and only rows whose pickup (UTC) lies
  in the range are kept;
- actuals: the partitions of the hours they were reported in, [start, end + LATE_ALLOWANCE); every line
  is accepted or rejected with its reason (trip_core.capture.ACTUAL_REJECTION_REASONS); a line labels
  the ride whose capture holds its prediction id (issued by the service, so a client can label only the
  predictions it was given); a ride id captured with different inputs is labelled by none (counted);
- the join of predictions with actuals, and the target domain quality is judged on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from trip_core.capture import (
    ACTUAL_DUPLICATE,
    ACTUAL_REJECTION_REASONS,
    ACTUAL_UNKNOWN_PREDICTION,
    Actual,
    CaptureBatch,
    decode_actuals,
    decode_capture,
)
from trip_core.contracts import (
    ACTUALS_PREFIX,
    ACTUALS_RIDE_LOOKBACK,
    CAPTURE_PREFIX,
    LATE_ALLOWANCE,
    MAX_DURATION_MINUTES,
    MIN_DURATION_MINUTES,
    hour_prefixes,
    parse_utc,
)

READ_THREADS = 16


class BlobSource(Protocol):
    """The capture bucket, read-only."""

    def list_keys(self, prefix: str) -> list[str]: ...

    def get(self, key: str) -> bytes | None: ...  # None when the key does not exist


def capture_prefixes(start: datetime, end: datetime) -> list[str]:
    """The pickup-hour partitions of captures overlapping [start, end)."""
    return hour_prefixes(CAPTURE_PREFIX, start, end)


def actuals_prefixes(start: datetime, end: datetime) -> list[str]:
    """The report-hour partitions of the actuals of rides picked up in [start, end)."""
    return hour_prefixes(ACTUALS_PREFIX, start, end + LATE_ALLOWANCE)


def _fetch(source: BlobSource, prefixes: Iterable[str]) -> list[tuple[str, bytes]]:
    """Every object under the prefixes, in prefix then key order; listed and read concurrently (a window
    lists dozens of hourly partitions, a long backfill thousands)."""
    with ThreadPoolExecutor(READ_THREADS) as pool:
        keys = [key for listed in pool.map(source.list_keys, prefixes) for key in listed]
        bodies = list(pool.map(source.get, keys))
    return [(key, body) for key, body in zip(keys, bodies, strict=True) if body is not None]


def _utc64(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "s")


def _within(batch: CaptureBatch, start: datetime, end: datetime) -> CaptureBatch | None:
    pickup = batch.pickup_utc64()
    inside = (pickup >= _utc64(start)) & (pickup < _utc64(end))
    if inside.all():
        return batch
    return batch.subset(inside) if inside.any() else None


def read_captures(
    source: BlobSource, start: datetime, end: datetime, problems: list[str]
) -> list[CaptureBatch]:
    """The captured rows of rides picked up in [start, end), by object (key order). An object that
    cannot be decoded is skipped and described in `problems`."""
    batches = []
    for key, body in _fetch(source, capture_prefixes(start, end)):
        try:
            decoded = decode_capture(body)
            parse_utc(decoded.captured_at)  # late captures are told by it
            batch = _within(decoded, start, end)
        except ValueError as error:  # RecordFormatError, or a time that is not one
            problems.append(f"capture object {key}: {error}")
            continue
        if batch is not None:
            batches.append(batch)
    return batches


def latest_captures(batches: Sequence[CaptureBatch]) -> list[CaptureBatch]:
    """Each ride (its id as text) once, in its latest capture (by captured_at; on a tie, the later
    object), in the batches' order. A Kinesis retry resumes at the first failed record, so the rides
    after it are captured again under the retried batch's own keys; a client may also send a ride twice."""
    if not batches:
        return []
    order = sorted(range(len(batches)), key=lambda i: batches[i].captured_at)
    ids = np.array([str(ride) for i in order for ride in batches[i].ride_id], dtype=object)
    _, last_reversed = np.unique(ids[::-1], return_index=True)  # the first seen backwards is the latest
    kept = np.zeros(ids.size, dtype=bool)
    kept[ids.size - 1 - last_reversed] = True
    bounds = np.cumsum([len(batches[i]) for i in order])[:-1]
    masks = dict(zip(order, np.split(kept, bounds), strict=True))
    return [b if masks[i].all() else b.subset(masks[i]) for i, b in enumerate(batches) if masks[i].any()]


def late_rows(batches: Iterable[CaptureBatch], end: datetime) -> int:
    """Rows captured after end + LATE_ALLOWANCE: a scheduled run could not have seen them."""
    due = end + LATE_ALLOWANCE
    return sum(len(b) for b in batches if parse_utc(b.captured_at) > due)


@dataclass(frozen=True)
class JudgedActuals:
    """The actuals reported for a range: accepted durations and rejected lines by reason."""

    durations: dict[str, float]  # ride id (as text) -> minutes, the last valid line of a ride
    rejected: dict[str, int]  # every reason of ACTUAL_REJECTION_REASONS -> lines
    objects: int
    lines: int
    conflicting_rides: int = 0  # the range's ride ids captured with different inputs: labelled by none

    def to_json(self) -> dict[str, object]:
        return {
            "objects": self.objects,
            "lines": self.lines,
            "accepted": len(self.durations),
            "rejected": dict(self.rejected),
            "conflicting_rides": self.conflicting_rides,
        }


def judge_actuals(
    lines: Iterable[Actual | str], owners: Mapping[str, str], conflicting: Collection[str] = ()
) -> tuple[dict[str, float], dict[str, int]]:
    """Decoded lines in report order -> (accepted durations by ride id, rejected lines by reason).
    `owners`: prediction id -> the ride id captured with it; `conflicting`: ride ids labelled by none."""
    rejected = dict.fromkeys(ACTUAL_REJECTION_REASONS, 0)
    durations: dict[str, float] = {}
    for line in lines:
        if isinstance(line, str):
            rejected[line] += 1
            continue
        ride = owners.get(line.prediction_id)
        if ride is None:
            rejected[ACTUAL_UNKNOWN_PREDICTION] += 1
            continue
        if ride in durations:
            rejected[ACTUAL_DUPLICATE] += 1
        durations[ride] = line.duration_minutes
    for ride in conflicting:
        durations.pop(ride, None)
    return durations, rejected


def read_actuals(
    source: BlobSource, start: datetime, end: datetime, captured: Sequence[CaptureBatch], problems: list[str]
) -> JudgedActuals:
    """The actuals reported for rides picked up in [start, end) (`captured`: every capture of them, a
    ride's superseded ones too: a client may label any prediction it was given). A prediction is known
    when it was captured with a pickup in [start - ACTUALS_RIDE_LOOKBACK, end + LATE_ALLOWANCE): the
    report hours also hold rides picked up shortly before the window and short rides of the allowance
    after it; those are no error, only not part of this window. A ride id captured in that range with
    different inputs (PU, DO, distance, pickup) is not one ride: none of its captures is labelled."""
    objects = _fetch(source, actuals_prefixes(start, end))
    lines = [line for _key, body in objects for line in decode_actuals(body)]
    before = read_captures(source, start - ACTUALS_RIDE_LOOKBACK, start, problems)
    after = read_captures(source, end, end + LATE_ALLOWANCE, problems)
    nearby = [*before, *captured, *after]
    owners = _owners(nearby)
    conflicting = conflicting_rides(nearby) | disputed_rides(lines, owners)
    durations, rejected = judge_actuals(lines, owners, conflicting)
    in_range = conflicting & {str(ride) for batch in captured for ride in batch.ride_id}
    return JudgedActuals(durations, rejected, len(objects), len(lines), len(in_range))


def _owners(batches: Iterable[CaptureBatch]) -> dict[str, str]:
    return {pid: str(ride) for b in batches for pid, ride in zip(b.prediction_id, b.ride_id, strict=True)}


def disputed_rides(lines: Iterable[Actual | str], owners: Mapping[str, str]) -> set[str]:
    """Ride ids labelled with different durations through different prediction ids: a resend of a ride
    with its own inputs is one ride to conflicting_rides, so another client replaying it exactly gets
    a prediction id of that ride too; which of the two is the rider cannot be told, so neither labels it."""
    first: dict[str, tuple[str, float]] = {}
    disputed: set[str] = set()
    for line in lines:
        if isinstance(line, str) or (ride := owners.get(line.prediction_id)) is None:
            continue
        pid, minutes = first.setdefault(ride, (line.prediction_id, line.duration_minutes))
        if pid != line.prediction_id and minutes != line.duration_minutes:
            disputed.add(ride)
    return disputed


def conflicting_rides(batches: Iterable[CaptureBatch]) -> set[str]:
    """Ride ids (as text) captured with different inputs: a client re-sent another ride's id (a resend
    with the same inputs, or a Kinesis retry, is one ride)."""
    first: dict[str, tuple[object, ...]] = {}
    conflicting: set[str] = set()
    for b in batches:
        rows = zip(
            b.ride_id, b.pu_location_id, b.do_location_id, b.trip_distance, b.pickup_datetime, strict=True
        )
        for ride, *inputs in rows:
            if first.setdefault(str(ride), tuple(inputs)) != tuple(inputs):
                conflicting.add(str(ride))
    return conflicting


def join_actuals(ride_ids: Sequence[object], durations: dict[str, float]) -> np.ndarray:
    """The actual minutes of each ride (NaN where none was accepted)."""
    return np.array([durations.get(str(ride), np.nan) for ride in ride_ids], dtype=np.float64)


def in_target_domain(minutes: np.ndarray) -> np.ndarray:
    """The rides whose actual duration lies in the training target's domain (the validation figures')."""
    return (minutes >= MIN_DURATION_MINUTES) & (minutes <= MAX_DURATION_MINUTES)
