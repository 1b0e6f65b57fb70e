"""The monitor run over in-memory ports: event-time windows, the schedule's catch-up, versions, too
little data, actuals (reasons, domain), metric timestamps, report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from lambda_monitor.config import MonitorConfig
from lambda_monitor.ports import Ports
from lambda_monitor.service import backfill_window, due_windows, run_event
from lambda_monitor.window import Window
from tests.doubles.captures import pid, rides_of_day
from tests.doubles.monitor import (
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
from trip_core.contracts import MAX_CATCH_UP_WINDOWS, hour_prefixes, report_key, utc_iso
from trip_core.pointer import ModelPointer

# The schedule at NOW evaluates the window ending 05:00 UTC = midnight in New York: the rides picked up
# on 2023-03-06, New York time.
NOW = datetime(2023, 3, 7, 6, 0, 5, tzinfo=UTC)
DAY = Window(datetime(2023, 3, 6, 5, tzinfo=UTC), datetime(2023, 3, 7, 5, tzinfo=UTC))
MONTH = {"window_start": "2023-03-01T05:00:00Z", "window_end": "2023-04-01T04:00:00Z"}
CONFIG = MonitorConfig(models_bucket="m", capture_bucket="c", rejected_bucket="r", min_predictions=200)


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


def test_scheduled_windows_and_catch_up() -> None:
    (only,) = due_windows(None, NOW).windows
    assert only == DAY
    caught = due_windows(DAY.end - timedelta(hours=3), NOW)
    assert [w.end for w in caught.windows] == [DAY.end - timedelta(hours=h) for h in (2, 1, 0)]
    assert caught.skipped_ends == []
    assert due_windows(DAY.end, NOW).windows == []  # already evaluated: nothing is due
    behind = due_windows(DAY.end - timedelta(hours=30), NOW)
    assert len(behind.windows) == MAX_CATCH_UP_WINDOWS and behind.windows[-1] == DAY
    assert len(behind.skipped_ends) == 30 - MAX_CATCH_UP_WINDOWS
    assert behind.skipped_ends[-1] + timedelta(hours=1) == behind.windows[0].end
    unaligned = due_windows(DAY.end - timedelta(minutes=59), NOW)  # a state written by an older monitor
    assert unaligned.windows == [DAY]


def test_a_state_ahead_of_the_clock_does_not_stop_the_schedule(reference: dict[str, object]) -> None:
    """A state written by a wrong clock (or a replay's simulated one) once made every run evaluate nothing
    until the clock caught up: no metric, no MonitorErrors, alarms silent (notBreaching)."""
    ahead = due_windows(NOW + timedelta(days=3), NOW)
    assert ahead.windows == [DAY] and ahead.state_ahead_of_clock
    ports = _ports(reference)
    _capture(ports, _day(), "3", "2023-03-06T20:00:00Z")
    ports.state.save_window_end(NOW + timedelta(days=3))
    assert run_event({}, ports, CONFIG, NOW)["evaluated"] == [utc_iso(DAY.end)]
    assert ports.state.last_window_end() == DAY.end


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
    assert names == {"PredictionCount", "MonitorErrors", "ActualsRejected", "ConflictingRides"}
    assert _metrics(ports).find("PredictionCount", ModelVersion="3")[0].value == 150
    assert {d.timestamp for d in _metrics(ports).data} == {NOW}  # a scheduled run: its evaluation time
    assert ports.state.last_window_end() == DAY.end


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
    assert ports.state.last_window_end() == DAY.end  # the backfill left the schedule alone


def test_a_backfill_older_than_cloudwatch_keeps_publishes_nothing(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    _capture(ports, _day(), "3", "2023-03-06T20:00:00Z")
    backfill = {"window_start": utc_iso(DAY.start), "window_end": utc_iso(DAY.end)}
    run_event(backfill, ports, CONFIG, DAY.end + timedelta(days=15))
    report = _report(ports, DAY.end)
    assert report["metrics"]["published"] is False and "14 days" in str(report["metrics"]["reason"])
    assert report["versions"]["3"]["status"] == "ok" and _metrics(ports).data == []


def test_missed_windows_are_each_evaluated(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    _capture(ports, _day(), "3", "2023-03-06T20:00:00Z")
    ports.state.save_window_end(DAY.end - timedelta(hours=30))
    summary = run_event({}, ports, CONFIG, NOW)
    assert len(summary["evaluated"]) == MAX_CATCH_UP_WINDOWS and summary["window"]["end"] == utc_iso(DAY.end)
    assert len(summary["skipped_window_ends"]) == 30 - MAX_CATCH_UP_WINDOWS
    first = _report(ports, DAY.end - timedelta(hours=MAX_CATCH_UP_WINDOWS - 1))
    assert first["skipped_window_ends"] == summary["skipped_window_ends"]
    assert ports.state.last_window_end() == DAY.end
    assert run_event({}, ports, CONFIG, NOW)["evaluated"] == []  # nothing due twice


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
    config = MonitorConfig.from_env({"MODELS_BUCKET": "m", "CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r"})
    assert (config.min_predictions, config.min_actuals, config.metrics_namespace) == (
        200,
        50,
        "TripDuration",
    )
