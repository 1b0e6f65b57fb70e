"""trip_core.event_window and the time helpers under it: New York -> UTC across the clock changes, the
partitions a range lists, the trimming of captures to the range, and the judging of actuals."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import numpy as np

from tests.doubles.captures import pid, pids
from tests.doubles.monitor import MemoryBlobs
from trip_core.capture import ACTUAL_REJECTION_REASONS, Actual, CaptureBatch
from trip_core.contracts import floor_hour, utc_hours
from trip_core.event_window import (
    actuals_prefixes,
    capture_prefixes,
    in_target_domain,
    join_actuals,
    judge_actuals,
    late_rows,
    latest_captures,
    read_actuals,
    read_captures,
)
from trip_core.rides import new_york_to_utc

START = datetime(2023, 3, 6, 5, tzinfo=UTC)  # midnight in New York


def _utc(*local: str) -> list[str]:
    converted = new_york_to_utc(np.array(local, dtype="datetime64[s]"))
    return [str(t) for t in converted]


def test_new_york_to_utc_follows_the_clock_changes() -> None:
    assert _utc("2023-03-06T08:15:00", "2023-07-01T08:15:00") == [
        "2023-03-06T13:15:00",
        "2023-07-01T12:15:00",
    ]
    # spring forward at 02:00 (02:30 does not exist: the offset before the change), and after it
    assert _utc("2023-03-12T01:59:59", "2023-03-12T02:30:00", "2023-03-12T03:00:00") == [
        "2023-03-12T06:59:59",
        "2023-03-12T07:30:00",
        "2023-03-12T07:00:00",
    ]
    # fall back: 01:30 happens twice, its first occurrence (EDT) is taken
    assert _utc("2023-11-05T01:30:00", "2023-11-05T02:30:00") == [
        "2023-11-05T05:30:00",
        "2023-11-05T07:30:00",
    ]
    assert _utc("NaT") == ["NaT"]


def test_a_range_lists_its_pickup_hours_and_the_report_hours_up_to_the_allowance() -> None:
    end = START + timedelta(hours=2)
    assert capture_prefixes(START, end) == [
        "captures/dt=2023-03-06/hour=05/",
        "captures/dt=2023-03-06/hour=06/",
    ]
    assert actuals_prefixes(START, end) == [f"actuals/dt=2023-03-06/hour={h:02d}/" for h in (5, 6, 7)]
    assert utc_hours(START + timedelta(minutes=30), START + timedelta(minutes=31)) == [START]
    assert floor_hour(datetime(2023, 3, 6, 5, 59, 59)) == START  # naive is UTC


def _batch(
    ride_ids: list[int], pickups: list[str], captured_at: str = "2023-03-06T12:00:00Z"
) -> CaptureBatch:
    n = len(ride_ids)
    return CaptureBatch(
        "m",
        "3",
        captured_at,
        pids(ride_ids),
        list(ride_ids),
        pickups,
        [130] * n,
        [205] * n,
        [2.0] * n,
        [9.0] * n,
    )


def test_read_captures_keeps_only_rides_picked_up_in_the_range() -> None:
    blobs = MemoryBlobs()
    # New York 23:59 (before), 00:00 and 00:59 (inside [05:00, 06:00) UTC), 01:00 (after)
    pickups = ["2023-03-05T23:59:59", "2023-03-06T00:00:00", "2023-03-06T00:59:59", "2023-03-06T01:00:00"]
    blobs.put_capture(_batch([1, 2, 3, 4], pickups))
    blobs.objects["captures/dt=2023-03-06/hour=05/corrupt.json.gz"] = b"nope"
    problems: list[str] = []
    (batch,) = read_captures(blobs, START, START + timedelta(hours=1), problems)
    assert batch.ride_id == [2, 3] and len(problems) == 1 and "corrupt" in problems[0]
    assert late_rows([batch], START) == 2  # both captured at 12:00, after 05:00 + 1 h
    assert late_rows([batch], START + timedelta(hours=11)) == 0


def test_judged_actuals_keep_the_last_valid_line_of_a_ride_and_count_every_reason() -> None:
    resent = pid("1 resent")  # the ride sent again with the same inputs: its second prediction's id
    lines: list[Actual | str] = [
        Actual(pid(1), 10.0),
        "not_positive",
        Actual(pid(1), 12.0),
        Actual(resent, 13.0),
        Actual(pid(2), 5.0),
        Actual(pid(9), 4.0),
        Actual(pid(3), 7.0),
    ]
    owners = {pid(1): "1", resent: "1", pid(2): "2", pid(3): "3"}
    durations, rejected = judge_actuals(lines, owners, conflicting={"3"})
    assert durations == {"1": 13.0, "2": 5.0}  # either prediction of ride 1 labels it; 3 is labelled by none
    assert rejected == {**dict.fromkeys(ACTUAL_REJECTION_REASONS, 0), "not_positive": 1, "duplicate": 2,
                        "unknown_prediction": 1}  # fmt: skip
    truth = join_actuals([2, "1", 7], durations)
    assert truth[:2].tolist() == [5.0, 13.0] and np.isnan(truth[2])
    assert in_target_domain(np.array([0.99, 1.0, 60.0, 60.01, np.nan])).tolist() == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_read_actuals_knows_rides_of_the_day_before_and_the_allowance_and_ignores_later_reports() -> None:
    blobs = MemoryBlobs()
    blobs.put_capture(_batch([1], ["2023-03-06T00:30:00"]), first_seq="a")  # in the window
    blobs.put_capture(_batch([2], ["2023-03-05T12:00:00"]), first_seq="b")  # the day before
    blobs.put_capture(_batch([4], ["2023-03-06T01:10:00"]), first_seq="c")  # in the allowance after it
    blobs.put_capture(_batch([5], ["2023-03-06T02:10:00"]), first_seq="d")  # later still
    reported = [Actual(pid(1), 20.0), Actual(pid(2), 900.0), Actual(pid(3), 5.0), Actual(pid(4), 15.0),
                Actual(pid(5), 1.0)]  # fmt: skip
    blobs.put_actuals(START + timedelta(minutes=100), "x", reported)
    blobs.put_actuals(START + timedelta(hours=2), "late", [Actual(pid(1), 99.0)])  # after end + allowance
    window = read_captures(blobs, START, START + timedelta(hours=1), [])
    judged = read_actuals(blobs, START, START + timedelta(hours=1), window, [])
    assert (
        judged.durations == {"1": 20.0, "2": 900.0, "4": 15.0} and judged.rejected["unknown_prediction"] == 2
    )
    assert (judged.objects, judged.lines) == (1, 5) and judged.conflicting_rides == 0


def test_a_ride_id_captured_with_different_inputs_is_labelled_by_none_and_counted() -> None:
    """A rides producer re-sending another rider's ride_id with other inputs: neither capture is the ride."""
    blobs = MemoryBlobs()
    blobs.put_capture(_batch([1, 2, 3], ["2023-03-06T00:10:00"] * 3), first_seq="a")
    resent = _batch([1, 2], ["2023-03-06T00:10:00"] * 2, "2023-03-06T12:05:00Z")
    resent = dataclasses.replace(resent, prediction_id=pids(["1 again", "2 again"]), trip_distance=[2.0, 7.5])
    blobs.put_capture(
        resent, first_seq="b"
    )  # ride 1 resent as it was (one ride), ride 2 with another distance
    early = _batch([3], ["2023-03-05T09:00:00"])  # ride 3 with another pickup, the day before the window
    blobs.put_capture(dataclasses.replace(early, prediction_id=pids(["3 early"])), first_seq="c")
    lines = [Actual(pid(r), 10.0 + i) for i, r in enumerate(["1", "2", "3", "1 again", "2 again", "3 early"])]
    lines[3] = Actual(pid("1 again"), 10.0)  # the resend labelled as the ride was (test_disputed_...)
    blobs.put_actuals(START + timedelta(minutes=30), "x", lines)
    window = read_captures(blobs, START, START + timedelta(hours=1), [])
    judged = read_actuals(blobs, START, START + timedelta(hours=1), window, [])
    assert judged.durations == {"1": 10.0} and judged.conflicting_rides == 2
    assert judged.to_json()["conflicting_rides"] == 2


