"""One monitor run: read the window, compare each model version with its reference, publish, report."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from lambda_monitor import report as report_module
from lambda_monitor.config import MonitorConfig
from lambda_monitor.drift import ColumnDrift, dataset_drift
from lambda_monitor.ports import MetricDatum, Ports
from lambda_monitor.window import VersionRows, Window, current_columns, rows_by_version
from trip_core.contracts import parse_utc, report_key, utc_iso
from trip_core.observability import logger
from trip_core.pointer import ModelPointer
from trip_core.profile import ReferenceProfile

REPORT_SCHEMA = 1
DEFAULT_WINDOW = timedelta(hours=1)
ACTUALS_EXTRA_DAYS = 1  # rides that end (and are reported) the day after the window
MAX_REPORTED_PROBLEMS = 20  # problems listed in the report (all are counted in MonitorErrors and logged)


def resolve_window(
    event: dict[str, Any] | None, last_end: datetime | None, now: datetime
) -> tuple[Window, bool]:
    """(window, scheduled): explicit `{"window_start", "window_end"}` = backfill; else since the last run."""
    event = event or {}
    if "window_start" in event or "window_end" in event:
        try:
            return Window(parse_utc(str(event["window_start"])), parse_utc(str(event["window_end"]))), False
        except (KeyError, ValueError) as error:
            raise ValueError(f"backfill needs ISO window_start and window_end: {error}") from error
    start = last_end if last_end is not None and last_end < now else now - DEFAULT_WINDOW
    return Window(start, now), True


def _column_json(result: ColumnDrift | None) -> dict[str, Any] | None:
    return None if result is None else asdict(result)


def quality(
    rows: VersionRows, actuals: dict[Any, float], pointer: ModelPointer, min_actuals: int
) -> dict[str, Any]:
    """MAE/RMSE of the window's predictions that have an actual, and their ratios to validation."""
    ride_ids = rows.ride_id.tolist()
    found = (
        np.array([rid in actuals for rid in ride_ids], dtype=bool) if actuals else np.zeros(len(rows), bool)
    )
    joined = int(found.sum())
    result: dict[str, Any] = {
        "joined": joined,
        "min_actuals": min_actuals,
        "published": joined >= min_actuals,
    }
    if joined:
        truth = np.array(
            [actuals[rid] for rid, ok in zip(ride_ids, found, strict=True) if ok], dtype=np.float64
        )
        errors = rows.prediction[found] - truth
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
    actuals: dict[Any, float],
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
    """The CloudWatch figures of a report (docs/architecture.md, "Monitor metrics")."""
    at = parse_utc(report["window"]["end"])
    data = [MetricDatum("PredictionCount", report["prediction_count"], "Count", (), at)]
    if report["rejected"]["share"] is not None:
        data.append(MetricDatum("RejectedShare", report["rejected"]["share"], "None", (), at))
    data.append(MetricDatum("MonitorErrors", report["errors"], "Count", (), at))
    data.extend(_with_aggregates(_version_metrics(report, at)))
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
        drift = result["drift"]
        data.append(MetricDatum("MissingShare", result["missing_share"], "None", dims, at))
        data.append(MetricDatum("DriftShare", drift["drift_share"], "None", dims, at))
        data.append(MetricDatum("DatasetDrift", float(drift["dataset_drift"]), "None", dims, at))
        if drift["prediction"] is not None:
            data.append(
                MetricDatum("PredictionDriftScore", drift["prediction"]["distance"], "None", dims, at)
            )
            data.append(
                MetricDatum("PredictionDrift", float(drift["prediction"]["drifted"]), "None", dims, at)
            )
        for feature, column in drift["features"].items():
            fdims = (*dims, ("Feature", feature))
            data.append(MetricDatum("FeatureDriftScore", column["distance"], "None", fdims, at))
            data.append(MetricDatum("FeatureDrift", float(column["drifted"]), "None", fdims, at))
        q = result["quality"]
        if q["published"]:
            data.append(MetricDatum("ActualsCount", q["joined"], "Count", dims, at))
            for name, key in (
                ("MAE", "mae"),
                ("RMSE", "rmse"),
                ("MAERatio", "mae_ratio"),
                ("RMSERatio", "rmse_ratio"),
            ):
                if q.get(key) is not None and math.isfinite(q[key]):
                    data.append(MetricDatum(name, q[key], "None", dims, at))
    return data


def run_monitor(window: Window, ports: Ports, config: MonitorConfig, now: datetime) -> dict[str, Any]:
    """Analyse the window, publish the metrics, store the report; returns the report (JSON dict)."""
    problems: list[str] = []  # unreadable inputs: skipped, counted in MonitorErrors, logged, reported
    by_version = rows_by_version(ports.captures.batches(window, problems))
    predicted = sum(len(rows) for rows in by_version.values())
    rejected = ports.rejected.count(window, problems)
    total = predicted + rejected
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "window": {"start": utc_iso(window.start), "end": utc_iso(window.end)},
        "generated_at": utc_iso(now.astimezone(UTC)),
        "settings": {
            "min_predictions": config.min_predictions,
            "min_actuals": config.min_actuals,
            "drift_threshold": config.drift_threshold,
        },
        "prediction_count": predicted,
        "rejected": {
            "count": rejected,
            "share": rejected / total if total >= config.min_predictions else None,
        },
        "versions": {},
        "errors": len(problems),
        "problems": problems[:MAX_REPORTED_PROBLEMS],
    }
    needs_actuals = any(len(rows) >= config.min_predictions for rows in by_version.values())
    actuals = ports.actuals.durations(window.days(ACTUALS_EXTRA_DAYS)) if needs_actuals else {}
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
        report["versions"][version] = analyse_version(rows, profile, pointer, actuals, config)

    ports.metrics.put(metrics_of(report))
    history = ports.reports.reports_since(window.end - timedelta(days=config.history_days))
    json_body, html_body = report_module.render(report, history)
    ports.reports.put(report_key(window.end, "json"), json_body, "application/json")
    ports.reports.put(report_key(window.end, "html"), html_body, "text/html; charset=utf-8")
    return report


def run_event(
    event: dict[str, Any] | None, ports: Ports, config: MonitorConfig, now: datetime
) -> dict[str, Any]:
    """The handler's whole job: pick the window, run, advance the state of scheduled runs."""
    window, scheduled = resolve_window(event, ports.state.last_window_end(), now)
    report = run_monitor(window, ports, config, now)
    last = ports.state.last_window_end()
    if scheduled or last is None or window.end > last:
        ports.state.save_window_end(window.end)
    summary = {
        "window": report["window"],
        "prediction_count": report["prediction_count"],
        "versions": {v: r["status"] for v, r in report["versions"].items()},
        "report_key": report_key(window.end, "json"),
    }
    return summary


def run_failed(ports: Ports, now: datetime) -> None:
    """Publish MonitorErrors = 1 for a run that failed as a whole (best effort)."""
    try:
        ports.metrics.put([MetricDatum("MonitorErrors", 1.0, "Count", (), now)])
    except Exception:  # the original error matters more
        return
