"""One monitor run: read an event-time window, compare each model version with its reference, publish,
report; on the schedule, the windows due since the last run, a bounded chunk at a time, and the run's
progress (docs/architecture.md, "Monitor (lambda_monitor)")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from lambda_monitor import report as report_module
from lambda_monitor.arms import canary_quality
from lambda_monitor.config import MonitorConfig
from lambda_monitor.drift import ALPHA, ColumnDrift, dataset_drift
from lambda_monitor.ports import MetricDatum, Ports
from lambda_monitor.schedule import (
    StateError,
    backfill_metrics_time,
    decode_state,
    due_windows,
    encode_state,
    fresh_start,
)
from lambda_monitor.window import VersionRows, Window, current_columns, rows_by_version
from trip_core.contracts import (
    LATE_ALLOWANCE,
    MAX_DURATION_MINUTES,
    METRIC_MAX_AGE,
    MIN_DURATION_MINUTES,
    parse_utc,
    report_key,
    unreadable_state_key,
    utc_iso,
)
from trip_core.event_window import (
    JudgedActuals,
    in_target_domain,
    join_actuals,
    late_rows,
    latest_captures,
    read_actuals,
    read_captures,
)
from trip_core.observability import logger
from trip_core.pointer import ModelPointer
from trip_core.profile import ReferenceProfile

REPORT_SCHEMA = 1
MAX_REPORTED_PROBLEMS = 20  # problems listed in the report (all are counted in MonitorErrors and logged)


def backfill_window(event: dict[str, Any] | None) -> Window | None:
    """The window of a backfill event `{"window_start", "window_end"}`; None for a scheduled run."""
    event = event or {}
    if "window_start" not in event and "window_end" not in event:
        return None
    try:
        return Window(parse_utc(str(event["window_start"])), parse_utc(str(event["window_end"])))
    except (KeyError, ValueError) as error:
        raise ValueError(f"backfill needs ISO window_start and window_end: {error}") from error


def _column_json(result: ColumnDrift | None) -> dict[str, Any] | None:
    return None if result is None else asdict(result)


def quality(
    rows: VersionRows, actuals: dict[str, float], pointer: ModelPointer, min_actuals: int
) -> dict[str, Any]:
    """MAE/RMSE of the window's predictions whose actual lies in the training target's domain (the
    validation figures' domain), their ratios to validation, and the share of actuals outside it."""
    truth = join_actuals(rows.ride_id.tolist(), actuals)
    domain = in_target_domain(truth)
    joined, in_domain = int(np.count_nonzero(~np.isnan(truth))), int(domain.sum())
    result: dict[str, Any] = {
        "joined": joined,
        "in_domain": in_domain,
        "out_of_domain": joined - in_domain,
        "out_of_domain_share": (joined - in_domain) / joined if joined >= min_actuals else None,
        "domain_minutes": [MIN_DURATION_MINUTES, MAX_DURATION_MINUTES],
        "min_actuals": min_actuals,
        "published": in_domain >= min_actuals,
    }
    if in_domain:
        errors = rows.prediction[domain] - truth[domain]
        mae = float(np.mean(np.abs(errors)))
        rmse = float(np.sqrt(np.mean(errors**2)))
        result.update(
            mae=mae,
            rmse=rmse,
            mae_ratio=mae / pointer.validation_mae if pointer.validation_mae > 0 else None,
            rmse_ratio=rmse / pointer.validation_rmse if pointer.validation_rmse > 0 else None,
            validation_mae=pointer.validation_mae,
            validation_rmse=pointer.validation_rmse,
        )
    return result


def analyse_version(
    rows: VersionRows,
    profile: ReferenceProfile,
    pointer: ModelPointer,
    actuals: dict[str, float],
    config: MonitorConfig,
) -> dict[str, Any]:
    current = current_columns(rows)
    drift = dataset_drift(profile, current)
    histograms = report_module.histograms(profile, current.valid)
    return {
        "status": "ok",
        "prediction_count": len(rows),
        "missing_share": current.missing_share,
        "missing_by_column": current.missing,
        "drift": {
            "drift_share": drift.drift_share,
            "dataset_drift": drift.dataset_drift,
            "features": {name: _column_json(result) for name, result in drift.features.items()},
            "prediction": _column_json(drift.prediction),
        },
        "quality": quality(rows, actuals, pointer, config.min_actuals),
        "histograms": histograms,
        "profile_key": pointer.profile_key,
    }


def metrics_of(report: dict[str, Any]) -> list[MetricDatum]:
    """The CloudWatch figures of a report (docs/architecture.md, "Monitor metrics"): MonitorErrors at the
    time it was generated (the monitor's health now, however old the window: an error in a backfilled or
    caught-up window alarms too), when the report's metrics are published the rest at their timestamp."""
    errors = MetricDatum("MonitorErrors", report["errors"], "Count", (), parse_utc(report["generated_at"]))
    if not report["metrics"]["published"]:
        return [errors]
    at = parse_utc(report["metrics"]["timestamp"])
    data = [MetricDatum("PredictionCount", report["prediction_count"], "Count", (), at), errors]
    if report["rejected"]["share"] is not None:
        data.append(MetricDatum("RejectedShare", report["rejected"]["share"], "None", (), at))
    for reason, lines in report["actuals"]["rejected"].items():
        data.append(MetricDatum("ActualsRejected", lines, "Count", (("Reason", reason),), at))
    data.append(MetricDatum("ConflictingRides", report["actuals"]["conflicting_rides"], "Count", (), at))
    data.extend(_with_aggregates(_version_metrics(report, at)))
    canary = report.get("canary") or {}
    if canary.get("mae_ratio") is not None:
        data.append(MetricDatum("CanaryMAERatio", canary["mae_ratio"], "None", (), at))
    return data


def _with_aggregates(data: list[MetricDatum]) -> list[MetricDatum]:
    """Each version metric (not per-feature, not the count) once more without dimensions: the aggregate
    the alarms watch (docs/architecture.md, "Metrics and alarms"); with two versions in a window the
    alarms' Maximum statistic takes the worse."""
    aggregates = [
        MetricDatum(d.name, d.value, d.unit, (), d.timestamp)
        for d in data
        if d.name not in ("PredictionCount", "FeatureDriftScore", "FeatureDrift")
    ]
    return data + aggregates


def _version_metrics(report: dict[str, Any], at: datetime) -> list[MetricDatum]:
    data: list[MetricDatum] = []
    for version, result in report["versions"].items():
        dims = (("ModelVersion", version),)
        data.append(MetricDatum("PredictionCount", result["prediction_count"], "Count", dims, at))
        if result["status"] != "ok":
            continue
        data.extend(_drift_metrics(result, dims, at))
        data.extend(_quality_metrics(result["quality"], dims, at))
    return data


def _drift_metrics(
    result: dict[str, Any], dims: tuple[tuple[str, str], ...], at: datetime
) -> list[MetricDatum]:
    drift = result["drift"]
    data = [
        MetricDatum("MissingShare", result["missing_share"], "None", dims, at),
        MetricDatum("DriftShare", drift["drift_share"], "None", dims, at),
        MetricDatum("DatasetDrift", float(drift["dataset_drift"]), "None", dims, at),
    ]
    if drift["prediction"] is not None:
        data.append(MetricDatum("PredictionDriftScore", drift["prediction"]["distance"], "None", dims, at))
        data.append(MetricDatum("PredictionDrift", float(drift["prediction"]["drifted"]), "None", dims, at))
    for feature, column in drift["features"].items():
        fdims = (*dims, ("Feature", feature))
        data.append(MetricDatum("FeatureDriftScore", column["distance"], "None", fdims, at))
        data.append(MetricDatum("FeatureDrift", float(column["drifted"]), "None", fdims, at))
    return data


def _quality_metrics(q: dict[str, Any], dims: tuple[tuple[str, str], ...], at: datetime) -> list[MetricDatum]:
    data = []
    if q["out_of_domain_share"] is not None:
        data.append(MetricDatum("ActualsOutOfDomainShare", q["out_of_domain_share"], "None", dims, at))
    if not q["published"]:
        return data
    data.append(MetricDatum("ActualsCount", q["in_domain"], "Count", dims, at))
    for name, key in (
        ("MAE", "mae"),
        ("RMSE", "rmse"),
        ("MAERatio", "mae_ratio"),
        ("RMSERatio", "rmse_ratio"),
    ):
        if q.get(key) is not None and math.isfinite(q[key]):
            data.append(MetricDatum(name, q[key], "None", dims, at))
    return data


def _metrics_status(metrics_at: datetime, now: datetime) -> dict[str, Any]:
    if now - metrics_at > METRIC_MAX_AGE:
        reason = f"older than CloudWatch accepts ({METRIC_MAX_AGE.days} days): no metrics published"
        return {"timestamp": utc_iso(metrics_at), "published": False, "reason": reason}
    return {"timestamp": utc_iso(metrics_at), "published": True, "reason": None}


def _new_report(window: Window, config: MonitorConfig, now: datetime, metrics_at: datetime) -> dict[str, Any]:
    return {
        "schema": REPORT_SCHEMA,
        "window": {"start": utc_iso(window.start), "end": utc_iso(window.end)},
        "generated_at": utc_iso(now.astimezone(UTC)),
        "metrics": _metrics_status(metrics_at, now),
        "settings": {
            "min_predictions": config.min_predictions,
            "min_actuals": config.min_actuals,
            "drift_alpha": ALPHA,
            "late_allowance_seconds": LATE_ALLOWANCE.total_seconds(),
        },
        "versions": {},
    }


def _analyse_versions(
    report: dict[str, Any],
    by_version: dict[str, VersionRows],
    actuals: JudgedActuals,
    ports: Ports,
    config: MonitorConfig,
) -> None:
    for version, rows in sorted(by_version.items()):
        if len(rows) < config.min_predictions:
            report["versions"][version] = {"status": "insufficient_data", "prediction_count": len(rows)}
            continue
        try:
            pointer = ports.profiles.pointer(version)
            profile = ports.profiles.profile(pointer)
        except (LookupError, ValueError, TypeError) as error:
            logger.warning(
                "model version not analysed", extra={"model_version": version, "error": str(error)}
            )
            report["errors"] += 1
            report["problems"].append(f"model version {version}: {error}")
            report["versions"][version] = {
                "status": "error",
                "prediction_count": len(rows),
                "error": str(error),
            }
            continue
        report["versions"][version] = analyse_version(rows, profile, pointer, actuals.durations, config)


def run_monitor(
    window: Window,
    ports: Ports,
    config: MonitorConfig,
    now: datetime,
    metrics_at: datetime | None = None,
    notes: dict[str, Any] | None = None,
    known_problems: Sequence[str] = (),
) -> dict[str, Any]:
    """Analyse the window (rides picked up in it), publish the metrics at `metrics_at` (a backfill's
    default: backfill_metrics_time), store the report with `notes` added; returns the report.
    `known_problems`: the run's own (already logged), counted and reported with the window's."""
    report = _new_report(window, config, now, metrics_at or backfill_metrics_time(window, now))
    problems: list[str] = []  # unreadable inputs: skipped, counted in MonitorErrors, logged, reported
    captured = read_captures(ports.capture, window.start, window.end, problems)
    batches = latest_captures(captured)
    actuals = read_actuals(ports.capture, window.start, window.end, captured, problems)
    for problem in problems:
        logger.warning("monitor input skipped", extra={"problem": problem})
    problems[:0] = known_problems
    by_version = rows_by_version(batches)
    predicted = sum(len(rows) for rows in by_version.values())
    rejected = ports.rejected.count(window, problems)  # its adapter logs what it skips
    report.update(
        prediction_count=predicted,
        late_captures=late_rows(batches, window.end),
        rejected={
            "count": rejected,
            "share": rejected / (predicted + rejected)
            if predicted + rejected >= config.min_predictions
            else None,
        },
        actuals=actuals.to_json(),
        errors=len(problems),
        problems=problems[:MAX_REPORTED_PROBLEMS],
        **(notes or {}),
    )
    _analyse_versions(report, by_version, actuals, ports, config)
    report["canary"] = canary_quality(batches, actuals.durations, config.min_actuals)
    ports.metrics.put(metrics_of(report))
    history = ports.reports.reports_since(window.end - timedelta(days=config.history_days))
    json_body, html_body = report_module.render(report, history)
    ports.reports.put(report_key(window.end, "json"), json_body, "application/json")
    ports.reports.put(report_key(window.end, "html"), html_body, "text/html; charset=utf-8")
    return report


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "window": report["window"],
        "prediction_count": report["prediction_count"],
        "versions": {v: r["status"] for v, r in report["versions"].items()},
        "report_key": report_key(parse_utc(report["window"]["end"]), "json"),
    }