def test_a_ride_resent_as_it_was_and_labelled_differently_through_its_two_ids_is_labelled_by_none() -> None:
    """Another client replaying a ride exactly gets an id of it too: which label is the rider's is unknown."""
    blobs = MemoryBlobs()
    blobs.put_capture(_batch([1, 2], ["2023-03-06T00:10:00"] * 2), first_seq="a")
    replay = _batch([1], ["2023-03-06T00:10:00"], "2023-03-06T00:20:00Z")
    blobs.put_capture(dataclasses.replace(replay, prediction_id=pids(["1 replayed"])), first_seq="b")
    lines = [Actual(pid("1"), 12.0), Actual(pid("2"), 8.0), Actual(pid("1 replayed"), 59.0)]
    blobs.put_actuals(START + timedelta(minutes=30), "x", lines)
    window = read_captures(blobs, START, START + timedelta(hours=1), [])
    judged = read_actuals(blobs, START, START + timedelta(hours=1), window, [])
    assert judged.durations == {"2": 8.0} and judged.conflicting_rides == 1


class _ListingTogether:
    """A bucket whose LIST returns only once two LISTs are in flight together."""

    def __init__(self) -> None:
        self.together = threading.Barrier(2, timeout=10)
        self.prefixes: list[str] = []

    def list_keys(self, prefix: str) -> list[str]:
        self.together.wait()  # BrokenBarrierError when the reader lists one prefix at a time
        self.prefixes.append(prefix)
        return []

    def get(self, key: str) -> bytes | None:
        return None


def test_the_partitions_of_a_range_are_listed_concurrently() -> None:
    """A 24 h window lists 74 partitions and a year's backfill about 17,500: one at a time, S3's LIST
    latency alone would take most of the function's 15 minutes."""
    source = _ListingTogether()
    start = datetime(2023, 3, 6, 5, tzinfo=UTC)
    assert read_captures(source, start, start + timedelta(hours=2), []) == []
    assert sorted(source.prefixes) == sorted(capture_prefixes(start, start + timedelta(hours=2)))


def test_latest_captures_keep_each_ride_once_in_its_latest_capture() -> None:
    pickup = "2023-03-06T10:00:00"
    first = _batch([1, 2, 3], [pickup] * 3, "2023-03-06T20:00:00Z")
    retried = CaptureBatch("m", "4", "2023-03-06T20:01:00Z", pids(["1", 3]), ["1", 3], [pickup] * 2, [1] * 2,
                           [2] * 2, [1.0] * 2, [3.0] * 2)  # fmt: skip
    kept = latest_captures([retried, first])  # "1" and 1 are one ride
    assert [(b.model_version, b.ride_id) for b in kept] == [("4", ["1", 3]), ("3", [2])]
    assert latest_captures([]) == []
