"""The monitor run over in-memory ports: event-time windows, the schedule's catch-up of a backlog in
bounded runs, an unreadable state, the liveness metrics, versions, too little data, actuals (reasons,
domain), metric timestamps, report."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from lambda_monitor.config import MonitorConfig
from lambda_monitor.ports import Ports
from lambda_monitor.schedule import encode_state
from lambda_monitor.service import backfill_window, run_event
from tests.doubles.captures import pid, rides_of_day
from tests.doubles.monitor import (
    SCHEDULED_AT,
    SCHEDULED_DAY,
    MemoryBlobs,
    MemoryMetrics,
    MemoryProfiles,
    MemoryRejected,
    MemoryReports,
    MemoryState,
)
from tests.monitor_months import capture_batches, month_columns, reference_profile_dict, take, valid_rows
from trip_core.capture import ACTUAL_REJECTION_REASONS, Actual
from trip_core.config import ConfigError
from trip_core.contracts import (
    ACTUALS_RIDE_LOOKBACK,
    LATE_ALLOWANCE,
    METRIC_MAX_AGE,
    MONITOR_STATE_KEY,
    MONITOR_WINDOW,
    floor_hour,
    hour_prefixes,
    parse_utc,
    report_key,
    unreadable_state_key,
    utc_iso,
)
from trip_core.pointer import ModelPointer

NOW, DAY = SCHEDULED_AT, SCHEDULED_DAY
MONTH = {"window_start": "2023-03-01T05:00:00Z", "window_end": "2023-04-01T04:00:00Z"}
CONFIG = MonitorConfig(models_bucket="m", capture_bucket="c", rejected_bucket="r", min_predictions=200)
LIVENESS = {"MonitorWindowsCompleted", "MonitorLagHours"}
# What a window lists in the capture bucket: its captures, its actuals' report hours, the captures of the
# rides those may label (the lookback before, the allowance after)
LISTINGS_PER_WINDOW = (
    MONITOR_WINDOW + (MONITOR_WINDOW + LATE_ALLOWANCE) + ACTUALS_RIDE_LOOKBACK + LATE_ALLOWANCE
) // timedelta(hours=1)
LISTINGS_PER_24_WINDOWS = 24 * LISTINGS_PER_WINDOW


def _pointer(version: str, mae: float = 5.0, rmse: float = 8.0) -> ModelPointer:
    return ModelPointer(
        model_name="trip-duration",
        version=version,
        bundle_key=f"models/trip-duration/{version}/bundle.npz",
        bundle_sha256="0" * 64,
        profile_key=f"models/trip-duration/{version}/reference_profile.json",
        validation_rmse=rmse,
        validation_mae=mae,
        run_id="run",
        published_at="2023-03-01T00:00:00Z",
    )


@pytest.fixture(scope="module")
def reference() -> dict[str, object]:
    return reference_profile_dict(valid_rows(month_columns("2023-02")))


def _ports(reference: dict[str, object], versions: tuple[str, ...] = ("3",)) -> Ports:
    pointers = {v: _pointer(v) for v in versions}
    return Ports(
        capture=MemoryBlobs(),
        rejected=MemoryRejected(),
        profiles=MemoryProfiles(pointers, {p.profile_key: reference for p in pointers.values()}),
        metrics=MemoryMetrics(),
        reports=MemoryReports(),
        state=MemoryState(),
    )


def _sample(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Random rides of the whole month (pickups spread over it)."""
    rows = valid_rows(month_columns("2023-03"))
    return take(rows, np.random.default_rng(seed).choice(len(rows["prediction"]), n, replace=False))


def _day(local_day: str = "2023-03-06") -> dict[str, np.ndarray]:
    """Every valid ride picked up on that New York day (time order)."""
    return rides_of_day(valid_rows(month_columns("2023-03")), local_day)


