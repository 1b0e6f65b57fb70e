"""Where the schedule stands (lambda_monitor.schedule): the due windows after the state's last end, a
backlog in bounded chunks, windows too old to publish skipped, and monitor/state.json read strictly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lambda_monitor.schedule import (
    StateError,
    decode_state,
    due_windows,
    encode_state,
    fresh_start,
    latest_due_end,
)
from tests.doubles.monitor import SCHEDULED_AT, SCHEDULED_DAY
from trip_core.contracts import METRIC_MAX_AGE, MONITOR_STATE_KEY

NOW, DAY = SCHEDULED_AT, SCHEDULED_DAY
HOUR = timedelta(hours=1)
CAP = 24


def test_the_latest_window_and_a_short_catch_up() -> None:
    (only,) = due_windows(None, NOW, CAP).windows
    assert only == DAY and latest_due_end(NOW) == DAY.end
    caught = due_windows(DAY.end - 3 * HOUR, NOW, CAP)
    assert [w.end for w in caught.windows] == [DAY.end - h * HOUR for h in (2, 1, 0)]
    assert caught.behind == 0 and caught.skipped is None and caught.lag_after(3) == timedelta(0)
    assert due_windows(DAY.end, NOW, CAP).windows == []  # already evaluated: nothing is due
    unaligned = due_windows(DAY.end - timedelta(minutes=59), NOW, CAP)  # a state of an older monitor
    assert unaligned.windows == [DAY]


def test_a_backlog_is_taken_oldest_first_in_chunks_of_the_cap() -> None:
    """30 h behind: the 24 oldest due windows, 6 left for the next run, none skipped (the old rule kept
    the newest 24 and gave the 6 oldest up)."""
    behind = due_windows(DAY.end - 30 * HOUR, NOW, CAP)
    assert len(behind.windows) == CAP and behind.windows[0].end == DAY.end - 29 * HOUR
    assert behind.behind == 6 and behind.lag_after(CAP) == 6 * HOUR and behind.skipped is None
    assert behind.lag_after(0) == 30 * HOUR
    assert [b.end - a.end for a, b in zip(behind.windows, behind.windows[1:], strict=False)] == [HOUR] * 23
    # a run that is still behind stamps a window's metrics at its own time, one that catches up at now
    assert behind.metrics_time(behind.windows[0], NOW) == behind.windows[0].end + HOUR
    caught = due_windows(behind.windows[-1].end, NOW, CAP)
    assert caught.behind == 0 and caught.metrics_time(caught.windows[0], NOW) == NOW


def test_windows_too_old_to_publish_are_skipped_as_one_range() -> None:
    """Four months behind: the windows CloudWatch would take no metric of are skipped (a range, not a
    list of 2,000 ends); the rest is due, 24 a run."""
    four_months = due_windows(DAY.end - timedelta(days=120), NOW, CAP)
    skipped = four_months.skipped
    assert skipped is not None and skipped.first_end == DAY.end - timedelta(days=120) + HOUR
    oldest_due = four_months.windows[0].end
    assert skipped.last_end + HOUR == oldest_due and oldest_due == DAY.end - METRIC_MAX_AGE + HOUR
    assert skipped.count == (skipped.last_end - skipped.first_end) // HOUR + 1
    assert len(four_months.windows) == CAP
    assert four_months.lag_after(CAP) == METRIC_MAX_AGE - CAP * HOUR
    assert NOW - four_months.metrics_time(four_months.windows[0], NOW) < METRIC_MAX_AGE  # still published
    ancient = due_windows(datetime(1, 1, 1, tzinfo=UTC), NOW, CAP)  # a state of year 1: no endless backlog
    assert ancient.windows == four_months.windows and ancient.skipped is not None


def test_a_fresh_start_evaluates_one_runs_worth() -> None:
    restarted = due_windows(fresh_start(NOW, CAP), NOW, CAP)
    assert len(restarted.windows) == CAP and restarted.windows[-1] == DAY and restarted.behind == 0


def test_the_state_round_trips() -> None:
    assert decode_state(encode_state(DAY.end), NOW) == DAY.end
    assert json.loads(encode_state(DAY.end)) == {"last_window_end": "2023-03-07T05:00:00Z"}
    assert decode_state(b'{"last_window_end": "2023-03-07T00:00:00-05:00"}', NOW) == DAY.end


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (b"not json", "body", "is not JSON"),
        (b"", "body", "is not JSON"),
        (b"\xff\xfe{}", "body", "is not JSON"),
        (b'["2023-03-07T05:00:00Z"]', "body", "is not a JSON object but list"),
        (b'{"last_end": "2023-03-07T05:00:00Z"}', "last_window_end", "is missing (keys: ['last_end'])"),
        (b'{"last_window_end": "2023-03-07T05:00:00Z", "x": 1}', "body", "has unknown key(s) ['x']"),
        (b'{"last_window_end": 1678165200}', "last_window_end", "is not a text but int"),
        (b'{"last_window_end": null}', "last_window_end", "is not a text but NoneType"),
        (b'{"last_window_end": "yesterday"}', "last_window_end", "is not an ISO 8601 time: 'yesterday'"),
        (b'{"last_window_end": "9999-12-31T23:59:59-01:00"}', "last_window_end", "is not an ISO 8601 time"),
        (b'{"last_window_end": "2023-03-07T06:00:00Z"}', "last_window_end", "is in the future"),
        (b'{"last_window_end": "9999-12-31T23:00:00Z"}', "last_window_end", "is in the future"),
    ],
)
def test_an_unreadable_state_names_the_field_and_the_reason(body: bytes, field: str, reason: str) -> None:
    with pytest.raises(StateError) as raised:
        decode_state(body, NOW)
    assert raised.value.field == field and raised.value.reason.startswith(reason), raised.value
    assert str(raised.value).startswith(f"{MONITOR_STATE_KEY}: {field} ")


@pytest.mark.parametrize(
    "state",
    [
        {"last_window_end": "x" * 10_000},
        {f"key-{i:05d}-" + "k" * 100: i for i in range(10_000)},
        {"last_window_end": "2023-03-07T05:00:00Z", **{f"extra-{i}": i for i in range(10_000)}},
    ],
)
def test_what_an_error_shows_of_a_bad_state_is_short(state: dict[str, object]) -> None:
    with pytest.raises(StateError) as raised:
        decode_state(json.dumps(state).encode(), NOW)
    assert len(str(raised.value)) < 400