def run_event(
    event: dict[str, Any] | None, ports: Ports, config: MonitorConfig, now: datetime
) -> dict[str, Any]:
    """The handler's whole job. A backfill evaluates its window and leaves the schedule alone."""
    window = backfill_window(event)
    if window is not None:
        return _summary(run_monitor(window, ports, config, now))
    return run_schedule(ports, config, now)


def run_schedule(ports: Ports, config: MonitorConfig, now: datetime) -> dict[str, Any]:
    """A scheduled run: the due windows (lambda_monitor.schedule), the state advanced and the progress
    published after each; the answer says what was evaluated and how far behind the schedule still is."""
    last_end, state_problem = _last_end(ports, config, now)
    schedule = due_windows(last_end, now, config.max_catch_up_hours)
    notes: dict[str, Any] = {}  # in the answer and the first window's report
    if schedule.skipped is not None:
        notes["skipped_windows"] = schedule.skipped.to_json()
        logger.warning("monitor windows skipped: too old to publish", extra=notes["skipped_windows"])
    if state_problem is not None:
        notes["state_problem"] = state_problem
    summaries = []
    for i, due in enumerate(schedule.windows):
        report = run_monitor(
            due,
            ports,
            config,
            now,
            metrics_at=schedule.metrics_time(due, now),
            notes=None if i else notes,
            known_problems=[state_problem["problem"]] if state_problem and not i else (),
        )
        ports.state.write(encode_state(due.end))
        _publish_progress(ports, 1, schedule.lag_after(i + 1), now)
        summaries.append(_summary(report))
    if not schedule.windows:
        _publish_progress(ports, 0, schedule.lag_after(0), now)
    behind_hours = schedule.lag_after(len(schedule.windows)) / timedelta(hours=1)
    if behind_hours:
        logger.warning("monitor behind: the next runs catch up", extra={"behind_hours": behind_hours})
    last = (
        summaries[-1]
        if summaries
        else {"window": None, "prediction_count": 0, "versions": {}, "report_key": None}
    )
    return {
        **last,
        "evaluated": [s["window"]["end"] for s in summaries],
        "behind_hours": behind_hours,
        **notes,
    }