def _capture(
    ports: Ports, columns: dict[str, np.ndarray], version: str, captured_at: str, seq: int = 0
) -> None:
    assert isinstance(ports.capture, MemoryBlobs)
    for i, batch in enumerate(capture_batches(columns, version, captured_at)):
        ports.capture.put_capture(batch, first_seq=f"{seq}-{i}")


def _report(ports: Ports, end: datetime) -> dict[str, Any]:
    assert isinstance(ports.reports, MemoryReports)
    report: dict[str, Any] = json.loads(ports.reports.objects[report_key(end, "json")][0])
    return report


def _metrics(ports: Ports) -> MemoryMetrics:
    assert isinstance(ports.metrics, MemoryMetrics)
    return ports.metrics


def _count_listings(blobs: MemoryBlobs) -> list[str]:
    """The prefixes listed in the capture bucket from now on (the readers list from threads)."""
    listed: list[str] = []
    list_keys = blobs.list_keys

    def counted(prefix: str) -> list[str]:
        listed.append(prefix)
        return list_keys(prefix)

    blobs.list_keys = counted  # type: ignore[method-assign]
    return listed


def _state(ports: Ports) -> MemoryState:
    assert isinstance(ports.state, MemoryState)
    return ports.state


def test_a_state_in_the_future_is_set_aside_and_the_schedule_goes_on(
    reference: dict[str, object], log_stream: io.StringIO
) -> None:
    """A state written by a wrong clock (or a replay's simulated one) once made every run evaluate nothing
    until the clock caught up: no metric, no MonitorErrors, alarms silent (notBreaching)."""
    ports = _ports(reference)
    _capture(ports, _day(), "3", "2023-03-06T20:00:00Z")
    ahead = encode_state(NOW + timedelta(days=3))
    ports.state = MemoryState(ahead)
    config = replace(CONFIG, max_catch_up_hours=3)
    summary = run_event({}, ports, config, NOW)
    assert summary["evaluated"] == [utc_iso(DAY.end - timedelta(hours=h)) for h in (2, 1, 0)]
    assert _state(ports).last_window_end() == DAY.end
    assert _state(ports).aside == {unreadable_state_key(NOW): ahead}  # kept as it was
    problem = summary["state_problem"]
    assert (problem["field"], problem["reason"][:16]) == ("last_window_end", "is in the future")
    first = _report(ports, DAY.end - timedelta(hours=2))
    assert first["state_problem"] == problem and first["errors"] == 1
    assert first["problems"][0].startswith(f"{MONITOR_STATE_KEY}: last_window_end is in the future")
    errors = [d.value for d in _metrics(ports).find("MonitorErrors")]
    assert errors == [1, 0, 0]  # the first window's report carries the problem: the errors alarm fires
    (logged,) = [json.loads(line) for line in log_stream.getvalue().splitlines() if "unreadable" in line]
    assert logged["level"] == "ERROR" and logged["field"] == "last_window_end"
    assert logged["set_aside_key"] == unreadable_state_key(NOW)
    assert run_event({}, ports, config, NOW)["evaluated"] == []  # the new state is read: nothing due twice


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b'{"last_end": "2023-03-07T05:00:00Z"}', "last_window_end"),
        (b'{"last_window_end": 1678165200}', "last_window_end"),
        (b'{"last_window_end": "2023-03-07T05:00:00Z", "extra": true}', "body"),
    ],
)
def test_an_unreadable_state_is_an_error_and_the_run_restarts_from_a_bounded_lookback(
    reference: dict[str, object], body: bytes, field: str
) -> None:
    ports = _ports(reference)
    ports.state = MemoryState(body)
    config = replace(CONFIG, max_catch_up_hours=2)
    summary = run_event({}, ports, config, NOW)
    assert summary["state_problem"]["field"] == field and summary["evaluated"][-1] == utc_iso(DAY.end)
    assert len(summary["evaluated"]) == 2 and summary["behind_hours"] == 0
    assert _state(ports).aside == {unreadable_state_key(NOW): body}
    assert _state(ports).last_window_end() == DAY.end
    assert _metrics(ports).find("MonitorErrors")[0].value == 1


