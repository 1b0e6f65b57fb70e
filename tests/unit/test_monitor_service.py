"""The monitor run over in-memory ports: windows, versions, too little data, quality, metrics, report."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from lambda_monitor.config import MonitorConfig
from lambda_monitor.ports import Ports
from lambda_monitor.service import resolve_window, run_event
from lambda_monitor.window import Window, hour_prefixes
from tests.doubles.monitor import (
    MemoryActuals,
    MemoryCaptures,
    MemoryMetrics,
    MemoryProfiles,
    MemoryRejected,
    MemoryReports,
    MemoryState,
)
from tests.monitor_months import capture_batches, month_columns, reference_profile_dict, take, valid_rows
from trip_core.capture import Actual
from trip_core.config import ConfigError
from trip_core.pointer import ModelPointer

NOW = datetime(2023, 3, 6, 15, 0, 5, tzinfo=UTC)
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
        captures=MemoryCaptures(),
        rejected=MemoryRejected(),
        actuals=MemoryActuals(),
        profiles=MemoryProfiles(pointers, {p.profile_key: reference for p in pointers.values()}),
        metrics=MemoryMetrics(),
        reports=MemoryReports(),
        state=MemoryState(),
    )


def _sample(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rows = valid_rows(month_columns("2023-03"))
    return take(rows, np.random.default_rng(seed).choice(len(rows["prediction"]), n, replace=False))


def test_window_resolution() -> None:
    window, scheduled = resolve_window({"source": "aws.events"}, None, NOW)
    assert scheduled and window == Window(NOW - timedelta(hours=1), NOW)
    last = NOW - timedelta(minutes=90)
    assert resolve_window({}, last, NOW)[0].start == last
    backfill, scheduled = resolve_window(
        {"window_start": "2023-03-01T00:00:00Z", "window_end": "2023-03-01T02:00:00+00:00"}, last, NOW
    )
    assert not scheduled and backfill.end - backfill.start == timedelta(hours=2)
    with pytest.raises(ValueError):
        resolve_window({"window_start": "2023-03-01T00:00:00Z"}, None, NOW)
    prefixes = hour_prefixes("captures/", Window(NOW - timedelta(hours=1), NOW))
    assert prefixes == ["captures/dt=2023-03-06/hour=14/", "captures/dt=2023-03-06/hour=15/"]


def test_too_little_data_publishes_the_count_only(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    assert isinstance(ports.captures, MemoryCaptures) and isinstance(ports.metrics, MemoryMetrics)
    ports.captures.items = [*capture_batches(_sample(150), "3", "2023-03-06T14:30:00Z")]
    summary = run_event({}, ports, CONFIG, NOW)
    assert summary["versions"] == {"3": "insufficient_data"}
    names = {d.name for d in ports.metrics.data}
    assert names == {"PredictionCount", "MonitorErrors"}
    assert ports.metrics.find("PredictionCount", ModelVersion="3")[0].value == 150
    assert ports.state.last_window_end() == NOW


def test_window_split_across_two_versions(reference: dict[str, object]) -> None:
    ports = _ports(reference, ("3", "4"))
    assert isinstance(ports.captures, MemoryCaptures) and isinstance(ports.metrics, MemoryMetrics)
    sample = _sample(1600)
    first, second = take(sample, np.arange(0, 1200)), take(sample, np.arange(1200, 1600))
    ports.captures.items = [
        *capture_batches(first, "3", "2023-03-06T14:10:00Z"),
        *capture_batches(second, "4", "2023-03-06T14:50:00Z"),
        *capture_batches(_sample(50, 9), "3", "2023-03-06T13:50:00Z"),  # before the window
    ]
    assert isinstance(ports.rejected, MemoryRejected)
    ports.rejected.arrival_times = [datetime(2023, 3, 6, 14, 20, tzinfo=UTC)] * 400
    run_event({}, ports, CONFIG, NOW)
    assert isinstance(ports.reports, MemoryReports)
    assert ports.metrics.find("PredictionCount")[0].value == 1600
    assert ports.metrics.find("PredictionCount", ModelVersion="3")[0].value == 1200
    assert ports.metrics.find("PredictionCount", ModelVersion="4")[0].value == 400
    assert ports.metrics.find("RejectedShare")[0].value == pytest.approx(400 / 2000)
    assert len(ports.metrics.find("DriftShare")) == 2  # the alarms' aggregate: one point per version
    assert len(ports.metrics.find("PredictionCount")) == 1 and not ports.metrics.find("FeatureDriftScore")
    for version, statistic in (("3", "ks_binned"), ("4", "ks_binned")):
        assert ports.metrics.find("DatasetDrift", ModelVersion=version)[0].value == 0.0
        assert (
            len(ports.metrics.find("FeatureDriftScore", ModelVersion=version, Feature="trip_distance")) == 1
        )
        assert ports.metrics.find("MissingShare", ModelVersion=version)[0].value == 0.0
        report = json.loads(ports.reports.objects[f"reports/{'2023-03-06T15:00:05Z'}/drift_report.json"][0])
        assert report["versions"][version]["drift"]["prediction"]["statistic"] == statistic
    html = ports.reports.objects["reports/2023-03-06T15:00:05Z/drift_report.html"][0].decode()
    assert html.count("<svg") >= 2 * 5 and "Model version 4" in html  # 4 columns + drift over time


def test_actuals_give_the_right_mae_and_ratios(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    assert isinstance(ports.captures, MemoryCaptures) and isinstance(ports.metrics, MemoryMetrics)
    assert isinstance(ports.actuals, MemoryActuals)
    sample = _sample(600, 4)
    ports.captures.items = [*capture_batches(sample, "3", "2023-03-06T14:30:00Z")]
    truth = sample["duration_minutes"]
    known = np.arange(0, 600, 2)  # half the rides have completed
    ports.actuals.by_day = {
        date(2023, 3, 6): [Actual(int(sample["ride_id"][i]), float(truth[i])) for i in known[:200]],
        date(2023, 3, 7): [Actual(int(sample["ride_id"][i]), float(truth[i])) for i in known[200:]],
        date(2023, 3, 8): [Actual(-1, 0.0)],  # outside the window's days
    }
    run_event({}, ports, CONFIG, NOW)
    errors = sample["prediction"][known] - truth[known]
    mae, rmse = np.abs(errors).mean(), np.sqrt((errors**2).mean())
    assert ports.metrics.find("MAE", ModelVersion="3")[0].value == pytest.approx(mae)
    assert ports.metrics.find("RMSE", ModelVersion="3")[0].value == pytest.approx(rmse)
    assert ports.metrics.find("MAERatio", ModelVersion="3")[0].value == pytest.approx(mae / 5.0)
    assert ports.metrics.find("RMSERatio", ModelVersion="3")[0].value == pytest.approx(rmse / 8.0)
    assert ports.metrics.find("ActualsCount", ModelVersion="3")[0].value == 300


def test_missing_profile_is_an_error_not_a_crash(reference: dict[str, object]) -> None:
    ports = _ports(reference, ("3",))
    assert isinstance(ports.captures, MemoryCaptures) and isinstance(ports.metrics, MemoryMetrics)
    ports.captures.items = [*capture_batches(_sample(300), "7", "2023-03-06T14:30:00Z")]
    summary = run_event({}, ports, CONFIG, NOW)
    assert summary["versions"] == {"7": "error"}
    assert ports.metrics.find("MonitorErrors")[0].value == 1


def test_backfill_does_not_move_the_state_back(reference: dict[str, object]) -> None:
    ports = _ports(reference)
    ports.state.save_window_end(NOW)
    run_event(
        {"window_start": "2023-03-01T00:00:00Z", "window_end": "2023-03-01T01:00:00Z"}, ports, CONFIG, NOW
    )
    assert ports.state.last_window_end() == NOW


def test_config_fails_fast() -> None:
    with pytest.raises(ConfigError, match="MODELS_BUCKET"):
        MonitorConfig.from_env({"CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r"})
    with pytest.raises(ConfigError):
        MonitorConfig.from_env({"MODELS_BUCKET": "m", "CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r",
                                "MIN_PREDICTIONS": "many"})  # fmt: skip
    config = MonitorConfig.from_env({"MODELS_BUCKET": "m", "CAPTURE_BUCKET": "c", "REJECTED_BUCKET": "r"})
    assert (config.min_predictions, config.drift_threshold, config.metrics_namespace) == (
        200,
        0.1,
        "TripDuration",
    )