def _last_end(
    ports: Ports, config: MonitorConfig, now: datetime
) -> tuple[datetime | None, dict[str, Any] | None]:
    """The state's last window end (None: no state), and the problem of an unreadable one. An unreadable
    state is kept aside, as it was, and the run restarts from fresh_start: the schedule goes on (the
    problem is logged, reported and counted in MonitorErrors) rather than fail every run until someone
    repairs it."""
    body = ports.state.read()
    if body is None:
        return None, None
    try:
        return decode_state(body, now), None
    except StateError as error:
        key = unreadable_state_key(now)
        ports.state.set_aside(key, body)
        start = fresh_start(now, config.max_catch_up_hours)
        problem = {
            "field": error.field,
            "reason": error.reason,
            "set_aside_key": key,
            "restarted_after": utc_iso(start),
            "problem": f"{error}: kept at {key}, windows ending after {utc_iso(start)} evaluated",
        }
        logger.error("monitor state unreadable", extra=problem)
        return start, problem


def _publish_progress(ports: Ports, completed: int, lag: timedelta, now: datetime) -> None:
    """The liveness metrics, at the run's time: a window completed (MonitorWindowsCompleted, 0 when none
    was due: the heartbeat alarm's) and how far behind the schedule still is (MonitorLagHours)."""
    ports.metrics.put(
        [
            MetricDatum("MonitorWindowsCompleted", completed, "Count", (), now),
            MetricDatum("MonitorLagHours", lag / timedelta(hours=1), "None", (), now),
        ]
    )


def run_failed(ports: Ports, now: datetime) -> None:
    """Publish MonitorErrors = 1 for a run that failed as a whole (best effort)."""
    try:
        ports.metrics.put([MetricDatum("MonitorErrors", 1.0, "Count", (), now)])
    except Exception:  # the original error matters more
        return
