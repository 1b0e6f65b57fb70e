"""The monitor's liveness on moto S3 + CloudWatch (issue 14): a four-month gap since monitor/state.json's
last window is caught up over several runs, each listing a bounded number of partitions and advancing the
state on S3, with MonitorLagHours falling run by run; an unreadable state.json is kept aside under
monitor/unreadable-state/, counted in MonitorErrors and logged with its field, and the schedule goes on.

Tally (printed with -s): the runs of the catch-up, their ListObjectsV2 calls and the lag after each.
"""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambda_monitor.aws import aws_ports
from lambda_monitor.config import MonitorConfig
from lambda_monitor.schedule import encode_state
from lambda_monitor.service import run_event
from trip_core.contracts import (
    ACTUALS_RIDE_LOOKBACK,
    LATE_ALLOWANCE,
    METRIC_MAX_AGE,
    MONITOR_STATE_KEY,
    MONITOR_WINDOW,
    parse_utc,
    report_key,
    unreadable_state_key,
)

NOW = datetime(2023, 3, 7, 6, 0, 0, tzinfo=UTC)
WINDOW_END = datetime(2023, 3, 7, 5, tzinfo=UTC)
HOUR = timedelta(hours=1)
CONFIG = MonitorConfig(
    models_bucket="models", capture_bucket="capture", rejected_bucket="rejected", max_catch_up_hours=6
)
# A window lists its captures, its actuals' report hours, the captures of the rides those may label
# (before and after it) in the capture bucket, and its rejected rides' processing hours
LISTINGS_PER_WINDOW = (
    MONITOR_WINDOW * 3 + ACTUALS_RIDE_LOOKBACK + LATE_ALLOWANCE * 3
) // HOUR + 1  # + the earlier reports (one page)


def _state(s3: Any) -> bytes:
    body: bytes = s3.get_object(Bucket="capture", Key=MONITOR_STATE_KEY)["Body"].read()
    return body


def _lag_points(cloudwatch: Any, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """MonitorLagHours per 1-minute period (the runs are an hour apart): (time, the period's Minimum)."""
    stats = cloudwatch.get_metric_statistics(
        Namespace="TripDuration", MetricName="MonitorLagHours", StartTime=start, EndTime=end,
        Period=60, Statistics=["Minimum"],
    )  # fmt: skip
    return sorted((p["Timestamp"], p["Minimum"]) for p in stats["Datapoints"])


def test_a_four_month_gap_is_caught_up_over_bounded_runs_each_advancing_the_state(
    monitor_aws: tuple[Any, Any],
) -> None:
    s3, cloudwatch = monitor_aws
    listings: list[int] = []
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: listings.append(1))
    s3.put_object(
        Bucket="capture", Key=MONITOR_STATE_KEY, Body=encode_state(WINDOW_END - timedelta(days=120))
    )
    ports = aws_ports(CONFIG, s3=s3, cloudwatch=cloudwatch)
    runs: list[tuple[int, float]] = []
    previous = None
    for hour in range(3):
        now = NOW + hour * HOUR
        listings.clear()
        answer = run_event({"source": "aws.events"}, ports, CONFIG, now)
        runs.append((len(listings), answer["behind_hours"]))
        ends = [parse_utc(end) for end in answer["evaluated"]]
        assert len(ends) == CONFIG.max_catch_up_hours and len(listings) <= len(ends) * LISTINGS_PER_WINDOW
        assert json.loads(_state(s3)) == {"last_window_end": answer["evaluated"][-1]}  # advanced on S3
        if previous is not None:
            assert ends[0] == previous + HOUR  # where the last run stopped: nothing skipped, nothing twice
        previous = ends[-1]
    first = json.loads(
        s3.get_object(Bucket="capture", Key=report_key(WINDOW_END - METRIC_MAX_AGE + HOUR, "json"))[
            "Body"
        ].read()
    )
    skipped = first["skipped_windows"]
    assert skipped["count"] == (parse_utc(skipped["last_end"]) - parse_utc(skipped["first_end"])) // HOUR + 1
    assert parse_utc(skipped["first_end"]) == WINDOW_END - timedelta(days=120) + HOUR
    lags = [behind for _, behind in runs]
    assert lags == [METRIC_MAX_AGE / HOUR - 6 - 5 * k for k in range(3)]  # each run: 6 done, 1 more due
    published = _lag_points(cloudwatch, NOW - HOUR, NOW + 3 * HOUR)
    assert [value for _, value in published] == lags  # the lag alarm's Minimum: once each run is done
    cap = CONFIG.max_catch_up_hours
    print(f"\n[monitor/liveness] 120-day gap, {cap} windows a run: (ListObjectsV2, h behind) {runs}")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"\x00\x01 not json", "body"),
        (b'{"lastWindowEnd": "2023-03-07T05:00:00Z"}', "last_window_end"),
        (b'{"last_window_end": ["2023-03-07T05:00:00Z"]}', "last_window_end"),
        (b'{"last_window_end": "2023-03-09T05:00:00Z"}', "last_window_end"),  # in the future
    ],
)
def test_an_unreadable_state_is_kept_aside_counted_logged_and_the_schedule_goes_on(
    monitor_aws: tuple[Any, Any], log_stream: io.StringIO, body: bytes, field: str
) -> None:
    s3, cloudwatch = monitor_aws
    s3.put_object(Bucket="capture", Key=MONITOR_STATE_KEY, Body=body)
    config = replace(CONFIG, max_catch_up_hours=2)
    answer = run_event({"source": "aws.events"}, aws_ports(config, s3=s3, cloudwatch=cloudwatch), config, NOW)
    aside = unreadable_state_key(NOW)
    assert s3.get_object(Bucket="capture", Key=aside)["Body"].read() == body  # as it was
    assert json.loads(_state(s3)) == {"last_window_end": "2023-03-07T05:00:00Z"}
    assert answer["evaluated"] == ["2023-03-07T04:00:00Z", "2023-03-07T05:00:00Z"]
    report = json.loads(
        s3.get_object(Bucket="capture", Key=report_key(WINDOW_END - HOUR, "json"))["Body"].read()
    )
    assert report["state_problem"]["field"] == field and report["state_problem"]["set_aside_key"] == aside
    assert report["errors"] == 1 and report["problems"][0].startswith(f"{MONITOR_STATE_KEY}: {field} ")
    stats = cloudwatch.get_metric_statistics(
        Namespace="TripDuration", MetricName="MonitorErrors", StartTime=NOW - HOUR, EndTime=NOW + HOUR,
        Period=3600, Statistics=["Maximum"],
    )  # fmt: skip
    assert [p["Maximum"] for p in stats["Datapoints"]] == [1.0]  # the errors alarm's threshold
    (logged,) = [
        json.loads(line) for line in log_stream.getvalue().splitlines() if "state unreadable" in line
    ]
    assert (logged["level"], logged["field"], logged["set_aside_key"]) == ("ERROR", field, aside)