def test_backfill_window_and_prefixes() -> None:
    backfill = backfill_window(
        {"window_start": "2023-03-01T00:00:00Z", "window_end": "2023-03-01T02:00:00+00:00"}
    )
    assert backfill is not None and backfill.end - backfill.start == timedelta(hours=2)
    assert backfill_window({"source": "aws.events"}) is None
    with pytest.raises(ValueError):
        backfill_window({"window_start": "2023-03-01T00:00:00Z"})
    prefixes = hour_prefixes("rejected/", NOW - timedelta(hours=1), NOW)
    assert prefixes == ["rejected/dt=2023-03-07/hour=05/", "rejected/dt=2023-03-07/hour=06/"]


def test_too_little_data_publishes_the_count_only(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    _capture(ports, take(_day(), np.arange(150)), "3", "2023-03-06T14:30:00Z")
    summary = run_event({}, ports, CONFIG, NOW)
    assert summary["versions"] == {"3": "insufficient_data"} and summary["evaluated"] == [utc_iso(DAY.end)]
    names = {d.name for d in _metrics(ports).data}
    assert names == {"PredictionCount", "MonitorErrors", "ActualsRejected", "ConflictingRides", *LIVENESS}
    assert _metrics(ports).find("PredictionCount", ModelVersion="3")[0].value == 150
    assert {d.timestamp for d in _metrics(ports).data} == {NOW}  # a scheduled run: its evaluation time
    assert _state(ports).last_window_end() == DAY.end


def test_rides_captured_again_by_a_retried_batch_count_once(reference: dict[str, object]) -> None:
    """A Kinesis retry resumes at the first failed record, so the rides after it are predicted and
    captured again under the retried batch's own keys: the window counts each ride once, its latest
    capture."""
    ports = _ports(reference)
    day = _day()
    _capture(ports, day, "3", "2023-03-06T20:00:00Z", seq=1)
    _capture(ports, take(day, np.arange(100, 400)), "3", "2023-03-06T20:01:00Z", seq=2)
    run_event({}, ports, CONFIG, NOW)
    report = _report(ports, DAY.end)
    assert report["prediction_count"] == report["versions"]["3"]["prediction_count"] == len(day["prediction"])


def test_window_selects_rides_by_pickup_time_whenever_they_were_captured(
    reference: dict[str, object],
) -> None:
    """Out-of-order and late captures of the day's rides count; rides of other days do not, even in
    the same batch; captures after end + allowance are counted as late."""
    ports = _ports(reference)
    day = _day()
    order = np.random.default_rng(2).permutation(len(day["prediction"]))  # captured out of order
    on_time, late = take(day, order[:-100]), take(day, order[-100:])
    _capture(ports, on_time, "3", "2023-03-06T20:00:00Z", seq=1)
    _capture(ports, late, "3", "2023-03-07T09:00:00Z", seq=2)  # after 05:00 + 1 h
    before, after = _day("2023-03-05"), _day("2023-03-07")
    mixed = {name: np.concatenate([before[name][:300], after[name][:300]]) for name in day}
    _capture(ports, mixed, "3", "2023-03-06T12:00:00Z", seq=3)
    run_event({}, ports, CONFIG, NOW)
    report = _report(ports, DAY.end)
    assert report["prediction_count"] == len(day["prediction"])
    assert report["late_captures"] == 100
    assert report["window"] == {"start": utc_iso(DAY.start), "end": utc_iso(DAY.end)}


def test_a_backfill_gives_the_scheduled_verdict_at_its_own_time(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    day = _day()
    _capture(ports, day, "3", "2023-03-06T20:00:00Z")
    assert isinstance(ports.capture, MemoryBlobs)
    ports.capture.put_actuals(
        datetime(2023, 3, 6, 22, tzinfo=UTC), "client", _actuals(day, np.arange(0, 900))
    )
    run_event({}, ports, CONFIG, NOW)
    scheduled = _report(ports, DAY.end)
    later = NOW + timedelta(days=3)
    backfill = {"window_start": utc_iso(DAY.start), "window_end": utc_iso(DAY.end)}
    run_event(backfill, ports, CONFIG, later)
    replayed = _report(ports, DAY.end)
    assert replayed["versions"] == scheduled["versions"] and replayed["actuals"] == scheduled["actuals"]
    assert scheduled["metrics"]["timestamp"] == utc_iso(NOW)
    assert replayed["metrics"]["timestamp"] == utc_iso(DAY.end + timedelta(hours=1))
    stamps = {d.timestamp for d in _metrics(ports).find("DriftShare", ModelVersion="3")}
    assert stamps == {NOW, DAY.end + timedelta(hours=1)}
    assert _state(ports).last_window_end() == DAY.end  # the backfill left the schedule alone


def test_a_backfill_older_than_cloudwatch_keeps_publishes_only_its_errors_now(
    reference: dict[str, object],
) -> None:
    ports = _ports(reference)
    _capture(ports, _day(), "3", "2023-03-06T20:00:00Z")
    assert isinstance(ports.capture, MemoryBlobs)
    ports.capture.objects["captures/dt=2023-03-06/hour=14/corrupt.json.gz"] = b"not gzip"
    backfill = {"window_start": utc_iso(DAY.start), "window_end": utc_iso(DAY.end)}
    later = DAY.end + timedelta(days=15)
    run_event(backfill, ports, CONFIG, later)
    report = _report(ports, DAY.end)
    assert report["metrics"]["published"] is False and "14 days" in str(report["metrics"]["reason"])
    assert report["versions"]["3"]["status"] == "ok"
    assert [(d.name, d.value, d.timestamp) for d in _metrics(ports).data] == [("MonitorErrors", 1, later)]


def test_missed_windows_are_each_evaluated(reference: dict[str, object]) -> None:
    """30 h behind with 24 a run: the 24 oldest now (stamped at their own time: the run is still behind),
    the other 6 in the next run (stamped now: it catches up); none is skipped, none evaluated twice."""
    ports = _ports(reference)
    _capture(ports, _day(), "3", "2023-03-06T20:00:00Z")
    ports.state = MemoryState.at(DAY.end - timedelta(hours=30))
    first = run_event({}, ports, CONFIG, NOW)
    assert len(first["evaluated"]) == 24 and first["behind_hours"] == 6 and "skipped_windows" not in first
    assert _state(ports).last_window_end() == DAY.end - timedelta(hours=6)
    oldest = _report(ports, DAY.end - timedelta(hours=29))
    assert oldest["metrics"]["timestamp"] == utc_iso(DAY.end - timedelta(hours=28))
    later = NOW + timedelta(minutes=10)
    second = run_event({}, ports, CONFIG, later)
    assert second["evaluated"] == [utc_iso(DAY.end - timedelta(hours=h)) for h in range(5, -1, -1)]
    assert second["behind_hours"] == 0 and _report(ports, DAY.end)["metrics"]["timestamp"] == utc_iso(later)
    assert run_event({}, ports, CONFIG, later)["evaluated"] == []  # nothing due twice


def test_a_four_month_gap_is_caught_up_over_hourly_runs_each_bounded(reference: dict[str, object]) -> None:
    """The issue's case: the last window four months before now. Every run evaluates at most
    max_catch_up_hours windows (so it lists as many partitions as a 24 h catch-up, whatever the gap),
    advances the state and says how far behind it still is, until it has caught up. The windows older
    than CloudWatch accepts are skipped once, as a range."""
    ports = _ports(reference)
    _capture(ports, _day(), "3", "2023-03-06T20:00:00Z")
    blobs = ports.capture
    assert isinstance(blobs, MemoryBlobs)
    listed = _count_listings(blobs)
    ports.state = MemoryState.at(DAY.end - timedelta(days=120))
    now, previous_end, lags, runs = NOW - timedelta(hours=14), DAY.end - timedelta(days=120), [], 0
    while True:
        listed.clear()
        answer = run_event({}, ports, CONFIG, now)
        runs += 1
        evaluated = [parse_utc(end) for end in answer["evaluated"]]
        assert 1 <= len(evaluated) <= CONFIG.max_catch_up_hours and len(listed) <= LISTINGS_PER_24_WINDOWS
        assert evaluated[-1] == _state(ports).last_window_end()  # the state advanced with the chunk
        if runs == 1:
            skipped = answer["skipped_windows"]
            assert parse_utc(skipped["first_end"]) == previous_end + timedelta(hours=1)
            previous_end = parse_utc(skipped["last_end"])
        else:
            assert "skipped_windows" not in answer
        assert evaluated[0] == previous_end + timedelta(hours=1)  # no gap, nothing twice
        lags.append(answer["behind_hours"])
        assert _metrics(ports).find("MonitorLagHours")[-1].value == answer["behind_hours"]
        previous_end = evaluated[-1]
        if not answer["behind_hours"]:
            break
        now += timedelta(hours=1)
    assert (
        runs > 5
        and lags == sorted(lags, reverse=True)
        and lags[0] == METRIC_MAX_AGE / timedelta(hours=1) - 24
    )
    assert previous_end == floor_hour(now) - timedelta(hours=1)  # caught up with the clock
    assert _report(ports, DAY.end)["versions"]["3"]["status"] == "ok"
    print(f"\n[monitor/backlog] 120-day gap: {runs} hourly runs of <= {CONFIG.max_catch_up_hours} windows, "
          f"behind {lags[0]:g} h after the first, 0 after the last")  # fmt: skip


def test_the_heartbeat_is_published_for_every_completed_window_even_an_empty_one(
    reference: dict[str, object],
) -> None:
    """A fresh stack with no traffic: each run completes its window (nothing captured) and says so; a run
    with nothing due says it completed none (the heartbeat alarm sums a period's runs)."""
    ports = _ports(reference)
    summary = run_event({}, ports, CONFIG, NOW)
    assert summary["prediction_count"] == 0 and summary["evaluated"] == [utc_iso(DAY.end)]
    (beat,) = _metrics(ports).find("MonitorWindowsCompleted")
    assert (beat.value, beat.timestamp, beat.unit) == (1, NOW, "Count")
    assert _metrics(ports).find("MonitorLagHours")[0].value == 0
    again = NOW + timedelta(minutes=5)
    run_event({}, ports, CONFIG, again)
    assert [(d.value, d.timestamp) for d in _metrics(ports).find("MonitorWindowsCompleted")] == [
        (1, NOW),
        (0, again),
    ]
    backfill = {"window_start": utc_iso(DAY.start), "window_end": utc_iso(DAY.end)}
    run_event(backfill, ports, CONFIG, again)
    assert len(_metrics(ports).find("MonitorWindowsCompleted")) == 2  # a backfill is no sign of the schedule


def _actuals(columns: dict[str, np.ndarray], rows: np.ndarray, scale: float = 1.0) -> list[Actual]:
    truth = columns["duration_minutes"]
    return [Actual(pid(int(columns["ride_id"][i])), float(truth[i]) * scale) for i in rows]


def test_actuals_are_judged_and_quality_is_on_the_training_domain(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    assert isinstance(ports.capture, MemoryBlobs)
    day, before = _day(), _day("2023-03-05")
    _capture(ports, day, "3", "2023-03-06T20:00:00Z")
    _capture(ports, before, "3", "2023-03-05T20:00:00Z", seq=9)
    n = len(day["prediction"])
    rides = np.arange(0, n, 2)  # half the rides have completed
    reported = datetime(2023, 3, 6, 23, 30, tzinfo=UTC)
    ports.capture.put_actuals(reported, "a", _actuals(day, rides[:200], scale=3.0))  # corrected below
    ports.capture.put_actuals(reported + timedelta(minutes=1), "b", _actuals(day, rides))
    ports.capture.put_actuals(DAY.start, "c", _actuals(before, np.arange(5)))  # rides of the day before
    bad = (
        f'{{"prediction_id": "{pid(1)}", "duration_minutes": NaN}}\n'
        f'{{"prediction_id": "{pid(2)}", "duration_minutes": -3}}\n'
        f'{{"prediction_id": "{pid(3)}", "duration_minutes": 1e300}}\nnot json\n'
        f'{{"prediction_id": "{pid("nobody")}", "duration_minutes": 5}}\n'
    ).encode()
    ports.capture.put_actuals(reported, "bad", bad)
    ports.capture.put_actuals(DAY.end + timedelta(hours=1), "too-late", _actuals(day, np.arange(1, n, 2)))
    run_event({}, ports, CONFIG, NOW)

    actuals = _report(ports, DAY.end)["actuals"]
    zero = day["duration_minutes"][rides] <= 0  # zero-minute meter records: not a plausible duration
    zero_a, zero_before = int(zero[:200].sum()), int((before["duration_minutes"][:5] <= 0).sum())
    assert actuals["rejected"] == {
        "malformed": 1, "non_finite": 1, "not_positive": 1 + zero_a + zero.sum() + zero_before, "over_max": 1,
        "unknown_prediction": 1, "duplicate": 200 - zero_a,
    }  # fmt: skip
    # the day before's rides are known, not joined
    assert (
        actuals["accepted"] == len(rides) - zero.sum() + 5 - zero_before and actuals["conflicting_rides"] == 0
    )
    for reason in ACTUAL_REJECTION_REASONS:
        (datum,) = _metrics(ports).find("ActualsRejected", Reason=reason)
        assert datum.value == actuals["rejected"][reason]

    truth = day["duration_minutes"][rides][~zero]
    domain = (truth >= 1.0) & (truth <= 60.0)
    assert 0 < (~domain).sum() < len(rides)  # the day has meter errors and long rides
    errors = day["prediction"][rides][~zero][domain] - truth[domain]
    mae, rmse = np.abs(errors).mean(), np.sqrt((errors**2).mean())
    assert _metrics(ports).find("MAE", ModelVersion="3")[0].value == pytest.approx(mae)
    assert _metrics(ports).find("RMSE", ModelVersion="3")[0].value == pytest.approx(rmse)
    assert _metrics(ports).find("MAERatio", ModelVersion="3")[0].value == pytest.approx(mae / 5.0)
    assert _metrics(ports).find("RMSERatio", ModelVersion="3")[0].value == pytest.approx(rmse / 8.0)
    assert _metrics(ports).find("ActualsCount", ModelVersion="3")[0].value == domain.sum()
    share = _metrics(ports).find("ActualsOutOfDomainShare", ModelVersion="3")[0].value
    assert share == pytest.approx((~domain).sum() / len(truth))
    assert _metrics(ports).find("ActualsOutOfDomainShare")[0].value == share  # the alarm's aggregate


def test_window_split_across_two_versions(reference: dict[str, object]) -> None:
    ports = _ports(reference, ("3", "4"))
    sample = _sample(1600)
    first, second = take(sample, np.arange(0, 1200)), take(sample, np.arange(1200, 1600))
    _capture(ports, first, "3", "2023-03-06T14:10:00Z", seq=1)
    _capture(ports, second, "4", "2023-03-06T14:50:00Z", seq=2)
    assert isinstance(ports.rejected, MemoryRejected)
    ports.rejected.arrival_times = [datetime(2023, 3, 6, 14, 20, tzinfo=UTC)] * 400
    month = backfill_window(MONTH)
    assert month is not None
    run_event(MONTH, ports, CONFIG, NOW)
    metrics = _metrics(ports)
    inside = int(
        (
            (sample["pickup_datetime"] >= np.datetime64("2023-03-01T00:00"))
            & (sample["pickup_datetime"] < np.datetime64("2023-04-01T00:00"))
        ).sum()
    )
    assert metrics.find("PredictionCount")[0].value == inside
    assert metrics.find("RejectedShare")[0].value == pytest.approx(400 / (inside + 400))
    assert len(metrics.find("DriftShare")) == 2  # the alarms' aggregate: one point per version
    assert len(metrics.find("PredictionCount")) == 1 and not metrics.find("FeatureDriftScore")
    report = _report(ports, month.end)
    for version, statistic in (("3", "ks_binned"), ("4", "ks_binned")):
        assert metrics.find("DatasetDrift", ModelVersion=version)[0].value == 0.0
        assert len(metrics.find("FeatureDriftScore", ModelVersion=version, Feature="trip_distance")) == 1
        assert metrics.find("MissingShare", ModelVersion=version)[0].value == 0.0
        assert report["versions"][version]["drift"]["prediction"]["statistic"] == statistic
    assert isinstance(ports.reports, MemoryReports)
    html = ports.reports.objects[report_key(month.end, "html")][0].decode()
    assert html.count("<svg") >= 2 * 5 and "Model version 4" in html  # 4 columns + drift over time


def test_missing_profile_is_an_error_not_a_crash(reference: dict[str, object]) -> None:
    ports = _ports(reference, ("3",))
    _capture(ports, _day(), "7", "2023-03-06T14:30:00Z")
    summary = run_event({}, ports, CONFIG, NOW)
    assert summary["versions"] == {"7": "error"}
    assert _metrics(ports).find("MonitorErrors")[0].value == 1


def test_a_schema_1_profile_left_for_an_old_version_is_an_error_not_a_crash(
    reference: dict[str, object],
) -> None:
    ports = _ports({**reference, "schema": 1})
    _capture(ports, _day(), "3", "2023-03-06T14:30:00Z")
    summary = run_event({}, ports, CONFIG, NOW)
    assert summary["versions"] == {"3": "error"}
    assert "schema 1" in _report(ports, DAY.end)["problems"][0]
    assert _metrics(ports).find("MonitorErrors")[0].value == 1


def test_a_profile_that_is_not_a_json_object_is_an_error_not_a_crash(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    assert isinstance(ports.profiles, MemoryProfiles)
    ports.profiles.profiles = {key: [] for key in ports.profiles.profiles}  # type: ignore[misc]
    _capture(ports, _day(), "3", "2023-03-06T14:30:00Z")
    assert run_event({}, ports, CONFIG, NOW)["versions"] == {"3": "error"}


def test_config_fails_fast() -> None:
    with pytest.raises(ConfigError, match="MODELS_BUCKET"):
        MonitorConfig.from_env({"CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r"})
    with pytest.raises(ConfigError):
        MonitorConfig.from_env({"MODELS_BUCKET": "m", "CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r",
                                "MIN_PREDICTIONS": "many"})  # fmt: skip
    with pytest.raises(ConfigError, match="MAX_CATCH_UP_HOURS must be at least 1"):
        MonitorConfig.from_env({"MODELS_BUCKET": "m", "CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r",
                                "MAX_CATCH_UP_HOURS": "0"})  # fmt: skip
    config = MonitorConfig.from_env({"MODELS_BUCKET": "m", "CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r"})
    assert (config.min_predictions, config.min_actuals, config.metrics_namespace) == (
        200,
        50,
        "TripDuration",
    )
    assert config.max_catch_up_hours == 24
