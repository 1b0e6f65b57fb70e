"""infra/replay's own logic: the alarm evaluation (M of N, missing data, late datapoints), the template's
alarm rules, --inject specs and dayN, the traffic a client sends (every row, actuals as the file has them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from infra.replay.alarms import ALARM, OK, Published, evaluate, next_state
from infra.replay.template import AlarmRule, Template
from infra.replay.traffic import Injection, build_traffic
from lambda_monitor.ports import MetricDatum
from trip_core.contracts import METRICS_NAMESPACE

HOUR = timedelta(hours=1)
T0 = datetime(2023, 3, 6, tzinfo=UTC)


def rule(evaluation_periods: int = 3, datapoints: int = 2, missing: str = "notBreaching") -> AlarmRule:
    return AlarmRule("a", METRICS_NAMESPACE, "DriftShare", (), "Maximum", 3600, evaluation_periods,
                     datapoints, 0.5, "GreaterThanOrEqualToThreshold", missing)  # fmt: skip


def point(hour: int, value: float, published_hour: int | None = None) -> Published:
    at = T0 + HOUR * (hour if published_hour is None else published_hour)
    return Published(at, MetricDatum("DriftShare", value, "None", (), T0 + HOUR * hour))


def test_m_of_n_with_missing_data_as_the_rule_says() -> None:
    assert next_state(rule(), [0.6, None, 0.7], OK) == ALARM
    assert next_state(rule(), [0.6, None, 0.1], OK) == OK
    assert next_state(rule(missing="breaching"), [0.6, None, 0.1], OK) == ALARM
    assert next_state(rule(missing="ignore"), [None, None, None], ALARM) == ALARM
    assert next_state(rule(missing="missing"), [None, None, None], OK) == "INSUFFICIENT_DATA"


def test_periods_are_judged_on_what_was_published_by_then() -> None:
    times = [T0 + HOUR * h for h in range(4)]
    two_of_two = rule(evaluation_periods=2, datapoints=2)
    in_time = evaluate(two_of_two, [point(0, 0.9), point(1, 0.8)], times)
    assert [state for _, state in in_time.states] == [OK, ALARM, OK, OK]
    assert in_time.first_alarm() == T0 + HOUR
    # hour 1's datapoint published two hours late: never in a range together with hour 0's
    assert evaluate(two_of_two, [point(0, 0.9), point(1, 0.8, 3)], times).first_alarm() is None


def test_other_metrics_and_dimensions_do_not_count() -> None:
    versioned = Published(T0 + HOUR, MetricDatum("DriftShare", 0.9, "None", (("ModelVersion", "1"),), T0))
    other = Published(T0 + HOUR, MetricDatum("MAERatio", 9.0, "None", (), T0))
    assert evaluate(rule(1, 1), [versioned, other], [T0 + HOUR]).first_alarm() is None


def test_the_templates_monitor_alarms_resolve() -> None:
    rules = Template.load().alarm_rules(METRICS_NAMESPACE)
    assert {r.metric for r in rules} >= {"DriftShare", "MAERatio"}
    for r in rules:
        assert (
            "${" not in r.name and r.period_seconds > 0 and 1 <= r.datapoints_to_alarm <= r.evaluation_periods
        )


def test_inject_specs() -> None:
    assert Injection.parse("distance*1.2@day10") == Injection("distance", 1.2, 10)
    assert Injection.parse("duration*1.25@day1").starts(datetime(2023, 3, 1)) == datetime(2023, 3, 1)
    for bad in ("distance*1.2", "speed*2@day3", "duration*1.25@day0", "distance*x@day2"):
        with pytest.raises(ValueError):
            Injection.parse(bad)


def test_every_row_is_sent_with_its_actual_as_the_file_has_it(tmp_path: Path) -> None:
    pickups = ["2023-03-02 10:00", "2009-01-01 00:00", "2023-03-01 08:00", "2023-03-03 09:00"]
    dropoffs = ["2023-03-02 09:50", "2009-01-01 00:10", "2023-03-01 08:00", "2023-03-03 09:30"]
    frame = pd.DataFrame({
        "lpep_pickup_datetime": pd.to_datetime(pickups), "lpep_dropoff_datetime": pd.to_datetime(dropoffs),
        "PULocationID": [74, 999, 75, 74], "DOLocationID": [75, 75, 74, 75],
        "trip_distance": [1.0, -3.0, 2.0, 2.0],
    })  # fmt: skip
    path = tmp_path / "green_tripdata_2023-03.parquet"
    frame.to_parquet(path)
    traffic = build_traffic([str(path)], [Injection("distance", 2.0, 3), Injection("duration", 1.5, 3)])
    assert traffic.day1 == datetime(2023, 3, 1)
    assert len(traffic) == 4 and list(traffic.ride_id) == [1, 2, 3, 4]  # pickup order, the bad row too
    assert list(traffic.duration_minutes) == [10.0, 0.0, -10.0, 45.0]  # injected only from day 3
    day1_utc = datetime(2023, 3, 1, 5, tzinfo=UTC).timestamp()  # 00:00 New York (EST)
    assert traffic.sent_at[0] == day1_utc  # a 2009 meter clock is sent when the replay starts
    assert traffic.injected_at == day1_utc + 2 * 86400
    assert (traffic.reported_at >= traffic.sent_at).all()  # a negative duration is reported when sent
    assert b'"trip_distance": 4.0' in traffic.payload[3] and b'"trip_distance": 1.0' in traffic.payload[2]
    assert len(build_traffic([str(path)], days=1)) == 2
